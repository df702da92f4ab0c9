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
import math
import os
from collections.abc import Callable
from enum import IntEnum
from functools import lru_cache
from typing import Any, NamedTuple

import torch
from torch import Tensor
from torch.autograd.function import once_differentiable

from dropprior.noise import (
    Bernoulli,
    Beta,
    Gaussian,
    HalfCauchy,
    InverseNakagami,
    LogNormal,
    NoiseLaw,
    Rayleigh,
    Uniform,
)

__all__ = ["fused_multiply", "fused_plan", "kernel_plan", "FusedPlan", "LawId", "triton_available"]

# Lanes per program: each lane draws four elements, so a program covers 4·LANES elements.
LANES = 256
NUM_WARPS = 4
_FUSED_DTYPES = (torch.float32, torch.float16, torch.bfloat16)
_MAX_ELEMENTS = 2**31 - 1


class LawId(IntEnum):
    """Which transform of the Philox words gives ξ (the kernel's ``LAW`` constexpr)."""

    BERNOULLI = 0
    UNIFORM = 1
    GAUSSIAN = 2
    LOG_NORMAL = 3
    RAYLEIGH = 4
    HALF_CAUCHY = 5
    INVERSE_NAKAGAMI = 6
    BETA = 7


class FusedPlan(NamedTuple):
    """A law as the kernel sees it: its id, four float parameters, and for the gamma-based laws
    2α of each gamma where α is a half-integer ≤ 8 (drawn as an exact sum; 0: by rejection) and
    whether the rejection sampler needs the boost for α < 1."""

    law: LawId
    params: tuple[float, float, float, float]
    twice_a: int = 0
    twice_b: int = 0
    boost: bool = False


# law type -> plan (None where the fused kernel does not apply to these parameter values).
_PLANS: dict[type, Callable[[Any], FusedPlan | None]] = {}


def _plan_for(law_type: type) -> Callable[[Callable[[Any], FusedPlan | None]],
                                          Callable[[Any], FusedPlan | None]]:
    def decorator(plan: Callable[[Any], FusedPlan | None]) -> Callable[[Any], FusedPlan | None]:
        _PLANS[law_type] = plan
        return plan

    return decorator


def _gamma_constants(alpha: float) -> tuple[float, float]:
    """Marsaglia–Tsang's d = α − 1/3 and c = 1/√(9d), for α ≥ 1."""
    d = alpha - 1.0 / 3.0
    return d, 1.0 / math.sqrt(9.0 * d)


def _twice_half_integer(alpha: float) -> int:
    """2α where α ∈ {½, 1, 3/2, ..., 8} (Gamma(α) is then an exact sum of α exponentials, or of
    α − ½ exponentials and half a χ²₁), else 0."""
    twice = 2.0 * alpha
    return int(twice) if twice == int(twice) and 1 <= twice <= 16 else 0


@_plan_for(Bernoulli)
def _bernoulli(law: Bernoulli) -> FusedPlan | None:
    keep = float(law.keep)
    if law.inverted and keep == 0.0:
        return None  # 0/0: left to the general path's own handling
    return FusedPlan(LawId.BERNOULLI, (keep, 1.0 / keep if law.inverted else 1.0, 0.0, 0.0))


@_plan_for(Uniform)
def _uniform(law: Uniform) -> FusedPlan:
    low = float(law.low)
    return FusedPlan(LawId.UNIFORM, (low, float(law.high) - low, 0.0, 0.0))


@_plan_for(Gaussian)
def _gaussian(law: Gaussian) -> FusedPlan:
    return FusedPlan(LawId.GAUSSIAN, (float(law.loc), float(law.std), 0.0, 0.0))


@_plan_for(LogNormal)
def _log_normal(law: LogNormal) -> FusedPlan:
    return FusedPlan(LawId.LOG_NORMAL, (float(law.loc), float(law.scale), 0.0, 0.0))


# The kernels fold the scale into one product, √(−2s² log V): s² must be a normal float32.
_RAYLEIGH_SCALES = (1e-18, 1e18)


@_plan_for(Rayleigh)
def _rayleigh(law: Rayleigh) -> FusedPlan | None:
    scale = float(law.scale)
    if not _RAYLEIGH_SCALES[0] <= scale <= _RAYLEIGH_SCALES[1]:
        return None  # s² would overflow or underflow: the general path's s·√(−2 log V)
    return FusedPlan(LawId.RAYLEIGH, (-2.0 * scale**2, 0.0, 0.0, 0.0))


@_plan_for(HalfCauchy)
def _half_cauchy(law: HalfCauchy) -> FusedPlan:
    return FusedPlan(LawId.HALF_CAUCHY, (float(law.scale), 0.0, 0.0, 0.0))


@_plan_for(InverseNakagami)
def _inverse_nakagami(law: InverseNakagami) -> FusedPlan:
    m, spread = float(law.shape), float(law.spread)
    twice = _twice_half_integer(m)
    if twice:
        return FusedPlan(LawId.INVERSE_NAKAGAMI, (0.0, 0.0, 0.0, m / spread), twice)
    boost = m < 1.0  # m ≥ 1/2: G(m) = G(m + 1)·V^{1/m}
    d, c = _gamma_constants(m + 1.0 if boost else m)
    return FusedPlan(LawId.INVERSE_NAKAGAMI, (d, c, 1.0 / m, m / spread), 0, 0, boost)


@_plan_for(Beta)
def _beta(law: Beta) -> FusedPlan | None:
    a, b = float(law.concentration1), float(law.concentration0)
    twice_a, twice_b = _twice_half_integer(a), _twice_half_integer(b)
    if (a < 1.0 and not twice_a) or (b < 1.0 and not twice_b):
        return None  # the general path's log-space form keeps tiny gamma draws from underflowing
    d_a, c_a = (0.0, 0.0) if twice_a else _gamma_constants(a)
    d_b, c_b = (0.0, 0.0) if twice_b else _gamma_constants(b)
    return FusedPlan(LawId.BETA, (d_a, c_a, d_b, c_b), twice_a, twice_b)


@lru_cache(maxsize=1)
def triton_available() -> bool:
    """Whether Triton can be imported (it ships with torch's CUDA builds)."""
    return importlib.util.find_spec("triton") is not None


def kernel_plan(law: NoiseLaw) -> FusedPlan | None:
    """The kernel's view of ``law`` whatever the device, or None for a law or parameter values
    the kernel does not draw."""
    plan = _PLANS.get(type(law))
    return None if plan is None else plan(law)


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


def _seed(device: torch.device, generator: torch.Generator | None) -> Tensor:
    """The kernel's 62-bit Philox seed, one draw from ``generator``."""
    return torch.randint(0, 2**62, (1,), dtype=torch.int64, device=device, generator=generator)
