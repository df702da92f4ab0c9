r"""Which weights share one scale: the groups of every structure, as views of parameter tensors.

A :class:`ScaleGroup` is one scale tensor of shape ``shape`` and the parameter tensors it scales;
each tensor is viewed as ``view`` (same number of entries, same rank as ``shape``) so that the
scale broadcasts against it. The table, by layer kind and structure (F filters, C input channels
per group, K kernel entries, H hidden units, D input size):

===================================  =========  ====================  ============================
layer, structure                      kind       scale shape           tensors (view)
===================================  =========  ====================  ============================
NoisyLinear ``unit`` (ARD)            unit       (1, in)               weight (out, in)
NoisyLinear ``weight``                weight     (out, in)             weight
NoisyEmbedding (ARD on word types)    unit       (V, 1)                weight (V, D)
NoisyConv ``channel``                 channel    (F, C, 1)             weight (F, C, K)
NoisyConv ``filter``                  filter     (F, 1)                weight (F, C·K), bias (F, 1)
NoisyConv ``channel+filter``          both of the two rows above
NoisyConv ``weight``                  weight     weight's shape        weight
NoisyLSTM ``tied`` (layer 0)          tied       (1, D)                weight_ih_l0 (4H, D)
NoisyLSTM ``untied`` (layer 0)        untied     (4, 1, D)             weight_ih_l0 (4, H, D)
Residual ``layer`` (ADD)              layer      (1,)                  every parameter of the block
                                                                       (numel,), biases included
Residual ``unit`` (ARD)               unit       (1, in) / (1, C, 1)   the block's first weight
Residual ``unit+layer``               both of the two rows above
===================================  =========  ====================  ============================

A filter's bias is in its filter group and a block's biases in its ADD group: the paper subsumes
biases into the weights. Noisy layers inside a residual block keep their own groups too, so their
weights get the product of both scales (ARD+ADD).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

from torch import nn

from dropprior.nn import (
    MultiplicativeNoise,
    NoisyConvNd,
    NoisyEmbedding,
    NoisyLinear,
    NoisyLSTM,
    Residual,
)
from dropprior.noise import NoiseLaw

__all__ = ["Target", "ScaleGroup", "scale_groups", "GROUP_KINDS"]

GROUP_KINDS = {
    "unit": "an input unit of a linear map (ARD): its outgoing weights",
    "weight": "a single weight (DropConnect)",
    "channel": "an (input channel, filter) pair of a convolution",
    "filter": "a whole filter of a convolution, its bias included",
    "tied": "an LSTM input dimension across all four gates",
    "untied": "an LSTM input dimension in one gate",
    "layer": "every weight and bias of a residual block (ADD)",
}


@dataclass(frozen=True, eq=False)
class Target:
    """A parameter tensor ``module.<name>`` viewed as ``view`` against a group's scale."""

    module: nn.Module
    name: str
    view: tuple[int, ...]


@dataclass(frozen=True, eq=False)
class ScaleGroup:
    """One scale tensor: its name (``"<layer>:<kind>"``), kind, shape, the tensors it scales, and
    the noise law of the group (the ``"auto"`` hyperprior's source)."""

    name: str
    kind: str
    shape: tuple[int, ...]
    targets: tuple[Target, ...]
    law: NoiseLaw | None


def _linear(m: NoisyLinear, name: str) -> list[ScaleGroup]:
    w = tuple(m.weight.shape)
    shape = (1, w[1]) if m.structure == "unit" else w
    return [ScaleGroup(f"{name}:{m.structure}", m.structure, shape, (Target(m, "weight", w),),
                       m.noise)]


def _embedding(m: NoisyEmbedding, name: str) -> list[ScaleGroup]:
    w = tuple(m.weight.shape)  # row v: the outgoing weights of the one-hot input unit v
    return [ScaleGroup(f"{name}:unit", "unit", (w[0], 1), (Target(m, "weight", w),), m.noise)]


def _conv(m: NoisyConvNd, name: str) -> list[ScaleGroup]:
    w = tuple(m.weight.shape)
    f, c, k = w[0], w[1], math.prod(w[2:])
    groups = []
    if m.structure == "weight":
        return [ScaleGroup(f"{name}:weight", "weight", w, (Target(m, "weight", w),), m.noise)]
    if m.structure in ("channel", "channel+filter"):
        groups.append(ScaleGroup(f"{name}:channel", "channel", (f, c, 1),
                                 (Target(m, "weight", (f, c, k)),), m.noise))
    if m.structure in ("filter", "channel+filter"):
        targets = [Target(m, "weight", (f, c * k))]
        if m.bias is not None:
            targets.append(Target(m, "bias", (f, 1)))
        law = m.noise if m.structure == "filter" else m.filter_noise
        groups.append(ScaleGroup(f"{name}:filter", "filter", (f, 1), tuple(targets), law))
    return groups


def _lstm(m: NoisyLSTM, name: str) -> list[ScaleGroup]:
    w = tuple(m.weight_ih_l0.shape)  # type: ignore[arg-type]
    if m.gates == "tied":
        return [ScaleGroup(f"{name}:tied", "tied", (1, w[1]), (Target(m, "weight_ih_l0", w),),
                           m.noise)]
    view = (4, m.hidden_size, w[1])
    return [ScaleGroup(f"{name}:untied", "untied", (4, 1, w[1]),
                       (Target(m, "weight_ih_l0", view),), m.noise)]


def _first_weight_module(block: nn.Module) -> nn.Module:
    for module in block.modules():
        weight = module._parameters.get("weight")
        if weight is not None and weight.dim() >= 2:
            return module
    raise ValueError("the residual block holds no linear map (no weight of rank >= 2)")


def _residual(m: Residual, name: str) -> list[ScaleGroup]:
    groups = []
    if m.unit_noise is not None:
        first = _first_weight_module(m.block)
        w = tuple(first._parameters["weight"].shape)  # type: ignore[union-attr]
        shape: tuple[int, ...]
        view: tuple[int, ...]
        if len(w) == 2:
            shape, view = (1, w[1]), w
        else:
            shape, view = (1, w[1], 1), (w[0], w[1], math.prod(w[2:]))
        groups.append(ScaleGroup(f"{name}:unit", "unit", shape, (Target(first, "weight", view),),
                                 m.unit_noise))
    if m.depth_noise is not None:
        targets = tuple(Target(mod, pname, (p.numel(),))
                        for mod in m.block.modules()
                        for pname, p in mod._parameters.items() if p is not None)
        groups.append(ScaleGroup(f"{name}:layer", "layer", (1,), targets, m.depth_noise))
    return groups


_RULES: dict[type, Callable[..., list[ScaleGroup]]] = {
    NoisyLinear: _linear,
    NoisyEmbedding: _embedding,
    NoisyConvNd: _conv,
    NoisyLSTM: _lstm,
    Residual: _residual,
}


def _rule(module: nn.Module) -> Callable[..., list[ScaleGroup]] | None:
    for cls in type(module).__mro__:
        if cls in _RULES:
            return _RULES[cls]
    return None


def scale_groups(model: nn.Module) -> list[ScaleGroup]:
    """The scale groups of every noisy layer of ``model`` (module table), outermost first.

    Raises:
        ValueError: the model has no noisy layer with weights.
    """
    groups: list[ScaleGroup] = []
    for name, module in model.named_modules():
        rule = _rule(module)
        if rule is not None and not isinstance(module, MultiplicativeNoise):
            groups.extend(rule(module, name or "<root>"))
    if not groups:
        raise ValueError("model has no noisy layers with weights (dropprior.nn.NoisyLinear, "
                         "NoisyConv*, Residual, NoisyLSTM, NoisyEmbedding), so it has no scale "
                         "groups; build it from dropprior.nn layers or convert it with "
                         "dropprior.nn.apply_noise")
    return groups
