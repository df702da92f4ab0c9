r"""Which variational groups pay for themselves: the ELBO change of switching each group off.

For a group g of a model trained by :func:`dropprior.scales.variational`, switching it off sets
its weights to zero. In the limit of a hyperprior with its pole at 0 (log-uniform, half-Cauchy)
that state costs no KL, so to first order the ELBO changes by

    Δ_g = N · [ℓ̄(μ) − ℓ̄(μ with g zeroed)] − KL_g,

where ℓ̄ is the mean log-likelihood of the point model (the posterior means) over the training
data, N the number of training examples, and KL_g = Σ_{w ∈ g} KL(q(w) ‖ p(w)) the group's share
of the KL term. A fit that weighted its prior by β (``fit(prior_weight=β)``) is judged by its own
objective, Δ_g = N · [ℓ̄(μ) − ℓ̄(μ with g zeroed)] − β · KL_g. A group is worth keeping when
Δ_g > 0: the data's support for it exceeds its description length. Each group is scored on its
own (the others kept), as in optimal brain damage; the score reads the group's effect on the
likelihood, so a wide group whose many weights are individually noisy but jointly useful is kept,
where its posterior SNR alone would drop it.
"""

from __future__ import annotations

import copy
import math
from typing import Any

import torch
from torch import Tensor, nn

from dropprior._validation import check_bool, check_int, check_prior_weight, check_seed
from dropprior.scales._attach import _check_sigma0, _parametrized, _reduce, collapse
from dropprior.scales._groups import scale_groups
from dropprior.scales._scale import GaussianTensor, _broadcast

__all__ = ["group_evidence", "group_kl", "joint_evidence_kept"]


@torch.no_grad()
def group_kl(model: nn.Module, sigma0: float) -> dict[str, Tensor]:
    """KL_g: each variational group's share Σ_{w ∈ g} KL(q(w) ‖ N(0, σ0² ∏ v)) of the KL term,
    ``{group name: tensor of the group's shape}`` (a weight in two groups counts in both).

    Raises:
        ValueError: the model has no variational weights, or ``sigma0`` is not a finite
            number > 0.
    """
    _check_sigma0(sigma0)
    out: dict[str, Tensor] = {}
    for _, _, p, raw in _parametrized(model):
        if not isinstance(p, GaussianTensor):
            continue
        var = p.std().square()
        prior = p.prior_variance(sigma0, raw.shape)
        kl = 0.5 * ((var + raw.square()) / prior - 1 - torch.log(var / prior))
        for v, view in zip(p.variances, p.views, strict=True):
            shape = tuple(v.variance.shape)  # type: ignore[union-attr,arg-type]
            part = _reduce(kl.reshape(view), shape)
            name = v.group_name  # type: ignore[assignment]
            out[name] = out[name] + part if name in out else part  # type: ignore[index]
    if not out:
        raise ValueError("group_kl needs a variational model (dropprior.scales.variational)")
    return out


def _top_level(model: nn.Module) -> dict[int, int]:
    """id(module) → the position of the top-level child of a Sequential that holds it."""
    if not isinstance(model, nn.Sequential):
        return {}
    return {id(m): i for i, child in enumerate(model) for m in child.modules()}


def _check_data(likelihood: object, x: object, y: object, max_examples: object,
                batch_size: object, seed: object) -> None:
    """The evidence rules' checks of their data and budget, each error naming the value."""
    from dropprior.likelihoods import check_scored_data

    check_int("max_examples", max_examples, 1)
    check_int("batch_size", batch_size, 1)
    check_seed(seed)
    check_scored_data(likelihood, x, y)


def _subsample(x: Tensor, y: Tensor, max_examples: int, seed: int
               ) -> tuple[Tensor, Tensor, float]:
    """At most ``max_examples`` of the N examples, drawn without replacement with ``seed``, and
    the factor N / (the number kept) that scales their log-likelihood to all N."""
    n = x.shape[0]
    if n > max_examples:
        pick = torch.randperm(n, generator=torch.Generator().manual_seed(seed))[:max_examples]
        x, y = x[pick], y[pick]
    return x, y, n / x.shape[0]


def _owner(model: nn.Module, modules: list[nn.Module]) -> nn.Module:
    """The deepest submodule of ``model`` that holds every module of ``modules``."""
    names = {id(m): name for name, m in model.named_modules()}
    paths = [names[id(m)].split(".") if names[id(m)] else [] for m in modules]
    common: list[str] = []
    for level in zip(*paths, strict=False):  # up to the shortest path
        if len(set(level)) != 1:
            break
        common.append(level[0])
    return model.get_submodule(".".join(common))


class _MeanShift:
    """Mean replacement inside the evidence rule: for a group whose tensors live in the module
    ``owner``, the owner's mean output over the examples with the group zeroed falls short of
    its mean output with the group by c; adding c to the owner's output holds the group's
    contribution at its mean instead of at zero (what ``prune(mean_inputs=...)`` removes)."""

    def __init__(self, run: nn.Module, inputs: Tensor, owner: nn.Module,
                 batch_size: int) -> None:
        self.owner = owner
        self.batches: list[Tensor] = []
        handle = owner.register_forward_pre_hook(
            lambda m, args: self.batches.append(args[0].detach()))
        try:
            for j in range(0, inputs.shape[0], batch_size):
                run(inputs[j:j + batch_size])
        finally:
            handle.remove()
        self.full = self._mean_output()

    def _mean_output(self) -> Tensor:
        total, count = None, 0
        for batch in self.batches:
            out = self.owner(batch)
            if not isinstance(out, Tensor):
                raise ValueError(f"mean_replacement needs a module whose output is a tensor; "
                                 f"{type(self.owner).__name__} returns {type(out).__name__}")
            part = out.double().sum(0)
            total = part if total is None else total + part
            count += out.shape[0]
        assert total is not None
        return total / count

    def hook(self) -> Any:
        """Register the shift for the owner's current (zeroed) tensors; returns the handle."""
        shift = (self.full - self._mean_output()).to(self.batches[0].dtype)
        return self.owner.register_forward_hook(lambda m, args, out: out + shift)


def _log_lik(run: nn.Module, likelihood: Any, inputs: Tensor, y: Tensor,
             batch_size: int) -> float:
    total = 0.0
    for i in range(0, inputs.shape[0], batch_size):
        total += float(likelihood.log_prob(run(inputs[i:i + batch_size]),
                                           y[i:i + batch_size]).sum())
    return total


@torch.no_grad()
def group_evidence(model: nn.Module, likelihood: nn.Module, x: Tensor, y: Tensor,
                   sigma0: float, max_examples: int = 10_000, batch_size: int = 2_000,
                   seed: int = 0, prior_weight: float = 1.0,
                   mean_replacement: bool = False) -> dict[str, Tensor]:
    r"""Δ_g of the module docstring for every group, ``{group name: tensor of the group's
    shape}``, in nats; positive for a group worth keeping.

    Args:
        model: a model trained after :func:`dropprior.scales.variational` (unchanged).
        likelihood: the likelihood it was trained with (its ``log_prob(output, y)``).
        x, y: the training data, all N examples (N scales the likelihood term).
        sigma0: the prior σ0 it was trained with.
        max_examples: ℓ̄ is estimated on at most this many training examples, drawn without
            replacement with ``seed``.
        batch_size: examples per forward pass.
        prior_weight: the β the fit weighted its prior (KL) term by (1: the ELBO).
        mean_replacement: switch a group off by holding its contribution at its mean over the
            examples instead of at zero: the output of the deepest module holding the group's
            tensors is shifted by its mean loss (``prune(mean_inputs=...)``'s removal).

    Shape:
        x: (N, ...); y: (N, ...), as ``likelihood`` takes them.
    """
    beta = check_prior_weight(prior_weight)
    check_bool("mean_replacement", mean_replacement)
    _check_data(likelihood, x, y, max_examples, batch_size, seed)
    kl = group_kl(model, sigma0)
    n = x.shape[0]
    if n == 0 or y.shape[0] != n:
        raise ValueError(f"group_evidence needs matching non-empty data, got x with {n} and y "
                         f"with {y.shape[0]} examples")
    x, y, factor = _subsample(x, y, max_examples, seed)
    point = collapse(copy.deepcopy(model)).eval()
    position = _top_level(point)
    cache: dict[int, tuple[nn.Module, Tensor, float]] = {}

    def suffix(module: nn.Module) -> tuple[nn.Module, Tensor, float]:
        """The part of the model from the child holding ``module``, its input, and the base
        log-likelihood."""
        i = position.get(id(module), 0)
        if i not in cache:
            head = point[:i] if i else nn.Identity()  # type: ignore[index]
            inputs = torch.cat([head(x[j:j + batch_size]) for j in range(0, x.shape[0],
                                                                         batch_size)])
            run = point[i:] if position else point  # type: ignore[index]
            cache[i] = (run, inputs, _log_lik(run, likelihood, inputs, y, batch_size))
        return cache[i]

    out: dict[str, Tensor] = {}
    for group in scale_groups(point):
        if group.name not in kl:
            continue
        first = group.targets[0].module
        run, inputs, base = suffix(first)
        delta = torch.empty(math.prod(group.shape), dtype=torch.float64)
        tensors = [(getattr(t.module, t.name), t.view) for t in group.targets]
        saved = [t.detach().clone() for t, _ in tensors]
        shift = _MeanShift(run, inputs, _owner(point, [t.module for t in group.targets]),
                           batch_size) if mean_replacement else None
        for k in range(delta.numel()):
            mask = torch.ones(math.prod(group.shape), dtype=saved[0].dtype)
            mask[k] = 0.0
            mask = mask.reshape(group.shape)
            for (t, view), s in zip(tensors, saved, strict=True):
                t.copy_(s * _broadcast(mask, view, s.shape))
            handle = None if shift is None else shift.hook()
            try:
                delta[k] = base - _log_lik(run, likelihood, inputs, y, batch_size)
            finally:
                if handle is not None:
                    handle.remove()
            for (t, _), s in zip(tensors, saved, strict=True):
                t.copy_(s)
        out[group.name] = (factor * delta.reshape(group.shape)
                           - beta * kl[group.name].to(torch.float64))
    return out


@torch.no_grad()
def joint_evidence_kept(model: nn.Module, likelihood: nn.Module, x: Tensor, y: Tensor,
                        sigma0: float, evidence: dict[str, Tensor] | None = None,
                        prior_weight: float = 1.0, max_examples: int = 10_000,
                        batch_size: int = 2_000, seed: int = 0,
                        grid: int = 24) -> dict[str, Tensor]:
    r"""The evidence rule for a *set* of groups: which groups to switch off together.

    Each group's Δ_g (:func:`group_evidence`) is scored with every other group kept, and
    removing many groups whose Δ_g < 0 at once can cost far more likelihood than the sum of
    their scores. This rule takes the candidates Δ_g ≤ 0 in increasing order of their own
    likelihood cost N · [ℓ̄(μ) − ℓ̄(μ with g zeroed)] = Δ_g + β KL_g (the groups the fit has
    already switched off, which cost nothing, first) and switches off the prefix S_k of the k
    cheapest that improves the objective most,

    .. math:: \Delta_{S_k} = N\,[\bar\ell(\mu) - \bar\ell(\mu \text{ with } S_k \text{ zeroed})]
              - \beta \sum_{g \in S_k} \mathrm{KL}_g, \qquad k^* = \arg\min_k \Delta_{S_k},

    with Δ_{S_0} = 0 (nothing removed). k is searched on a grid of ``grid`` prefix lengths, then
    at every length between the best grid point's neighbours that the same budget covers.

    Args:
        model, likelihood, x, y, sigma0, max_examples, batch_size, seed, prior_weight: as
            :func:`group_evidence`.
        evidence: :func:`group_evidence`'s result when already computed (None: computed here).
        grid: prefix lengths evaluated per pass (≥ 2).

    Returns:
        ``{group name: bool tensor of the group's shape}``, True where the group is kept.
    """
    beta = check_prior_weight(prior_weight)
    check_int("grid", grid, 2)
    _check_data(likelihood, x, y, max_examples, batch_size, seed)
    if evidence is None:
        evidence = group_evidence(model, likelihood, x, y, sigma0, max_examples, batch_size,
                                  seed, prior_weight)
    kl = group_kl(model, sigma0)
    x, y, factor = _subsample(x, y, max_examples, seed)
    point = collapse(copy.deepcopy(model)).eval()
    groups = {g.name: g for g in scale_groups(point) if g.name in evidence}
    candidates = sorted(
        (d + beta * c, name, k) for name in groups
        for k, (d, c) in enumerate(zip(evidence[name].reshape(-1).tolist(),
                                       kl[name].reshape(-1).tolist(), strict=True)) if d <= 0)
    base = _log_lik(point, likelihood, x, y, batch_size)

    def delta(k: int) -> float:
        """Δ of switching off the first k candidates together."""
        if k == 0:
            return 0.0
        masks: dict[str, Tensor] = {}
        kl_total = 0.0
        for _, name, index in candidates[:k]:
            shape = groups[name].shape
            mask = masks.setdefault(name, torch.ones(math.prod(shape), dtype=torch.float64))
            mask[index] = 0.0
            kl_total += float(kl[name].reshape(-1)[index])
        saved = []
        for name, mask in masks.items():
            for t in groups[name].targets:
                tensor = getattr(t.module, t.name)
                saved.append((tensor, tensor.detach().clone()))
                tensor.mul_(_broadcast(mask.reshape(groups[name].shape).to(tensor.dtype),
                                       t.view, tensor.shape))
        ll = _log_lik(point, likelihood, x, y, batch_size)
        for tensor, value in saved:
            tensor.copy_(value)
        return factor * (base - ll) - beta * kl_total

    scores: dict[int, float] = {}
    lo, hi = 0, len(candidates)
    while True:
        ks = sorted({round(lo + (hi - lo) * i / (grid - 1)) for i in range(grid)})
        for k in ks:
            if k not in scores:
                scores[k] = delta(k)
        best = min(ks, key=lambda k: (scores[k], k))
        i = ks.index(best)
        new_lo, new_hi = ks[max(i - 1, 0)], ks[min(i + 1, len(ks) - 1)]
        if new_hi - new_lo <= 1 or (new_lo, new_hi) == (lo, hi):
            break
        lo, hi = new_lo, new_hi
    k_best = min(scores, key=lambda k: (scores[k], k))
    kept = {name: torch.ones(g.shape, dtype=torch.bool) for name, g in groups.items()}
    for _, name, index in candidates[:k_best]:
        kept[name].view(-1)[index] = False
    return kept
