"""Choosing the noise law per split on inner validation: a UCI method blind to the test split.

The UCI protocol (:mod:`dropprior.experiments.uci`) chooses each law's dropout rate and τ on an
inner 80/20 split of every training split. Comparing laws by their *test* scores and reporting the
best would choose on the test split. :func:`select_on_validation` instead treats "which law,
structure and objective" as one more hyperparameter: for each data set and split it keeps the
candidate whose best inner-validation log-likelihood is highest, and reports that candidate's
test scores. Every candidate saw the same inner split (the first 80% of the training rows), so
their validation scores are comparable.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import Any

import numpy as np

from dropprior.experiments.tables import mean_se

__all__ = ["select_on_validation"]


def select_on_validation(records: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per data set, the law × structure × objective chosen split by split on inner validation.

    Args:
        records: the runner's records of :func:`~dropprior.experiments.uci.run_uci_split` jobs,
            possibly from several run directories; at least one candidate per data set.

    Returns:
        One dict per data set: ``dataset``, ``n_splits`` (the splits every candidate has),
        ``rmse``, ``rmse_se``, ``ll``, ``ll_se`` of the chosen candidates' test scores,
        ``chosen`` (how often each ``law/structure/objective`` was chosen) and ``candidates``.

    Raises:
        ValueError: if two records hold the same candidate's split, or a data set's candidates
            share no split.
    """
    # dataset -> candidate -> split -> (best validation LL, test RMSE, test LL)
    table: dict[str, dict[str, dict[int, tuple[float, float, float]]]] = {}
    for record in records:
        params = record["params"]
        candidate = f"{params['law']}/{params['structure']}/{params['objective']}"
        if params.get("variant"):  # the learned-scale path: depth, inference, hyperprior
            candidate += f" ({params['variant']})"
        splits = table.setdefault(params["dataset"], {}).setdefault(candidate, {})
        for split in record["result"]["splits"]:
            k = int(split["split"])
            if k in splits:
                raise ValueError(f"{params['dataset']}: split {k} of {candidate} appears in two "
                                 f"records; give each run directory once")
            if "validation" not in split:
                raise ValueError(f"{params['dataset']}: split {k} of {candidate} has no "
                                 "validation score; run it with --validate")
            best = float(np.nanmax([v["ll"] for v in split["validation"]]))
            splits[k] = (best, float(split["rmse"]), float(split["ll"]))
    rows = []
    for dataset in sorted(table):
        candidates = table[dataset]
        common = sorted(set.intersection(*(set(s) for s in candidates.values())))
        if not common:
            raise ValueError(f"{dataset}: the candidates {sorted(candidates)} share no split")
        chosen = [max(candidates, key=lambda c: candidates[c][k][0]) for k in common]
        rmse, rmse_se = mean_se([candidates[c][k][1] for c, k in zip(chosen, common, strict=True)])
        ll, ll_se = mean_se([candidates[c][k][2] for c, k in zip(chosen, common, strict=True)])
        rows.append({"dataset": dataset, "n_splits": len(common), "rmse": rmse,
                     "rmse_se": rmse_se, "ll": ll, "ll_se": ll_se,
                     "chosen": dict(Counter(chosen).most_common()),
                     "candidates": sorted(candidates)})
    return rows
