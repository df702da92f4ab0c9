r"""The Jensen gap of the hierarchical parametrization (HP): noise in the prior (paper Prop. 4.2).

.. math:: \mathcal J_{HP} = \log \mathbb E_\xi\, p(W\mid\Xi) - \mathbb E_\xi \log p(W\mid\Xi),
   \qquad w_g \mid \xi_g \sim \mathcal N(0, \sigma_0^2 \xi_g^2 I_D)

— the likelihood cancels. For each group g of D weights sharing one scale (a row of W for unit
noise), with r_g = ‖w_g‖:

* the first term is the exact marginal prior, :math:`\log p(w_g)` from
  ``law.marginal(sigma0, group_size=D)`` (Student-t, Laplace, spike-and-slab, … — a quadrature
  marginal where no closed form exists). A Gaussian scale mixture on R^D is spherically
  symmetric, so it is evaluated at (r_g, 0, …, 0);
* the second term is :math:`-\tfrac D2\log(2\pi\sigma_0^2) - D\,\mathbb E\log|\xi|
  - \frac{r_g^2}{2\sigma_0^2}\mathbb E[\xi^{-2}]`, with the law's exact E[ξ⁻²] and a Monte Carlo
  estimate of E log|ξ| from S draws (its standard error is the only error of the estimate, and
  the estimate is unbiased).

Where E[ξ⁻²] = ∞ (Bernoulli, Rayleigh, Gaussian, half-Cauchy, Uniform(0, u): any law with mass or
density at 0) :math:`\mathbb E\log p(w_g\mid\xi) = -\infty` for every w_g ≠ 0, so the HP gap is
exactly +∞: reported as ``inf`` with zero standard error, not as a noisy finite number.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn
from torch.distributions import Normal

from dropprior._validation import check_at_least, check_sigma0, type_name
from dropprior.analysis._estimate import GapEstimate, SeriesApproximation
from dropprior.analysis._series import series_from_derivatives
from dropprior.noise import NoiseLaw

__all__ = ["hp_gap", "hp_gap_from_norms", "hp_series"]


def _check_samples(samples: int) -> int:
    if isinstance(samples, bool) or not isinstance(samples, int):
        raise TypeError(f"samples must be an int >= 2, got {samples!r}")
    if samples < 2:
        raise ValueError(f"samples must be >= 2 (a standard error needs two draws), got {samples}")
    return samples


def hp_series(norms: Tensor, group_size: int, noise: NoiseLaw,
              sigma0: float = 1.0) -> SeriesApproximation:
    r"""Prop. 4.2's series of the HP gap, per group, from autograd derivatives at E[ξ⁻²].

    With λ the prior precision scale, :math:`\log p(w_g\mid\lambda) =
    \sum_{d}\log\mathcal N(w_{gd}; 0, \sigma_0^2/\lambda)`; a = ∂_λ log p and b = ∂²_λ log p at
    λ = E[ξ⁻²] (autograd through ``torch.distributions.Normal``), V = Var[ξ⁻²]:

    .. math:: \mathcal J_g \approx \tfrac12 V a^2 - \sum_{k\ge2}\frac{(-1)^k}{k}
              \bigl[\tfrac12 V (a^2 + b)\bigr]^k .

    With D = 1 this is the paper's ½ Var[ξ⁻²] (∂ log p)² − Σ (−1)^k/k [½ Var[ξ⁻²] Ψ]^k per
    weight. ``converges`` is False where Var[ξ⁻²] = ∞ or |½VΨ| ≥ 1; the paper's own sufficient
    condition, E[ξ²] > 1, is recorded in ``note``.

    Shape:
        norms: (G,) group norms ‖w_g‖.
    """
    sigma0 = check_sigma0(sigma0, finite=True)
    mu = noise.inverse_square_mean.to(torch.float64)
    var = noise.inverse_square_variance.to(torch.float64)
    second = float(noise.second_moment)
    r = norms.detach().to(torch.float64).reshape(-1)
    note = (f"Prop. 4.2; the paper states its series needs E[xi^2] > 1; here E[xi^2] = "
            f"{second:.4g}")
    if not bool(torch.isfinite(mu)) or not bool(torch.isfinite(var)):
        inf = torch.ones_like(r, dtype=torch.bool)
        return series_from_derivatives(torch.zeros_like(r), torch.zeros_like(r), infinite=inf,
                                       trace_method="exact",
                                       note=note + "; Var[xi^-2] is infinite")
    lam = mu.expand_as(r).clone().requires_grad_(True)
    w = torch.zeros(r.shape[0], group_size, dtype=torch.float64)
    w[:, 0] = r
    with torch.enable_grad():
        scale = sigma0 / torch.sqrt(lam)
        logp = Normal(torch.zeros_like(scale), scale).log_prob(w.T).T.sum(dim=1)
        (a,) = torch.autograd.grad(logp.sum(), lam, create_graph=True)
        (b,) = torch.autograd.grad(a.sum(), lam)
    a = a.detach()
    return series_from_derivatives(var * a**2, var * b, trace_method="closed_form", note=note)


def hp_gap_from_norms(norms: Tensor, group_size: int, noise: NoiseLaw, sigma0: float = 1.0,
                      samples: int = 10_000, series: bool = True,
                      generator: torch.Generator | None = None) -> GapEstimate:
    r"""The HP Jensen gap of G weight groups of D weights each, given their norms.

    Args:
        norms: ‖w_g‖ per group.
        group_size: D, the number of weights sharing one scale.
        noise: the law of ξ (scalar).
        sigma0: σ0 of the Gaussian on the EP weights.
        samples: S draws of ξ for E log|ξ|.
        series: attach Prop. 4.2's series.
        generator: for the draws.

    Shape:
        norms: (G,); result parts: (G,).
    """
    sigma0 = check_sigma0(sigma0, finite=True)
    _check_samples(samples)
    if not isinstance(noise, NoiseLaw):
        raise TypeError(f"noise must be a dropprior NoiseLaw, got {type_name(noise)}")
    if isinstance(group_size, bool) or not isinstance(group_size, int) or group_size < 1:
        raise ValueError(f"group_size must be a positive int, got {group_size!r}")
    if not isinstance(norms, Tensor):
        raise TypeError(f"norms must be a torch.Tensor, got {type_name(norms)}")
    check_at_least("norms", norms.detach(), 0.0)
    r = norms.detach().to(torch.float64).reshape(-1)
    approx = hp_series(r, group_size, noise, sigma0) if series else None
    d = group_size
    law = noise.to(dtype=torch.float64)
    inv_sq = law.inverse_square_mean
    if not bool(torch.isfinite(inv_sq)):
        parts = torch.where(r > 0, math.inf, 0.0).to(torch.float64)
        zero = torch.zeros((), dtype=torch.float64)
        total = parts.sum()
        return GapEstimate(value=total, stderr=zero, bias=zero, plugin=total, parts=parts,
                           parts_stderr=torch.zeros_like(parts), part_kind="group",
                           samples=samples, series=approx)
    marginal = law.marginal(sigma0, group_size=d)
    if d == 1:
        log_marginal = marginal.log_prob(r).to(torch.float64)
    else:
        w = torch.zeros(r.shape[0], d, dtype=torch.float64)
        w[:, 0] = r
        log_marginal = marginal.log_prob(w).to(torch.float64)
    xi = law.sample(torch.Size((samples,)), generator=generator).to(torch.float64)  # type: ignore[call-arg]
    log_abs = torch.log(xi.abs())
    mean_log, sd_log = log_abs.mean(), log_abs.std()
    expected_log = (-0.5 * d * math.log(2 * math.pi * sigma0**2) - d * mean_log
                    - r**2 / (2 * sigma0**2) * inv_sq)
    parts = log_marginal - expected_log
    part_se = (d * sd_log / math.sqrt(samples)).expand_as(parts)
    zero = torch.zeros((), dtype=torch.float64)
    total = parts.sum()
    # every group shares the one estimate of E log|ξ|: the errors add, they do not average
    return GapEstimate(value=total, stderr=part_se.sum(), bias=zero, plugin=total, parts=parts,
                       parts_stderr=part_se, part_kind="group", samples=samples, series=approx)


def _group_size(layer: nn.Module, norms: Tensor) -> int:
    weight = getattr(layer, "weight", None)
    if not isinstance(weight, Tensor):
        raise ValueError(
            f"hp_gap needs the weights of each noisy layer; {type(layer).__name__} has no "
            "'weight' tensor. Use hp_gap_from_norms with its group norms and group size"
        )
    if weight.numel() % max(norms.numel(), 1):
        raise ValueError(f"{type(layer).__name__}: {weight.numel()} weights do not split into "
                         f"{norms.numel()} equal groups")
    return weight.numel() // norms.numel()


def hp_gap(model: nn.Module, samples: int = 10_000, sigma0: float = 1.0, series: bool = True,
           generator: torch.Generator | None = None) -> GapEstimate:
    r"""The HP Jensen gap of the prior on ``model``'s noisy layers' weights, summed over groups.

    Every dropprior noisy layer contributes its groups (``layer.group_norms()``, each group of
    ``weight.numel() / n_groups`` weights) under its own law; the draws of each layer are
    independent, so standard errors add in quadrature across layers.

    Args:
        model: a network with dropprior noisy layers (each with a ``weight``).
        samples: S draws of ξ per layer.
        sigma0: σ0 of the EP weights' Gaussian.
        series: attach Prop. 4.2's series (summed over layers; ``converges`` for all).
        generator: for the draws.

    Returns:
        a :class:`GapEstimate` with one part per group (layers concatenated in
        ``model.modules()`` order).
    """
    from dropprior.analysis._scales import noisy_layers

    layers = noisy_layers(model)
    if not layers:
        raise ValueError("model has no dropprior noisy layers (dropprior.nn.NoisyModule)")
    estimates = []
    for layer in layers:
        norms = layer.group_norms().reshape(-1)
        estimates.append(hp_gap_from_norms(norms, _group_size(layer, norms), layer.noise,
                                           sigma0, samples, series, generator))
    if len(estimates) == 1:
        return estimates[0]
    parts = torch.cat([e.parts for e in estimates])
    parts_se = torch.cat([e.parts_stderr for e in estimates])
    value = torch.stack([e.value for e in estimates]).sum()
    stderr = torch.stack([e.stderr for e in estimates]).pow(2).sum().sqrt()
    zero = torch.zeros((), dtype=torch.float64)
    approx = None
    if series:
        s = [e.series for e in estimates if e.series is not None]
        approx = SeriesApproximation(
            leading=torch.stack([a.leading for a in s]).sum(),
            second_order=torch.stack([a.second_order for a in s]).sum(),
            series=torch.stack([a.series for a in s]).sum(),
            converges=all(a.converges for a in s),
            max_ratio=torch.stack([a.max_ratio for a in s]).max(),
            parts_leading=torch.cat([a.parts_leading for a in s]),
            parts_ratio=torch.cat([a.parts_ratio for a in s]),
            trace_method="closed_form",
            note="; ".join(dict.fromkeys(a.note for a in s)),
        )
    return GapEstimate(value=value, stderr=stderr, bias=zero, plugin=value, parts=parts,
                       parts_stderr=parts_se, part_kind="group", samples=samples, series=approx)
