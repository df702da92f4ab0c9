r"""Posterior inclusion probabilities of a network's Bernoulli groups (Kuo & Mallick at network
level).

A trained network with Bernoulli noise on its groups (ARD inputs and units, ADD blocks, conv
filters, …) defines, with its EP weights z held at their trained values, a posterior over the
groups' indicators ξ_g ∈ {0, 1}, each shared by every example:

.. math:: p(\xi \mid X, y, z) \propto \prod_g \pi^{\xi_g}(1-\pi)^{1-\xi_g}
          \prod_n p(y_n \mid x_n, z, c\,\xi),

with π the layer's keep probability and c its scale (1/π when inverted). The inclusion
probability of group g is p(ξ_g = 1 | X, y, z). :func:`inclusion_probabilities` estimates it by
Gibbs sweeps over the indicators (each update is exact: both values of ξ_g are scored), averaging
the conditional probabilities (Rao–Blackwellised), or computes it exactly by enumerating all
2^G configurations (``method="exact"``, G ≤ 20).
"""

from __future__ import annotations

import copy
import itertools
import math
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from dropprior._validation import check_choice, check_int
from dropprior.likelihoods import check_scored_data
from dropprior.objectives import model_output

__all__ = ["inclusion_probabilities", "InclusionResult", "INCLUSION_METHODS"]

INCLUSION_METHODS = {"gibbs": "Gibbs sweeps over the indicators",
                     "exact": "enumeration of all 2^G configurations (G <= 20)"}
_MAX_EXACT = 20


@dataclass(frozen=True)
class InclusionResult:
    """``probabilities``: ``{group name: p(ξ_g = 1 | data)}`` of each group's shape (names as
    :func:`dropprior.scales.scale_groups`); ``sweeps``: Gibbs sweeps kept (0 for exact)."""

    probabilities: dict[str, Tensor]
    sweeps: int


class _Indicators:
    """The Bernoulli groups of a deterministic copy of the model, with their indicators."""

    def __init__(self, model: nn.Module) -> None:
        from dropprior.noise import Bernoulli
        from dropprior.scales import collapse, has_scales, noise_off, scale_groups

        self.model = copy.deepcopy(model)
        if has_scales(self.model):
            collapse(self.model)
        self.groups = [g for g in scale_groups(self.model) if isinstance(g.law, Bernoulli)]
        if not self.groups:
            raise ValueError("inclusion_probabilities needs groups with Bernoulli noise; the "
                             "model's noisy layers use other laws")
        self.keep = [float(g.law.keep) for g in self.groups]  # type: ignore[union-attr]
        self.scale = [float(g.law.scale) for g in self.groups]  # type: ignore[union-attr]
        noise_off(self.model)
        self.model.eval()
        self.base = {(id(t.module), t.name): getattr(t.module, t.name).detach().clone()
                     for g in self.groups for t in g.targets}
        self.sizes = [math.prod(g.shape) for g in self.groups]

    @torch.no_grad()
    def set(self, xi: list[Tensor]) -> None:
        """Write the weights for indicators ``xi`` (one flat 0/1 tensor per group)."""
        factors: dict[tuple[int, str], Tensor] = {}
        for g, flags, c in zip(self.groups, xi, self.scale, strict=True):
            mask = flags.reshape(g.shape) * c
            for t in g.targets:
                key = (id(t.module), t.name)
                base = self.base[key]
                f = mask.to(base.dtype).expand(t.view).reshape(base.shape)
                factors[key] = factors[key] * f if key in factors else f
        for g in self.groups:
            for t in g.targets:
                key = (id(t.module), t.name)
                getattr(t.module, t.name).copy_(self.base[key] * factors[key])

    def log_prior(self, xi: list[Tensor]) -> float:
        total = 0.0
        for flags, pi in zip(xi, self.keep, strict=True):
            on = float(flags.sum())
            total += on * _log(pi) + (flags.numel() - on) * _log(1 - pi)
        return total


def _log(p: float) -> float:
    return math.log(p) if p > 0 else -math.inf


@torch.no_grad()
def _log_joint(ind: _Indicators, xi: list[Tensor], x: Tensor, y: Tensor, likelihood) -> float:
    ind.set(xi)
    return float(likelihood.log_prob(model_output(ind.model, x), y).sum()) + ind.log_prior(xi)


def inclusion_probabilities(model: nn.Module, x: Tensor, y: Tensor, likelihood,
                            method: str = "gibbs", sweeps: int = 1000, burn_in: int = 100,
                            generator: torch.Generator | None = None) -> InclusionResult:
    """p(ξ_g = 1 | data) for every Bernoulli group of ``model`` (module docstring).

    Args:
        model: a trained dropprior model; its weights are held fixed (learned scales are folded
            in first).
        x, y: the data the posterior conditions on.
        likelihood: a :class:`dropprior.likelihoods.Likelihood`.
        method: ``"gibbs"`` or ``"exact"``.
        sweeps, burn_in: Gibbs sweeps averaged, and discarded before them.
        generator: the Gibbs sampler's randomness.

    Returns:
        an :class:`InclusionResult`.

    Shape:
        x: (N, ...); y: (N, ...); each probability tensor: its group's shape.
    """
    check_choice("method", method, INCLUSION_METHODS)
    check_int("sweeps", sweeps, 1)
    check_int("burn_in", burn_in, 0)
    check_scored_data(likelihood, x, y)
    ind = _Indicators(model)
    total = sum(ind.sizes)
    if method == "exact":
        if total > _MAX_EXACT:
            raise ValueError(f"method='exact' enumerates 2^G configurations and takes G <= "
                             f"{_MAX_EXACT} groups; this model has {total}: use method='gibbs'")
        return InclusionResult(_exact(ind, x, y, likelihood), 0)
    return InclusionResult(_gibbs(ind, x, y, likelihood, sweeps, burn_in, generator), sweeps)


def _split(flat: Tensor, sizes: list[int]) -> list[Tensor]:
    return list(torch.split(flat, sizes))


def _exact(ind: _Indicators, x: Tensor, y: Tensor, likelihood) -> dict[str, Tensor]:
    total = sum(ind.sizes)
    configs = torch.tensor(list(itertools.product([0.0, 1.0], repeat=total)), dtype=torch.float64)
    logp = torch.tensor([_log_joint(ind, _split(c, ind.sizes), x, y, likelihood)
                         for c in configs], dtype=torch.float64)
    weights = torch.softmax(logp, dim=0)
    marginal = (weights[:, None] * configs).sum(0)
    return {g.name: p.reshape(g.shape) for g, p in
            zip(ind.groups, _split(marginal, ind.sizes), strict=True)}


def _gibbs(ind: _Indicators, x: Tensor, y: Tensor, likelihood, sweeps: int, burn_in: int,
           generator: torch.Generator | None) -> dict[str, Tensor]:
    total = sum(ind.sizes)
    state = torch.ones(total, dtype=torch.float64)
    acc = torch.zeros(total, dtype=torch.float64)
    for sweep in range(burn_in + sweeps):
        for j in range(total):
            state[j] = 1.0
            on = _log_joint(ind, _split(state, ind.sizes), x, y, likelihood)
            state[j] = 0.0
            off = _log_joint(ind, _split(state, ind.sizes), x, y, likelihood)
            p_on = 1.0 / (1.0 + math.exp(min(off - on, 700.0)))
            if sweep >= burn_in:
                acc[j] += p_on
            u = float(torch.rand((), dtype=torch.float64, generator=generator))
            state[j] = 1.0 if u < p_on else 0.0
    acc /= sweeps
    return {g.name: p.reshape(g.shape) for g, p in
            zip(ind.groups, _split(acc, ind.sizes), strict=True)}
