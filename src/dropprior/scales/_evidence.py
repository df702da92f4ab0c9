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

from dropprior.scales._attach import _parametrized, _reduce, collapse
from dropprior.scales._groups import scale_groups
from dropprior.scales._scale import GaussianTensor, _broadcast

__all__ = ["group_evidence", "group_kl"]


@torch.no_grad()
def group_kl(model: nn.Module, sigma0: float) -> dict[str, Tensor]:
    """KL_g: each variational group's share Σ_{w ∈ g} KL(q(w) ‖ N(0, σ0² ∏ v)) of the KL term,
    ``{group name: tensor of the group's shape}`` (a weight in two groups counts in both).

    Raises:
        ValueError: the model has no variational weights.
    """
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
                   seed: int = 0, prior_weight: float = 1.0) -> dict[str, Tensor]:
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

    Shape:
        x: (N, ...); y: (N, ...), as ``likelihood`` takes them.
    """
    from dropprior._validation import check_prior_weight

    beta = check_prior_weight(prior_weight)
    kl = group_kl(model, sigma0)
    n = x.shape[0]
    if n == 0 or y.shape[0] != n:
        raise ValueError(f"group_evidence needs matching non-empty data, got x with {n} and y "
                         f"with {y.shape[0]} examples")
    if n > max_examples:
        pick = torch.randperm(n, generator=torch.Generator().manual_seed(seed))[:max_examples]
        x, y = x[pick], y[pick]
    factor = n / x.shape[0]
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
        for k in range(delta.numel()):
            mask = torch.ones(math.prod(group.shape), dtype=saved[0].dtype)
            mask[k] = 0.0
            mask = mask.reshape(group.shape)
            for (t, view), s in zip(tensors, saved, strict=True):
                t.copy_(s * _broadcast(mask, view, s.shape))
            delta[k] = base - _log_lik(run, likelihood, inputs, y, batch_size)
            for (t, _), s in zip(tensors, saved, strict=True):
                t.copy_(s)
        out[group.name] = (factor * delta.reshape(group.shape)
                           - beta * kl[group.name].to(torch.float64))
    return out
