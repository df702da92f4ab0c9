"""The fused path of :func:`~dropprior.functional.multiplicative_noise`, on CUDA and on CPU.

For noise of x's own shape (``structure="unit"`` with per-example draws: as many draws as
elements) on a CUDA tensor, a separate draw costs a full pass over memory for writing ξ, and
another for reading it. Here one Triton kernel (:mod:`dropprior.functional._noise_kernels`) draws
ξ in registers from Philox (seed, element index) and writes ``x ⊙ ξ``; backward reruns it on the
gradient with the same seed. Per element and pass it reads and writes one value of x's dtype, and
it saves one int64 seed for backward (``F.dropout`` saves a 1-byte mask and reads it back).

The seed is one ``torch.randint`` draw from the draw's generator, so ``torch.manual_seed`` and an
explicit ``generator`` pin the noise, and each data-parallel replica (its own generator, see
:mod:`dropprior.functional._rng`) draws its own. The draws are exact in distribution but are not
the same numbers as ``law.sample`` with that generator would give.

Used on CUDA for every law of Table 1 and for uniform, log-normal and Beta (a concentration below
1 must be ½; any other needs the log-space form and takes the general path), on float32, float16
and bfloat16 inputs of fewer than 2³¹ elements, when Triton is importable.

On CPU the same kernel, compiled by Numba (:mod:`dropprior.functional._cpu_kernels`), draws the
same ξ from the same seed (to float32 rounding; 16-bit inputs are computed in float32), for the
same laws and dtypes. The first use of each law compiles its kernel (0.4–9 s), which Numba
caches on disk for later processes.
Under ``TRITON_INTERPRET=1`` (the tests) CPU tensors run the Triton kernel in Triton's
interpreter instead.

Everything else (float64, other laws, learned noise parameters,
``torch.compile`` tracing) takes the general path.
"""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Sequence
from functools import lru_cache
from typing import Any

import numpy as np
import torch
from torch import Tensor
from torch.autograd.function import once_differentiable

from dropprior.functional._plans import FusedPlan, LawId, kernel_plan
from dropprior.noise import NoiseLaw

__all__ = ["fused_multiply", "fused_plan", "fused_sample_blocks", "kernel_plan", "FusedPlan",
           "LawId", "triton_available"]

# Lanes per program: each lane draws four elements, so a program covers 4·LANES elements.
LANES = 256
NUM_WARPS = 4
_FUSED_DTYPES = (torch.float32, torch.float16, torch.bfloat16)
_MAX_ELEMENTS = 2**31 - 1


@lru_cache(maxsize=1)
def triton_available() -> bool:
    """Whether Triton can be imported (it ships with torch's CUDA builds)."""
    return importlib.util.find_spec("triton") is not None


def fused_plan(law: NoiseLaw, x: Tensor) -> FusedPlan | None:
    """The kernel's view of ``law`` for noise of x's shape, or None where the fused kernel does
    not apply (law type or parameters, device, dtype, size, or Triton missing on CUDA)."""
    if x.dtype not in _FUSED_DTYPES or not 0 < x.numel() <= _MAX_ELEMENTS:
        return None
    if x.device.type == "cpu" and not _interpreting():  # the Numba kernel
        return kernel_plan(law)
    if x.device.type not in ("cuda", "cpu") or not triton_available():
        return None
    return kernel_plan(law)


def _interpreting() -> bool:
    """Whether Triton runs kernels in its CPU interpreter (TRITON_INTERPRET=1, used by tests)."""
    return os.environ.get("TRITON_INTERPRET", "0") not in ("", "0")


def launch(x: Tensor, plan: FusedPlan, seed: Tensor, lanes: int = LANES,
           num_warps: int = NUM_WARPS, fast: bool | None = None, draw_only: bool = False,
           out: Tensor | None = None) -> Tensor:
    """x ⊙ ξ(seed) by one kernel launch (no autograd). ``lanes`` sets which element gets which
    draw (forward and backward must agree); ``num_warps`` only the speed; ``fast``: approximate
    transcendental functions (default: yes, unless in Triton's interpreter, which lacks them);
    ``draw_only``: ξ alone, of x's shape (on CPU x is then not read; on CUDA ξ = 1 ⊙ ξ);
    ``out``: a contiguous tensor like x to write the result into (returned)."""
    x = x.contiguous()
    n = x.numel()
    if x.device.type == "cpu" and not _interpreting():
        from dropprior.functional._cpu_kernels import kernel, run_programs

        value = int(seed.item())
        run = kernel(int(plan.law), plan.twice_a, plan.twice_b, plan.boost, lanes, draw_only)
        y = torch.empty_like(x) if out is None else out
        result = y if y.dtype == torch.float32 else torch.empty_like(x, dtype=torch.float32)
        source = result if draw_only else x.detach().float()  # 16-bit: computed in float32
        run_programs(run, source.view(-1).numpy(), result.view(-1).numpy(), lanes,
                     torch.get_num_threads(), value & 0xFFFFFFFF, (value >> 32) & 0xFFFFFFFF,
                     *plan.params)
        return y if result is y else y.copy_(result)

    from dropprior.functional import _noise_kernels as kernels

    x = torch.ones_like(x) if draw_only else x
    y = torch.empty_like(x) if out is None else out
    grid = (-(-n // (4 * lanes)),)
    fast = not _interpreting() if fast is None else fast
    kernels.noise_product[grid](x, y, seed, n, *plan.params, LAW=int(plan.law),
                                TWICE_A=plan.twice_a, TWICE_B=plan.twice_b, BOOST=plan.boost,
                                FAST=fast, LANES=lanes, num_warps=num_warps)
    return y


class _FusedNoise(torch.autograd.Function):
    """y = x ⊙ ξ(seed); backward g ⊙ ξ(seed), the same ξ regenerated from the saved seed."""

    @staticmethod
    def forward(ctx: Any, x: Tensor, plan: FusedPlan, seed: Tensor) -> Tensor:
        ctx.plan = plan
        ctx.save_for_backward(seed)
        return launch(x, plan, seed)

    @staticmethod
    @once_differentiable
    def backward(ctx: Any, grad: Tensor) -> tuple[Tensor, None, None]:
        (seed,) = ctx.saved_tensors
        return launch(grad, ctx.plan, seed), None, None


def fused_multiply(x: Tensor, plan: FusedPlan, generator: torch.Generator | None) -> Tensor:
    """x ⊙ ξ with ξ of x's shape drawn inside one kernel per pass, seeded from ``generator``.

    Shape:
        x: any shape, of fewer than 2³¹ elements; output: as x.
    """
    return _FusedNoise.apply(x, plan, _seed(x.device, generator))


def fused_sample(out: Tensor, plan: FusedPlan, generator: torch.Generator | None) -> Tensor:
    """ξ alone, written into the contiguous tensor ``out`` (its values are not read) and
    returned, drawn by the fused kernel (no autograd), seeded from ``generator``: the kernel's
    Philox stream, not the generator's own. The same ξ as :func:`fused_multiply` multiplies by
    from the same seed."""
    return launch(out, plan, _seed(out.device, generator), draw_only=True, out=out)


def fused_sample_blocks(out: Tensor, plan: FusedPlan,
                        generators: Sequence[torch.Generator | None]) -> Tensor:
    """ξ alone into ``out`` (G, ...), block g drawn with its own seed from ``generators[g]``:
    block g equals ``fused_sample(out[g], plan, generators[g])`` (the same seed draw, the same
    Philox stream), but on CPU all G blocks are drawn by one kernel call.

    Shape:
        out: (G, ...), contiguous, G = len(generators).
    """
    if out.shape[0] != len(generators) or not out.is_contiguous():
        raise ValueError(f"out must be contiguous with one block per generator "
                         f"({len(generators)}), got shape {tuple(out.shape)}")
    # One seed per block, each drawn as _seed draws it (randint is empty(...).random_(...)),
    # into one buffer read back once.
    words = torch.empty(len(generators), dtype=torch.int64, device=out.device)
    for slot, g in zip(words.split(1), generators, strict=True):
        slot.random_(0, 2**62, generator=g)
    if out.device.type != "cpu" or _interpreting() or out.dtype != torch.float32:
        for block, seed in zip(out, words.split(1), strict=True):
            launch(block, plan, seed, draw_only=True, out=block)
        return out
    from dropprior.functional._cpu_kernels import block_kernel

    run = block_kernel(int(plan.law), plan.twice_a, plan.twice_b, plan.boost, LANES)
    seeds = words.numpy()
    run(out.view(out.shape[0], -1).numpy(), (seeds & 0xFFFFFFFF).astype(np.uint32),
        ((seeds >> 32) & 0xFFFFFFFF).astype(np.uint32), *plan.params)
    return out


def _seed(device: torch.device, generator: torch.Generator | None) -> Tensor:
    """The kernel's 62-bit Philox seed, one draw from ``generator``."""
    return torch.randint(0, 2**62, (1,), dtype=torch.int64, device=device, generator=generator)
