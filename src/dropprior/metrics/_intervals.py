r"""Regression uncertainty of a Gaussian mixture predictive: CRPS, interval coverage and its
calibration curve.

The predictive of MC prediction is the equal-weight mixture (1/S) Σ_s N(μ_s, σ_s²) per point
(:class:`dropprior.prediction.RegressionPrediction`'s ``sample_means`` / ``sample_stds``).

* :func:`crps` — the continuous ranked probability score ∫ (F(x) − [x ≥ y])² dx, in closed form
  for a mixture: E|X − y| − ½ E|X − X'| with E|Z| = μ(2Φ(μ/σ) − 1) + 2σφ(μ/σ) for Z ~ N(μ, σ²)
  (Grimit et al., 2006), summed over the S² component pairs in chunks;
* :func:`central_interval` — the central interval of level α, its ends the (1 ∓ α)/2 quantiles
  of the mixture by bisection on its cdf;
* :func:`picp` / :func:`interval_width` — the fraction of targets inside it, and its mean width;
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


def _abs_mean(mu: Tensor, sigma: Tensor) -> Tensor:
    """E|Z| for Z ~ N(mu, sigma²)."""
    z = mu / sigma
    normal = torch.distributions.Normal(torch.zeros((), dtype=mu.dtype),
                                        torch.ones((), dtype=mu.dtype))
    return mu * (2 * normal.cdf(z) - 1) + 2 * sigma * normal.log_prob(z).exp()


def crps(means: Tensor, stds: Tensor, y: Tensor, chunk: int = 64) -> Tensor:
    """CRPS of the mixture per point (lower is better; the MAE for a point prediction).

    Shape:
        means, stds: (S, N); y: (N,); result: (N,).
    """
    _check(means, stds, y)
    if isinstance(chunk, bool) or not isinstance(chunk, int) or chunk < 1:
        raise ValueError(f"chunk must be an int >= 1 (component rows per step), got {chunk!r}")
    m, s = means.double(), stds.double()
    first = _abs_mean(m - y.double(), s).mean(dim=0)
    pair = torch.zeros_like(first)
    for i in range(0, m.shape[0], chunk):  # the S² pairs, ``chunk`` rows at a time
        mi, si = m[i:i + chunk, None], s[i:i + chunk, None]
        pair += _abs_mean(mi - m[None], (si.square() + s[None].square()).sqrt()).sum(dim=(0, 1))
    return (first - 0.5 * pair / m.shape[0] ** 2).to(means.dtype)


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
    lower, upper = central_interval(means, stds, level)
    return ((y >= lower) & (y <= upper)).to(means.dtype).mean()


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
    observed = torch.stack([picp(means, stds, y, float(a)).double() for a in nominal])
    return nominal, observed


def coverage_calibration_error(means: Tensor, stds: Tensor, y: Tensor,
                               levels: Sequence[float] = LEVELS) -> Tensor:
    """Mean |observed − nominal| coverage over ``levels`` (0 for a calibrated predictive).

    Shape:
        means, stds: (S, N); y: (N,); result: scalar.
    """
    nominal, observed = coverage_curve(means, stds, y, levels)
    return (observed - nominal).abs().mean()
