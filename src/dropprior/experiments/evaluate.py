r"""Uncertainty under shift: a classifier's metrics on MNIST, rotated and noisy MNIST, and an
out-of-distribution set.

Conditions (:func:`shifted_sets`): the MNIST test images as they are (``"mnist"``), rotated by
15°, 30°, 45° and 60° about the centre (bilinear, zero fill), and with Gaussian pixel noise of
std 0.3 clipped to [0, 1] (``"noise"``); and, given a folder in MNIST's IDX layout, that data
set's test images (``"ood"``, e.g. Fashion-MNIST).

Per condition (:func:`evaluate_classifier`): accuracy, NLL, ECE, Brier and AURC from
:mod:`dropprior.metrics`; for every condition but ``"mnist"``, the AUROC of telling its images
from the MNIST test images by predictive entropy, mutual information and max probability
(positive = shifted). Labels of an OOD set are not used.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from dropprior.prediction import ClassificationPrediction

__all__ = ["ANGLES", "NOISE_STD", "rotate", "pixel_noise", "shifted_sets",
           "evaluate_classifier", "write_evaluation", "point_error"]

ANGLES = (15, 30, 45, 60)
NOISE_STD = 0.3


def point_error(model: torch.nn.Module, x: Tensor, y: Tensor, chunk: int = 2000) -> float:
    """The fraction of ``x`` that ``model`` in eval mode (its noise at its mean) misclassifies,
    by argmax of its outputs, ``chunk`` examples at a time."""
    model.eval()
    with torch.no_grad():
        wrong = sum(int((model(x[i:i + chunk]).argmax(1) != y[i:i + chunk]).sum())
                    for i in range(0, x.shape[0], chunk))
    return wrong / x.shape[0]


def rotate(images: Tensor, degrees: float) -> Tensor:
    """Rotate 28×28 images about their centre (bilinear, zeros outside).

    Shape:
        images: (N, 784); result: (N, 784).
    """
    theta = math.radians(degrees)
    c, s = math.cos(theta), math.sin(theta)
    n = images.shape[0]
    matrix = torch.tensor([[c, -s, 0.0], [s, c, 0.0]], dtype=images.dtype).expand(n, 2, 3)
    grid = F.affine_grid(matrix, [n, 1, 28, 28], align_corners=False)
    out = F.grid_sample(images.reshape(n, 1, 28, 28), grid, mode="bilinear",
                        padding_mode="zeros", align_corners=False)
    return out.reshape(n, 784)


def pixel_noise(images: Tensor, std: float = NOISE_STD, seed: int = 0) -> Tensor:
    """Add N(0, std²) to every pixel and clip to [0, 1].

    Shape:
        images: (N, 784); result: (N, 784).
    """
    gen = torch.Generator().manual_seed(seed)
    noise = torch.randn(images.shape, generator=gen, dtype=images.dtype)
    return (images + std * noise).clamp(0.0, 1.0)


def shifted_sets(images: Tensor, seed: int = 0) -> dict[str, Tensor]:
    """The shifted conditions of the module docstring, keyed ``rotate15`` … ``noise``."""
    sets = {f"rotate{a}": rotate(images, a) for a in ANGLES}
    sets["noise"] = pixel_noise(images, NOISE_STD, seed)
    return sets


def _metrics(pred: ClassificationPrediction, y: Tensor | None) -> dict[str, float]:
    from dropprior import metrics

    if y is None:
        return {}
    confidence = pred.probs.max(-1).values
    correct = pred.probs.argmax(-1) == y
    return {**metrics.classification_scores(pred.probs, y),
            "aurc": float(metrics.aurc(confidence, correct))}


_SCORES = {"entropy": "predictive_entropy", "mutual_information": "mutual_information",
           "max_probability": "max_probability_score"}


def evaluate_classifier(predict_fn: Callable[[Tensor], ClassificationPrediction],
                        x: Tensor, y: Tensor, ood: Tensor | None = None,
                        seed: int = 0) -> tuple[list[dict[str, Any]],
                                                dict[str, ClassificationPrediction]]:
    """Rows of metrics per condition (module docstring) and the predictions behind them.

    Args:
        predict_fn: images (N, 784) in [0, 1] → a :class:`ClassificationPrediction` (apply the
            model's own normalisation and reshaping inside).
        x, y: the MNIST test images (N, 784) in [0, 1] and labels.
        ood: an out-of-distribution set's images (M, 784) in [0, 1], or None.
        seed: the pixel noise's seed.

    Returns:
        (rows, predictions by condition).
    """
    from dropprior import metrics

    conditions: dict[str, tuple[Tensor, Tensor | None]] = {"mnist": (x, y)}
    conditions.update({k: (v, y) for k, v in shifted_sets(x, seed).items()})
    if ood is not None:
        conditions["ood"] = (ood, None)
    preds = {name: predict_fn(images) for name, (images, _) in conditions.items()}
    scores = {score: getattr(metrics, fn_name) for score, fn_name in _SCORES.items()}
    base = {score: fn(preds["mnist"].sample_probs) for score, fn in scores.items()}
    rows = []
    for name, (images, labels) in conditions.items():
        row: dict[str, Any] = {"condition": name, "n": images.shape[0]}
        row.update(_metrics(preds[name], labels))
        if name != "mnist":
            for score, fn in scores.items():
                row[f"auroc_{score}"] = float(metrics.auroc(base[score],
                                                            fn(preds[name].sample_probs)))
        rows.append(row)
    return rows, preds


_COLUMNS = ("condition", "n", "accuracy", "nll", "ece", "brier", "aurc", "auroc_entropy",
            "auroc_mutual_information", "auroc_max_probability")


def table(rows: list[dict[str, Any]]) -> str:
    """The rows as a Markdown table (— where a metric does not apply)."""
    lines = ["| " + " | ".join(_COLUMNS) + " |", "|" + "---|" * len(_COLUMNS)]
    for row in rows:
        cells = []
        for c in _COLUMNS:
            v = row.get(c)
            cells.append("—" if v is None else f"{v:.4f}" if isinstance(v, float) else str(v))
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def write_evaluation(rows: list[dict[str, Any]], preds: dict[str, ClassificationPrediction],
                     y: Tensor, out: str | Path) -> list[Path]:
    """Write ``metrics.json``, ``metrics.md`` and the figures (the reliability diagram and the
    risk–coverage curve on MNIST, an entropy histogram per other condition) into ``out``."""
    from dropprior import metrics
    from dropprior.plotting import ood_histogram, reliability_diagram, risk_coverage_plot

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    written = [out / "metrics.json", out / "metrics.md"]
    written[0].write_text(json.dumps(rows, indent=1) + "\n")
    written[1].write_text(table(rows))
    probs = preds["mnist"].probs
    reliability_diagram(metrics.reliability(probs, y), path=out / "reliability.png")
    risk_coverage_plot(*metrics.risk_coverage_curve(probs.max(-1).values, probs.argmax(-1) == y),
                       path=out / "risk_coverage.png")
    written += [out / "reliability.png", out / "risk_coverage.png"]
    base = metrics.predictive_entropy(preds["mnist"].sample_probs)
    for name, pred in preds.items():
        if name != "mnist":
            path = out / f"entropy_{name}.png"
            ood_histogram(base, metrics.predictive_entropy(pred.sample_probs), path=path,
                          score_name="predictive entropy")
            written.append(path)
    return written
