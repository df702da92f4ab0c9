"""Linear regression under a structured scale-mixture prior, as a Pyro model for HMC/NUTS.

.. math::

    w_j \\sim \\int N(0, \\sigma_0^2 \\xi_j^2)\\, p(\\xi_j)\\, d\\xi_j,\\qquad
    y \\mid X, w \\sim N(X w, \\sigma^2 I)

with one ξ per coefficient (ARD on the inputs: dropout on the inputs of a linear model). With
ξ ~ HalfCauchy(s) this is the horseshoe with global scale τ = σ0·s; with Rayleigh(s) the Bayesian
lasso (Laplace(0, σ0 s)); with inverse Nakagami a Student-t prior.
"""

from __future__ import annotations

import pyro
import pyro.distributions as pdist
from torch import Tensor
from torch.distributions import Distribution

from dropprior.inference._prior import check_continuous, check_parametrization, sample_scale_mixture

__all__ = ["linear_regression_model", "scale_mixture_model"]


def linear_regression_model(
    X: Tensor,
    y: Tensor | None,
    law: Distribution,
    sigma0: float = 1.0,
    noise_std: float = 1.0,
    parametrization: str = "ep",
) -> Tensor:
    """Pyro model of Gaussian linear regression with the prior ξ_j ~ law on each coefficient.

    Sites: ``w.xi`` (D,), ``w.z`` (D,) in EP or ``w.w`` (D,) in HP (EP also records ``w.w``),
    and the observed ``y`` (N,). No intercept: centre y.

    Args:
        X: design, shape (N, D).
        y: targets, shape (N,), or None to sample from the prior predictive.
        law: a continuous noise law (scalar parameters).
        sigma0: σ0 of the Gaussian on z.
        noise_std: the fixed noise standard deviation σ.
        parametrization: ``"ep"`` (non-centred, w = ξ·z) or ``"hp"`` (centred).

    Returns:
        The mean X w, shape (N,).
    """
    check_parametrization(parametrization)
    check_continuous(law)
    D = X.shape[-1]
    w = sample_scale_mixture("w", law, sigma0, (D,), (D,), parametrization)
    mean = X @ w
    pyro.sample("y", pdist.Normal(mean, noise_std).to_event(1), obs=y)
    return mean


def scale_mixture_model(
    y: Tensor | None,
    law: Distribution,
    sigma0: float = 1.0,
    noise_std: float = 1.0,
    parametrization: str = "ep",
) -> Tensor:
    """Pyro model of one weight w under the prior, observed through y_i ~ N(w, noise_std²).

    With ``y`` empty (shape (0,)) or None the posterior is the marginal prior p(w) itself
    (``law.marginal(sigma0)``), which makes this the smallest check that both parametrizations
    target the right density.

    Sites: ``w.xi`` (), ``w.z`` () (EP) or ``w.w`` () (HP), ``y`` (N,).
    """
    check_parametrization(parametrization)
    check_continuous(law)
    w = sample_scale_mixture("w", law, sigma0, (), (), parametrization)
    if y is not None and y.numel() > 0:
        pyro.sample("y", pdist.Normal(w.expand(y.shape), noise_std).to_event(1), obs=y)
    return w
