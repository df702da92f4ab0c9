"""Marginal priors p(w) of w = ξ·z, z ~ N(0, σ0² I_D), induced by each noise law (paper Table 1).

Each is a ``torch.distributions.Distribution`` with ``log_prob``, ``sample(shape, generator=)``
and ``cdf`` (one weight), obtained as ``marginal_for(law, sigma0, group_size)`` or
``law.marginal(sigma0, group_size)``. The registry (:func:`register_marginal`) lives here, with
its consumer, as torch's ``register_kl`` does; importing this package fills it. See
``docs/priors.md``.
"""

from dropprior.priors._base import ScaleMixture
from dropprior.priors._registry import marginal_for, register_marginal
from dropprior.priors.horseshoe import Horseshoe
from dropprior.priors.laplace import Laplace
from dropprior.priors.quadrature import QuadratureMarginal
from dropprior.priors.spike_and_slab import SpikeAndSlab
from dropprior.priors.student_t import StudentT
from dropprior.priors.variance_gamma import VarianceGamma

__all__ = [
    "ScaleMixture",
    "SpikeAndSlab",
    "VarianceGamma",
    "Laplace",
    "StudentT",
    "Horseshoe",
    "QuadratureMarginal",
    "register_marginal",
    "marginal_for",
]
