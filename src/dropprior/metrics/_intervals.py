r"""Regression uncertainty of a Gaussian mixture predictive: CRPS, interval coverage and its
calibration curve.

The predictive of MC prediction is the equal-weight mixture (1/S) Σ_s N(μ_s, σ_s²) per point
(:class:`dropprior.prediction.RegressionPrediction`'s ``sample_means`` / ``sample_stds``).

* :func:`crps` — the continuous ranked probability score ∫ (F(x) − [x ≥ y])² dx, in closed form
  for a mixture: E|X − y| − ½ E|X − X'| with E|Z| = μ(2Φ(μ/σ) − 1) + 2σφ(μ/σ) for Z ~ N(μ, σ²)
  (Grimit et al., 2006), summed over the component pairs (each unordered pair once) in chunks;
* :func:`central_interval` — the central interval of level α, its ends the (1 ∓ α)/2 quantiles
  of the mixture by bisection on its cdf;
* :func:`picp` / :func:`interval_width` — the fraction of targets inside it, and its mean width;
  a target y lies inside exactly when (1 − α)/2 ≤ F(y) ≤ (1 + α)/2 for the mixture's cdf F
  (continuous and increasing), which is how :func:`picp` counts it, one cdf value per target;
* :func:`coverage_curve` / :func:`coverage_calibration_error` — observed coverage against the
  nominal level over a grid of levels, and the mean |observed − nominal| (the regression analogue
  of the ECE).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import Tensor

from dropprior._validation import check_finite, check_finite_data, check_positive, shape_or_type

__all__ = ["crps", "central_interval", "picp", "interval_width", "coverage_curve",
           "coverage_calibration_error", "LEVELS"]

LEVELS = tuple(round(0.05 * k, 2) for k in range(1, 20))
"""The nominal levels of :func:`coverage_curve`: 0.05, 0.10, ..., 0.95."""


def _check(means: Tensor, stds: Tensor, y: Tensor | None = None) -> None:
    for name, t in (("means", means), ("stds", stds)):
        if not isinstance(t, Tensor) or t.dim() != 2:
            got = shape_or_type(t)
            raise ValueError(f"{name} must have shape (S, N), got {got}")
    if stds.shape != means.shape:
        raise ValueError(f"stds of shape {tuple(stds.shape)} must match means "
                         f"{tuple(means.shape)}")
    check_finite("means", means)
    check_positive("stds", stds)
    if y is not None and (not isinstance(y, Tensor) or y.shape != means.shape[1:]):
        got = shape_or_type(y)
        raise ValueError(f"y must have shape (N,) = {tuple(means.shape[1:])}, got {got}")
    if y is not None:
        check_finite_data("y", y)


def _check_level(level: float) -> float:
    if isinstance(level, bool) or not isinstance(level, (int, float)) or not 0 < level < 1:
        raise ValueError(f"a coverage level must lie in (0, 1), got {level!r}")
    return float(level)


_SQRT_HALF = math.sqrt(0.5)
_SQRT_2_OVER_PI = math.sqrt(2.0 / math.pi)
_PAIR_BLOCK = 2**19  # crps's default step: at most this many (pair, point) terms, 4 MiB of float64


def _abs_mean_scaled(z: Tensor) -> Tensor:
    """E|Z| / σ for Z ~ N(zσ, σ²): z·erf(z/√2) + √(2/π)·exp(−z²/2) (= z(2Φ(z) − 1) + 2φ(z))."""
    return z * torch.erf(z * _SQRT_HALF) + _SQRT_2_OVER_PI * torch.exp(-0.5 * z * z)


def crps(means: Tensor, stds: Tensor, y: Tensor, chunk: int | None = None) -> Tensor:
    """CRPS of the mixture per point (lower is better; the MAE for a point prediction).

    The pair term E|X − X'| sums over the S(S + 1)/2 unordered component pairs (it is symmetric),
    ``chunk`` component rows at a time (default: as many as keep one step within 2¹⁹ (pair,
    point) terms, at least one). Where every component of a point has the same std σ (as in MC
    dropout's predictive), each pair's std is √2·σ and is not recomputed per pair.

    Shape:
        means, stds: (S, N); y: (N,); result: (N,).
    """
    _check(means, stds, y)
    n_comp = means.shape[0]
    if chunk is None:
        chunk = max(1, _PAIR_BLOCK // max(1, n_comp * means.shape[1]))
    if isinstance(chunk, bool) or not isinstance(chunk, int) or chunk < 1:
        raise ValueError(f"chunk must be an int >= 1 (component rows per step) or None, got "
                         f"{chunk!r}")
    m, s = means.double(), stds.double()
    first = (s * _abs_mean_scaled((m - y.double()) / s)).mean(dim=0)
    shared = bool((s == s[:1]).all())
    if shared:  # one σ per point: pairs have std √2·σ, so scale the means by it once
        pair_std = math.sqrt(2.0) * s[0]
        m = m / pair_std
    pair = torch.zeros_like(first)
    for i in range(0, n_comp, chunk):  # rows i..i+chunk against columns i.., each pair once
        end = min(i + chunk, n_comp)
        for cols, weight in ((slice(i, end), 1.0), (slice(end, n_comp), 2.0)):
            if cols.start >= cols.stop:
                continue
            diff = m[i:end, None] - m[None, cols]
            if shared:
                pair += weight * _abs_mean_scaled(diff).sum(dim=(0, 1))
            else:
                sigma = (s[i:end, None].square() + s[None, cols].square()).sqrt()
                pair += weight * (sigma * _abs_mean_scaled(diff / sigma)).sum(dim=(0, 1))
    if shared:
        pair = pair * pair_std
    return (first - 0.5 * pair / n_comp**2).to(means.dtype)


def _mixture_cdf(x: Tensor, m: Tensor, s: Tensor) -> Tensor:
    return torch.special.ndtr((x[None] - m) / s).mean(dim=0)


def _quantile(p: float, m: Tensor, s: Tensor, iterations: int = 80) -> Tensor:
    z = math.sqrt(2) * float(torch.erfinv(torch.tensor(2 * p - 1, dtype=torch.float64)))
    lo = (m + z * s).min(dim=0).values - 1e-9
    hi = (m + z * s).max(dim=0).values + 1e-9  # every component's p-quantile brackets the mix's
    for _ in range(iterations):
        mid = (lo + hi) / 2
        below = _mixture_cdf(mid, m, s) < p
        lo, hi = torch.where(below, mid, lo), torch.where(below, hi, mid)
    return (lo + hi) / 2


def central_interval(means: Tensor, stds: Tensor, level: float) -> tuple[Tensor, Tensor]:
    """(lower, upper) of the mixture's central interval of ``level``.

    Shape:
        means, stds: (S, N); results: (N,) each.
    """
    _check(means, stds)
    alpha = _check_level(level)
    m, s = means.double(), stds.double()
    lower, upper = _quantile((1 - alpha) / 2, m, s), _quantile((1 + alpha) / 2, m, s)
    return lower.to(means.dtype), upper.to(means.dtype)


def picp(means: Tensor, stds: Tensor, y: Tensor, level: float) -> Tensor:
    """Prediction-interval coverage probability: the fraction of y inside the central interval.

    Shape:
        means, stds: (S, N); y: (N,); result: scalar.
    """
    _check(means, stds, y)
    return _covered(_pit(means, stds, y), _check_level(level)).to(means.dtype).mean()


def _pit(means: Tensor, stds: Tensor, y: Tensor) -> Tensor:
    """F(y), the mixture's cdf at each target (its probability integral transform), float64."""
    return _mixture_cdf(y.double(), means.double(), stds.double())


def _covered(pit: Tensor, level: float) -> Tensor:
    """Whether each target lies in the central interval of ``level``: the mixture's cdf is
    continuous and increasing, so y lies between its (1 ∓ level)/2 quantiles exactly when
    (1 − level)/2 ≤ F(y) ≤ (1 + level)/2."""
    return (pit >= (1 - level) / 2) & (pit <= (1 + level) / 2)


def interval_width(means: Tensor, stds: Tensor, level: float) -> Tensor:
    """The mean width of the central interval of ``level``.

    Shape:
        means, stds: (S, N); result: scalar.
    """
    lower, upper = central_interval(means, stds, level)
    return (upper - lower).mean()


def coverage_curve(means: Tensor, stds: Tensor, y: Tensor,
                   levels: Sequence[float] = LEVELS) -> tuple[Tensor, Tensor]:
    """(nominal levels, observed coverage) of the central intervals.

    Shape:
        means, stds: (S, N); y: (N,); results: (L,) each.
    """
    if len(levels) == 0:
        raise ValueError("levels must hold at least one coverage level in (0, 1)")
    nominal = torch.tensor([_check_level(a) for a in levels], dtype=torch.float64)
    _check(means, stds, y)
    pit = _pit(means, stds, y)
    observed = torch.stack([_covered(pit, float(a)).double().mean() for a in nominal])
    return nominal, observed


def coverage_calibration_error(means: Tensor, stds: Tensor, y: Tensor,
                               levels: Sequence[float] = LEVELS) -> Tensor:
    """Mean |observed − nominal| coverage over ``levels`` (0 for a calibrated predictive).

    Shape:
        means, stds: (S, N); y: (N,); result: scalar.
    """
    nominal, observed = coverage_curve(means, stds, y, levels)
    return (observed - nominal).abs().mean()
