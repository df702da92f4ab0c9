r"""Genuine pruning: remove the groups the prior switched off and return a smaller model.

:func:`prune` ranks each noisy layer's groups by :func:`dropprior.relevance.relevance` and keeps
either a fraction of them (``keep=``) or those scoring above a ``threshold=``. Removal is real:

* an input unit of a unit-structured :class:`~dropprior.nn.NoisyLinear` at position i of an
  ``nn.Sequential`` deletes that column of its weight **and** the row (and bias entry) of the
  linear layer that produces it (through element-wise modules: activations, dropout, unit noise);
* on the first linear layer the units are the model's input features: the pruned model starts
  with a :class:`SelectFeatures` module, so it still accepts the full input and reads only the
  kept columns (:attr:`PruneResult.kept` names them);
* an ADD :class:`~dropprior.nn.Residual` block (structure "layer") with a low score is replaced by
  ``nn.Identity()`` — h ↦ f(τhW) + h with the branch gone is h.

It reports parameter counts and FLOPs (2 × multiply–accumulates of the linear and convolutional
maps, per example) before and after.
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn

from dropprior.relevance import relevance

__all__ = ["prune", "PruneResult", "SelectFeatures", "count_parameters", "count_flops"]

_ELEMENTWISE = (nn.ReLU, nn.Tanh, nn.Sigmoid, nn.GELU, nn.ELU, nn.LeakyReLU, nn.SiLU, nn.Softplus,
                nn.Identity, nn.Dropout, nn.AlphaDropout, nn.SELU, nn.Mish, nn.Hardtanh)


class SelectFeatures(nn.Module):
    """Keep only the given input features (last axis): the front of an input-pruned model.

    Shape:
        input: (*, D); output: (*, len(index)).
    """

    index: Tensor

    def __init__(self, index: Tensor) -> None:
        super().__init__()
        self.register_buffer("index", torch.as_tensor(index, dtype=torch.long).clone())

    def forward(self, x: Tensor) -> Tensor:
        return x.index_select(-1, self.index.to(x.device))

    def extra_repr(self) -> str:
        return f"features={self.index.tolist()}"


@dataclass(frozen=True)
class PruneResult:
    """The pruned model and what changed.

    Attributes:
        model: the smaller model (a new module; the original is untouched).
        kept: ``{layer name: indices of the kept groups}`` (original numbering).
        params_before, params_after: parameter counts.
        flops_before, flops_after: FLOPs per example (2 × MACs of linear/conv maps).
    """

    model: nn.Module
    kept: dict[str, Tensor]
    params_before: int
    params_after: int
    flops_before: int
    flops_after: int


def count_parameters(model: nn.Module) -> int:
    """The number of scalar parameters."""
    return sum(p.numel() for p in model.parameters())


def count_flops(model: nn.Module, example_input: Tensor) -> int:
    """FLOPs of one forward pass per example: 2 × the multiply–accumulates of every linear and
    convolutional map (biases, activations and noise are not counted).

    Shape:
        example_input: (B, ...), any B ≥ 1.
    """
    from dropprior.nn import NoisyLinear
    from dropprior.nn.conv import _NoisyConvNd
    from dropprior.prediction import mc_mode

    total = [0]

    def linear_hook(module: nn.Module, inputs: tuple[Tensor, ...], output: Tensor) -> None:
        w: Tensor = module.weight  # type: ignore[assignment]
        rows = inputs[0].numel() // w.shape[1]
        total[0] += 2 * rows * w.shape[0] * w.shape[1]

    def conv_hook(module: nn.Module, inputs: tuple[Tensor, ...], output: Tensor) -> None:
        w: Tensor = module.weight  # type: ignore[assignment]
        total[0] += 2 * output.numel() * w[0].numel()

    handles = []
    for m in model.modules():
        if isinstance(m, (nn.Linear, NoisyLinear)):
            handles.append(m.register_forward_hook(linear_hook))
        elif isinstance(m, (nn.Conv1d, nn.Conv2d, nn.Conv3d, _NoisyConvNd)):
            handles.append(m.register_forward_hook(conv_hook))
    try:
        with torch.no_grad(), mc_mode(model):
            model(example_input)
    finally:
        for h in handles:
            h.remove()
    return total[0] // example_input.shape[0]


def _choose(scores: Tensor, keep: float | None, threshold: float | None, name: str) -> Tensor:
    s = scores.reshape(-1)
    if keep is not None:
        n_keep = max(1, math.ceil(keep * s.numel()))
        order = torch.argsort(s, descending=True, stable=True)
        return torch.sort(order[:n_keep]).values
    assert threshold is not None
    index = torch.nonzero(s > threshold).reshape(-1)
    if index.numel() == 0:
        raise ValueError(f"threshold={threshold} removes every group of layer {name!r} (its "
                         f"largest score is {float(s.max()):.4g}); use a lower threshold or keep=")
    return index


def prune(model: nn.Module, keep: float | None = None, threshold: float | None = None,
          layers: list[str] | None = None, scale: str = "auto",
          example_input: Tensor | None = None) -> PruneResult:
    """Remove low-relevance input units / hidden units / residual blocks from an ``nn.Sequential``.

    Args:
        model: an ``nn.Sequential`` of (Noisy)Linear layers, element-wise modules and
            :class:`~dropprior.nn.Residual` blocks.
        keep: fraction in (0, 1] of each pruned layer's groups to keep (the top scores, at least
            one).
        threshold: keep the groups whose relevance score exceeds this (exactly one of ``keep``
            and ``threshold``).
        layers: names (as in ``named_modules``) of the noisy layers to prune; None: all of them.
        scale: the relevance scale (see :func:`dropprior.relevance.relevance`).
        example_input: an input batch for the FLOP count; default zeros of the first linear
            layer's width.

    Returns:
        a :class:`PruneResult`.
    """
    from dropprior.nn import MultiplicativeNoise, NoisyLinear, Residual

    if (keep is None) == (threshold is None):
        raise ValueError("give exactly one of keep (a fraction) and threshold (a score)")
    if keep is not None and (isinstance(keep, bool) or not 0.0 < float(keep) <= 1.0):
        raise ValueError(f"keep must be a fraction in (0, 1], got {keep!r}")
    if not isinstance(model, nn.Sequential):
        raise TypeError(f"prune() supports nn.Sequential models, got {type(model).__name__}; "
                        "read relevance(model) and rebuild the model by hand")
    scores = relevance(model, scale=scale)
    targets = list(scores) if layers is None else list(layers)
    for name in targets:
        if name not in scores:
            raise ValueError(f"layer {name!r} is not a noisy layer of the model; noisy layers: "
                             f"{list(scores)}")
    children = list(model)
    if example_input is None:
        first = next((m for m in children if isinstance(m, (nn.Linear, NoisyLinear))), None)
        if first is None:
            raise ValueError("pass example_input= to count FLOPs of a model without a leading "
                             "linear layer")
        example_input = torch.zeros(1, first.in_features, dtype=first.weight.dtype)

    new = copy.deepcopy(model)
    new_children = list(new)
    kept: dict[str, Tensor] = {}
    select: Tensor | None = None
    block_names = [n for n in targets if isinstance(children[int(n)], Residual)
                   and children[int(n)].structure == "layer"]
    if block_names:
        block_scores = torch.cat([scores[n].reshape(1) for n in block_names])
        chosen = _choose(block_scores, keep, threshold, "residual blocks")
        for j, n in enumerate(block_names):
            if j not in chosen.tolist():
                new_children[int(n)] = nn.Identity()
        kept["residual_blocks"] = torch.tensor([int(block_names[j]) for j in chosen.tolist()])
    for name in targets:
        if name in block_names:
            continue
        if "." in name:
            raise ValueError(f"prune() handles noisy layers at the top level of the Sequential; "
                             f"{name!r} is nested")
        i = int(name)
        layer = children[i]
        if not (isinstance(layer, NoisyLinear) and layer.structure == "unit"):
            raise ValueError(f"prune() cannot remove groups of layer {name!r} "
                             f"({type(layer).__name__}, structure={layer.structure!r}); it "
                             "prunes unit-structured NoisyLinear inputs and ADD Residual blocks")
        index = _choose(scores[name], keep, threshold, name)
        kept[name] = index
        target: Any = new_children[i]
        target.weight = nn.Parameter(target.weight.detach()[:, index].clone())
        target.in_features = index.numel()
        j = i - 1
        while j >= 0 and (isinstance(children[j], _ELEMENTWISE) or (
                isinstance(children[j], MultiplicativeNoise) and children[j].structure == "unit")):
            j -= 1
        if j < 0:
            select = index
            continue
        producer: Any = new_children[j]
        if not isinstance(producer, (nn.Linear, NoisyLinear)):
            raise ValueError(f"cannot prune the inputs of layer {name!r}: they come from "
                             f"{type(children[j]).__name__} at position {j}, which prune() "
                             "cannot shrink (only Linear/NoisyLinear producers)")
        producer.weight = nn.Parameter(producer.weight.detach()[index].clone())
        if producer.bias is not None:
            producer.bias = nn.Parameter(producer.bias.detach()[index].clone())
        producer.out_features = index.numel()
    modules = ([SelectFeatures(select)] if select is not None else []) + new_children
    pruned = nn.Sequential(*modules)
    return PruneResult(
        model=pruned,
        kept=kept,
        params_before=count_parameters(model),
        params_after=count_parameters(pruned),
        flops_before=count_flops(model, example_input),
        flops_after=count_flops(pruned, example_input),
    )
