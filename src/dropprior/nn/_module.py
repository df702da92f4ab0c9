"""The base of every noisy layer, the ``mc`` context and the bare noise module.

Modes, as torch users expect:

* ``model.train()``: every noisy layer draws noise;
* ``model.eval()``: ξ is replaced by E[ξ] (a clear error where E[ξ] is infinite);
* ``with mc(model):`` noise is drawn in eval mode too (MC prediction); torch's own
  ``nn.Dropout*`` modules inside the model sample as well.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Iterator
from contextlib import contextmanager

import torch
from torch import Tensor, nn
from torch.nn.modules.dropout import _DropoutNd

from dropprior._autocast import autocast_dtype
from dropprior._validation import check_bool, check_choice, check_generator
from dropprior.functional import GRANULARITIES, multiplicative_noise
from dropprior.noise import NoiseLaw

__all__ = ["Stochastic", "NoisyModule", "MultiplicativeNoise", "mc", "sampling_mode",
           "has_noise", "check_law", "excluded_modules"]


def check_law(name: str, noise: object, required: bool = True) -> NoiseLaw | None:
    """``noise`` if it is a scalar NoiseLaw (or None where optional), else a clear error."""
    if noise is None and not required:
        return None
    if not isinstance(noise, NoiseLaw):
        raise TypeError(
            f"{name} must be a dropprior.noise.NoiseLaw (e.g. Bernoulli(keep=0.8, inverted=True))"
            f", got {noise!r}"
        )
    if noise.batch_shape != torch.Size():
        raise ValueError(f"{name} must be a scalar law, got batch_shape {tuple(noise.batch_shape)}")
    return noise


class Stochastic(nn.Module):
    """Abstract base of every module that draws noise: it samples in training mode and inside
    :func:`mc`, and states how often it redraws (``granularity``).

    Attributes:
        granularity: ``"example"``, ``"batch"`` or ``"sequence"``.
    """

    granularity: str

    def __init__(self) -> None:
        super().__init__()
        self._mc_depth = 0

    @property
    def sampling(self) -> bool:
        """Whether forward draws noise: in training mode, or inside :func:`mc`."""
        return self.training or self._mc_depth > 0

    def __prepare_scriptable__(self) -> nn.Module:
        """Refuse ``torch.jit.script`` with a clear error (it calls this hook on every submodule
        before compiling): the layers hold noise laws, which TorchScript cannot type."""
        raise TypeError(
            f"{type(self).__name__} cannot be compiled by torch.jit.script (TorchScript cannot "
            "type its noise law); use torch.compile or torch.export instead"
        )


class NoisyModule(Stochastic):
    """Abstract base: a module that multiplies a weight group's inputs by noise ξ.

    Attributes:
        noise: the law of ξ (configuration, not state: it is not in ``state_dict``).
        structure: which weights share one ξ.
        granularity: how often ξ is redrawn.
        generator: the generator of the draws (None: the device's default generator).
    """

    noise: NoiseLaw
    structure: str
    generator: torch.Generator | None

    def group_norms(self) -> Tensor:
        """The L2 norm of the EP weights of each group that shares one noise scale."""
        raise NotImplementedError

    def _raw(self, name: str) -> Tensor:
        """The stored tensor ``name`` without evaluating a parametrization on it (a variational
        weight would otherwise draw a sample just to be looked at)."""
        # torch.nn.utils.parametrize keeps a parametrized tensor's original in the submodule
        # ModuleDict "parametrizations" (what is_parametrized reads, here without its getattr's
        # AttributeError on an unparametrized module)
        parametrizations = self._modules.get("parametrizations")
        if isinstance(parametrizations, torch.nn.ModuleDict) and name in parametrizations:
            return parametrizations[name].original  # type: ignore[return-value]
        return getattr(self, name)

    def _check_materialised(self, x: Tensor, weight: Tensor) -> None:
        """A clear error where the input or the weight is on the meta device."""
        if x.is_meta or weight.is_meta:
            raise ValueError(f"{type(self).__name__} cannot run on the meta device: meta tensors "
                             "hold no values to draw noise for; materialise the module with "
                             "module.to_empty(device=...) and load its weights")

    def _compute_dtype(self, x: Tensor, weight: Tensor) -> torch.dtype | None:
        """Autocast's dtype on x's device where autocast is on (the per-example weight paths
        then run in it, as torch's layers do); else None, once x is known to have the
        parameters' dtype.

        Raises:
            TypeError: x's dtype differs from the parameters' outside autocast.
        """
        self._check_materialised(x, weight)
        amp = autocast_dtype(x.device.type)
        if amp is None and x.dtype != weight.dtype:
            raise TypeError(f"{type(self).__name__}'s parameters are {weight.dtype} but the input "
                            f"is {x.dtype}; convert one of them (e.g. module.to(x.dtype))")
        return amp

    def extra_repr(self) -> str:
        return f"noise={self.noise!r}, structure={self.structure!r}, " \
               f"granularity={self.granularity!r}"


class MultiplicativeNoise(NoisyModule):
    """x ⊙ ξ with ξ of a structure's noise shape: the module form of
    :func:`dropprior.functional.multiplicative_noise` (``nn.Dropout`` with any law).

    Args:
        noise: the law of ξ.
        structure: ``"unit"``, ``"channel"`` or ``"layer"``.
        granularity: ``"example"``, ``"batch"`` or ``"sequence"``.
        generator: generator of the draws.

    Shape:
        input: as the structure requires; output: as input.
    """

    def __init__(self, noise: NoiseLaw, structure: str = "unit", granularity: str = "example",
                 generator: torch.Generator | None = None) -> None:
        super().__init__()
        from dropprior.functional import STRUCTURES

        self.noise = check_law("noise", noise)  # type: ignore[assignment]
        self.structure = check_choice("structure", structure, STRUCTURES)
        self.granularity = check_choice("granularity", granularity, GRANULARITIES)
        self.generator = check_generator(generator)

    def forward(self, x: Tensor) -> Tensor:
        return multiplicative_noise(x, self.noise, self.structure, self.granularity,
                                    generator=self.generator, training=self.sampling)

    def group_norms(self) -> Tensor:
        raise TypeError(
            "MultiplicativeNoise holds no weights: its groups are the input rows of the layer "
            "that follows it; read that layer's weights instead"
        )


def _functional_dropout(module: nn.Module) -> bool:
    """Whether the module's own ``forward`` calls a functional dropout gated on
    ``self.training`` (source inspection; the mode switch of :func:`mc` cannot reach it)."""
    import inspect

    forward = type(module).__dict__.get("forward")
    if forward is None or type(module).__module__.startswith("torch."):
        return False
    try:
        source = inspect.getsource(forward)
    except (OSError, TypeError):
        return False
    return "dropout(" in source and "self.training" in source


@contextmanager
def mc(model: nn.Module, strict: bool = False,
       exclude: Iterable[str | nn.Module] = ()) -> Iterator[nn.Module]:
    """Draw noise in eval mode: Monte Carlo prediction.

    Inside the context every :class:`Stochastic` module of ``model`` (noisy layers, variational
    weights) samples whatever its mode, and torch's own dropout modules (``nn.Dropout``,
    ``nn.Dropout1d/2d/3d``, ``nn.AlphaDropout``, ``nn.FeatureAlphaDropout``) and attention
    modules with ``dropout > 0`` (``nn.MultiheadAttention``, whose dropout follows its training
    flag) are switched to training mode; their previous modes are restored on exit. Nothing else
    changes mode (batch norm keeps its running statistics).

    Dropout the switch cannot reach is reported: a module whose own ``forward`` calls a
    functional ``dropout(...)`` gated on ``self.training`` gets a warning naming it (an error
    with ``strict=True``), and so does a model with no noise at all (every sample would be the
    same).

    ``exclude`` names submodules (as ``model.named_modules()`` names them, or the modules
    themselves) that the context leaves as they are, with everything below them: in eval mode
    their noise stays at its mean, and the draws cover the rest of the model (e.g. Gal &
    Ghahramani's MC evaluation, which keeps the embedding's word-type dropout off). A name or
    module that is not in ``model`` is an error.

    Example:
        >>> from dropprior.nn import NoisyLinear
        >>> from dropprior.noise import Bernoulli
        >>> model = nn.Sequential(NoisyLinear(3, 1, Bernoulli(0.8, inverted=True))).eval()
        >>> x = torch.randn(4, 3)
        >>> with mc(model):
        ...     draws = torch.stack([model(x) for _ in range(20)])
        >>> draws.shape
        torch.Size([20, 4, 1])
    """
    import warnings

    if not isinstance(model, nn.Module):
        raise TypeError(f"mc() takes a torch.nn.Module, got {type(model).__name__}")
    check_bool("mc(): strict", strict)  # mc(model, 20) is not a number of samples
    kept = excluded_modules(model, exclude, "mc()")
    unreachable = [name or "<root>" for name, m in model.named_modules()
                   if _functional_dropout(m) and m not in kept]
    if unreachable:
        message = (f"mc(): {unreachable} call a functional dropout in forward, gated on their "
                   "own training flag, which mc() does not switch; their outputs stay "
                   "deterministic in eval mode (use nn.Dropout modules or a dropprior layer)")
        if strict:
            raise ValueError(message)
        warnings.warn(message, UserWarning, stacklevel=3)
    elif not has_noise(model, kept):
        warnings.warn("mc(): the model has no noise (no dropprior noisy layer, no dropout)"
                      + (" outside exclude" if kept else "")
                      + ": every Monte Carlo sample will be the same", UserWarning, stacklevel=3)
    with sampling_mode(model, kept):
        yield model


def excluded_modules(model: nn.Module, exclude: Iterable[str | nn.Module],
                     caller: str = "mc()") -> set[nn.Module]:
    """Every module of ``model`` at or below an entry of ``exclude`` (submodule names, as
    ``model.named_modules()`` gives them, or the modules); errors name ``caller``."""
    if isinstance(exclude, (str, nn.Module)):
        exclude = [exclude]  # one name or module
    try:
        entries = list(exclude)
    except TypeError:
        raise TypeError(f"{caller}: exclude takes submodule names or modules of the model, "
                        f"got {exclude!r}") from None
    inside = {id(m) for m in model.modules()}
    kept: set[nn.Module] = set()
    for entry in entries:
        if isinstance(entry, str):
            try:
                module = model.get_submodule(entry)
            except AttributeError:
                names = [n for n, _ in model.named_modules() if n]
                raise ValueError(f"{caller}: exclude names {entry!r}, which is not a "
                                 f"submodule of the model; its submodules: {names[:20]}"
                                 + (" …" if len(names) > 20 else "")) from None
        elif isinstance(entry, nn.Module):
            if id(entry) not in inside:
                raise ValueError(f"{caller}: exclude holds a {type(entry).__name__} that is "
                                 "not a submodule of the model")
            module = entry
        else:
            raise TypeError(f"{caller}: exclude takes submodule names (str) or modules of the "
                            f"model, got {entry!r}")
        kept.update(module.modules())
    return kept


def _switched(model: nn.Module, kept: Collection[nn.Module] = ()
              ) -> tuple[list[Stochastic], list[nn.Module]]:
    """The stochastic modules and torch dropouts of ``model`` that :func:`mc` switches, less
    ``kept``."""
    modules = [m for m in model.modules() if m not in kept]
    noisy = [m for m in modules if isinstance(m, Stochastic)]
    dropouts: list[nn.Module] = [m for m in modules if isinstance(m, _DropoutNd)
                                 or (isinstance(m, nn.MultiheadAttention) and m.dropout > 0)]
    return noisy, dropouts


def has_noise(model: nn.Module, kept: Collection[nn.Module] = ()) -> bool:
    """Whether anything in ``model``, less the modules ``kept``, draws noise under :func:`mc`."""
    noisy, dropouts = _switched(model, kept)
    return bool(noisy or dropouts)


@contextmanager
def sampling_mode(model: nn.Module, kept: Collection[nn.Module] = ()) -> Iterator[nn.Module]:
    """The switching of :func:`mc` without its checks (for the library's own passes); the
    modules ``kept`` are left as they are."""
    noisy, dropouts = _switched(model, kept)
    modes = [m.training for m in dropouts]
    for layer in noisy:
        layer._mc_depth += 1
    for dropout in dropouts:
        dropout.training = True
    try:
        yield model
    finally:
        for layer in noisy:
            layer._mc_depth -= 1
        for dropout, mode in zip(dropouts, modes, strict=True):
            dropout.training = mode
