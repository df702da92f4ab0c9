"""MCMC convergence diagnostics: rank-normalised split R-hat and bulk effective sample size.

Both follow Vehtari, Gelman, Simpson, Carpenter & Bürkner (2021), "Rank-normalization, folding,
and localization: an improved R-hat": each chain is split in half, the pooled draws of every scalar
are replaced by normal scores z = Φ⁻¹((r − 3/8)/(S + 1/4)) of their ranks r among all S draws, and
the classic quantities are computed on those scores with :mod:`pyro.ops.stats`
(``gelman_rubin`` and ``effective_sample_size``, Geyer's initial monotone sequence).

A scalar that is constant across every draw (e.g. an inclusion indicator that never flips) has no
defined autocorrelation; it is reported with R-hat 1 and ESS equal to the number of draws, rather
than ``nan``.
"""

from __future__ import annotations

import torch
from pyro.ops.stats import effective_sample_size, gelman_rubin
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
    return draws.to(torch.float64)


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


def split_rhat(draws: Tensor) -> Tensor:
    """Rank-normalised split R-hat of every scalar; values near 1 (< 1.01) mean the chains agree.

    Needs at least one chain (split into two halves) of at least 4 draws.

    Shape:
        draws: (C, S, ...) → (...).
    """
    draws = _check_draws(draws)
    scores, constant = _scores(draws)
    rhat = gelman_rubin(scores, chain_dim=0, sample_dim=1)
    return torch.where(constant, torch.ones_like(rhat), rhat)


def bulk_ess(draws: Tensor) -> Tensor:
    """Bulk effective sample size of every scalar, pooled over chains.

    Shape:
        draws: (C, S, ...) → (...).
    """
    draws = _check_draws(draws)
    scores, constant = _scores(draws)
    ess = effective_sample_size(scores, chain_dim=0, sample_dim=1)
    total = torch.full_like(ess, float(scores.shape[0] * scores.shape[1]))
    return torch.where(constant, total, ess)


def _scores(draws: Tensor) -> tuple[Tensor, Tensor]:
    """Split, rank-normalised draws, with constant scalars swapped for a placeholder.

    pyro.ops.stats spreads the 0/0 of one constant scalar to every scalar of the batch, so a
    constant scalar's scores are replaced by iid normals (fixed seed) and its result is overwritten
    by the caller.
    """
    constant = _constant(draws)
    scores = split_chains(rank_normalize(draws))
    if bool(constant.any()):
        filler = torch.randn(scores.shape, dtype=scores.dtype,
                             generator=torch.Generator().manual_seed(0))
        scores = torch.where(constant, filler, scores)
    return scores, constant
