r"""Genuine pruning: remove the groups the prior switched off and return a smaller model.

:func:`prune` ranks each noisy layer's groups by :func:`dropprior.relevance` and keeps
either a fraction of them (``keep=``) or those scoring above a ``threshold=`` (``"auto"``: those
the fit kept); ``max_kept=`` caps a layer at a size budget, its highest-ranked groups. Removal is
real:

* an input unit of a unit-structured :class:`~dropprior.nn.NoisyLinear` at position i of an
  ``nn.Sequential`` deletes that column of its weight **and** the row (and bias entry) of the
  linear layer that produces it (through element-wise modules: activations, dropout, unit noise);
* on the first linear layer the units are the model's input features: the pruned model starts
  with a :class:`SelectFeatures` module, so it still accepts the full input and reads only the
  kept columns (:attr:`PruneResult.kept` names them);
* a filter of a :class:`~dropprior.nn.NoisyConv2d` (or ``NoisyConv1d``) with structure "filter"
  or "channel+filter" deletes that filter (weight row and bias) **and** the matching input
  channel of the next Linear/Conv map (through element-wise, pooling and batch-norm modules,
  whose channel is deleted too; through ``nn.Flatten`` the channel's block of features); for
  "channel+filter" a filter's score is the root-sum-square of its (channel, filter) scores;
* an input channel of a conv with structure "channel" is deleted with the producing conv's
  filter (score: root-sum-square over filters);
* an input dimension of a :class:`~dropprior.nn.NoisyLSTM` (first layer) deletes that column of
  its input-to-hidden weights in every gate, and the producing Linear's row or the column of an
  ``nn.Embedding`` or :class:`~dropprior.nn.NoisyEmbedding`;
* an ADD :class:`~dropprior.nn.Residual` block (structure "layer") with a low score is replaced by
  ``nn.Identity()`` — h ↦ τ f(h) + h at τ = 0 is h, biases included;
* an input unit of an ARD :class:`~dropprior.nn.Residual` block (structure "unit", or
  "unit+layer" inside a kept block): that column of the block's first map, behind a
  :class:`SelectFeatures` inside the block;
* input units of a layer fed by the residual stream: the stream keeps its width while a kept
  block reads and writes it, so the layer's weight columns go and a :class:`SelectFeatures`
  in front of it reads the kept units; once every block between the layer and the stream's
  producing Linear is removed, the producer's rows go instead, as for any Linear producer.

Removing a group gives exactly the model whose group weights are zero — in eval (mean-scaling)
mode, the pruned model's outputs equal the unpruned model's with the removed filters' weights
and biases and the consumer's matching input weights set to zero (tested).

With ``mean_inputs=`` (mean replacement), a removed input unit or channel of a linear or conv map
is held at its mean over those examples instead of zero: its mean contribution is folded into the
map's bias, so the pruned model equals the unpruned one with the removed inputs replaced by their
means (tested; for a conv, exactly so without padding).

It reports parameter counts and FLOPs (2 × multiply–accumulates of the linear and convolutional
maps, per example) before and after.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn
from torch.nn.utils.rnn import PackedSequence

from dropprior._relevance import relevance
from dropprior._validation import check_sigma0
from dropprior.scales import collapse, has_scales, kept_groups, layer_layout

__all__ = ["prune", "PruneResult", "SelectFeatures", "Offset", "count_parameters",
           "count_flops"]

_ELEMENTWISE = (nn.ReLU, nn.Tanh, nn.Sigmoid, nn.GELU, nn.ELU, nn.LeakyReLU, nn.SiLU, nn.Softplus,
                nn.Identity, nn.Dropout, nn.AlphaDropout, nn.SELU, nn.Mish, nn.Hardtanh)


class SelectFeatures(nn.Module):
    """Keep only the given input features (axis ``dim``: -1 for features, 1 for the channels of
    a conv input): the front of an input-pruned model.

    Shape:
        input: (*, D) (``dim=-1``) or (N, C, *) (``dim=1``); output: that axis cut to
        len(index).
    """

    index: Tensor

    def __init__(self, index: Tensor, dim: int = -1) -> None:
        super().__init__()
        self.register_buffer("index", torch.as_tensor(index, dtype=torch.long).clone())
        self.dim = dim

    def forward(self, x: Tensor) -> Tensor:
        return x.index_select(self.dim, self.index.to(x.device))

    def extra_repr(self) -> str:
        return f"features={self.index.tolist()}, dim={self.dim}"


class Offset(nn.Module):
    """x + c: a removed residual block held at its mean contribution c (mean replacement).

    Shape:
        input: (N, *c.shape); output: as input.
    """

    def __init__(self, offset: Tensor) -> None:
        super().__init__()
        self.offset = nn.Parameter(offset.detach().clone())

    def forward(self, x: Tensor) -> Tensor:
        return x + self.offset

    def extra_repr(self) -> str:
        return f"shape={tuple(self.offset.shape)}"


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
    """FLOPs of one forward pass per example: 2 × the multiply–accumulates of every linear,
    convolutional and LSTM map (biases, activations, gate non-linearities and noise are not
    counted). "Per example" means per index of ``example_input``'s first axis (for a time-major
    LSTM model that axis is time). An LSTM fed a ``PackedSequence`` counts each sequence's own
    steps (the packed rows), not the padding.

    Shape:
        example_input: (B, ...), any B ≥ 1.
    """
    from dropprior.nn import NoisyConvNd, NoisyLinear, NoisyLSTM
    from dropprior.prediction import mc_mode

    total = [0]

    def linear_hook(module: nn.Module, inputs: tuple[Tensor, ...], output: Tensor) -> None:
        w: Tensor = module.weight  # type: ignore[assignment]
        rows = inputs[0].numel() // w.shape[1]
        total[0] += 2 * rows * w.shape[0] * w.shape[1]

    def conv_hook(module: nn.Module, inputs: tuple[Tensor, ...], output: Tensor) -> None:
        w: Tensor = module.weight  # type: ignore[assignment]
        total[0] += 2 * output.numel() * w[0].numel()

    def lstm_hook(module: nn.Module, inputs: tuple[Tensor, ...], output: Tensor) -> None:
        x = inputs[0]
        # T × N, T unbatched, or the packed rows (each sequence's own steps)
        steps = x.data.shape[0] if isinstance(x, PackedSequence) else x.shape[:-1].numel()
        for layer in range(module.num_layers):  # type: ignore[arg-type]
            w_ih: Tensor = getattr(module, f"weight_ih_l{layer}")
            w_hh: Tensor = getattr(module, f"weight_hh_l{layer}")
            total[0] += 2 * steps * (w_ih.numel() + w_hh.numel())

    handles = []
    for m in model.modules():
        if isinstance(m, (nn.Linear, NoisyLinear)):
            handles.append(m.register_forward_hook(linear_hook))
        elif isinstance(m, (nn.Conv1d, nn.Conv2d, nn.Conv3d, NoisyConvNd)):
            handles.append(m.register_forward_hook(conv_hook))
        elif isinstance(m, NoisyLSTM):
            handles.append(m.register_forward_hook(lstm_hook))
    try:
        with torch.no_grad(), mc_mode(model):
            model(example_input)
    finally:
        for h in handles:
            h.remove()
    return total[0] // example_input.shape[0]


def _choose(scores: Tensor, keep: float | None, threshold: float | None, name: str,
            allow_none: bool = False, auto: bool = False) -> Tensor:
    s = scores.reshape(-1)
    if keep is not None:
        n_keep = max(1, math.ceil(keep * s.numel()))
        order = torch.argsort(s, descending=True, stable=True)
        return torch.sort(order[:n_keep]).values
    assert threshold is not None
    index = torch.nonzero(s > threshold).reshape(-1)
    if index.numel() == 0 and not allow_none:
        if auto:
            raise ValueError(f"the fit switched off every group of layer {name!r} "
                             "(threshold='auto'), so pruning would leave it empty; read "
                             "relevance(model) and pass keep= or a numeric threshold")
        raise ValueError(f"threshold={threshold} removes every group of layer {name!r} (its "
                         f"largest score is {float(s.max()):.4g}); use a lower threshold or keep=")
    return index


def _check_caps(max_kept: dict[str, int] | None) -> dict[str, int]:
    if max_kept is None:
        return {}
    if not isinstance(max_kept, dict):
        raise TypeError("max_kept must be a dict {layer name: most groups kept}, got "
                        f"{type(max_kept).__name__}")
    for name, n in max_kept.items():
        if isinstance(n, bool) or not isinstance(n, int) or n < 1:
            raise ValueError(f"max_kept[{name!r}] must be an integer >= 1, got {n!r}")
    return {str(k): v for k, v in max_kept.items()}


def _cap(index: Tensor, ranks: Tensor, n: int) -> Tensor:
    """Of the chosen groups ``index``, the (at most) ``n`` with the highest ``ranks``, sorted."""
    if index.numel() <= n:
        return index
    r = ranks.reshape(-1)[index]
    return torch.sort(index[torch.argsort(r, descending=True, stable=True)[:n]]).values


# ---- surgery on single modules -------------------------------------------------------------
def _is_linear(m: nn.Module) -> bool:
    from dropprior.nn import NoisyLinear

    return isinstance(m, (nn.Linear, NoisyLinear))


def _is_conv(m: nn.Module) -> bool:
    from dropprior.nn import NoisyConvNd

    return isinstance(m, (nn.Conv1d, nn.Conv2d, nn.Conv3d, NoisyConvNd))


def _passes_through(m: nn.Module) -> bool:
    """Modules that act on each feature / channel separately, so their width follows the input
    (batch norm is handled separately: it has per-channel parameters)."""
    from dropprior.nn import MultiplicativeNoise

    channelwise = (nn.MaxPool1d, nn.MaxPool2d, nn.AvgPool1d, nn.AvgPool2d, nn.AdaptiveAvgPool1d,
                   nn.AdaptiveAvgPool2d, nn.AdaptiveMaxPool1d, nn.AdaptiveMaxPool2d,
                   nn.Dropout1d, nn.Dropout2d)
    return isinstance(m, _ELEMENTWISE + channelwise + (Offset,)) or (
        isinstance(m, MultiplicativeNoise) and m.structure in ("unit", "channel"))


def _check_groups(m: Any, where: str) -> None:
    if getattr(m, "groups", 1) != 1:
        raise ValueError(f"prune() cannot change the channels of the grouped convolution at "
                         f"{where} (groups={m.groups})")


def _is_embedding(m: nn.Module) -> bool:
    from dropprior.nn import NoisyEmbedding

    return isinstance(m, (nn.Embedding, NoisyEmbedding))


def _shrink_outputs(m: Any, index: Tensor, where: str) -> None:
    """Keep output units / filters ``index`` of a linear or conv map (weight rows, bias), or
    the embedding dimensions ``index`` of an ``nn.Embedding`` or a ``NoisyEmbedding``."""
    if _is_embedding(m):
        m.weight = nn.Parameter(m.weight.detach()[:, index].clone())
        m.embedding_dim = index.numel()
        return
    if _is_conv(m):
        _check_groups(m, where)
    m.weight = nn.Parameter(m.weight.detach()[index].clone())
    if m.bias is not None:
        m.bias = nn.Parameter(m.bias.detach()[index].clone())
    if _is_linear(m):
        m.out_features = index.numel()
    else:
        m.out_channels = index.numel()


def _shrink_inputs(m: Any, index: Tensor, where: str,
                   means: dict[int, Tensor] | None = None) -> None:
    """Keep input features / channels ``index`` of a linear, conv or LSTM map (weight
    columns; for an LSTM the first layer's input-to-hidden columns). Where ``means`` holds the
    map's input mean (:func:`_input_means`), the removed inputs' mean contribution is added to
    its bias."""
    from dropprior.nn import NoisyLSTM

    if isinstance(m, NoisyLSTM):
        lstm: Any = m  # weight_ih_l0 is registered dynamically
        lstm.weight_ih_l0 = nn.Parameter(lstm.weight_ih_l0.detach()[:, index].clone())
        lstm.input_size = index.numel()
        return
    if _is_conv(m):
        _check_groups(m, where)
    if means is not None and id(m) in means:
        _fold_mean(m, index, means[id(m)])
    m.weight = nn.Parameter(m.weight.detach()[:, index].clone())
    if _is_linear(m):
        m.in_features = index.numel()
    else:
        m.in_channels = index.numel()


@torch.no_grad()
def _fold_mean(m: Any, index: Tensor, mean: Tensor) -> None:
    """Add to ``m``'s bias what its removed inputs (all but ``index``) contribute at their
    mean: m(mean with the kept inputs zeroed) − m(0), evaluated in eval mode (so a noise law's
    mean scaling is included). ``mean`` has the shape of one input example; a convolution's
    output is averaged over positions (exact without padding, where a constant input gives a
    constant output)."""
    removed = torch.ones(mean.shape[0], dtype=torch.bool)
    removed[index] = False
    if not bool(removed.any()):
        return
    probe = torch.where(removed.reshape(-1, *[1] * (mean.dim() - 1)), mean,
                        torch.zeros_like(mean)).unsqueeze(0).to(m.weight.dtype)
    training = m.training
    m.eval()
    try:
        shift = m(probe) - m(torch.zeros_like(probe))
    finally:
        m.train(training)
    shift = shift[0] if shift.dim() == 2 else shift[0].flatten(1).mean(dim=1)
    if m.bias is None:
        m.bias = nn.Parameter(shift.clone())
    else:
        m.bias = nn.Parameter(m.bias.detach() + shift)


@torch.no_grad()
def _input_means(base: nn.Module, new: nn.Module, x: Tensor, batch_size: int = 2_000
                 ) -> dict[int, Tensor]:
    """The mean input example of every linear and conv map of ``base`` (eval mode, over the
    examples ``x``), keyed by the id of the matching map of its deep copy ``new``: for a
    linear map the mean over every axis but the features, for a conv the mean input image
    (per channel, broadcast over its positions); and for every residual block its mean
    contribution (output − input, one example's shape)."""
    from dropprior.nn import Residual

    maps = [(b, c) for b, c in zip(base.modules(), new.modules(), strict=True)
            if _is_linear(b) or _is_conv(b)]
    sums: dict[int, Tensor] = {}
    counts: dict[int, int] = {}
    shapes: dict[int, torch.Size] = {}

    def hook(module: nn.Module, args: tuple[Any, ...]) -> None:
        h = args[0].detach().to(torch.float64)
        # a conv's rows are each example's channel means; a linear map's, its input rows
        rows = h.flatten(2).mean(dim=2) if _is_conv(module) else h.reshape(-1, h.shape[-1])
        key = id(module)
        sums[key] = sums[key] + rows.sum(0) if key in sums else rows.sum(0)
        counts[key] = counts.get(key, 0) + rows.shape[0]
        shapes[key] = h.shape[1:]

    blocks = [(b, c) for b, c in zip(base.modules(), new.modules(), strict=True)
              if isinstance(b, Residual)]

    def block_hook(module: nn.Module, args: tuple[Any, ...], output: Tensor) -> None:
        rows = (output - args[0]).detach().to(torch.float64)  # the block's contribution
        key = id(module)
        sums[key] = sums[key] + rows.sum(0) if key in sums else rows.sum(0)
        counts[key] = counts.get(key, 0) + rows.shape[0]

    modes = {m: m.training for m in base.modules()}
    handles = [b.register_forward_pre_hook(hook) for b, _ in maps]
    handles += [b.register_forward_hook(block_hook) for b, _ in blocks]
    try:
        base.eval()
        for i in range(0, x.shape[0], batch_size):
            base(x[i:i + batch_size])
    finally:
        for h in handles:
            h.remove()
        for m, training in modes.items():
            m.train(training)
    means = {id(c): sums[id(b)] / counts[id(b)] for b, c in blocks if id(b) in sums}
    for b, c in maps:
        if id(b) in sums:
            mean = sums[id(b)] / counts[id(b)]
            if _is_conv(b):
                mean = mean.reshape(-1, *[1] * (len(shapes[id(b)]) - 1)).expand(
                    shapes[id(b)]).clone()
            means[id(c)] = mean
    return means


def _shrink_norm(m: Any, index: Tensor) -> None:
    """Keep channels ``index`` of a batch-norm layer (affine parameters, running statistics)."""
    if m.weight is not None:
        m.weight = nn.Parameter(m.weight.detach()[index].clone())
        m.bias = nn.Parameter(m.bias.detach()[index].clone())
    if m.running_mean is not None:
        m.running_mean = m.running_mean[index].clone()
        m.running_var = m.running_var[index].clone()
    m.num_features = index.numel()


class _Surgery:
    """Shrinks the interface between two maps of a top-level Sequential, once per interface."""

    def __init__(self, original: list[Any], new: list[Any],
                 means: dict[int, Tensor] | None = None) -> None:
        self.original, self.new, self.means = original, new, means
        self.done: dict[int, str] = {}  # producer position -> the layer that pruned it
        self.select: tuple[Tensor, int] | None = None
        self.selections: dict[int, SelectFeatures] = {}  # consumer position -> its selection

    def _current(self, j: int) -> Any:
        """The module at position j, or the identity that replaced a removed block."""
        return self.new[j] if isinstance(self.new[j], (nn.Identity, Offset)) \
            else self.original[j]

    def assemble(self) -> nn.Sequential:
        """The pruned Sequential: the input selection, then each module behind its own."""
        front = [] if self.select is None else [SelectFeatures(*self.select)]
        body = []
        for i, m in enumerate(self.new):
            if i in self.selections:
                body.append(self.selections[i])
            body.append(m)
        return nn.Sequential(*front, *body)

    def _claim(self, producer: int, name: str) -> None:
        if producer in self.done:
            raise ValueError(
                f"layers {self.done[producer]!r} and {name!r} both prune the features between "
                f"the map at position {producer} and the next one; pass layers= with only one "
                "of them"
            )
        self.done[producer] = name

    def inputs(self, i: int, index: Tensor, name: str) -> None:
        """Remove input groups ``index`` of map i and the producer's matching outputs."""
        from dropprior.nn import Residual

        j = i - 1
        norms, offsets = [], []
        while j >= 0 and (_passes_through(self._current(j)) or isinstance(
                self.original[j], nn.modules.batchnorm._BatchNorm)):
            if isinstance(self.original[j], nn.modules.batchnorm._BatchNorm):
                norms.append(j)
            if isinstance(self.new[j], Offset):  # a removed block's mean: its kept units stay
                offsets.append(j)
            j -= 1
        producer = self.original[j] if j >= 0 else None
        if isinstance(producer, Residual):
            # a kept block reads and writes the whole residual stream, which keeps its width:
            # only this layer's inputs shrink, behind a feature selection
            self._claim(j, name)
            _shrink_inputs(self.new[i], index, name, self.means)
            self.selections[i] = SelectFeatures(index, 1 if _is_conv(self.original[i]) else -1)
            return
        if producer is not None and not (_is_linear(producer) or _is_conv(producer)
                                         or _is_embedding(producer)):
            kind = type(self.original[j]).__name__
            raise ValueError(f"cannot prune the inputs of layer {name!r}: they come from {kind} "
                             f"at position {j}, which prune() cannot shrink (only "
                             "Linear/Conv producers, through element-wise, pooling and batch-norm "
                             "modules, and residual blocks)")
        self._claim(j, name)
        _shrink_inputs(self.new[i], index, name, self.means)
        for k in norms:
            _shrink_norm(self.new[k], index)
        for k in offsets:
            held = self.new[k].offset.detach()
            self.new[k] = Offset(held.index_select(0 if _is_conv(self.original[i]) else -1,
                                                   index))
        if j < 0:
            self.select = (index, 1 if _is_conv(self.original[i]) else -1)
        else:
            _shrink_outputs(self.new[j], index, name)

    def outputs(self, i: int, index: Tensor, name: str) -> None:
        """Remove output groups (filters) ``index`` of map i and the consumer's matching inputs."""
        self._claim(i, name)
        n_out = self.original[i].weight.shape[0]
        _shrink_outputs(self.new[i], index, name)
        j = i + 1
        flattened = False
        while j < len(self.original) and not (_is_linear(self.original[j])
                                               or _is_conv(self.original[j])):
            m = self.original[j]
            if isinstance(m, nn.modules.batchnorm._BatchNorm) and not flattened:
                _shrink_norm(self.new[j], index)
            elif isinstance(m, nn.Flatten) and not flattened and m.start_dim == 1 and \
                    m.end_dim == -1:
                flattened = True
            elif not _passes_through(m):
                raise ValueError(f"cannot prune the filters of layer {name!r}: its output reaches "
                                 f"{type(m).__name__} at position {j}, which prune() cannot "
                                 "shrink (only element-wise, pooling, batch-norm and Flatten "
                                 "modules may lie before the next Linear/Conv)")
            j += 1
        if j == len(self.original):
            raise ValueError(f"cannot prune the filters of layer {name!r}: they are the model's "
                             "output")
        consumer = self.original[j]
        columns = index
        if flattened:
            if not _is_linear(consumer) or consumer.weight.shape[1] % n_out:
                raise ValueError(f"cannot match the flattened filters of layer {name!r} to the "
                                 f"inputs of {type(consumer).__name__} at position {j}")
            per = consumer.weight.shape[1] // n_out
            columns = (index[:, None] * per + torch.arange(per)).reshape(-1)
        elif _is_linear(consumer) and consumer.weight.shape[1] != n_out:
            raise ValueError(f"cannot match the filters of layer {name!r} to the inputs of "
                             f"{type(consumer).__name__} at position {j}")
        _shrink_inputs(self.new[j], columns, name, self.means)


def _shrink_block_inputs(residual: Any, index: Tensor, name: str,
                         means: dict[int, Tensor] | None = None) -> None:
    """Keep input units ``index`` of a residual block's first linear or conv map: its weight
    columns go and a :class:`SelectFeatures` in front of it reads the kept units (the residual
    stream, which the block adds to, keeps its width)."""
    block = residual.block
    at = next((k for k, m in enumerate(block) if _is_linear(m) or _is_conv(m)), None) \
        if isinstance(block, nn.Sequential) else None
    if at is None:
        raise ValueError(f"cannot prune the input units of residual block {name!r}: prune() "
                         "needs its block to be an nn.Sequential with a Linear/Conv map at the "
                         "top level")
    _shrink_inputs(block[at], index, name, means)
    select = SelectFeatures(index, 1 if _is_conv(block[at]) else -1)
    residual.block = nn.Sequential(*block[:at], select, *block[at:])


def _rule(layer: nn.Module) -> tuple[Callable[[Any, Tensor], Tensor], str] | None:
    """How ``prune`` cuts a noisy layer: (one score per removable group from the layer's
    relevance layout, what is cut: the layer's "inputs", its "outputs" (filters), or a residual
    block's "block inputs"), from :data:`_RULES`; None for a layer it cannot prune."""
    for kinds, structures, per_group, cut in _RULES:
        if isinstance(layer, kinds) and (structures is None
                                         or getattr(layer, "structure", None) in structures):
            return per_group, cut
    return None


def _as_is(layer: Any, scores: Tensor) -> Tensor:
    return scores


def _lstm_scores(layer: Any, scores: Tensor) -> Tensor:
    """Tied: one score per input dimension; untied: the root-sum-square over the four gates (a
    dimension is removed from every gate)."""
    return scores if layer.gates == "tied" else scores.square().sum(dim=0).sqrt()


def _channel_scores(layer: Any, scores: Tensor) -> Tensor:
    """An input channel's score: the root-sum-square of its (channel, filter) scores."""
    return scores.square().sum(dim=1).sqrt()


def _filter_scores(layer: Any, scores: Tensor) -> Tensor:
    """One score per filter: filter → as is; channel+filter → the root-sum-square over input
    channels of the (channel, filter) scores (the norm of the whole filter, times the scale)."""
    return scores if layer.structure == "filter" else scores.square().sum(dim=0).sqrt()


def _rules() -> list[tuple[tuple[type, ...], tuple[str, ...] | None,
                           Callable[[Any, Tensor], Tensor], str]]:
    from dropprior.nn import NoisyConvNd, NoisyLinear, NoisyLSTM, Residual

    return [
        ((NoisyLinear,), ("unit",), _as_is, "inputs"),
        ((NoisyConvNd,), ("filter", "channel+filter"), _filter_scores, "outputs"),
        ((NoisyConvNd,), ("channel",), _channel_scores, "inputs"),
        ((Residual,), ("unit",), _as_is, "block inputs"),
        ((NoisyLSTM,), None, _lstm_scores, "inputs"),
    ]


#: (layer kinds, structures or None for any, per-group scores, what is cut), first match wins.
_RULES = _rules()


def prune(model: nn.Module, keep: float | None = None, threshold: float | str | None = None,
          layers: list[str] | None = None, scale: str = "auto",
          example_input: Tensor | None = None, by: str = "auto",
          fine_tune: Callable[[nn.Module], object] | None = None,
          data: tuple[nn.Module, Tensor, Tensor] | None = None,
          sigma0: float = 1.0, decisions: dict[str, Tensor] | None = None,
          prior_weight: float = 1.0, mean_inputs: Tensor | None = None,
          max_kept: dict[str, int] | None = None) -> PruneResult:
    """Remove low-relevance groups from an ``nn.Sequential``: a genuinely smaller model.

    What is removed, per kind of noisy layer at the top level of the Sequential:

    * unit-structured :class:`~dropprior.nn.NoisyLinear`: input units (its weight columns) and the
      producing Linear's output rows (a :class:`SelectFeatures` front for the model's inputs, and
      in front of the layer when a kept residual block produces them);
    * :class:`~dropprior.nn.NoisyConv1d` / ``NoisyConv2d`` with structure "filter" or
      "channel+filter": whole filters (weight rows and bias), any batch norm's matching channels,
      and the next Linear/Conv's matching input channels (through ``nn.Flatten``: the matching
      blocks of input features);
    * ``NoisyConv*`` with structure "channel": input channels whose (channel, filter) scores
      have the smallest root-sum-square over filters, and the producing conv's filters;
    * :class:`~dropprior.nn.NoisyLSTM`: input dimensions of its first layer (score: the tied
      score, or for untied gates the root-sum-square over the four gates — a dimension is removed
      from every gate), with the producing Linear's rows or ``nn.Embedding``'s columns;
    * ADD :class:`~dropprior.nn.Residual` blocks (structure "layer" or "unit+layer"): replaced by
      ``nn.Identity``; every block may go (a linear target needs none);
    * ARD :class:`~dropprior.nn.Residual` blocks (structure "unit", and "unit+layer" with
      ``threshold="auto"`` in a kept block): the block's input units (its first map's weight
      columns, behind a :class:`SelectFeatures` inside the block).

    A model with learned scales (:mod:`dropprior.scales`) is pruned by them, and
    ``threshold="auto"`` takes the groups the fit kept (:func:`dropprior.scales.kept_groups`: VI
    by whether a group pays for its KL given ``data=``, else by its posterior SNR; type-II MAP by
    the scale's collapse) — absolute decisions, not a
    fraction. The pruned model holds the point weights (MAP: s·z; VI: the posterior means) and
    no scales; in eval mode it equals the unpruned point model with the removed groups zeroed.

    Args:
        model: an ``nn.Sequential`` of (Noisy)Linear / (Noisy)Conv layers, element-wise,
            pooling, batch-norm and Flatten modules, :class:`~dropprior.nn.Residual` blocks,
            ``nn.Embedding`` or :class:`~dropprior.nn.NoisyEmbedding` (whose word types are
            not removed: leave it out of ``layers``), :class:`~dropprior.nn.NoisyLSTM` and
            :class:`~dropprior.nn.LSTMOutput` (the LSTM's output on to the next module).
        keep: fraction in (0, 1] of each pruned layer's groups to keep (the top scores, at least
            one).
        threshold: keep the groups whose relevance score exceeds this, or ``"auto"`` (learned
            scales only) for the fit's own decision (exactly one of ``keep`` and ``threshold``).
        layers: names (as in ``named_modules``) of the noisy layers to prune; None: all of them.
            Two layers may not prune the same interface (a filter-pruned conv and the
            input-pruned layer after it): name one.
        scale: the norm score's noise scale (see :func:`dropprior.norm_relevance`).
        example_input: an input batch for the FLOP count; default zeros of the first linear
            layer's width (required when the model starts with a convolution).
        by: the relevance score (:func:`dropprior.relevance`), for a numeric
            ``threshold`` or ``keep``.
        fine_tune: called with the pruned model (e.g. a short :func:`dropprior.fit`) before the
            counts are taken; its return value is ignored.
        data, sigma0: with ``threshold="auto"`` on a variational model, ``(likelihood, x, y)``
            of the fit and its σ0 select the evidence rule of
            :func:`dropprior.scales.kept_groups` (a group is kept when it pays for its KL).
        prior_weight: the fit's β on its prior term, for the evidence rule (see ``fit``).
        decisions: with ``threshold="auto"``, the fit's decisions when already computed
            (``kept_groups(model, ...)``'s result), used instead of computing them again.
        mean_inputs: examples (e.g. the training inputs) for *mean replacement*: each removed
            input unit or channel of a linear or conv map is replaced by its mean over them
            (in eval mode), folded into that map's bias, and each removed residual block by its
            mean contribution (:class:`Offset`), instead of by zero; with ``data=`` the
            evidence rule then decides by the same removal (``kept_groups(...,
            mean_replacement=True)``). The pruned model
            then equals, in eval mode, the unpruned one with those inputs held at their means
            (for a conv, exactly so without padding). None: removal means zero.
        max_kept: ``{layer name: n}``, a size budget: of the groups the rule keeps in that layer
            (``threshold``, ``"auto"`` or ``keep``), at most the n with the highest relevance
            (``relevance(model, by=by)``: with learned scales, the learned scale), the others
            removed too. Layers not named are not capped; ADD blocks cannot be.

    Returns:
        a :class:`PruneResult`.
    """
    from dropprior.nn import Residual

    if (keep is None) == (threshold is None):
        raise ValueError("give exactly one of keep (a fraction) and threshold (a score)")
    if keep is not None and (isinstance(keep, bool) or not 0.0 < float(keep) <= 1.0):
        raise ValueError(f"keep must be a fraction in (0, 1], got {keep!r}")
    caps = _check_caps(max_kept)
    check_sigma0(sigma0, finite=True, role=" (the fit's prior scale)")
    if not isinstance(model, nn.Sequential):
        raise TypeError(f"prune() supports nn.Sequential models, got {type(model).__name__}; "
                        "read relevance(model) and rebuild the model by hand")
    if mean_inputs is not None and (not isinstance(mean_inputs, Tensor) or mean_inputs.dim() == 0
                                    or mean_inputs.shape[0] == 0):
        raise TypeError("mean_inputs must be a tensor of example inputs (N ≥ 1 along dim 0), "
                        f"got {type(mean_inputs).__name__}"
                        + (f" of shape {tuple(mean_inputs.shape)}"
                           if isinstance(mean_inputs, Tensor) else ""))
    if isinstance(threshold, str):
        if threshold != "auto":
            raise ValueError(f"threshold={threshold!r} is not valid; expected a number or 'auto'")
        if decisions is None:
            # raises without learned scales
            decisions = kept_groups(model, data, sigma0, prior_weight=prior_weight,
                                    mean_replacement=mean_inputs is not None
                                    and data is not None)
        elif data is not None:
            raise ValueError("give data= (to decide here) or decisions= (decided already), "
                             "not both")
        scores = layer_layout(model, {k: v.to(torch.float64) for k, v in decisions.items()})
        threshold, auto = 0.5, True
    else:
        if threshold is not None and (isinstance(threshold, bool) or
                                      not isinstance(threshold, (int, float)) or
                                      not 0 <= threshold < math.inf):
            raise ValueError(f"threshold must be a finite relevance score >= 0 or 'auto', got "
                             f"{threshold!r}")
        if data is not None:
            raise ValueError("data= serves threshold='auto' (the evidence rule); a numeric "
                             "threshold or keep= ranks by relevance(model, by=...)")
        if decisions is not None:
            raise ValueError("decisions= serves threshold='auto' (the fit's own decisions); a "
                             "numeric threshold or keep= ranks by relevance(model, by=...)")
        decisions = {}
        auto = False
        scores = relevance(model, by=by, scale=scale)
    base: Any = collapse(copy.deepcopy(model)) if has_scales(model) else model
    targets = list(scores) if layers is None else list(layers)
    for name in [*targets, *caps]:
        if name not in scores:
            raise ValueError(f"layer {name!r} is not a noisy layer of the model; noisy layers: "
                             f"{list(scores)}")
    ranks = relevance(model, by=by, scale=scale) if auto and caps else scores
    children = list(base)
    if example_input is None:
        first: Any = next((m for m in children if _is_linear(m) or _is_conv(m)), None)
        if first is None or not _is_linear(first):
            raise ValueError("pass example_input= to count FLOPs of a model without a leading "
                             "linear layer")
        example_input = torch.zeros(1, first.in_features, dtype=first.weight.dtype)

    new = copy.deepcopy(base)
    new_children = list(new)
    means = None if mean_inputs is None else _input_means(base, new, mean_inputs)
    kept: dict[str, Tensor] = {}
    block_names = [n for n in targets if "." not in n and isinstance(children[int(n)], Residual)
                   and children[int(n)].structure in ("layer", "unit+layer")]
    for name in caps:
        if name in block_names or name not in targets:
            raise ValueError(f"max_kept names layer {name!r}, which is "
                             + ("an ADD block (blocks are not capped)" if name in block_names
                                else f"not among the pruned layers {targets}"))
    if block_names:
        block_scores = torch.cat([scores[n].reshape(1) for n in block_names])
        chosen = _choose(block_scores, keep, threshold, "residual blocks", allow_none=True)
        for j, n in enumerate(block_names):
            if j not in chosen.tolist():
                held = None if means is None else means.get(id(new_children[int(n)]))
                new_children[int(n)] = nn.Identity() if held is None else \
                    Offset(held.to(children[int(n)].first_weight().dtype))
        kept["residual_blocks"] = torch.tensor([int(block_names[j]) for j in chosen.tolist()],
                                               dtype=torch.long)
        for j in chosen.tolist():  # ARD+ADD: the fit's unit decisions inside a kept block
            unit = f"{block_names[j]}:unit"
            if auto and unit in decisions:
                index = _choose(decisions[unit].to(torch.float64), None, 0.5, block_names[j],
                                auto=True)
                _shrink_block_inputs(new_children[int(block_names[j])], index, block_names[j],
                                     means)
                kept[block_names[j]] = index
    surgery = _Surgery(children, new_children, means)
    for name in targets:
        if name in block_names:
            continue
        if "." in name:
            raise ValueError(f"prune() handles noisy layers at the top level of the Sequential; "
                             f"{name!r} is nested")
        i = int(name)
        layer: Any = children[i]
        rule = _rule(layer)
        if rule is None:
            raise ValueError(f"prune() cannot remove groups of layer {name!r} "
                             f"({type(layer).__name__}, structure={layer.structure!r}); it "
                             "prunes unit-structured NoisyLinear inputs, NoisyConv filters "
                             "('filter', 'channel+filter') or input channels ('channel'), "
                             "NoisyLSTM input dimensions, ADD Residual blocks and the input "
                             "units of ARD Residual blocks; name the layers to prune with "
                             "layers=")
        per_group, cut = rule
        index = _choose(per_group(layer, scores[name]), keep, threshold, name, auto=auto)
        if name in caps:
            index = _cap(index, per_group(layer, ranks[name]), caps[name])
        if cut == "inputs":
            surgery.inputs(i, index, name)
        elif cut == "outputs":
            surgery.outputs(i, index, name)
        else:  # "block inputs"
            _shrink_block_inputs(new_children[i], index, name, means)
        kept[name] = index
    pruned = surgery.assemble()
    if fine_tune is not None:
        fine_tune(pruned)
    return PruneResult(
        model=pruned,
        kept=kept,
        params_before=count_parameters(base),
        params_after=count_parameters(pruned),
        flops_before=count_flops(base, example_input),
        flops_after=count_flops(pruned, example_input),
    )
