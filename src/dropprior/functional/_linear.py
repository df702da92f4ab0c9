r"""DropConnect: one ξ per weight (structure ``"weight"``), y = x (Ξ ⊙ W)ᵀ + b.

Per-example DropConnect draws a fresh Ξ_n ∈ R^{out×in} for every example n:

.. math:: y_{n,o} = \sum_i x_{n,i}\, \xi_{n,o,i} W_{o,i} + b_o.

It is computed *exactly* for every law by :func:`dropconnect_linear`, in chunks of examples so that
at most ``max_elements`` noise entries are alive at once; backward regenerates each chunk's Ξ from
the saved generator state instead of keeping N·out·in floats. Ξ is drawn by the fused kernel
where it draws the law (:func:`~dropprior.functional.fused_plan`: float32 on the CPU), else by
the law's own ``sample``.

For Gaussian noise ξ ~ N(μ, s²), y_{n,o} is itself Gaussian given x, with mean μ (x Wᵀ)_{n,o} and
variance s² (x² (W²)ᵀ)_{n,o}, independently over n and o (distinct weights carry independent ξ).
:func:`local_reparam_linear` draws y from that Gaussian (Kingma et al., 2015, local
reparametrization): the same distribution of outputs at the cost of two matrix products.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor
from torch.autograd.function import once_differentiable

from dropprior._validation import check_choice
from dropprior.functional._fused import FusedPlan, fused_sample_blocks
from dropprior.functional._multiply import draw_noise, sampling_dtype
from dropprior.functional._rng import draw_generator
from dropprior.noise import NoiseLaw

__all__ = ["dropconnect_linear", "stacked_dropconnect", "local_reparam_linear"]

_MAX_ELEMENTS = 1 << 22  # noise entries alive at once: 16 MiB in float32


def _chunks(n: int, per_example: int, max_elements: int) -> list[tuple[int, int]]:
    step = max(1, max_elements // max(per_example, 1))
    return [(s, min(s + step, n)) for s in range(0, n, step)]


class _ExactDropConnect(torch.autograd.Function):
    @staticmethod
    def forward(ctx: Any, x: Tensor, weight: Tensor, law: NoiseLaw,
                generator: torch.Generator, max_elements: int) -> Tensor:
        ctx.state = generator.get_state()
        ctx.device = generator.device
        ctx.law, ctx.max_elements = law, max_elements
        ctx.save_for_backward(x, weight)
        out = x.new_empty(x.shape[0], weight.shape[0])
        for s, e in _chunks(x.shape[0], weight.numel(), max_elements):
            xi = draw_noise(law, (e - s, *weight.shape), x.device, x.dtype, generator,
                            fused=True)
            out[s:e] = torch.bmm(xi.mul_(weight), x[s:e].unsqueeze(-1)).squeeze(-1)
        return out

    @staticmethod
    @once_differentiable
    def backward(ctx: Any, grad: Tensor) -> tuple[Tensor | None, Tensor | None, None, None, None]:
        x, weight = ctx.saved_tensors
        replay = torch.Generator(ctx.device)
        replay.set_state(ctx.state)
        grad_x = torch.empty_like(x) if ctx.needs_input_grad[0] else None
        grad_w = torch.zeros_like(weight) if ctx.needs_input_grad[1] else None
        for s, e in _chunks(x.shape[0], weight.numel(), ctx.max_elements):
            xi = draw_noise(ctx.law, (e - s, *weight.shape), x.device, x.dtype, replay,
                            fused=True)
            g = grad[s:e]
            if grad_x is not None:
                grad_x[s:e] = torch.bmm(g.unsqueeze(1), xi * weight).squeeze(1)
            if grad_w is not None:
                # dL/dW_oi = Σ_n g_no ξ_noi x_ni
                grad_w += torch.einsum("no,noi,ni->oi", g, xi, x[s:e])
        return grad_x, grad_w, None, None, None


def dropconnect_linear(x: Tensor, weight: Tensor, bias: Tensor | None, noise: NoiseLaw,
                       granularity: str = "example", generator: torch.Generator | None = None,
                       max_elements: int = _MAX_ELEMENTS) -> Tensor:
    r"""Exact DropConnect, y = x (Ξ ⊙ W)ᵀ + b, Ξ drawn per example or once per batch.

    Args:
        x: inputs.
        weight: W, (out_features, in_features).
        bias: b or None.
        noise: the law of each ξ_{o,i}.
        granularity: ``"example"`` (a Ξ per row of x) or ``"batch"`` (one Ξ for all rows).
        generator: the generator of the draw.
        max_elements: noise entries alive at once in the per-example computation.

    Shape:
        x: (*, in); output: (*, out).
    """
    check_choice("granularity", granularity, ["example", "batch"])
    law = noise.to(x.device, sampling_dtype(x.dtype))
    if granularity == "batch":
        xi = draw_noise(law, tuple(weight.shape), x.device, x.dtype, generator)
        return F.linear(x, xi * weight, bias)
    lead = x.shape[:-1]
    flat = x.reshape(-1, x.shape[-1])
    gen = None if torch.compiler.is_compiling() else draw_generator(x.device, generator)
    learned = any(p.requires_grad for p in law.params().values())
    if gen is None or learned:
        xi = draw_noise(law, (flat.shape[0], *weight.shape), x.device, x.dtype, generator)
        out = torch.einsum("ni,noi->no", flat, xi * weight)
    else:
        out = _ExactDropConnect.apply(flat, weight, law, gen, max_elements)
    if bias is not None:
        out = out + bias
    return out.reshape(*lead, weight.shape[0])


def stacked_dropconnect(x: Tensor, weight: Tensor, plan: FusedPlan,
                        generators: Sequence[torch.Generator | None],
                        saved_limit: int = 4 * _MAX_ELEMENTS,
                        max_elements: int = _MAX_ELEMENTS) -> Tensor | None:
    r"""Per-example DropConnect of G networks whose noise the fused kernel draws alike (one
    ``plan``), y_g = x_g (Ξ_g ⊙ W_g)ᵀ without bias: network g's Ξ is exactly what
    :func:`dropconnect_linear` draws for it from ``generators[g]`` (the same chunks of examples,
    each chunk's Ξ from one seed of g's generator), but the networks' draws are made by one kernel
    call per chunk and the products by one batched product.

    Autograd keeps each Ξ (``dropconnect_linear`` regenerates it instead), so where a gradient is
    needed and Ξ would exceed ``saved_limit`` entries, None is returned: draw network by network
    with ``dropconnect_linear`` then.

    Shape:
        x: (G, B, in); weight: (G, out, in); output: (G, B, out).
    """
    g_count, batch = x.shape[0], x.shape[1]
    per_example = weight.shape[1] * weight.shape[2]
    grad = torch.is_grad_enabled() and (x.requires_grad or weight.requires_grad)
    if grad and g_count * batch * per_example > saved_limit:
        return None
    chunks = _chunks(batch, per_example, max_elements)
    if not chunks:
        return x.new_zeros(g_count, 0, weight.shape[1])
    # networks per kernel call: at most max_elements entries of Ξ alive at once, at least one
    step = max(1, max_elements // max(per_example * (chunks[0][1] - chunks[0][0]), 1))
    parts = []
    for s, e in chunks:
        rows = []
        for first in range(0, g_count, step):
            last = min(first + step, g_count)
            xi = torch.empty((last - first, e - s, *weight.shape[1:]), dtype=x.dtype,
                             device=x.device)
            fused_sample_blocks(xi, plan, generators[first:last])
            rows.append(torch.einsum("gbi,gboi->gbo", x[first:last, s:e],
                                     xi.mul_(weight[first:last].unsqueeze(1))))
        parts.append(torch.cat(rows))
    return torch.cat(parts, dim=1)


def local_reparam_linear(x: Tensor, weight: Tensor, bias: Tensor | None, noise: NoiseLaw,
                         generator: torch.Generator | None = None) -> Tensor:
    r"""Per-example Gaussian DropConnect by the local reparametrization.

    For ξ ~ N(μ, s²) on every weight,

    .. math:: y = \mu\, x W^\top + b + s \sqrt{x^{2} (W^{2})^\top}\;\varepsilon,
        \qquad \varepsilon \sim N(0, I),

    which has exactly the distribution of exact per-example DropConnect's output (for one layer).

    Args:
        x: inputs.
        weight: W, (out_features, in_features).
        bias: b or None.
        noise: a Gaussian law (the construction is exact only for Gaussian noise).
        generator: the generator of ε.

    Shape:
        x: (*, in); output: (*, out).
    """
    from dropprior.noise import Gaussian

    if not isinstance(noise, Gaussian):
        raise ValueError(
            f"the local reparametrization is exact only for Gaussian noise, got {noise!r}; "
            "use local_reparam=False (exact per-example DropConnect) for other laws"
        )
    mean = noise.mean.to(device=x.device, dtype=x.dtype)
    # the law's s itself, not √(s²): s² overflows the law's float32 from s ≈ 1.8e19
    std = noise.std.abs().to(device=x.device, dtype=x.dtype)
    lead = x.shape[:-1]
    flat = x.reshape(-1, x.shape[-1])
    dtype = sampling_dtype(x.dtype)
    shape = (flat.shape[0], weight.shape[0])
    # (no generator=None keyword: torch.compile cannot trace it with dynamic shapes)
    eps = torch.randn(shape, dtype=dtype, device=x.device) if generator is None else \
        torch.randn(shape, dtype=dtype, device=x.device, generator=generator)
    eps = eps.to(x.dtype)
    learned = any(p.requires_grad for p in noise.params().values())
    if torch.compiler.is_compiling() or learned:  # plain differentiable ops
        loc = F.linear(flat, weight) * mean
        var = F.linear(flat.square(), weight.square())
        out = torch.addcmul(loc, var.clamp_min(torch.finfo(var.dtype).tiny).sqrt(), eps * std)
        out = out if bias is None else out + bias
    else:
        out = _LocalReparam.apply(flat, weight, bias, mean, std, eps)
    return out.reshape(*lead, weight.shape[0])


class _LocalReparam(torch.autograd.Function):
    """y = μ x Wᵀ + b + s √(x² (W²)ᵀ) ⊙ ε with a hand-written backward: two matrix products
    forward, four backward, and in-place elementwise work on the (N, out) outputs only.

    With A = x Wᵀ, B = x² (W²)ᵀ, σ = √B and ∂L/∂y = g:
    ∂L/∂A = μ g, ∂L/∂B = g s ε / (2σ) (0 where B was clamped),
    ∂L/∂x = (∂L/∂A) W + 2x ⊙ (∂L/∂B) W², ∂L/∂W = (∂L/∂A)ᵀ x + 2W ⊙ (∂L/∂B)ᵀ x².
    """

    @staticmethod
    def forward(ctx: Any, x: Tensor, weight: Tensor, bias: Tensor | None, mean: Tensor,
                std: Tensor, eps: Tensor) -> Tensor:
        x2, w2 = x.square(), weight.square()
        sd = F.linear(x2, w2).clamp_min_(torch.finfo(x.dtype).tiny).sqrt_()
        noise = eps.mul(std)
        out = _affine(F.linear(x, weight), mean, bias).addcmul_(sd, noise)
        ctx.save_for_backward(x, weight, x2, w2, sd, noise, mean)
        ctx.has_bias = bias is not None
        return out

    @staticmethod
    @once_differentiable
    def backward(ctx: Any, grad: Tensor) -> tuple[Tensor | None, ...]:
        x, weight, x2, w2, sd, noise, mean = ctx.saved_tensors
        floor = torch.finfo(sd.dtype).tiny ** 0.5
        grad_b = grad.mul(noise).div_(sd).mul_(0.5).masked_fill_(sd <= floor, 0)
        grad_a = grad * mean
        grad_x = grad_w = grad_bias = None
        # one fresh buffer per gradient: the W² term is scaled in place, then addmm_ adds the rest
        if ctx.needs_input_grad[0]:
            grad_x = (grad_b @ w2).mul_(x).mul_(2).addmm_(grad_a, weight)
        if ctx.needs_input_grad[1]:
            grad_w = (grad_b.t() @ x2).mul_(weight).mul_(2).addmm_(grad_a.t(), x)
        if ctx.has_bias and ctx.needs_input_grad[2]:
            grad_bias = grad.sum(0)
        return grad_x, grad_w, grad_bias, None, None, None


def _affine(t: Tensor, scale: Tensor, bias: Tensor | None) -> Tensor:
    """t·scale (+ bias), in place on the fresh tensor t."""
    t.mul_(scale)
    return t if bias is None else t.add_(bias)
