"""Marginal priors p(w) of w = ξ·z, z ~ N(0, σ0² I_D), induced by each noise law (paper Table 1).

Each is a ``torch.distributions.Distribution`` with ``log_prob``, ``sample(shape, generator=)``
and ``cdf`` (one weight), obtained as ``law.marginal(sigma0, group_size)``; importing this package
registers them with :func:`dropprior.noise.register_marginal`. See ``docs/priors.md``.
"""

from dropprior.priors._base import ScaleMixture
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
]
