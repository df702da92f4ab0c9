r"""The series of Props. 4.1 and 4.2, from derivatives of log p at the noise's mean.

Both propositions expand a Jensen gap around the mean of the random quantity (μ_ξ for the EP,
μ_{ξ⁻²} = E[ξ⁻²] for the HP). For independent coordinates j with variances V_j, gradient g_j and
Hessian diagonal h_j of log p at the mean, a second-order expansion gives

.. math:: \log \mathbb E\,p \approx \log p(\mu) + \log\Bigl(1 + \underbrace{\tfrac12\textstyle\sum_j
          V_j (g_j^2 + h_j)}_{x}\Bigr), \qquad
          \mathbb E \log p \approx \log p(\mu) + \tfrac12\textstyle\sum_j V_j h_j,

so :math:`\mathcal J \approx \log(1+x) - \tfrac12\sum_j V_j h_j
= \tfrac12\sum_j V_j g_j^2 - \sum_{k\ge 2}\frac{(-1)^k}{k} x^k`. With one variance V for all
coordinates, x = ½ V Ω (Prop. 4.1, Ω = ‖g‖² + Tr H) or ½ V Ψ (Prop. 4.2).

The leading term is exact to first order in V. The k ≥ 2 terms are the paper's; they are *not*
the complete O(V²) terms of the gap (third and fourth central moments of ξ and higher derivatives
of log p enter at that order too), and the log series converges only for |x| < 1 — reported as
``converges``.
"""

from __future__ import annotations

import torch
from torch import Tensor

from dropprior.analysis._estimate import SeriesApproximation

__all__ = ["series_from_derivatives"]


def series_from_derivatives(grad_sq: Tensor, trace: Tensor, infinite: Tensor | None = None,
                            trace_method: str = "exact", note: str = "") -> SeriesApproximation:
    r"""Assemble the series of a Jensen gap from per-part weighted derivative sums.

    Args:
        grad_sq: Σ_j V_j g_j² per part.
        trace: Σ_j V_j h_j per part.
        infinite: parts whose variance is infinite (their terms are reported as ``inf``).
        trace_method: how ``trace`` was obtained (recorded in the result).
        note: caveats recorded in the result.

    Shape:
        grad_sq, trace, infinite: (P,).
    """
    grad_sq = grad_sq.to(torch.float64)
    trace = trace.to(torch.float64)
    if infinite is None:
        infinite = torch.zeros_like(grad_sq, dtype=torch.bool)
    inf = torch.full_like(grad_sq, float("inf"))
    zero = torch.zeros_like(grad_sq)
    g2 = torch.where(infinite, zero, grad_sq)
    tr = torch.where(infinite, zero, trace)
    leading = 0.5 * g2
    x = 0.5 * (g2 + tr)
    second = leading - 0.5 * x**2
    defined = x > -1
    closed = torch.where(defined, torch.log1p(torch.where(defined, x, zero)) - 0.5 * tr,
                         torch.full_like(x, float("-inf")))
    leading = torch.where(infinite, inf, leading)
    second = torch.where(infinite, inf, second)
    closed = torch.where(infinite, inf, closed)
    ratio = torch.where(infinite, inf, x)
    converges = bool(torch.all(~infinite & (x.abs() < 1)))
    return SeriesApproximation(
        leading=leading.sum(),
        second_order=second.sum(),
        series=closed.sum(),
        converges=converges,
        max_ratio=ratio.abs().max() if ratio.numel() else torch.zeros((), dtype=torch.float64),
        parts_leading=leading,
        parts_ratio=ratio,
        trace_method=trace_method,
        note=note,
    )
