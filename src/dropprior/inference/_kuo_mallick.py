"""Kuo & Mallick's (1998) Gibbs sampler: Bernoulli noise in the expanded parametrization.

The model is dropout on the inputs of a linear (or probit) regression, read as a prior:

.. math::

    \\xi_j \\sim \\mathrm{Bernoulli}(\\pi),\\quad z_j \\sim N(0, \\sigma_0^2 s^2),\\quad
    w_j = \\xi_j z_j,\\quad y \\mid X, w \\sim N(X w, \\sigma^2 I)

with s = 1 when σ is fixed. Marginally each w_j has the spike-and-slab prior
π N(0, σ0² s²) + (1 − π) δ0 (paper Table 1), and p(ξ_j = 1 | y, X) is the posterior inclusion
probability of column j — the quantity the paper points to (Section 3).

* ``noise_std=σ`` fixes the noise scale.
* ``noise_std=None`` puts the standard conjugate Normal-inverse-gamma prior on σ²:
  σ² ~ InvGamma(a, b) and z | σ² ~ N(0, σ0² σ² I), i.e. σ0 is then expressed in units of σ
  (s = σ). This keeps p(y | ξ) in closed form (a multivariate Student-t), so the chain can be
  checked against exact enumeration.
* ``likelihood="probit"`` (y ∈ {0, 1}) uses Albert & Chib's latent u_i ~ N(x_iᵀw, 1),
  y_i = 1[u_i > 0], which turns every step into the linear case with σ = 1.

One sweep draws z | ξ, σ², y (Gaussian, jointly), then each ξ_j | ξ_{-j}, z, σ², y (Bernoulli,
one at a time), then σ² (if unknown) and u (if probit). The chains run vectorised over
``num_chains``. No intercept is fitted: centre y (linear) or add a column of ones (probit).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from dropprior._validation import (
    as_param,
    check_chain_lengths,
    check_choice,
    check_in_interval,
    check_positive,
    regression_data,
)
from dropprior.inference._diagnostics import bulk_ess
from dropprior.inference._random import inverse_gamma

__all__ = ["KuoMallickResult", "kuo_mallick"]

LIKELIHOODS = ("gaussian", "probit")


@dataclass(frozen=True)
class KuoMallickResult:
    """Draws of the Kuo–Mallick chain, after burn-in.

    Attributes:
        xi: inclusion indicators ξ, shape (num_chains, num_samples, D), values in {0, 1}.
        z: EP weights z, shape (num_chains, num_samples, D).
        noise_var: σ² per draw, shape (num_chains, num_samples) (constant when σ is fixed,
            all ones for probit).
    """

    xi: Tensor
    z: Tensor
    noise_var: Tensor

    @property
    def weights(self) -> Tensor:
        """The effective weights w = ξ·z, shape (num_chains, num_samples, D)."""
        return self.xi * self.z

    @property
    def inclusion_probabilities(self) -> Tensor:
        """Posterior inclusion probabilities p(ξ_j = 1 | y, X), shape (D,)."""
        return self.xi.mean(dim=(0, 1))

    @property
    def inclusion_ess(self) -> Tensor:
        """Bulk effective sample size of each indicator ξ_j over all chains, shape (D,).

        The Monte Carlo standard error of ``inclusion_probabilities[j]`` is
        sqrt(p_j (1 − p_j) / ess_j).
        """
        return bulk_ess(self.xi)

    @property
    def inclusion_mcse(self) -> Tensor:
        """Monte Carlo standard error of each inclusion probability, shape (D,)."""
        p = self.inclusion_probabilities
        ess = self.inclusion_ess.clamp(min=1.0)
        return torch.sqrt(p * (1 - p) / ess)


def kuo_mallick(
    X: Tensor | np.ndarray,
    y: Tensor | np.ndarray,
    keep: float = 0.5,
    sigma0: float = 1.0,
    noise_std: float | None = 1.0,
    num_samples: int = 2000,
    warmup: int = 500,
    num_chains: int = 2,
    likelihood: str = "gaussian",
    noise_prior: tuple[float, float] = (1.0, 1.0),
    generator: torch.Generator | None = None,
) -> KuoMallickResult:
    """Gibbs-sample spike-and-slab regression in the EP (Kuo & Mallick 1998).

    Args:
        X: design matrix, shape (N, D).
        y: targets, shape (N,): real (gaussian) or in {0, 1} (probit).
        keep: the Bernoulli keep probability π = p(ξ_j = 1), in (0, 1).
        sigma0: slab scale σ0 > 0 of z ~ N(0, σ0²) (σ0 σ when ``noise_std=None``).
        noise_std: fixed σ > 0, or None for the conjugate InvGamma(a, b) prior on σ²
            (gaussian only; probit fixes σ = 1 and must leave this at its default or None).
        num_samples: draws kept per chain.
        warmup: sweeps discarded per chain before the kept draws.
        num_chains: independent chains, run vectorised (≥ 2 gives R-hat / ESS across chains).
        likelihood: ``"gaussian"`` or ``"probit"``.
        noise_prior: (a, b) of σ² ~ InvGamma(a, b) when ``noise_std=None``.
        generator: the source of randomness.

    Returns:
        A :class:`KuoMallickResult`; ``.inclusion_probabilities`` has shape (D,).

    Shape:
        X: (N, D), y: (N,) → xi, z: (num_chains, num_samples, D).

    Example:
        >>> X = torch.randn(50, 3, dtype=torch.float64)
        >>> y = 2 * X[:, 0] + torch.randn(50, dtype=torch.float64)
        >>> r = kuo_mallick(X, y, keep=0.5, noise_std=1.0, num_samples=200)
        >>> r.inclusion_probabilities.shape
        torch.Size([3])
    """
    X_t, y_t, probit, fixed_sigma = _checked(X, y, keep, sigma0, noise_std, num_samples,
                                             warmup, num_chains, likelihood, noise_prior)
    a0, b0 = noise_prior
    N, D = X_t.shape
    C = num_chains
    gram = X_t.T @ X_t  # (D, D)
    logit_keep = math.log(keep) - math.log1p(-keep)
    sigma2 = torch.full((C,), 1.0 if probit else float(noise_std or 1.0) ** 2, dtype=torch.float64)

    def randn(*shape: int) -> Tensor:
        return torch.randn(shape, dtype=torch.float64, generator=generator)

    def rand(*shape: int) -> Tensor:
        return torch.rand(shape, dtype=torch.float64, generator=generator)

    xi = (rand(C, D) < keep).to(torch.float64)
    z = sigma0 * randn(C, D)
    if probit:
        target = torch.where(y_t > 0, 1.0, -1.0).to(torch.float64).expand(C, N).clone()
    else:
        target = y_t.expand(C, N)
    xi_draws = torch.empty(C, num_samples, D, dtype=torch.float64)
    z_draws = torch.empty_like(xi_draws)
    s2_draws = torch.empty(C, num_samples, dtype=torch.float64)
    for t in range(warmup + num_samples):
        xty = target @ X_t  # (C, D)
        z = _draw_slab(xi, gram, xty, sigma2, sigma0, fixed_sigma, randn)
        _draw_indicators(xi, z, gram, xty, sigma2, logit_keep, rand)
        w = xi * z
        if not fixed_sigma:
            sigma2 = _draw_noise_variance(target, X_t, w, z, sigma0, a0, b0, generator)
        if probit:
            target = _truncated_latent(w @ X_t.T, y_t, rand)
        if t >= warmup:
            k = t - warmup
            xi_draws[:, k] = xi
            z_draws[:, k] = z
            s2_draws[:, k] = sigma2
    return KuoMallickResult(xi=xi_draws, z=z_draws, noise_var=s2_draws)


def _checked(X: Tensor | np.ndarray, y: Tensor | np.ndarray, keep: float, sigma0: float,
             noise_std: float | None, num_samples: int, warmup: int, num_chains: int,
             likelihood: str, noise_prior: tuple[float, float]
             ) -> tuple[Tensor, Tensor, bool, bool]:
    """The validated float64 data, whether the model is probit, and whether σ is fixed."""
    check_choice("likelihood", likelihood, LIKELIHOODS)
    X_t, y_t = regression_data(X, y)
    check_in_interval("keep", as_param(keep), 0.0, 1.0, high_open=True)
    check_positive("sigma0", as_param(sigma0))
    check_chain_lengths(num_samples, warmup, num_chains)
    probit = likelihood == "probit"
    if probit:
        if not bool(((y_t == 0) | (y_t == 1)).all()):
            raise ValueError("likelihood='probit' needs y in {0, 1}")
        if noise_std not in (None, 1.0):
            raise ValueError(f"likelihood='probit' fixes the latent noise to 1; got "
                             f"noise_std={noise_std!r} (pass None or 1.0)")
    fixed_sigma = probit or noise_std is not None
    if not probit and noise_std is not None:
        check_positive("noise_std", as_param(noise_std))
    if not fixed_sigma:
        check_positive("noise_prior", torch.tensor(noise_prior, dtype=torch.float64))
    return X_t, y_t, probit, fixed_sigma


def _draw_slab(xi: Tensor, gram: Tensor, xty: Tensor, sigma2: Tensor, sigma0: float,
               fixed_sigma: bool, randn: Callable[..., Tensor]) -> Tensor:
    """z | ξ, σ², y: Gaussian with precision (Ξ XᵀX Ξ + I/σ0²)/σ² (normal-inverse-gamma) or
    Ξ XᵀX Ξ/σ² + I/σ0² (fixed σ), one draw per chain.

    Shape:
        xi: (C, D); gram: (D, D); xty: (C, D); sigma2: (C,); result: (C, D).
    """
    c, d = xi.shape
    slab_var = torch.full((c,), sigma0**2, dtype=torch.float64)
    if not fixed_sigma:
        slab_var = slab_var * sigma2
    prec = xi[:, :, None] * gram * xi[:, None, :] / sigma2[:, None, None]
    prec = prec + torch.eye(d, dtype=torch.float64) / slab_var[:, None, None]
    chol = torch.linalg.cholesky(prec)
    rhs = (xi * xty / sigma2[:, None])[..., None]
    mean = torch.cholesky_solve(rhs, chol)[..., 0]
    noise = torch.linalg.solve_triangular(chol.mT, randn(c, d)[..., None], upper=True)
    return mean + noise[..., 0]


def _draw_indicators(xi: Tensor, z: Tensor, gram: Tensor, xty: Tensor, sigma2: Tensor,
                     logit_keep: float, rand: Callable[..., Tensor]) -> None:
    """ξ_j | rest for j = 1..D in turn, in place: log-odds
    logit(π) − (‖r₋ⱼ − xⱼzⱼ‖² − ‖r₋ⱼ‖²)/(2σ²), via the Gram matrix.

    Shape:
        xi, z, xty: (C, D); gram: (D, D); sigma2: (C,).
    """
    for j in range(xi.shape[1]):
        w_minus = xi * z
        w_minus[:, j] = 0.0
        cross = xty[:, j] - w_minus @ gram[:, j]  # x_jᵀ r₋ⱼ
        delta = z[:, j] ** 2 * gram[j, j] - 2.0 * z[:, j] * cross
        logit = logit_keep - delta / (2.0 * sigma2)
        xi[:, j] = (torch.log(rand(xi.shape[0])) < torch.nn.functional.logsigmoid(logit)).double()


def _draw_noise_variance(target: Tensor, X: Tensor, w: Tensor, z: Tensor, sigma0: float,
                         a0: float, b0: float, generator: torch.Generator | None) -> Tensor:
    """σ² | rest ~ InvGamma(a0 + (N + D)/2, b0 + ‖r‖²/2 + ‖z‖²/(2σ0²)), one draw per chain.

    Shape:
        target: (C, N); X: (N, D); w, z: (C, D); result: (C,).
    """
    resid = target - w @ X.T
    shape = a0 + 0.5 * (X.shape[0] + X.shape[1])
    rate = b0 + 0.5 * (resid**2).sum(-1) + 0.5 * (z**2).sum(-1) / sigma0**2
    return inverse_gamma(torch.full((w.shape[0],), shape, dtype=torch.float64), rate,
                         generator=generator)


def _truncated_latent(mean: Tensor, y: Tensor, rand) -> Tensor:
    """Albert–Chib latent u ~ N(mean, 1) truncated to u > 0 where y = 1 and u < 0 where y = 0.

    Inverse-CDF in log space: for y = 1, u = mean − Φ⁻¹(U·Φ(mean)); for y = 0,
    u = mean + Φ⁻¹(U·Φ(−mean)).
    """
    sign = torch.where(y > 0, 1.0, -1.0).to(mean.dtype)
    log_mass = torch.special.log_ndtr(sign * mean)
    u = rand(*mean.shape).clamp(min=1e-300)
    tail = torch.special.ndtri(torch.exp(torch.log(u) + log_mass).clamp(min=1e-300, max=1 - 1e-16))
    return mean - sign * tail
