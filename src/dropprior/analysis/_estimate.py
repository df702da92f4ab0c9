"""Result types of the Jensen-gap estimators: an MC estimate with its error, and a series value."""

from __future__ import annotations

from dataclasses import dataclass

from torch import Tensor

__all__ = ["GapEstimate", "SeriesApproximation"]


@dataclass(frozen=True)
class SeriesApproximation:
    r"""A Jensen gap's series (paper Props. 4.1 and 4.2), evaluated at the noise's mean.

    Both propositions have the form, per independent part (an example for the EP, a weight group
    for the HP), with x = ½ Σ_j Var_j (g_j² + h_j) (g: gradient, h: Hessian diagonal of log p with
    respect to the expanded quantity — μ_ξ for the EP, the precision E[ξ⁻²] for the HP):

    .. math:: \mathcal J \approx \log(1 + x) - \tfrac12\sum_j \mathrm{Var}_j h_j
              = \underbrace{\tfrac12\sum_j \mathrm{Var}_j g_j^2}_{\text{leading}}
                - \sum_{k\ge2}\frac{(-1)^k}{k}x^k .

    Attributes:
        leading: the first-order term ½ Σ Var g², summed over parts (scalar). ``inf`` when a
            variance is infinite and the gradient is not zero.
        second_order: ``leading − x²/2`` summed: the series truncated after k = 2 (the paper's
            displayed −⅛ Var² Ω²).
        series: the whole series summed in closed form, log(1 + x) − ½ Σ Var h; ``-inf`` for a
            part with 1 + x ≤ 0, ``inf`` for a part with an infinite variance.
        converges: True iff every part has a finite variance and |x| < 1, the radius of
            convergence of the log series. When False the three numbers above are formal.
        max_ratio: max over parts of |x| (``inf`` with an infinite variance).
        parts_leading: the leading term per part. Shape: (P,).
        parts_ratio: x per part. Shape: (P,).
        trace_method: ``"exact"``, ``"hutchinson"`` or ``"closed_form"``: how Σ Var h was computed.
        note: caveats in words (e.g. the paper's own condition for Prop. 4.2).
    """

    leading: Tensor
    second_order: Tensor
    series: Tensor
    converges: bool
    max_ratio: Tensor
    parts_leading: Tensor
    parts_ratio: Tensor
    trace_method: str
    note: str = ""


@dataclass(frozen=True)
class GapEstimate:
    """A Monte Carlo estimate of a Jensen gap with its standard error.

    Attributes:
        value: the estimate of the total gap (summed over parts), bias-corrected where the plug-in
            estimator is biased (EP: jackknife). Scalar.
        stderr: its standard error. Scalar; 0 when the value is exact (e.g. an infinite HP gap).
        bias: the estimated bias of the plug-in estimator (plug-in − truth). Scalar.
        plugin: the uncorrected plug-in estimate. Scalar.
        parts: the gap per part (examples for :func:`ep_gap`, weight groups for :func:`hp_gap`).
            Shape: (P,).
        parts_stderr: standard error per part. Shape: (P,).
        part_kind: ``"example"`` or ``"group"``.
        samples: the number S of noise draws.
        series: the series approximation of the same gap (Props. 4.1 / 4.2), or None.
    """

    value: Tensor
    stderr: Tensor
    bias: Tensor
    plugin: Tensor
    parts: Tensor
    parts_stderr: Tensor
    part_kind: str
    samples: int
    series: SeriesApproximation | None = None

    def __str__(self) -> str:
        text = f"{float(self.value):.6g} ± {float(self.stderr):.2g} (S={self.samples})"
        if self.series is not None:
            flag = "converges" if self.series.converges else "does NOT converge"
            text += (f"; series leading {float(self.series.leading):.6g}, "
                     f"summed {float(self.series.series):.6g} ({flag})")
        return text
