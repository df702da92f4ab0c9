"""The job time of the UCI grid protocol's full table (data sets × laws × objectives), taken from
the result records where they hold it and estimated where they do not.

Each cell is one (data set, law, objective) of the protocol's ``unit`` structure at its 20 splits.
Its job time comes, in order of preference, from

- ``"measured"``: a complete row (20 splits), its summed job time;
- ``"scaled"``: a partial row, its job time × 20 / its number of splits;
- ``"MC mean"``: an MC cell without a row, the mean of its data set's MC cells that have one
  (measured or scaled);
- ``"MC × ratio"``: a marginal cell without a row, its data set's MC cell of the same law (of
  whichever source) times the median marginal/MC job-time ratio of the (data set, law) pairs
  whose both cells are measured.

A cell is left without a time (``None``) where none of these applies: a data set without any MC
row, or a marginal cell while no pair has both objectives measured.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from dropprior.experiments.laws import TABLE1_LAWS

__all__ = ["FULL_SPLITS", "COST_OBJECTIVES", "cost_cells", "marginal_ratios", "median_ratio"]

#: The protocol's number of splits, which a cell's job time is given for.
FULL_SPLITS = 20
#: The objectives of the full table, MC first (the marginal cells are estimated from it).
COST_OBJECTIVES = ("mc", "marginal")

#: A cell's (job time for 20 splits, its source, the recorded row's splits).
_Cell = tuple[float | None, str | None, int]
_NO_TIME: _Cell = (None, None, 0)


def _recorded(summaries: Sequence[dict[str, Any]]) -> dict[tuple[str, str, str], dict[str, Any]]:
    """The grid protocol's unit-structure summary rows (``summarise_uci``) by (data set, law,
    objective); of two runs of one cell, the one with more splits."""
    rows: dict[tuple[str, str, str], dict[str, Any]] = {}
    for r in summaries:
        if (not r.get("variant") and r["structure"] == "unit" and r["law"] in TABLE1_LAWS
                and r["objective"] in COST_OBJECTIVES):
            key = (r["dataset"], r["law"], r["objective"])
            if key not in rows or r["n_splits"] > rows[key]["n_splits"]:
                rows[key] = r
    return rows


def marginal_ratios(summaries: Sequence[dict[str, Any]]) -> list[tuple[str, str, float]]:
    """(data set, law, marginal/MC job-time ratio) of every pair whose MC and marginal rows are
    both complete, in the summaries' order."""
    rows = _recorded(summaries)
    out = []
    for (dataset, law, objective), mc in rows.items():
        marginal = rows.get((dataset, law, "marginal"))
        if (objective == "mc" and marginal is not None and mc["n_splits"] >= FULL_SPLITS
                and marginal["n_splits"] >= FULL_SPLITS and mc["seconds"] > 0):
            out.append((dataset, law, marginal["seconds"] / mc["seconds"]))
    return out


def median_ratio(ratios: Sequence[tuple[str, str, float]]) -> float | None:
    """The median of :func:`marginal_ratios`' ``ratios``, which estimates a marginal cell
    without a row; ``None`` without any."""
    return float(np.median([ratio for _, _, ratio in ratios])) if ratios else None


def cost_cells(summaries: Sequence[dict[str, Any]], datasets: Sequence[str],
               laws: Sequence[str] = TABLE1_LAWS) -> list[dict[str, Any]]:
    """One dict per (data set, law, objective) of ``datasets`` × ``laws`` × :data:`COST_OBJECTIVES`
    with its ``seconds`` for 20 splits (``None`` when it cannot be had) and ``source`` (one of
    the module's four, or ``None``); ``splits`` is the recorded row's number of splits (0 without
    one).

    Args:
        summaries: the summary rows of :func:`~dropprior.experiments.uci.summarise_uci`.
        datasets: the data sets of the table.
        laws: its noise laws.
    """
    rows = _recorded(summaries)
    median = median_ratio(marginal_ratios(summaries))
    cells = []
    for dataset in datasets:
        known: dict[tuple[str, str], _Cell] = {}
        for law in laws:
            for objective in COST_OBJECTIVES:
                row = rows.get((dataset, law, objective))
                if row is None:
                    continue
                full = row["n_splits"] >= FULL_SPLITS
                known[law, objective] = (
                    row["seconds"] * (1.0 if full else FULL_SPLITS / row["n_splits"]),
                    "measured" if full else "scaled", row["n_splits"])
        mc_known = [seconds for (_, objective), (seconds, _, _) in known.items()
                    if objective == "mc" and seconds is not None]
        for law in laws:
            mc = known.get((law, "mc")) or (
                (float(np.mean(mc_known)), "MC mean", 0) if mc_known else _NO_TIME)
            marginal = known.get((law, "marginal")) or (
                (mc[0] * median, "MC × ratio", 0) if mc[0] is not None and median is not None
                else _NO_TIME)
            for objective, (seconds, source, splits) in zip(COST_OBJECTIVES, (mc, marginal),
                                                            strict=True):
                cells.append({"dataset": dataset, "law": law, "objective": objective,
                              "seconds": seconds, "source": source, "splits": splits})
    return cells
