"""Figures: the reliability diagram and the relevance plot.

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

__all__ = ["reliability_diagram", "relevance_plot"]


def reliability_diagram(rel: Reliability, path: str | Path | None = None,
                        title: str | None = None) -> Figure:
    """Accuracy against confidence per bin (bars), the diagonal of perfect calibration, and the ECE.

    Args:
        rel: per-bin statistics from :func:`dropprior.metrics.reliability`.
        path: if given, the figure is saved there.
        title: an optional title.
    """
    fig = Figure(figsize=(4.0, 4.0))
    ax = fig.add_subplot()
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
    ax.set_xlabel("confidence")
    ax.set_ylabel("accuracy")
    ax.set_title(title or f"ECE = {rel.ece:.4f}")
    ax.legend(loc="upper left")
    fig.tight_layout()
    if path is not None:
        fig.savefig(path)
    return fig


def relevance_plot(scores: Mapping[str, Tensor], path: str | Path | None = None,
                   labels: Mapping[str, list[str]] | None = None) -> Figure:
    """One bar chart per noisy layer: the relevance score of each group, sorted descending.

    Args:
        scores: ``{layer name: scores (G,)}`` from :func:`dropprior.relevance`.
        path: if given, the figure is saved there.
        labels: optional ``{layer name: group names}`` (e.g. feature names for the first layer).
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
        if names is not None and len(names) == v.size and v.size <= 40:
            ax.set_xticks(np.arange(v.size), [names[j] for j in order], rotation=60, fontsize=7)
        ax.set_ylabel("relevance")
        ax.set_title(name or "<root>", fontsize=9)
    fig.tight_layout()
    if path is not None:
        fig.savefig(path)
    return fig
