"""MCMC convergence diagnostics: rank-normalised split R-hat and bulk effective sample size.

Both follow Vehtari, Gelman, Simpson, Carpenter & Bürkner (2021), "Rank-normalization, folding,
and localization: an improved R-hat", and are computed by ArviZ, the field's implementation
(``arviz.rhat(method="rank")`` and ``arviz.ess(method="bulk")``). :func:`split_chains` and
:func:`rank_normalize` expose the two transforms they start from.

A scalar that is constant across every draw (e.g. an inclusion indicator that never flips) has no
defined autocorrelation; it is reported with R-hat 1 and ESS equal to the number of draws, rather
than ``nan``.
"""

from __future__ import annotations

import torch
from scipy.stats import rankdata
from torch import Tensor

__all__ = ["split_chains", "rank_normalize", "split_rhat", "bulk_ess"]


def _check_draws(draws: Tensor) -> Tensor:
    draws = torch.as_tensor(draws)
    if draws.ndim < 2:
        raise ValueError(
            f"draws must have shape (chains, samples, ...), got shape {tuple(draws.shape)}"
        )
    if draws.shape[1] < 4:
        raise ValueError(f"need at least 4 draws per chain, got {draws.shape[1]}")
    draws = draws.to(torch.float64)
    if not bool(torch.isfinite(draws).all()):
        raise ValueError(f"draws hold {int((~torch.isfinite(draws)).sum())} non-finite "
                         "value(s) (nan or ±inf): a chain that left the finite numbers has no "
                         "R-hat or ESS")
    return draws


def split_chains(draws: Tensor) -> Tensor:
    """Cut each chain in two halves (dropping the last draw if the count is odd).

    Shape:
        draws: (C, S, ...) → (2C, S // 2, ...).
    """
    draws = _check_draws(draws)
    half = draws.shape[1] // 2
    return torch.cat([draws[:, :half], draws[:, half: 2 * half]], dim=0)


def rank_normalize(draws: Tensor) -> Tensor:
    """Normal scores of the pooled ranks of every scalar (average ranks for ties).

    Shape:
        draws: (C, S, ...) → (C, S, ...).
    """
    draws = _check_draws(draws)
    C, S = draws.shape[:2]
    flat = draws.reshape(C * S, -1).numpy()
    ranks = rankdata(flat, axis=0, method="average")
    scores = torch.special.ndtri(torch.from_numpy((ranks - 0.375) / (C * S + 0.25)))
    return scores.reshape(draws.shape)


def _constant(draws: Tensor) -> Tensor:
    flat = draws.reshape(draws.shape[0] * draws.shape[1], -1)
    return (flat == flat[:1]).all(dim=0).reshape(draws.shape[2:])


def _arviz(draws: Tensor, method: str, kind: str) -> Tensor:
    """ArviZ's ``ess`` / ``rhat`` of every scalar of (C, S, ...) draws, as a float64 tensor."""
    import warnings

    import numpy as np

    with warnings.catch_warnings():  # ArviZ 0.x announces its 1.0 refactor on import
        warnings.simplefilter("ignore", FutureWarning)
        import arviz as az

    flat = draws.reshape(draws.shape[0], draws.shape[1], -1).numpy()
    dataset = az.convert_to_dataset({"x": flat})
    fn = az.ess if kind == "ess" else az.rhat
    with warnings.catch_warnings():  # 0/0 of a constant scalar; the callers replace its value
        warnings.simplefilter("ignore", RuntimeWarning)
        values = np.asarray(fn(dataset, method=method)["x"].values, dtype=np.float64)
    return torch.from_numpy(values).reshape(draws.shape[2:])


def split_rhat(draws: Tensor) -> Tensor:
    """Rank-normalised split R-hat of every scalar, ArviZ's ``rhat(method="rank")`` (the larger
    of the bulk and the folded value); values near 1 (< 1.01) mean the chains agree.

    Needs at least one chain (split into two halves) of at least 4 draws.

    Shape:
        draws: (C, S, ...) → (...).
    """
    draws = _check_draws(draws)
    rhat = _arviz(draws, "rank", "rhat")
    return torch.where(_constant(draws), torch.ones_like(rhat), rhat)


def bulk_ess(draws: Tensor) -> Tensor:
    """Bulk effective sample size of every scalar, pooled over chains: ArviZ's
    ``ess(method="bulk")`` (rank-normalised split chains, Geyer's initial monotone sequence;
    antithetic chains are capped at S·log10(S) draws, so the ESS is never negative).

    Shape:
        draws: (C, S, ...) → (...).
    """
    draws = _check_draws(draws)
    ess = _arviz(draws, "bulk", "ess")
    total = torch.full_like(ess, float(draws.shape[0] * draws.shape[1]))
    return torch.where(_constant(draws), total, ess)
