r"""Selective prediction: keep the most confident fraction of inputs and measure the risk.

Sort the N inputs by confidence, highest first; at coverage k/N the risk is the error rate of
the k most confident. :func:`risk_at_coverage` reads that curve at one coverage,
:func:`risk_coverage_curve` returns it, and :func:`aurc` is its mean over k = 1..N, the area under
the risk–coverage curve (Geifman & El-Yaniv, 2017). Ties keep the input order.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from dropprior._validation import check_finite_data, shape_or_type

__all__ = ["risk_coverage_curve", "risk_at_coverage", "aurc"]


def _check(confidence: Tensor, correct: Tensor) -> None:
    if not isinstance(confidence, Tensor) or confidence.dim() != 1 or confidence.numel() == 0:
        raise ValueError(f"confidence must be a non-empty 1-d tensor, got "
                         f"{shape_or_type(confidence)}")
    if not isinstance(correct, Tensor) or correct.shape != confidence.shape:
        got = shape_or_type(correct)
        raise ValueError(f"correct must have the confidence's shape {tuple(confidence.shape)}, "
                         f"got {got}")
    check_finite_data("confidence", confidence)
    bad = (correct != 0) & (correct != 1)
    if bool(bad.any()):
        raise ValueError(f"correct must be bool or 0/1 (whether each prediction is right), got "
                         f"{correct[bad][0].item()!r}")


def risk_coverage_curve(confidence: Tensor, correct: Tensor) -> tuple[Tensor, Tensor]:
    """(coverage k/N, risk of the k most confident) for k = 1..N.

    Shape:
        confidence: (N,); correct: (N,) bool or 0/1; results: (N,) each.
    """
    _check(confidence, correct)
    order = torch.argsort(confidence, descending=True, stable=True)
    errors = (~correct.bool())[order].double().cumsum(0)
    k = torch.arange(1, confidence.numel() + 1, dtype=torch.float64)
    return k / confidence.numel(), errors / k


def risk_at_coverage(confidence: Tensor, correct: Tensor, coverage: float) -> Tensor:
    """The risk of the ⌈coverage·N⌉ most confident inputs.

    Shape:
        confidence: (N,); correct: (N,); result: scalar.
    """
    if isinstance(coverage, bool) or not isinstance(coverage, (int, float)) \
            or not 0 < coverage <= 1:
        raise ValueError(f"coverage must lie in (0, 1], got {coverage!r}")
    _, risk = risk_coverage_curve(confidence, correct)
    return risk[max(1, math.ceil(coverage * confidence.numel())) - 1]


def aurc(confidence: Tensor, correct: Tensor) -> Tensor:
    """The area under the risk–coverage curve: the mean risk over k = 1..N.

    Shape:
        confidence: (N,); correct: (N,); result: scalar.
    """
    return risk_coverage_curve(confidence, correct)[1].mean()
