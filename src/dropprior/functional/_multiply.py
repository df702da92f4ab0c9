"""The functional core: multiply a tensor by structured multiplicative noise.

In the expanded parametrization (paper eq. 8) noise ξ on the inputs to a weight group is the
Gaussian scale-mixture prior w = ξ·z on that group's weights, so every structure in
:mod:`dropprior.nn` reduces to

.. math:: \\tilde x = x \\odot \\xi, \\qquad \\xi \\sim p(\\xi) \\text{ i.i.d., of the structure's
    noise shape}.

Memory. A plain ``x * law.sample(shape)`` keeps the float draw for backward (4 bytes per element
in fp32; torch's own CPU ``F.dropout`` does the same). Here:

* Bernoulli noise keeps a ``bool`` mask (1 byte per noise element) and multiplies by the scale;
* every other law keeps only the generator's state and **regenerates** the draw in backward
  (0 bytes per element, one extra draw of compute);
* noise of x's own shape (per-example ``"unit"`` noise) is drawn inside one kernel that also
  multiplies, and redrawn by it in backward from a saved seed (:mod:`dropprior.functional._fused`:
  Triton on CUDA, the same kernel compiled by Numba on CPU; float32, float16 and bfloat16):
  8 bytes per call, and no pass over memory for ξ.
* except Bernoulli noise of x's shape on a small CPU tensor (:data:`SMALL_CPU_DROPOUT`
  elements) from the default generator, which takes torch's own ``F.dropout`` steps and keeps
  the float draw, as it does: there a kernel call costs more than it saves.

Under ``torch.compile``, or when the law's parameters require grad (learned noise), the plain
differentiable form ``x * law.rsample(shape)`` is used instead.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeGuard

import torch
from torch import Tensor
from torch.autograd.function import once_differentiable

from dropprior._validation import check_bool, check_float_dtype, shape_or_type
from dropprior.functional._fused import fused_multiply, fused_plan, fused_sample
from dropprior.functional._rng import draw_generator
from dropprior.functional._structure import noise_shape
from dropprior.noise import Bernoulli, NoiseLaw

__all__ = ["multiplicative_noise", "noise_mean", "draw_noise", "register_compact_draw",
           "sampling_dtype"]

# law type -> draw(law, shape, generator) -> (bool mask, scale): a draw stored in 1 byte/element.
CompactDraw = Callable[[Any, tuple[int, ...], "torch.Generator | None", torch.device, torch.dtype],
                       tuple[Tensor, Tensor]]
_COMPACT: dict[type, CompactDraw] = {}


def register_compact_draw(law_type: type) -> Callable[[CompactDraw], CompactDraw]:
    """Decorator: draw noise of ``law_type`` as ``mask * scale`` (a bool mask, saved for backward
    at one byte per element). The draw must have the distribution of ``law.sample(shape)``."""

    def decorator(draw: CompactDraw) -> CompactDraw:
        _COMPACT[law_type] = draw
        return draw

    return decorator


@register_compact_draw(Bernoulli)
def _bernoulli_mask(law: Bernoulli, shape: tuple[int, ...], generator: torch.Generator | None,
                    device: torch.device, dtype: torch.dtype) -> tuple[Tensor, Tensor]:
    # rand(shape) < π: the Bernoulli(π) indicator, about 3x faster on CPU than bernoulli_.
    keep = law.keep_in(dtype, device)
    # (no generator=None keyword: torch.compile cannot trace it with dynamic shapes)
    u = torch.rand(shape, dtype=dtype, device=device) if generator is None else \
        torch.rand(shape, dtype=dtype, device=device, generator=generator)
    # inverted: 1/π, saturated at the dtype's largest value (π below ~3e-39 in float32 would give
    # inf, and 0·inf = nan for every dropped entry)
    scale = (1.0 / keep).clamp(max=torch.finfo(dtype).max) if law.inverted else \
        torch.ones_like(keep)
    return u < keep, scale


def sampling_dtype(dtype: torch.dtype) -> torch.dtype:
    """Noise for 16-bit activations is drawn in float32 (torch has no 16-bit gamma sampler and
    bfloat16 uniforms are too coarse for small keep probabilities), then cast."""
    return torch.float32 if dtype in (torch.float16, torch.bfloat16) else dtype


def noise_mean(noise: NoiseLaw, dtype: torch.dtype, device: torch.device) -> Tensor:
    """E[ξ] as a tensor, for the deterministic eval-mode rule ξ → E[ξ].

    Raises:
        ValueError: E[ξ] is infinite (half-Cauchy); eval-mode prediction then does not exist and
            Monte Carlo prediction must be used instead.
    """
    mean = noise.mean
    if not torch.compiler.is_compiling() and not bool(torch.isfinite(mean).all()):
        raise ValueError(
            f"E[ξ] of {noise!r} is infinite, so the eval-mode rule ξ → E[ξ] does not exist; "
            "predict by Monte Carlo instead: `with dropprior.nn.mc(model): ...` draws noise in "
            "eval mode (or use dropprior.prediction.predict(model, x, samples=S))"
        )
    return mean.to(device=device, dtype=dtype)


def draw_noise(noise: NoiseLaw, shape: tuple[int, ...], device: torch.device,
               dtype: torch.dtype, generator: torch.Generator | None = None,
               fused: bool = False) -> Tensor:
    """One draw of ξ of ``shape`` (i.i.d. entries), in ``dtype`` on ``device``; differentiable in
    the law's parameters where the law has ``rsample``.

    With ``fused=True``, ξ is drawn by the fused kernel where it draws the law
    (:func:`~dropprior.functional.fused_plan`: float32 on the CPU), seeded from ``generator``,
    unless the law's parameters require grad or ``torch.compile`` traces the call; otherwise,
    and by default, by the law's own ``sample``/``rsample``. Either way a generator in the same
    state gives the same ξ.

    Raises:
        TypeError: ``dtype`` is not a floating-point dtype (ξ is real: an inverted Bernoulli's
            1/keep would be cut to an integer).
    """
    check_float_dtype(dtype)
    check_bool("fused", fused)
    law = noise.to(device, sampling_dtype(dtype))
    wants_grad = law.has_rsample and any(p.requires_grad for p in law.params().values())
    if fused and not wants_grad and not torch.compiler.is_compiling():
        out = torch.empty(shape, dtype=dtype, device=device)
        plan = fused_plan(law, out)
        if plan is not None:
            return fused_sample(out, plan, generator)
    draw = law.rsample if wants_grad else law.sample
    xi = draw(shape, generator=generator)  # type: ignore[call-arg]
    return xi.to(dtype)


class _MaskScale(torch.autograd.Function):
    """y = x · mask · c, saving the bool mask (1 byte per noise element)."""

    @staticmethod
    def forward(ctx: Any, x: Tensor, mask: Tensor, scale: Tensor) -> Tensor:
        ctx.save_for_backward(mask)
        ctx.scale = scale
        return x.mul(mask).mul_(scale)

    @staticmethod
    @once_differentiable
    def backward(ctx: Any, grad: Tensor) -> tuple[Tensor, None, None]:
        (mask,) = ctx.saved_tensors
        return grad.mul(mask).mul_(ctx.scale), None, None


class _Regenerated(torch.autograd.Function):
    """y = x · ξ, saving the generator state and the law's replay record (empty for most laws;
    the few rejected entries for gamma-based laws); ξ is replayed in backward."""

    @staticmethod
    def forward(ctx: Any, x: Tensor, law: NoiseLaw, shape: tuple[int, ...],
                generator: torch.Generator) -> Tensor:
        ctx.state = generator.get_state()
        ctx.device = generator.device
        ctx.law, ctx.shape = law, shape
        xi, record = law.sample_with_record(shape, generator)
        ctx.save_for_backward(*record)  # counted as saved activations (a few % of entries)
        return _times_fresh(x, xi)

    @staticmethod
    @once_differentiable
    def backward(ctx: Any, grad: Tensor) -> tuple[Tensor, None, None, None]:
        replay = torch.Generator(ctx.device)
        replay.set_state(ctx.state)
        xi = ctx.law.replay(ctx.shape, replay, ctx.saved_tensors)
        return _times_fresh(grad, xi), None, None, None


def _times_fresh(t: Tensor, xi: Tensor) -> Tensor:
    """t · ξ for a freshly drawn ξ: written into ξ's own storage when it has t's shape and dtype
    (a new CPU tensor of this size costs its page faults), else out of place."""
    if xi.shape == t.shape and xi.dtype == t.dtype and xi.is_contiguous():
        return xi.mul_(t)
    return t * xi.to(t.dtype)


def _check_inputs(x: Tensor, noise: NoiseLaw) -> None:
    if not isinstance(x, Tensor):
        raise TypeError(f"x must be a torch.Tensor, got {type(x).__name__}")
    if not x.is_floating_point():
        raise TypeError(f"x must be a floating-point tensor, got dtype {x.dtype}")
    if not isinstance(noise, NoiseLaw):
        raise TypeError(
            f"noise must be a dropprior.noise.NoiseLaw (e.g. Bernoulli(keep=0.8)), "
            f"got {type(noise).__name__}"
        )
    if noise.batch_shape != torch.Size():
        raise ValueError(
            f"noise must be a scalar law (batch_shape ()), got batch_shape "
            f"{tuple(noise.batch_shape)}; the structure, not the law, sets the noise shape"
        )


def multiplicative_noise(x: Tensor, noise: NoiseLaw, structure: str = "unit",
                         granularity: str = "example", sample: Tensor | None = None,
                         generator: torch.Generator | None = None, training: bool = True,
                         *, time_dim: int = 0) -> Tensor:
    r"""Multiply ``x`` by noise ξ of the structure's noise shape.

    .. math:: \tilde x = x \odot \xi,\quad \xi_{s} \sim p(\xi) \text{ i.i.d. over the entries } s
        \text{ of } \text{noise\_shape}(x, \text{structure}, \text{granularity}),

    broadcast over the axes that share a draw. In eval mode (``training=False``) ξ is replaced by
    E[ξ]. With Bernoulli noise of keep probability π and ``inverted=True`` this is exactly
    ``F.dropout(x, p=1-π)``; with ``structure="channel"`` it is ``F.dropout2d``; with
    ``structure="layer"`` it is torchvision's ``stochastic_depth(mode="row"|"batch")``.

    Args:
        x: activations.
        noise: a scalar :class:`~dropprior.noise.NoiseLaw`.
        structure: ``"unit"``, ``"channel"`` or ``"layer"`` (see
            :data:`dropprior.functional.STRUCTURES`).
        granularity: ``"example"``, ``"batch"`` or ``"sequence"``.
        sample: an explicit draw of exactly the noise shape, used as is (also in eval mode).
        generator: the generator of the draw (default: the device's default generator).
        training: draw noise if True; multiply by E[ξ] if False.
        time_dim: time axis for ``granularity="sequence"`` (0 or 1).

    Returns:
        x ⊙ ξ, of x's shape and dtype.

    Shape:
        x: (*, D) for ``"unit"``, (N, C, *) for ``"channel"``, (N, *) for ``"layer"``;
        sample: :func:`dropprior.functional.noise_shape` of x; output: as x.

    Example:
        >>> from dropprior.noise import Bernoulli
        >>> x = torch.ones(4, 3)
        >>> multiplicative_noise(x, Bernoulli(0.5, inverted=True), "unit").shape
        torch.Size([4, 3])
    """
    _check_inputs(x, noise)
    check_bool("training", training)
    if sample is None and training and generator is None and structure == "unit" and \
            granularity == "example" and x.dim() >= 1 and not torch.compiler.is_compiling() \
            and _small_cpu_dropout(noise, x) and not noise.keep.requires_grad and \
            draw_generator(x.device) is torch.default_generator:
        # a draw per element of a small CPU tensor: torch's dropout steps (checked first, as
        # a small layer's forward is dominated by per-call work)
        return _torch_dropout(x, noise)
    shape = noise_shape(tuple(x.shape), structure, granularity, time_dim)
    if sample is not None:
        if not isinstance(sample, Tensor) or tuple(sample.shape) != shape:
            got = shape_or_type(sample)
            raise ValueError(
                f"sample must be a tensor of the noise shape {shape} (structure={structure!r}, "
                f"granularity={granularity!r}, x of shape {tuple(x.shape)}), got {got}"
            )
        return x * sample.to(x.dtype)
    if not training:
        return x * noise_mean(noise, x.dtype, x.device)
    compact = _compact_draw_for(noise)
    dtype = sampling_dtype(x.dtype)
    if torch.compiler.is_compiling():  # plain differentiable ops that dynamo traces
        if compact is not None:
            mask, scale = compact(noise, shape, generator, x.device, dtype)
            return x * mask * scale.to(x.dtype)
        return x * draw_noise(noise, shape, x.device, x.dtype, generator)
    if any(p.requires_grad for p in noise.params().values()):  # learned noise: rsample
        return x * draw_noise(noise, shape, x.device, x.dtype, generator)
    if shape == tuple(x.shape):  # as many draws as elements: one fused kernel (CUDA or CPU)
        plan = fused_plan(noise, x)
        if plan is not None:
            return fused_multiply(x, plan, draw_generator(x.device, generator))
    law = noise.to(x.device, dtype)
    gen = draw_generator(x.device, generator)
    if gen is None:
        return x * draw_noise(law, shape, x.device, x.dtype, generator)
    if compact is not None:
        mask, scale = compact(noise, shape, gen, x.device, dtype)
        return _MaskScale.apply(x, mask, scale.to(x.dtype))
    return _Regenerated.apply(x, law, shape, gen)


# Below this many elements a CPU Bernoulli draw of x's shape from the default generator takes
# torch's own dropout steps: the fused kernel's per-call cost (two launches, a Python autograd
# function) exceeds its gain there. An explicit generator keeps the kernel's draw (the stacked
# layers draw each network's noise as the kernel does).
SMALL_CPU_DROPOUT = 4096


def _small_cpu_dropout(law: NoiseLaw, x: Tensor) -> TypeGuard[Bernoulli]:
    """Whether per-element Bernoulli noise on ``x`` takes :func:`_torch_dropout`: a small float32
    or float64 CPU tensor, and a keep probability of at least 10⁻⁶ (below, the general path's
    saturated 1/π applies)."""
    return (type(law) is Bernoulli and x.device.type == "cpu" and
            x.dtype in (torch.float32, torch.float64) and x.numel() <= SMALL_CPU_DROPOUT and
            float(law.keep) >= 1e-6)


def _torch_dropout(x: Tensor, law: Bernoulli) -> Tensor:
    """x ⊙ ξ by the steps of torch's CPU ``F.dropout`` (a Bernoulli(π) draw of x's shape from the
    default generator, divided by π when inverted, multiplied in, autograd keeping ξ): the same
    numbers as ``F.dropout(x, 1 - π)`` under the same seed."""
    keep = float(law.keep)
    if law.inverted and keep < 1.0:  # torch's own op: these steps, in C++ (at keep = 1 it
        return torch.dropout(x, 1.0 - keep, True)  # would return x itself, not a new tensor)
    xi = torch.empty_like(x, memory_format=torch.contiguous_format).bernoulli_(keep)
    if law.inverted:
        xi.div_(keep)
    return x * xi


def _compact_draw_for(law: NoiseLaw) -> CompactDraw | None:
    for cls in type(law).__mro__:
        if cls in _COMPACT:
            return _COMPACT[cls]
    return None
