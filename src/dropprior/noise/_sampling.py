r"""Fast exact primitive draws shared by the noise laws: open uniforms and Gamma(α, 1).

Why not torch's samplers. On CPU, torch's ``exponential_``, ``cauchy_`` and ``_standard_gamma``
are scalar loops, many times slower than ``rand`` and ``randn`` (``benchmarks/bench_layers.py``
and docs/layers/benchmarks.md have the timings). The layers draw ξ
twice (forward, and again in backward from the saved generator state), so sampler cost counts
twice. This module builds every draw from ``rand``/``randn`` plus vectorised elementwise math.

Open uniforms. ``torch.rand`` returns U ∈ [0, 1) on a grid of spacing 2⁻²⁴ (float32) or 2⁻⁵³
(float64); V = 1 − U is exact on that grid and lies in (0, 1], so −log V and 1/tan(πV/2) are
finite. The grid truncates −log V at 24·log 2 ≈ 16.6 in float32 (tail mass 2⁻²⁴ ≈ 6·10⁻⁸), the same
resolution as torch's own float32 ``normal_`` (Box–Muller on a float32 uniform).

Gamma(α, 1): the exact vectorised Marsaglia–Tsang sampler of :mod:`dropprior.noise._gamma`,
whose draws can be replayed from the generator state at the cost of one ``normal_``. Gradients to
α are implicit reparametrization gradients, ∂G/∂α = −(∂F/∂α)/p(G) (Figurnov et al., 2018), from
torch's ``_standard_gamma_grad`` — the same as ``torch.distributions.Gamma.rsample``.

Under ``torch.compile`` the data-dependent rejection loop would break the graph, so the draws
there fall back to torch's ``_standard_gamma`` (with the boost applied unconditionally, which is
exact for every α > 0 and needs no data-dependent branch).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor
from torch.autograd.function import once_differentiable

from dropprior.noise._gamma import draw_gammas, needs_boost

__all__ = ["rand", "randn", "open_uniform", "standard_gamma", "log_standard_gamma", "needs_boost"]


def rand(shape: tuple[int, ...] | torch.Size, like: Tensor,
         generator: torch.Generator | None) -> Tensor:
    """``torch.rand`` in ``like``'s dtype and device (no ``generator=None`` keyword: dynamo cannot
    trace it with dynamic shapes)."""
    if generator is None:
        return torch.rand(shape, dtype=like.dtype, device=like.device)
    return torch.rand(shape, dtype=like.dtype, device=like.device, generator=generator)


def randn(shape: tuple[int, ...] | torch.Size, like: Tensor,
          generator: torch.Generator | None) -> Tensor:
    """``torch.randn`` in ``like``'s dtype and device."""
    if generator is None:
        return torch.randn(shape, dtype=like.dtype, device=like.device)
    return torch.randn(shape, dtype=like.dtype, device=like.device, generator=generator)


def open_uniform(shape: tuple[int, ...] | torch.Size, like: Tensor,
                 generator: torch.Generator | None) -> Tensor:
    """V ~ Uniform(0, 1] as a fresh tensor: 1 − ``rand``, exact on ``rand``'s grid.

    Shape:
        ``shape``; dtype and device of ``like``.
    """
    return rand(shape, like, generator).neg_().add_(1)


def _sample_standard_gamma(alpha: Tensor, shape: torch.Size,
                           generator: torch.Generator | None) -> Tensor:
    """G ~ Gamma(α, 1) for any α > 0, no autograd; G ≥ the dtype's smallest normal number."""
    return draw_gammas([alpha], shape, generator)[0][0]


class _GivenGamma(torch.autograd.Function):
    """Draws G ~ Gamma(α, 1) made elsewhere, with the implicit reparametrization gradient."""

    @staticmethod
    def forward(ctx: Any, alpha: Tensor, g: Tensor) -> Tensor:
        ctx.save_for_backward(alpha, g)
        return g

    @staticmethod
    @once_differentiable
    def backward(ctx: Any, grad: Tensor) -> tuple[Tensor, None]:
        alpha, g = ctx.saved_tensors
        dg = torch._standard_gamma_grad(alpha.expand(g.shape).contiguous(), g)
        return (grad * dg).sum_to_size(alpha.shape), None


def with_gamma_gradient(alpha: Tensor, g: Tensor) -> Tensor:
    """``g`` (draws of Gamma(α, 1)) carrying the implicit gradient ∂G/∂α where α needs one.

    Shape:
        alpha: broadcastable to g's; output: g's.
    """
    if alpha.requires_grad and torch.is_grad_enabled():
        return _GivenGamma.apply(alpha, g)
    return g


def standard_gamma(alpha: Tensor, shape: torch.Size,
                   generator: torch.Generator | None = None) -> Tensor:
    r"""G ~ Gamma(α, 1) i.i.d., exact, differentiable in α by implicit reparametrization.

    Args:
        alpha: concentrations α > 0, broadcastable to ``shape``.
        shape: the output shape.
        generator: the generator of every underlying ``rand``/``randn`` draw.

    Returns:
        G, clamped below at the dtype's smallest normal number (as torch's ``Gamma.rsample``).

    Shape:
        alpha: broadcastable to ``shape``; output: ``shape``.
    """
    shape = torch.Size(shape)
    if torch.compiler.is_compiling():
        g = torch._standard_gamma(alpha.expand(shape)) if generator is None else \
            torch._standard_gamma(alpha.expand(shape), generator=generator)
        return g.clamp_min(torch.finfo(g.dtype).tiny)
    with torch.no_grad():
        g = _sample_standard_gamma(alpha.detach(), shape, generator)
    return with_gamma_gradient(alpha, g)


def log_standard_gamma(alpha: Tensor, shape: torch.Size,
                       generator: torch.Generator | None = None) -> Tensor:
    r"""log G, G ~ Gamma(α, 1), without underflow for small α.

    For α < 1 it returns log G(α + 1) + log(U)/α (the boost in log space): float32 Gamma(0.1)
    draws underflow to 0 with probability ~1e-4, their logarithms do not. Differentiable in α
    (implicit gradient of G(α + 1) plus the pathwise term −log(U)/α²).

    Shape:
        alpha: broadcastable to ``shape``; output: ``shape``.
    """
    shape = torch.Size(shape)
    if torch.compiler.is_compiling():  # boost always: exact for every α, no data-dependent branch
        return standard_gamma(alpha + 1, shape, generator).log() + \
            open_uniform(shape, alpha, generator).log_() / alpha
    if not needs_boost(alpha.detach()):
        return standard_gamma(alpha, shape, generator).log()
    small = alpha < 1
    boosted = standard_gamma(torch.where(small, alpha + 1, alpha), shape, generator).log()
    log_u = open_uniform(shape, alpha, generator).log_()
    return boosted + torch.where(small, log_u / alpha, torch.zeros((), dtype=alpha.dtype))
