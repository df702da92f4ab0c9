r"""Uncertainty scores from MC samples and how well they detect shifted or out-of-distribution
inputs.

Scores, from per-sample class probabilities p_s (S draws), higher meaning *more uncertain*:

* :func:`predictive_entropy` — H[p̄], p̄ = (1/S) Σ_s p_s (total uncertainty);
* :func:`mutual_information` — H[p̄] − (1/S) Σ_s H[p_s] (epistemic, BALD);
* :func:`max_probability_score` — 1 − max_c p̄_c;
* :func:`variation_ratio` — 1 − (draws voting for the modal class) / S.

Detection (in-distribution scores against out-of-distribution ones, OOD the positive class):
:func:`auroc` and :func:`aupr` are torchmetrics' ``binary_auroc`` and
``binary_average_precision``; :func:`fpr_at_tpr` is the false-positive rate at the smallest
threshold whose true-positive rate reaches the level, from torchmetrics' ROC curve.
"""

from __future__ import annotations

import torch
from torch import Tensor

from dropprior._validation import check_finite_data, shape_or_type

__all__ = ["predictive_entropy", "mutual_information", "max_probability_score",
           "variation_ratio", "auroc", "aupr", "fpr_at_tpr"]


def _check_sample_probs(sample_probs: Tensor) -> Tensor:
    if not isinstance(sample_probs, Tensor) or sample_probs.dim() != 3:
        shape = tuple(sample_probs.shape) if isinstance(sample_probs, Tensor) else \
            type(sample_probs).__name__
        raise ValueError(f"sample_probs must have shape (S, N, C), got {shape}")
    sums = sample_probs.sum(dim=-1)
    if bool((sample_probs < 0).any()) or not bool(torch.allclose(
            sums, torch.ones((), dtype=sums.dtype), atol=1e-4)):
        raise ValueError("sample_probs must be probabilities: non-negative rows summing to 1 "
                         "(apply softmax to logits first)")
    return sample_probs


def _entropy(p: Tensor) -> Tensor:
    return -(p * torch.log(p.clamp_min(torch.finfo(p.dtype).tiny))).sum(dim=-1)


def predictive_entropy(sample_probs: Tensor) -> Tensor:
    """H of the mean predictive distribution (nats).

    Shape:
        sample_probs: (S, N, C); result: (N,).
    """
    return _entropy(_check_sample_probs(sample_probs).mean(dim=0))


def mutual_information(sample_probs: Tensor) -> Tensor:
    """H[p̄] − mean_s H[p_s]: the epistemic part of the predictive entropy (≥ 0).

    Shape:
        sample_probs: (S, N, C); result: (N,).
    """
    p = _check_sample_probs(sample_probs)
    return (_entropy(p.mean(dim=0)) - _entropy(p).mean(dim=0)).clamp_min(0)


def max_probability_score(sample_probs: Tensor) -> Tensor:
    """1 − max_c p̄_c.

    Shape:
        sample_probs: (S, N, C); result: (N,).
    """
    return 1 - _check_sample_probs(sample_probs).mean(dim=0).max(dim=-1).values


def variation_ratio(sample_probs: Tensor) -> Tensor:
    """1 − (number of draws whose arg-max is the modal class) / S.

    Shape:
        sample_probs: (S, N, C); result: (N,).
    """
    p = _check_sample_probs(sample_probs)
    votes = torch.nn.functional.one_hot(p.argmax(dim=-1), p.shape[-1]).sum(dim=0)  # (N, C)
    return 1 - votes.max(dim=-1).values.to(p.dtype) / p.shape[0]


def _detection(scores_in: Tensor, scores_out: Tensor) -> tuple[Tensor, Tensor]:
    for name, s in (("scores_in", scores_in), ("scores_out", scores_out)):
        if not isinstance(s, Tensor) or s.dim() != 1 or s.numel() == 0:
            got = shape_or_type(s)
            raise ValueError(f"{name} must be a non-empty 1-d tensor of scores, got {got}")
        check_finite_data(name, s)
    scores = torch.cat([scores_in, scores_out]).double()
    labels = torch.cat([torch.zeros(scores_in.numel(), dtype=torch.long),
                        torch.ones(scores_out.numel(), dtype=torch.long)])
    return scores, labels


def auroc(scores_in: Tensor, scores_out: Tensor) -> Tensor:
    """Area under the ROC curve of telling OOD (positive) from in-distribution by the score.

    Shape:
        scores_in: (N_in,); scores_out: (N_out,); result: scalar.
    """
    from torchmetrics.functional.classification import binary_auroc

    return binary_auroc(*_detection(scores_in, scores_out))


def aupr(scores_in: Tensor, scores_out: Tensor) -> Tensor:
    """Area under the precision-recall curve (average precision), OOD the positive class.

    Shape:
        scores_in: (N_in,); scores_out: (N_out,); result: scalar.
    """
    from torchmetrics.functional.classification import binary_average_precision

    return binary_average_precision(*_detection(scores_in, scores_out))


def fpr_at_tpr(scores_in: Tensor, scores_out: Tensor, tpr: float = 0.95) -> Tensor:
    """False-positive rate at the first ROC point whose true-positive rate is ≥ ``tpr``.

    Shape:
        scores_in: (N_in,); scores_out: (N_out,); result: scalar.
    """
    from torchmetrics.functional.classification import binary_roc

    if isinstance(tpr, bool) or not isinstance(tpr, (int, float)) or not 0 < tpr <= 1:
        raise ValueError(f"tpr must lie in (0, 1], got {tpr!r}")
    fpr, tprs, _ = binary_roc(*_detection(scores_in, scores_out))
    return fpr[torch.nonzero(tprs >= tpr)[0, 0]]
