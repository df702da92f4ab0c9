"""Figures: the reliability diagram with its bin counts, the regression coverage curve, OOD score
histograms, the risk–coverage curve, and the relevance plot.

Figures are built with :class:`matplotlib.figure.Figure` directly (no ``pyplot``, no global
backend state, nothing is shown): save them with ``fig.savefig(path)`` or pass ``path=``.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure
from torch import Tensor

from dropprior.metrics import Reliability

__all__ = ["reliability_diagram", "coverage_plot", "ood_histogram", "risk_coverage_plot",
           "relevance_plot"]


def _finish(fig: Figure, path: str | Path | None) -> Figure:
    fig.tight_layout()
    if path is not None:
        fig.savefig(path)
    return fig


def reliability_diagram(rel: Reliability, path: str | Path | None = None,
                        title: str | None = None) -> Figure:
    """Accuracy against confidence per bin (bars), the diagonal of perfect calibration and the
    ECE, above a panel of how many examples each bin holds (log scale).

    Args:
        rel: per-bin statistics from :func:`dropprior.metrics.reliability`.
        path: if given, the figure is saved there.
        title: an optional title.
    """
    if not isinstance(rel, Reliability):
        raise TypeError(f"rel must be the Reliability of dropprior.metrics.reliability(probs, y), "
                        f"got {type(rel).__name__}")
    fig = Figure(figsize=(4.0, 5.0))
    ax, below = fig.subplots(2, 1, sharex=True, gridspec_kw={"height_ratios": [3, 1]})
    edges = rel.edges.detach().cpu().numpy()
    width = np.diff(edges)
    acc = np.nan_to_num(rel.accuracy.detach().cpu().numpy(), nan=0.0)
    conf = np.nan_to_num(rel.confidence.detach().cpu().numpy(), nan=0.0)
    ax.bar(edges[:-1], acc, width=width, align="edge", edgecolor="black", label="accuracy")
    ax.bar(edges[:-1], conf - acc, bottom=acc, width=width, align="edge", color="tab:red",
           alpha=0.3, label="gap to confidence")
    ax.plot([0, 1], [0, 1], "k--", lw=1)
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.set_ylabel("accuracy")
    ax.set_title(title or f"ECE = {rel.ece:.4f}")
    ax.legend(loc="upper left")
    counts = rel.counts.detach().cpu().numpy()
    below.bar(edges[:-1], counts, width=width, align="edge", color="tab:gray",
              edgecolor="black")
    if counts.max() > 0:
        below.set_yscale("log")
    below.set_xlabel("confidence")
    below.set_ylabel("examples")
    return _finish(fig, path)


def coverage_plot(nominal: Tensor, observed: Tensor, path: str | Path | None = None,
                  title: str | None = None) -> Figure:
    """Regression calibration: observed against nominal coverage of the central intervals
    (:func:`dropprior.metrics.coverage_curve`), the diagonal, and the mean gap
    (:func:`dropprior.metrics.coverage_calibration_error`) in the title.

    Shape:
        nominal, observed: (L,).
    """
    fig = Figure(figsize=(4.0, 4.0))
    ax = fig.add_subplot()
    x = nominal.detach().cpu().double().numpy()
    y = observed.detach().cpu().double().numpy()
    ax.plot(x, y, "o-", label="observed")
    ax.fill_between(x, x, y, color="tab:red", alpha=0.2)
    ax.plot([0, 1], [0, 1], "k--", lw=1)
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.set_xlabel("nominal coverage")
    ax.set_ylabel("observed coverage")
    ax.set_title(title or f"mean |gap| = {float(np.abs(y - x).mean()):.4f}")
    return _finish(fig, path)


def ood_histogram(scores_in: Tensor, scores_out: Tensor, path: str | Path | None = None,
                  score_name: str = "score", bins: int = 30) -> Figure:
    """Histograms (densities) of an OOD score in distribution and shifted, with the AUROC
    (:func:`dropprior.metrics.auroc`) in the title.

    Shape:
        scores_in: (N_in,); scores_out: (N_out,).
    """
    from dropprior.metrics import auroc

    area = float(auroc(scores_in, scores_out))  # checks the scores first
    fig = Figure(figsize=(5.0, 3.5))
    ax = fig.add_subplot()
    a = scores_in.detach().cpu().double().numpy()
    b = scores_out.detach().cpu().double().numpy()
    edges = np.histogram_bin_edges(np.concatenate([a, b]), bins=bins).tolist()
    ax.hist(a, bins=edges, density=True, alpha=0.5, label="in distribution")
    ax.hist(b, bins=edges, density=True, alpha=0.5, label="shifted / OOD")
    ax.set_xlabel(score_name)
    ax.set_ylabel("density")
    ax.set_title(f"AUROC = {area:.4f}")
    ax.legend()
    return _finish(fig, path)


def risk_coverage_plot(coverage: Tensor, risk: Tensor, path: str | Path | None = None,
                       title: str | None = None) -> Figure:
    """Selective prediction: the risk of the most confident fraction against that fraction
    (:func:`dropprior.metrics.risk_coverage_curve`), with the area under it (AURC, the mean
    risk over the curve's points) in the title.

    Shape:
        coverage, risk: (N,).
    """
    fig = Figure(figsize=(4.0, 3.5))
    ax = fig.add_subplot()
    c = coverage.detach().cpu().double().numpy()
    r = risk.detach().cpu().double().numpy()
    ax.plot(c, r)
    ax.set_xlim(0, 1)
    ax.set_xlabel("coverage")
    ax.set_ylabel("risk (error rate)")
    ax.set_title(title or f"AURC = {float(r.mean()):.4f}")
    return _finish(fig, path)


def relevance_plot(scores: Mapping[str, Tensor], path: str | Path | None = None,
                   labels: Mapping[str, list[str]] | None = None) -> Figure:
    """One bar chart per noisy layer: the relevance score of each group, sorted descending.

    Args:
        scores: ``{layer name: scores (G,)}`` from :func:`dropprior.relevance`.
        path: if given, the figure is saved there.
        labels: optional ``{layer name: group names}`` (e.g. feature names for the first layer),
            one per score; shown as tick labels up to 40 groups.
    """
    if not scores:
        raise ValueError("relevance_plot needs at least one layer's scores, got an empty mapping")
    fig = Figure(figsize=(6.0, 2.2 * len(scores)))
    for i, (name, value) in enumerate(scores.items()):
        ax = fig.add_subplot(len(scores), 1, i + 1)
        v = value.detach().cpu().reshape(-1).numpy()
        order = np.argsort(-v)
        ax.bar(np.arange(v.size), v[order])
        names = (labels or {}).get(name)
        if names is not None and len(names) != v.size:
            raise ValueError(f"labels[{name!r}] names {len(names)} group(s) but layer {name!r} "
                             f"has {v.size} scores")
        if names is not None and v.size <= 40:
            ax.set_xticks(np.arange(v.size), [names[j] for j in order], rotation=60, fontsize=7)
        ax.set_ylabel("relevance")
        ax.set_title(name or "<root>", fontsize=9)
    return _finish(fig, path)
