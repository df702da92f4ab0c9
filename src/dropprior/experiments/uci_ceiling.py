r"""The ceiling that a data set's τ grid puts on the UCI grid protocol's test log-likelihood.

The grid protocol (:mod:`dropprior.experiments.uci`) predicts a test target y by the equal
mixture of T Gaussians N(ŷ_t, 1/τ), with τ one value of the data set's grid
(``tau_values.txt``, a precision in the targets' original units). Each component's density is at
most its value at its mode, √(τ/2π), so the mixture's is too, and the mean test log-likelihood
(:func:`dropprior.metrics.test_log_likelihood`) is at most

.. math:: \tfrac12 \log(\tau_{\max} / 2\pi),

reached only when every draw equals its target. The ceiling holds for every noise law, structure
and objective of the protocol, and for its baselines without noise (one draw); it does not hold for
the learned-scale path, which learns its noise standard deviation.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from dropprior._validation import check_number

__all__ = ["ll_ceiling", "grid_tau_max"]


def ll_ceiling(tau: float) -> float:
    """½ log(τ / 2π): the highest mean test log-likelihood of predictive mixtures of Gaussians
    of precision ``tau`` (> 0, finite)."""
    return 0.5 * math.log(check_number("tau", tau) / (2.0 * math.pi))


def grid_tau_max(records: Sequence[dict[str, Any]]) -> dict[str, float]:
    """Per data set, the largest τ of the grid the grid protocol's records searched.

    Args:
        records: job records of :func:`~dropprior.experiments.uci.run_uci_split`; records with
            a ``variant`` (the learned-scale path) and splits without a validation grid are
            passed over.

    Returns:
        ``{dataset: τ_max}`` over every validation entry of every split of the data set's
        records, in the order the data sets first appear.
    """
    out: dict[str, float] = {}
    for record in records:
        params = record["params"]
        if params.get("variant"):
            continue
        taus = [float(entry["tau"]) for split in record["result"]["splits"]
                for entry in split.get("validation", []) if "tau" in entry]
        if taus:
            out[params["dataset"]] = max(out.get(params["dataset"], -math.inf), *taus)
    return out
