"""``apply_noise``: put a noise law and structure into an existing torch model."""

from __future__ import annotations

from collections.abc import Collection

from torch import nn

from dropprior._validation import check_choice
from dropprior.nn._module import MultiplicativeNoise, check_law
from dropprior.nn.conv import CONV_STRUCTURES, NoisyConv1d, NoisyConv2d
from dropprior.nn.linear import LINEAR_STRUCTURES, NoisyLinear
from dropprior.nn.lstm import GATES, NoisyLSTM
from dropprior.noise import NoiseLaw

__all__ = ["apply_noise"]

LAYER_KINDS = {
    "dropout": "nn.Dropout → unit noise, nn.Dropout1d/2d/3d → channel noise, in place",
    "linear": "nn.Linear → NoisyLinear(structure=structure)",
    "conv": "nn.Conv1d/2d → NoisyConv1d/2d(structure=conv_structure)",
    "lstm": "nn.LSTM → NoisyLSTM(gates=lstm_gates)",
}


def _convert(module: nn.Module, noise: NoiseLaw, structure: str, conv_structure: str,
             lstm_gates: str, granularity: str, kinds: Collection[str]) -> nn.Module | str | None:
    """The replacement for ``module`` (or a reason string when it cannot be converted)."""
    if "dropout" in kinds and isinstance(module, nn.Dropout | nn.Dropout1d | nn.Dropout2d |
                                         nn.Dropout3d):
        rule = "unit" if isinstance(module, nn.Dropout) else "channel"
        return MultiplicativeNoise(noise, rule, granularity)
    new: nn.Module
    if "linear" in kinds and isinstance(module, nn.Linear) and type(module) is nn.Linear:
        new = NoisyLinear(module.in_features, module.out_features, noise, structure,
                          granularity, bias=module.bias is not None)
    elif "conv" in kinds and isinstance(module, nn.Conv1d | nn.Conv2d) \
            and type(module) in (nn.Conv1d, nn.Conv2d):
        if module.padding_mode != "zeros":
            return f"padding_mode={module.padding_mode!r} (only 'zeros' is supported)"
        cls = NoisyConv1d if isinstance(module, nn.Conv1d) else NoisyConv2d
        new = cls(module.in_channels, module.out_channels, module.kernel_size, noise,
                  conv_structure, "batch" if granularity == "batch" else "example",
                  module.stride, module.padding, module.dilation,
                  module.groups, module.bias is not None)
    elif "lstm" in kinds and isinstance(module, nn.LSTM) and type(module) is nn.LSTM:
        if module.bidirectional or module.proj_size or module.dropout:
            return "bidirectional, proj_size and inter-layer dropout are not supported"
        lstm = NoisyLSTM(module.input_size, module.hidden_size, module.num_layers, noise,
                         lstm_gates, module.batch_first, bias=module.bias,
                         granularity="batch" if granularity == "batch" else "sequence")
        lstm.load_state_dict(module.state_dict())
        return lstm.to(next(module.parameters()).device)
    else:
        return None
    new.load_state_dict(module.state_dict())
    return new.to(module.weight.device)


def apply_noise(model: nn.Module, noise: NoiseLaw, structure: str = "unit", *,
                layers: Collection[str] = ("dropout",), conv_structure: str = "channel",
                lstm_gates: str = "tied", granularity: str = "example",
                verbose: bool = True) -> nn.Module:
    """Put ``noise`` into an existing torch model, in place, and report every change.

    Submodules of the kinds in ``layers`` are replaced (weights copied):

    * ``"dropout"``: ``nn.Dropout`` becomes unit noise and ``nn.Dropout1d/2d/3d`` channel noise of
      law ``noise`` at the same place (the default: swap the law of a model's dropout);
    * ``"linear"``: ``nn.Linear`` → :class:`NoisyLinear` with ``structure``;
    * ``"conv"``: ``nn.Conv1d/2d`` → :class:`NoisyConv1d/2d` with ``conv_structure``;
    * ``"lstm"``: ``nn.LSTM`` → :class:`NoisyLSTM` with ``lstm_gates``.

    Converting both ``"dropout"`` and the weight layers after it puts two noises on the same
    inputs; pick one. A printed summary lists each replaced module and each one left unchanged
    with the reason.

    Args:
        model: the torch model (modified in place).
        noise: the law of ξ.
        structure: ``"unit"`` or ``"weight"`` for linear layers.
        layers: which kinds to convert (``"dropout"``, ``"linear"``, ``"conv"``, ``"lstm"``).
        conv_structure: ``"channel"``, ``"filter"``, ``"channel+filter"`` or ``"weight"``.
        lstm_gates: ``"tied"`` or ``"untied"``.
        granularity: ``"example"`` or ``"batch"`` (LSTMs draw per sequence unless ``"batch"``).
        verbose: print the summary.

    Returns:
        ``model``.
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"apply_noise() takes a torch.nn.Module, got {type(model).__name__}")
    check_law("noise", noise)
    check_choice("structure", structure, LINEAR_STRUCTURES)
    check_choice("conv_structure", conv_structure, CONV_STRUCTURES)
    check_choice("lstm_gates", lstm_gates, GATES)
    check_choice("granularity", granularity, ["example", "batch"])
    kinds = list(layers) if not isinstance(layers, str) else [layers]
    for kind in kinds:
        check_choice("layers entry", kind, LAYER_KINDS)
    lines = []
    for name, module in list(model.named_modules()):
        for child_name, child in list(module.named_children()):
            new = _convert(child, noise, structure, conv_structure, lstm_gates, granularity,
                           kinds)
            full = f"{name}.{child_name}" if name else child_name
            if isinstance(new, nn.Module):
                new.train(child.training)
                setattr(module, child_name, new)
                lines.append(f"  {full}: {_short(child)} -> {_short(new)}")
            elif isinstance(new, str):
                lines.append(f"  {full}: {_short(child)} left unchanged: {new}")
    if verbose:
        header = f"apply_noise: {noise!r}, {len(lines)} module(s)"
        print("\n".join([header, *lines]) if lines else header + ": nothing to convert")
    return model


def _short(module: nn.Module) -> str:
    text = repr(module)
    return text if "\n" not in text else type(module).__name__

