"""``apply_noise``: put a noise law and structure into an existing torch model.

What a torch user gets:

* **Per-layer rates.** Pass a family name (``"gaussian"``) and each ``nn.Dropout(p)`` gets the law
  of that family matched to *its own* p (:func:`dropprior.noise.match_dropout`); pass a law
  instance and that one law is used everywhere. The summary says which.
* **No doubled noise.** An ``nn.Dropout`` directly followed by an ``nn.Linear`` in an
  ``nn.Sequential`` is one noisy layer: the pair becomes ``nn.Identity()`` (so positions stay) and
  a unit-structured :class:`NoisyLinear` carrying the dropout's law. ``relevance`` and ``prune``
  read it like any dropprior layer.
* **Nothing else changes.** The new layers hold the *same* ``Parameter`` objects: dtype, device,
  ``requires_grad`` and optimizers built before the call are unaffected.
* **Eval outputs are kept.** Every converted layer's law has E[ξ] = 1 in eval mode (dropout's
  inverted convention): a law instance with another finite mean is refused, e.g.
  ``Bernoulli(0.8)`` (E[ξ] = 0.8; use ``Bernoulli(0.8, inverted=True)``). Laws without a mean
  (half-Cauchy) have no eval-mode rule and are allowed.
* **Every skip is reported**, with its reason: subclasses of the converted types (whose
  ``forward`` may differ, e.g. ``MultiheadAttention.out_proj``), a root module that cannot be
  replaced in place, unsupported LSTM options, non-zero padding modes, ``Dropout(p=0)``.
"""

from __future__ import annotations

from collections.abc import Callable, Collection

import torch
from torch import nn

from dropprior._validation import check_bool, check_choice
from dropprior.nn._module import MultiplicativeNoise, check_law
from dropprior.nn.conv import CONV_STRUCTURES, NoisyConv1d, NoisyConv2d
from dropprior.nn.embedding import NoisyEmbedding
from dropprior.nn.linear import LINEAR_STRUCTURES, NoisyLinear
from dropprior.nn.lstm import GATES, NoisyLSTM
from dropprior.noise import NoiseLaw, match_dropout
from dropprior.noise.matching import check_rate

__all__ = ["apply_noise", "LAYER_KINDS"]

LAYER_KINDS = {
    "dropout": "nn.Dropout → its law on the next nn.Linear's input units (one NoisyLinear), or "
               "unit noise in place; nn.Dropout1d/2d/3d → channel noise in place",
    "linear": "nn.Linear → NoisyLinear(structure=structure)",
    "conv": "nn.Conv1d/2d → NoisyConv1d/2d(structure=conv_structure)",
    "lstm": "nn.LSTM → NoisyLSTM(gates=lstm_gates)",
    "embedding": "nn.Embedding → NoisyEmbedding: one ξ per word type, drawn per token "
                 "occurrence (granularity 'example') or per call ('batch')",
}

_DROPOUTS = (nn.Dropout, nn.Dropout1d, nn.Dropout2d, nn.Dropout3d)
_Law = Callable[[float], NoiseLaw]


def _adopt(new: nn.Module, old: nn.Module) -> nn.Module:
    """Give ``new`` the very Parameter objects of ``old`` (same names), and its mode."""
    for name, param in old.named_parameters(recurse=False):
        new.register_parameter(name, param)
    new.train(old.training)
    return new


def _meta_kwargs(module: nn.Module) -> dict:
    param = next(module.parameters())
    return {"device": "meta", "dtype": param.dtype}


def _linear(module: nn.Linear, law: NoiseLaw, structure: str, granularity: str) -> nn.Module:
    new = NoisyLinear(module.in_features, module.out_features, law, structure, granularity,
                      bias=module.bias is not None, **_meta_kwargs(module))
    return _adopt(new, module)


def _conv(module: nn.Conv1d | nn.Conv2d, law: NoiseLaw, structure: str,
          granularity: str) -> nn.Module | str:
    if module.padding_mode != "zeros":
        return f"padding_mode={module.padding_mode!r} (only 'zeros' is supported)"
    cls = NoisyConv1d if isinstance(module, nn.Conv1d) else NoisyConv2d
    new = cls(module.in_channels, module.out_channels, module.kernel_size, law, structure,
              "batch" if granularity == "batch" else "example", module.stride, module.padding,
              module.dilation, module.groups, module.bias is not None, **_meta_kwargs(module))
    return _adopt(new, module)


def _lstm(module: nn.LSTM, law: NoiseLaw, gates: str, granularity: str,
          weight_noise: bool) -> nn.Module | str:
    if module.bidirectional or module.proj_size or module.dropout:
        return "bidirectional, proj_size and inter-layer dropout are not supported"
    new = NoisyLSTM(module.input_size, module.hidden_size, module.num_layers, law, gates,
                    module.batch_first, bias=module.bias,
                    granularity="batch" if granularity == "batch" else "sequence",
                    recurrent_weight_noise=law if weight_noise else None,
                    **_meta_kwargs(module))
    return _adopt(new, module)


def _embedding(module: nn.Embedding, law: NoiseLaw, granularity: str) -> nn.Module | str:
    if module.max_norm is not None or module.scale_grad_by_freq or module.sparse:
        return "max_norm, scale_grad_by_freq and sparse are not supported"
    new = NoisyEmbedding(module.num_embeddings, module.embedding_dim, law, granularity,
                         module.padding_idx, **_meta_kwargs(module))
    return _adopt(new, module)


def _subclass_reason(module: nn.Module) -> str | None:
    for base in (nn.Linear, nn.Conv1d, nn.Conv2d, nn.LSTM, nn.Embedding, *_DROPOUTS):
        if isinstance(module, base) and type(module) is not base:
            return (f"a subclass of nn.{base.__name__} ({type(module).__name__}) may compute "
                    "something else in forward; convert it by hand")
    return None


class _Converter:
    def __init__(self, law_for: _Law, default_p: float, structure: str, conv_structure: str,
                 lstm_gates: str, granularity: str, kinds: list[str],
                 lstm_weight_noise: bool = False) -> None:
        self.law_for, self.default_p = law_for, default_p
        self.structure, self.conv_structure = structure, conv_structure
        self.lstm_gates, self.granularity, self.kinds = lstm_gates, granularity, kinds
        self.lstm_weight_noise = lstm_weight_noise
        self.lines: list[str] = []

    def weight_layer(self, module: nn.Module) -> nn.Module | str | None:
        """The noisy replacement of a Linear/Conv/LSTM of a kind to convert, a reason, or None."""
        law = None
        if "linear" in self.kinds and type(module) is nn.Linear:
            law = self.law_for(self.default_p)
            return _linear(module, law, self.structure, self.granularity)
        if "conv" in self.kinds and type(module) in (nn.Conv1d, nn.Conv2d):
            law = self.law_for(self.default_p)
            return _conv(module, law, self.conv_structure, self.granularity)  # type: ignore
        if "lstm" in self.kinds and type(module) is nn.LSTM:
            law = self.law_for(self.default_p)
            return _lstm(module, law, self.lstm_gates, self.granularity,
                         self.lstm_weight_noise)
        if "embedding" in self.kinds and type(module) is nn.Embedding:
            return _embedding(module, self.law_for(self.default_p), self.granularity)
        return None

    def wanted(self, module: nn.Module) -> bool:
        kinds = {"dropout": _DROPOUTS, "linear": (nn.Linear,), "conv": (nn.Conv1d, nn.Conv2d),
                 "lstm": (nn.LSTM,), "embedding": (nn.Embedding,)}
        return any(isinstance(module, kinds[k]) for k in self.kinds)

    def children(self, parent: nn.Module, prefix: str) -> None:
        names = list(parent._modules)
        consumed: set[str] = set()
        for i, name in enumerate(names):
            child = parent._modules[name]
            if child is None or name in consumed:
                continue
            full = f"{prefix}.{name}" if prefix else name
            unreached = _unreached_dropout(child) if "dropout" in self.kinds else None
            if unreached is not None:
                self.lines.append(f"  {full}: {_short(child)} left unchanged: {unreached}")
                continue
            if not self.wanted(child):
                continue
            reason = _subclass_reason(child)
            if reason is not None:
                self.lines.append(f"  {full}: {_short(child)} left unchanged: {reason}")
                continue
            if isinstance(child, _DROPOUTS):
                self._dropout(parent, names, i, full, consumed, prefix)
                continue
            new = self.weight_layer(child)
            self._put(parent, name, full, child, new)

    def _dropout(self, parent: nn.Module, names: list[str], i: int, full: str,
                 consumed: set[str], prefix: str) -> None:
        child = parent._modules[names[i]]
        assert child is not None
        p = float(child.p)  # type: ignore[arg-type]
        if p == 0.0:
            self.lines.append(f"  {full}: {_short(child)} left unchanged: p=0 draws no noise")
            return
        law = self.law_for(p)
        nxt = parent._modules[names[i + 1]] if i + 1 < len(names) else None
        if isinstance(parent, nn.Sequential) and type(child) is nn.Dropout \
                and type(nxt) is nn.Linear:
            nxt_full = f"{prefix}.{names[i + 1]}" if prefix else names[i + 1]
            new = _linear(nxt, law, "unit", self.granularity)  # type: ignore[arg-type]
            setattr(parent, names[i], nn.Identity())
            setattr(parent, names[i + 1], new)
            consumed.add(names[i + 1])
            self.lines.append(f"  {full} + {nxt_full}: {_short(child)} + {_short(nxt)} -> "
                              f"Identity + {_short(new)}")
            return
        rule = "unit" if type(child) is nn.Dropout else "channel"
        self._put(parent, names[i], full, child,
                  MultiplicativeNoise(law, rule, self.granularity).train(child.training))

    def _put(self, parent: nn.Module, name: str, full: str, child: nn.Module,
             new: nn.Module | str | None) -> None:
        if isinstance(new, nn.Module):
            setattr(parent, name, new)
            self.lines.append(f"  {full}: {_short(child)} -> {_short(new)}")
        elif isinstance(new, str):
            self.lines.append(f"  {full}: {_short(child)} left unchanged: {new}")


def _unreached_dropout(module: nn.Module) -> str | None:
    """Why a dropout that ``layers=("dropout",)`` does not convert is left, or None: alpha
    dropout is not multiplicative, and attention dropout runs inside a functional call."""
    if isinstance(module, (nn.AlphaDropout, nn.FeatureAlphaDropout)) and module.p > 0:
        return ("alpha dropout is not multiplicative noise (it sets dropped units to SELU's "
                "negative saturation and rescales affinely)")
    if isinstance(module, nn.MultiheadAttention) and module.dropout > 0:
        return ("its dropout of the attention weights runs inside "
                "F.multi_head_attention_forward, out of apply_noise's reach")
    return None


def _law_source(noise: NoiseLaw | str) -> tuple[_Law, str]:
    if isinstance(noise, str):
        match_dropout(noise, 0.5)  # an unknown or unmatchable family fails here, clearly
        return (lambda p: match_dropout(noise, p)), (
            f"family {noise!r}, each layer's law matched to its own dropout rate")
    law = check_law("noise", noise)
    assert law is not None
    mean = law.mean
    if bool(torch.isfinite(mean)) and abs(float(mean) - 1.0) > 1e-6:
        raise ValueError(
            f"apply_noise keeps a model's eval-mode outputs, which needs E[ξ] = 1 (dropout's "
            f"inverted convention), but {law!r} has E[ξ] = {float(mean):g}; pass e.g. "
            "Bernoulli(keep, inverted=True), a law with mean 1, or a family name such as "
            "'bernoulli' to match each layer's rate")
    return (lambda p: law), f"one law everywhere: {law!r} (the layers' own rates are ignored)"


def apply_noise(model: nn.Module, noise: NoiseLaw | str, structure: str = "unit", *,
                layers: Collection[str] = ("dropout",), p: float = 0.5,
                conv_structure: str = "channel", lstm_gates: str = "tied",
                granularity: str = "example", lstm_weight_noise: bool = False,
                verbose: bool = True) -> nn.Module:
    """Put noise into an existing torch model, in place, and report every change (module
    docstring).

    Args:
        model: the torch model (modified in place).
        noise: a family name (each dropout's law matched to its own rate by
            :func:`~dropprior.noise.match_dropout`) or one law for every layer.
        structure: ``"unit"`` or ``"weight"`` for linear layers converted by ``"linear"``.
        layers: which kinds to convert: ``"dropout"`` (the default: dropout layers, fused with
            the ``nn.Linear`` that follows), ``"linear"``, ``"conv"``, ``"lstm"``,
            ``"embedding"``.
        p: with a family name, the dropout rate of weight layers converted without a dropout of
            their own.
        conv_structure: ``"channel"``, ``"filter"``, ``"channel+filter"`` or ``"weight"``.
        lstm_gates: ``"tied"`` or ``"untied"``.
        granularity: ``"example"`` or ``"batch"`` (LSTMs draw per sequence unless ``"batch"``;
            embeddings per token occurrence or per call: the layout of a sequence is not
            known, so build ``NoisyEmbedding(granularity="sequence")`` by hand for that).
        lstm_weight_noise: converted LSTMs also put the layer's law on every recurrent weight,
            one draw per forward call (``NoisyLSTM(recurrent_weight_noise=...)``: AWD-LSTM's
            WeightDrop for Bernoulli noise).
        verbose: print the summary.

    Returns:
        ``model``.

    Raises:
        ValueError: a law with a finite mean ≠ 1, a model on the meta device, bad options.
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"apply_noise() takes a torch.nn.Module, got {type(model).__name__}")
    law_for, description = _law_source(noise)
    p = check_rate(p)  # checked here, not only once a layer without a dropout of its own uses it
    check_choice("structure", structure, LINEAR_STRUCTURES)
    check_choice("conv_structure", conv_structure, CONV_STRUCTURES)
    check_choice("lstm_gates", lstm_gates, GATES)
    check_choice("granularity", granularity, ["example", "batch"])
    check_bool("lstm_weight_noise", lstm_weight_noise)
    check_bool("verbose", verbose)
    kinds = list(layers) if not isinstance(layers, str) else [layers]
    for kind in kinds:
        check_choice("layers entry", kind, LAYER_KINDS)
    if any(t.is_meta for t in model.parameters()):
        raise ValueError("apply_noise needs a model with materialised parameters, but this one "
                         "is on the meta device; call model.to_empty(device=...) and load its "
                         "weights first")
    conv = _Converter(law_for, p, structure, conv_structure, lstm_gates, granularity, kinds,
                      lstm_weight_noise)
    if conv.wanted(model):
        conv.lines.append(f"  <root>: {_short(model)} left unchanged: apply_noise replaces "
                          "submodules in place and cannot replace the model itself; wrap it, "
                          "e.g. nn.Sequential(model)")
    for name, module in list(model.named_modules()):
        conv.children(module, name)
    if verbose:
        header = f"apply_noise: {description}; {len(conv.lines)} module(s)"
        footer = ("  (the new layers hold the original Parameter objects: optimizers built "
                  "before the call keep working)")
        print("\n".join([header, *conv.lines, footer]) if conv.lines
              else header + ": nothing to convert")
    return model


def _short(module: nn.Module) -> str:
    text = repr(module)
    return text if "\n" not in text else type(module).__name__
