"""Log densities of posteriors under a structured scale-mixture prior, for HMC/NUTS.

A :class:`LogDensity` names its latent sites (shape and support) and evaluates the log joint
log p(θ, y) at constrained values. :func:`dropprior.inference.run_mcmc` maps every site to an
unconstrained scale with ``torch.distributions.biject_to(support)`` and adds the log-Jacobian
(e.g. ξ = exp(u), log|dξ/du| = u for laws on (0, ∞)), then hands the potential to Pyro's NUTS.

This is the same density as the Pyro-model form (:func:`sample_scale_mixture`), written as one
torch function: Pyro's per-site tracing costs several times the arithmetic for small models.

The prior term, for one weight group sharing ξ (noise shape broadcast against the weights):

* EP (non-centred): log p(ξ) + Σ log N(z; 0, σ0²),   w = ξ·z;
* HP (centred):     log p(ξ) + Σ log N(w; 0, σ0² ξ²).
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod

import torch
from torch import Tensor
from torch.distributions import Distribution, constraints

from dropprior._validation import as_param, check_finite_data, check_positive, regression_data
from dropprior.inference._prior import check_continuous, check_parametrization

__all__ = ["LogDensity", "prior_log_prob", "normal_log_prob", "ScaleMixture1D",
           "LinearRegression"]

Sites = dict[str, tuple[torch.Size, constraints.Constraint]]


def normal_log_prob(x: Tensor, scale: Tensor | float) -> Tensor:
    """Σ log N(x; 0, scale²) over every entry (scale broadcast against x).

    Shape:
        x: (...), scale: broadcastable → ().
    """
    scale_t = torch.as_tensor(scale, dtype=x.dtype).expand_as(x)
    return (-0.5 * (x / scale_t) ** 2 - torch.log(scale_t) - 0.5 * math.log(2 * math.pi)).sum()


def prior_log_prob(law: Distribution, sigma0: float, xi: Tensor, weight: Tensor,
                   parametrization: str) -> Tensor:
    """Log prior of one weight group: ``weight`` is z in EP and w in HP.

    Shape:
        xi: the noise shape, broadcastable to weight's shape; weight: (...) → ().
    """
    lp_xi = law.log_prob(xi).sum()
    if parametrization == "ep":
        return lp_xi + normal_log_prob(weight, sigma0)
    return lp_xi + normal_log_prob(weight, sigma0 * xi.abs())


class LogDensity(ABC):
    """A posterior for HMC/NUTS: latent sites and the log joint at constrained values."""

    @abstractmethod
    def sites(self) -> Sites:
        """Latent site name → (shape, support)."""

    @abstractmethod
    def log_joint(self, values: dict[str, Tensor]) -> Tensor:
        """log p(θ, y) at constrained values (one draw, no batch dims); a scalar tensor."""

    def deterministic(self, values: dict[str, Tensor]) -> dict[str, Tensor]:
        """Derived quantities of draws with any leading batch dims (default: none)."""
        return {}

    @property
    def dtype(self) -> torch.dtype:
        """The floating dtype the chains run in (default: torch's default dtype)."""
        return torch.get_default_dtype()


class _WeightPrior:
    """Shared checks and site layout of one group of weights under the structured prior."""

    def __init__(self, law: Distribution, sigma0: float, parametrization: str) -> None:
        self.law = check_continuous(law)
        self.sigma0 = float(check_positive("sigma0", as_param(sigma0)))
        self.parametrization = check_parametrization(parametrization)

    def weight_sites(self, name: str, weight_shape: tuple[int, ...],
                     noise_shape: tuple[int, ...]) -> Sites:
        kind = "z" if self.parametrization == "ep" else "w"
        support = self.law.support
        assert support is not None  # every noise law declares its support
        return {
            f"{name}.xi": (torch.Size(noise_shape), support),
            f"{name}.{kind}": (torch.Size(weight_shape), constraints.real),
        }

    def weight(self, name: str, values: dict[str, Tensor]) -> Tensor:
        """w (EP: ξ·z, HP: the site itself), with any leading batch dims."""
        if self.parametrization == "ep":
            return values[f"{name}.xi"] * values[f"{name}.z"]
        return values[f"{name}.w"]

    def group_log_prob(self, name: str, values: dict[str, Tensor]) -> Tensor:
        kind = "z" if self.parametrization == "ep" else "w"
        return prior_log_prob(self.law, self.sigma0, values[f"{name}.xi"],
                              values[f"{name}.{kind}"], self.parametrization)


class ScaleMixture1D(_WeightPrior, LogDensity):
    """One weight w under the prior, observed through y_i ~ N(w, noise_std²) (y may be empty).

    With no data the posterior is the marginal prior ``law.marginal(sigma0)``; with data its
    moments follow by 1-D quadrature of that marginal — the smallest exact check of EP and HP.

    Sites: ``w.xi`` (), ``w.z`` () (EP) or ``w.w`` () (HP); deterministic ``w.w`` in EP.
    """

    def __init__(self, law: Distribution, sigma0: float = 1.0, y: Tensor | None = None,
                 noise_std: float = 1.0, parametrization: str = "ep") -> None:
        super().__init__(law, sigma0, parametrization)
        self.y = torch.zeros(0) if y is None else torch.as_tensor(y).reshape(-1)
        check_finite_data("y", self.y)
        self.noise_std = float(check_positive("noise_std", as_param(noise_std)))

    def sites(self) -> Sites:
        return self.weight_sites("w", (), ())

    def log_joint(self, values: dict[str, Tensor]) -> Tensor:
        w = self.weight("w", values)
        lik = normal_log_prob(self.y.to(w.dtype) - w, self.noise_std) if self.y.numel() else 0.0
        return self.group_log_prob("w", values) + lik

    def deterministic(self, values: dict[str, Tensor]) -> dict[str, Tensor]:
        return {"w.w": self.weight("w", values)} if self.parametrization == "ep" else {}


class LinearRegression(_WeightPrior, LogDensity):
    """Gaussian linear regression, one ξ per coefficient, fixed noise σ (no intercept: centre y).

    .. math:: w_j = \\xi_j z_j \\ (EP),\\quad y \\sim N(X w, \\sigma^2 I)

    With ξ ~ HalfCauchy(s) this is horseshoe regression with τ = σ0·s (compare
    :func:`horseshoe_gibbs`); Rayleigh gives the Bayesian lasso; inverse Nakagami a Student-t.

    Sites: ``w.xi`` (D,), ``w.z`` (D,) (EP) or ``w.w`` (D,) (HP); deterministic ``w.w`` in EP.

    The chains run in X's floating dtype (y is cast to it), whatever torch's default dtype.

    Shape:
        X: (N, D), y: (N,).
    """

    def __init__(self, X: Tensor, y: Tensor, law: Distribution, sigma0: float = 1.0,
                 noise_std: float = 1.0, parametrization: str = "ep") -> None:
        super().__init__(law, sigma0, parametrization)
        self.X, self.y = regression_data(X, y, dtype=None)
        if not (self.X.is_floating_point() and self.y.is_floating_point()):
            self.X, self.y = regression_data(X, y, dtype=torch.get_default_dtype())
        self.y = self.y.to(self.X.dtype)
        self.noise_std = float(check_positive("noise_std", as_param(noise_std)))

    @property
    def dtype(self) -> torch.dtype:
        """X's dtype (torch's default dtype for integer data): the chains run in it."""
        return self.X.dtype

    def sites(self) -> Sites:
        D = self.X.shape[1]
        return self.weight_sites("w", (D,), (D,))

    def log_joint(self, values: dict[str, Tensor]) -> Tensor:
        w = self.weight("w", values)
        return self.group_log_prob("w", values) + normal_log_prob(
            self.y - self.X @ w, self.noise_std)

    def deterministic(self, values: dict[str, Tensor]) -> dict[str, Tensor]:
        return {"w.w": self.weight("w", values)} if self.parametrization == "ep" else {}
