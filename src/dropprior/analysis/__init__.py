"""The paper's analysis, executable: Jensen gaps of the EP and the HP (Props. 4.1, 4.2) and the
noise-variance figure (Fig. 1)."""

from dropprior.analysis._ep_gap import TRACE_METHODS, ep_gap, ep_gap_from_samples, ep_series
from dropprior.analysis._estimate import GapEstimate, SeriesApproximation
from dropprior.analysis._figure1 import (
    FIGURE1_POINTS,
    Figure1Curve,
    NoisePath,
    figure1_curves,
    figure1_grid,
    figure1_paths,
    plot_figure1,
    write_figure1,
)
from dropprior.analysis._hp_gap import hp_gap, hp_gap_from_norms, hp_series
from dropprior.analysis._scales import noisy_layers

__all__ = [
    "GapEstimate",
    "SeriesApproximation",
    "ep_gap",
    "ep_gap_from_samples",
    "ep_series",
    "hp_gap",
    "hp_gap_from_norms",
    "hp_series",
    "TRACE_METHODS",
    "NoisePath",
    "Figure1Curve",
    "figure1_paths",
    "FIGURE1_POINTS",
    "noisy_layers",
    "figure1_curves",
    "figure1_grid",
    "plot_figure1",
    "write_figure1",
]
