"""The fused path's CPU kernel: the Triton kernel of :mod:`dropprior.functional._noise_kernels`,
compiled for the CPU by Numba.

It draws the same ξ as the CUDA kernel from the same seed: Philox-4x32-10, the same counters, the
same element ↔ word layout (program ``p``, lane ``l``: counter ``p·LANES + l`` serves elements
``p·4·LANES + j·LANES + l``, j = 0..3), the same transforms. Only the transcendental functions
differ: here they are polynomial, so that LLVM vectorises the loop over lanes (torch's CPU
generator costs ~3.5 ns per normal and is serial; a Philox word here costs ~0.5 ns):

* ``log`` — Cephes ``logf``: frexp by bit manipulation, a degree-9 polynomial on
  [√½ − 1, √2 − 1], the exponent's ln 2 in two parts (relative error ≲ 2⁻²³ on normal numbers);
* ``exp`` — Cephes ``expf`` (log-normal noise and the gamma boost; relative error ≲ 2⁻²³);
* ``cos``/``sin`` — Cephes ``sinf``/``cosf``: octant reduction with π/4 in three parts, the
  degree-3 polynomials on [−π/4, π/4] (absolute error ≲ 2⁻²³ on the [0, 2π) of Box–Muller; sin
  keeps its relative accuracy near 0, which half-Cauchy's tail needs).

So the draws agree with the Triton kernel's accurate (interpreter) mode to float32 rounding,
except where a rounding flips a Marsaglia–Tsang accept decision (tested).

The gamma-based laws run per program of 4·LANES elements: the gamma draws into a buffer, then ξ
and the product. An exact sum (a half-integer shape ≤ 8) is vectorised loops over the lanes.
Rejection sampling (any other shape) is a vectorised loop for every element's first attempt,
then rounds over the elements still pending (~2–5%) from attempt 1 on, each round a vectorised
attempt over a compacted list of them; each element's value is its first accepted attempt, as
in the Triton kernel's per-lane loop, so the split changes no number.

A kernel is compiled on the first use of its law and gamma shape class and cached on disk by
Numba (``__pycache__`` next to this file, or ``NUMBA_CACHE_DIR``): later processes load it
instead of compiling it. Each kernel closes over plain numbers only (the law, the gamma
shapes, the lane count), which is what makes it cacheable, and chooses its law's code by branches
on those constants, which Numba prunes before compiling.

The kernels release the GIL. :func:`run_programs` splits a large pass into contiguous ranges of
programs over the threads torch uses (``torch.get_num_threads()``), as torch's own elementwise
kernels do; a program's draws depend only on its index, so the split changes no number.
"""

# numba code: numpy scalar types where mypy expects Python floats
# mypy: disable-error-code="assignment,return-value,var-annotated,arg-type,call-arg"
from __future__ import annotations

import math
import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from functools import cache
from typing import Any, TypeVar

import numba
import numpy as np
from numba import types
from numba.extending import intrinsic

from dropprior.functional._plans import LawId

__all__ = ["kernel", "block_kernel", "run_programs"]

# the law ids of the Triton kernel, as plain ints (Numba folds them into constants)
_LAW_BERNOULLI, _LAW_UNIFORM = int(LawId.BERNOULLI), int(LawId.UNIFORM)
_LAW_GAUSSIAN, _LAW_LOG_NORMAL = int(LawId.GAUSSIAN), int(LawId.LOG_NORMAL)
_LAW_RAYLEIGH, _LAW_HALF_CAUCHY = int(LawId.RAYLEIGH), int(LawId.HALF_CAUCHY)
_LAW_INVERSE_NAKAGAMI, _LAW_BETA = int(LawId.INVERSE_NAKAGAMI), int(LawId.BETA)
_LAW_BETA_TWO_TWO = int(LawId.BETA_TWO_TWO)

_f32 = np.float32
_u32 = np.uint32
_u64 = np.uint64
_ROUND_A, _ROUND_B = _u64(0xD2511F53), _u64(0xCD9E8D57)
_KEY_A, _KEY_B = _u32(0x9E3779B9), _u32(0xBB67AE85)
_LOW = _u64(0xFFFFFFFF)
_SHIFT = _u64(32)
_SCALE = _f32(4.6566127342e-10)  # Triton's uint_to_uniform_float for 32-bit words
_TWO_PI = _f32(6.283185307179586)
_HALF_PI = _f32(1.5707963267948966)
_SIXTH_PI = _f32(0.5235987755982988)
_LN2_HI, _LN2_LO = _f32(0.693359375), _f32(-2.12194440e-4)
_SQRT_HALF = _f32(0.707106781186547524)
_LOG2E = _f32(1.44269504088896341)
_FOUR_OVER_PI = _f32(1.27323954473516)
_DP1, _DP2, _DP3 = _f32(0.78515625), _f32(2.4187564849853515625e-4), _f32(3.77489497744594108e-8)
_F = TypeVar("_F", bound=Callable[..., Any])


def _jit(inline: bool = False, cache: bool = False) -> Callable[[_F], _F]:
    """``numba.njit`` with the kernels' options; ``inline``: inline at Numba's IR level (what lets
    LLVM vectorise the lane loop: a call to another compiled function would block it); ``cache``:
    keep the machine code on disk (Numba's cache, next to this file or in ``NUMBA_CACHE_DIR``)."""
    return numba.njit(inline="always" if inline else "never", nogil=True,  # type: ignore
                      fastmath={"contract", "arcp", "nsz"}, error_model="numpy", cache=cache)


def _bitcast(source: Any, target: Any) -> Any:
    """A Numba intrinsic reinterpreting a ``source`` scalar's bits as ``target`` (an LLVM bitcast:
    it vectorises, unlike a view of memory)."""

    @intrinsic
    def cast(typingctx: Any, x: Any) -> Any:
        if x != source:
            return None

        def codegen(context: Any, builder: Any, signature: Any, args: Any) -> Any:
            return builder.bitcast(args[0], context.get_value_type(target))

        return target(source), codegen

    return cast


_bits = _bitcast(types.float32, types.int32)  # the IEEE bits of a float32
_from_bits = _bitcast(types.int32, types.float32)  # the float32 with these bits


@_jit(inline=True)
def _philox(c0: int, c1: int, c2: int, c3: int, k0: int, k1: int) -> tuple[int, int, int, int]:
    """Philox-4x32-10, as ``tl.philox`` (Salmon et al., 2011)."""
    for _ in range(10):
        p0 = _u64(c0) * _ROUND_A
        p1 = _u64(c2) * _ROUND_B
        c0, c1, c2, c3 = (_u32(p1 >> _SHIFT) ^ c1 ^ k0, _u32(p1 & _LOW),
                          _u32(p0 >> _SHIFT) ^ c3 ^ k1, _u32(p0 & _LOW))
        k0 = _u32(k0 + _KEY_A)
        k1 = _u32(k1 + _KEY_B)
    return c0, c1, c2, c3


@_jit(inline=True)
def _uniform(word: int) -> float:
    """U in [0, 1), as ``tl.uint_to_uniform_float``."""
    signed = np.int32(word)
    signed = np.int32(~signed) if signed < 0 else signed
    return _f32(signed) * _SCALE


@_jit(inline=True)
def _open_uniform(word: int) -> float:
    return _f32(1.0) - _uniform(word)


@_jit(inline=True)
def _log(x: float) -> float:
    """log x for a positive normal float32 (Cephes logf)."""
    bits = _bits(x)
    e = (bits >> 23) - 127
    m = _from_bits(np.int32((bits & 0x007FFFFF) | 0x3F800000))  # in [1, 2)
    big = m > _f32(2.0) * _SQRT_HALF
    f = (m * _f32(0.5) if big else m) - _f32(1.0)
    e_f = _f32(e + 1 if big else e)
    z = f * f
    p = _f32(7.0376836292e-2)
    p = p * f - _f32(1.1514610310e-1)
    p = p * f + _f32(1.1676998740e-1)
    p = p * f - _f32(1.2420140846e-1)
    p = p * f + _f32(1.4249322787e-1)
    p = p * f - _f32(1.6668057665e-1)
    p = p * f + _f32(2.0000714765e-1)
    p = p * f - _f32(2.4999993993e-1)
    p = p * f + _f32(3.3333331174e-1)
    y = p * f * z + e_f * _LN2_LO - _f32(0.5) * z
    return f + y + e_f * _LN2_HI


@_jit(inline=True)
def _exp(x: float) -> float:
    """exp x for float32 (Cephes expf): x = n·ln 2 + r, |r| ≤ ½ ln 2, a degree-6 polynomial for
    e^r, and 2ⁿ applied as two powers of two so that results down to 2⁻¹⁴⁹ and up to overflow
    come out as IEEE does (0 below, inf above)."""
    x = min(max(x, _f32(-104.0)), _f32(89.0))
    n = np.int32(math.floor(x * _LOG2E + _f32(0.5)))
    r = x - _f32(n) * _LN2_HI - _f32(n) * _LN2_LO
    p = _f32(1.9875691500e-4)
    p = p * r + _f32(1.3981999507e-3)
    p = p * r + _f32(8.3334519073e-3)
    p = p * r + _f32(4.1665795894e-2)
    p = p * r + _f32(1.6666665459e-1)
    p = p * r + _f32(5.0000001201e-1)
    y = p * r * r + r + _f32(1.0)
    half = n >> 1  # n = half + (n − half), each a normal power of two for |n| ≤ 252
    y = y * _from_bits(np.int32((half + 127) << 23))
    return y * _from_bits(np.int32((n - half + 127) << 23))


@_jit(inline=True)
def _cos_sin(angle: float) -> tuple[float, float]:
    """(cos, sin) of an angle in [0, 2π) (Cephes cosf/sinf)."""
    j = np.int32(angle * _FOUR_OVER_PI)
    j = j + (j & 1)
    y = _f32(j)
    j = j & 7
    r = ((angle - y * _DP1) - y * _DP2) - y * _DP3  # in [−π/4, π/4]
    z = r * r
    s = ((_f32(-1.9515295891e-4) * z + _f32(8.3321608736e-3)) * z - _f32(1.6666654611e-1)) \
        * z * r + r
    c = ((_f32(2.443315711809948e-5) * z - _f32(1.388731625493765e-3)) * z
         + _f32(4.166664568298827e-2)) * z * z - _f32(0.5) * z + _f32(1.0)
    swap = (j & 2) != 0  # octants 2, 3, 6, 7: sin and cos exchange roles
    sin_r = c if swap else s
    cos_r = s if swap else c
    sin_sign = _f32(-1.0) if j > 3 else _f32(1.0)
    cos_sign = _f32(-1.0) if (j == 2 or j == 4) else _f32(1.0)
    return cos_sign * cos_r, sin_sign * sin_r


@_jit(inline=True)
def _box_muller(word_a: int, word_b: int) -> tuple[float, float]:
    radius = math.sqrt(_f32(-2.0) * _log(_open_uniform(word_a)))
    c, s = _cos_sin(_uniform(word_b) * _TWO_PI)
    return _f32(radius * c), _f32(radius * s)


@_jit(inline=True)
def _half_chi2(k0: int, k1: int, counter: int, stream: int) -> tuple[float, float, float, float]:
    """Half a χ²₁ (Gamma(½)) for the four elements of a lane: Z²/2, Z by Box–Muller."""
    w0, w1, w2, w3 = _philox(counter, _u32(0), stream, _u32(3), k0, k1)
    z0, z1 = _box_muller(w0, w1)
    z2, z3 = _box_muller(w2, w3)
    return _f32(0.5) * z0 * z0, _f32(0.5) * z1 * z1, _f32(0.5) * z2 * z2, _f32(0.5) * z3 * z3


@_jit(inline=True)
def _accept(z: float, word: int, d: float, c: float) -> tuple[bool, float]:
    """One Marsaglia–Tsang step, branch-free: (accepted, d·(1 + cz)³)."""
    t = _f32(1.0) + c * z
    v = t * t * t
    positive = t > _f32(0.0)
    log_v = _log(v if positive else _f32(1.0))  # v ≤ 0 is rejected: no log of it is taken
    bound = _f32(0.5) * z * z + d - d * v + d * log_v
    return positive & (_log(_open_uniform(word)) < bound), d * v


@_jit(inline=True)
def _first_attempt(k0: int, k1: int, counter: int, stream: int, d: float, c: float
                   ) -> tuple[float, float, float, float, int]:
    """Marsaglia–Tsang's attempt 0 for the four elements of a lane (elements 0, 1 from the pair
    stream 2s, elements 2, 3 from 2s + 1, as the Triton kernel's ``_rejection_pair``): the four
    proposals and a bit per element still pending."""
    w0, w1, w2, w3 = _philox(counter, _u32(0), _u32(2 * stream), _u32(0), k0, k1)
    z0, z1 = _box_muller(w0, w1)
    ok0, g0 = _accept(z0, w2, d, c)
    ok1, g1 = _accept(z1, w3, d, c)
    w0, w1, w2, w3 = _philox(counter, _u32(0), _u32(2 * stream + 1), _u32(0), k0, k1)
    z2, z3 = _box_muller(w0, w1)
    ok2, g2 = _accept(z2, w2, d, c)
    ok3, g3 = _accept(z3, w3, d, c)
    pending = (0 if ok0 else 1) | (0 if ok1 else 2) | (0 if ok2 else 4) | (0 if ok3 else 8)
    return g0, g1, g2, g3, pending


@_jit(inline=True)
def _attempt(k0: int, k1: int, counter: int, pair: int, attempt: int, odd: bool, d: float,
             c: float) -> tuple[bool, float]:
    """Attempt ``attempt`` of element 2·(pair − 2s) + odd of a lane: word ``odd`` of the pair
    stream's Box–Muller pair, as the Triton kernel's loop draws it."""
    w0, w1, w2, w3 = _philox(counter, _u32(attempt), _u32(pair), _u32(0), k0, k1)
    z_a, z_b = _box_muller(w0, w1)
    return _accept(z_b if odd else z_a, w3 if odd else w2, d, c)


@_jit(inline=True)
def _exponentials(k0: int, k1: int, counter: int, stream: int, count: int
                  ) -> tuple[float, float, float, float]:
    """The sum of ``count`` (≤ 2) exponentials for the four elements of a lane, as the Triton
    kernel's ``_gamma4`` forms it: −log of the product of the uniforms."""
    q0 = q1 = q2 = q3 = _f32(1.0)
    for i in range(count):
        w0, w1, w2, w3 = _philox(counter, _u32(i), stream, _u32(2), k0, k1)
        q0 *= _open_uniform(w0)
        q1 *= _open_uniform(w1)
        q2 *= _open_uniform(w2)
        q3 *= _open_uniform(w3)
    return -_log(q0), -_log(q1), -_log(q2), -_log(q3)


@_jit(inline=True)
def _exact_stage(g: np.ndarray, q: np.ndarray, k0: int, k1: int, first: int, stream: int,
                 lanes: int, count: int, half: bool) -> None:
    """Gamma(count + ½·half) of one program's 4·LANES elements into g (element j·LANES + lane),
    stream s: the exact sum of ``count`` exponentials, as the Triton kernel's ``_gamma4`` forms
    it (one logarithm per 4 uniform factors, ≥ 2⁻⁹⁶: no underflow), plus Z²/2 for the half.

    Up to two factors, one loop over the lanes does it all (LLVM unrolls the factors and
    vectorises the lanes). Beyond two it does not unroll them, and that loop runs scalar, so
    there factor i of every lane is a loop over the lanes of its own, with the running products
    in ``q`` (4·LANES floats). Both give the same numbers."""
    s = _u32(stream)
    if count <= 2:  # count is a compile-time constant: Numba keeps one branch
        for lane in range(lanes):
            counter = _u32(first + lane)
            g0, g1, g2, g3 = _exponentials(k0, k1, counter, s, count)
            if half:
                h0, h1, h2, h3 = _half_chi2(k0, k1, counter, s)
                g0, g1, g2, g3 = g0 + h0, g1 + h1, g2 + h2, g3 + h3
            g[lane], g[lane + lanes], g[lane + 2 * lanes], g[lane + 3 * lanes] = g0, g1, g2, g3
        return
    block = 4 * lanes
    for j in range(block):
        g[j] = _f32(0.0)
        q[j] = _f32(1.0)
    for i in range(count):
        for lane in range(lanes):
            w0, w1, w2, w3 = _philox(_u32(first + lane), _u32(i), s, _u32(2), k0, k1)
            q[lane] *= _open_uniform(w0)
            q[lane + lanes] *= _open_uniform(w1)
            q[lane + 2 * lanes] *= _open_uniform(w2)
            q[lane + 3 * lanes] *= _open_uniform(w3)
        if i % 4 == 3 or i == count - 1:
            for j in range(block):
                g[j] -= _log(q[j])
                q[j] = _f32(1.0)
    if half:
        for lane in range(lanes):
            h0, h1, h2, h3 = _half_chi2(k0, k1, _u32(first + lane), s)
            g[lane] += h0
            g[lane + lanes] += h1
            g[lane + 2 * lanes] += h2
            g[lane + 3 * lanes] += h3


@_jit(inline=True)
def _rejection_stage(g: np.ndarray, k0: int, k1: int, first: int, stream: int, d: float,
                     c: float, pending: np.ndarray, todo: np.ndarray, rows: np.ndarray,
                     values: np.ndarray, accepted: np.ndarray) -> None:
    """Gamma(α) of one program's elements by Marsaglia–Tsang: a vectorised first attempt for
    every element, then rounds over the few (~2–5%) still pending, each round one vectorised
    attempt for every element on the list (lane ``todo[i]``, element ``rows[i]`` of the lane), the
    list then compacted to the ones rejected again. Each element keeps its first accepted attempt:
    the same values as the Triton kernel's per-lane loop. (Marsaglia–Tsang's squeeze, which spares
    the logarithms for ~92% of proposals, made this slower here: the ~8% it leaves undecided cost
    a full attempt each in the rounds, ~5 ns per element against ~2.3 in the first attempt.)"""
    lanes = pending.size
    for lane in range(lanes):
        (g[lane], g[lane + lanes], g[lane + 2 * lanes], g[lane + 3 * lanes],
         pending[lane]) = _first_attempt(k0, k1, _u32(first + lane), stream, d, c)
    left = 0
    for lane in range(lanes):
        bits = pending[lane]
        if bits:
            for j in range(4):
                if bits & (1 << j):
                    todo[left] = lane
                    rows[left] = j
                    left += 1
    attempt = 1
    while left:
        for i in range(left):  # vectorised: attempt ``attempt`` of every pending element
            j = rows[i]
            accepted[i], values[i] = _attempt(k0, k1, _u32(first + todo[i]),
                                              2 * stream + (j >> 1), attempt, (j & 1) == 1, d, c)
        kept = 0
        for i in range(left):
            if accepted[i]:
                g[rows[i] * lanes + todo[i]] = values[i]
            else:
                todo[kept], rows[kept] = todo[i], rows[i]
                kept += 1
        left = kept
        attempt += 1


@_jit(inline=True)
def _words(k0: int, k1: int, counter: int) -> tuple[int, int, int, int]:
    return _philox(counter, _u32(0), _u32(0), _u32(0), k0, k1)


@_jit(inline=True)
def _bernoulli(word: int, keep: float, value: float) -> float:
    return value if _uniform(word) < keep else _f32(0.0)


@_jit(inline=True)
def _uniform_law(word: int, low: float, width: float) -> float:
    return low + width * _uniform(word)


@_jit(inline=True)
def _rayleigh(word: int, minus_two_s2: float, unused: float) -> float:
    return math.sqrt(minus_two_s2 * _log(_open_uniform(word)))


@_jit(inline=True)
def _half_cauchy(word: int, scale: float, unused: float) -> float:
    c, s = _cos_sin(_open_uniform(word) * _HALF_PI)  # s·|cot(πV/2)|
    return scale * abs(c / s)


@_jit(inline=True)
def _beta_two_two(word: int, unused_a: float, unused_b: float) -> float:
    """Beta(2, 2) by its inverse CDF, ξ = ½ + sin(arcsin(2U − 1)/3), as the Triton kernel
    computes it (Cephes' arcsine, sine and cosine polynomials; no cancellation as ξ → 0)."""
    u = _uniform(word)
    m = u if u < _f32(0.5) else _f32(1.0) - u
    big = m < _f32(0.25)
    a = _f32(1.0) - _f32(2.0) * m
    z = m if big else a * a
    r = _f32(math.sqrt(z)) if big else a
    p = (((_f32(4.2163199048e-2) * z + _f32(2.4181311049e-2)) * z + _f32(4.5470025998e-2)) * z
         + _f32(7.4953002686e-2)) * z + _f32(1.6666752422e-1)
    theta = (p * z * r + r) * _f32(1.0 / 3.0)
    q = theta * theta
    sin = ((_f32(-1.9515295891e-4) * q + _f32(8.3321608736e-3)) * q - _f32(1.6666654611e-1)) \
        * q * theta + theta
    v = (_SIXTH_PI - theta) * (_SIXTH_PI - theta)
    cos = ((_f32(2.443315711809948e-5) * v - _f32(1.388731625493765e-3)) * v
           + _f32(4.166664568298827e-2)) * v * v - _f32(0.5) * v + _f32(1.0)
    g = _f32(2.0) * cos * sin if big else _f32(0.5) - sin
    return g if u < _f32(0.5) else _f32(1.0) - g


@_jit(inline=True)
def _normals(k0: int, k1: int, counter: int, loc: float, std: float
             ) -> tuple[float, float, float, float]:
    w0, w1, w2, w3 = _words(k0, k1, counter)
    z0, z1 = _box_muller(w0, w1)
    z2, z3 = _box_muller(w2, w3)
    return loc + std * z0, loc + std * z1, loc + std * z2, loc + std * z3


def _gamma_kernel(law: int, twice_a: int, twice_b: int, boost: bool, lanes: int,
                  draw_only: bool) -> Callable[..., None]:
    """The kernel of the gamma-based laws: per program, the gamma draws into buffers, then
    ξ = √(p3/G) (inverse Nakagami; G(m) = G(m + 1)·V^{1/m} with the boost) or G_a/(G_a + G_b)
    (Beta) and the product. It closes over plain numbers only, so Numba caches it on disk."""
    beta = law == _LAW_BETA
    block = 4 * lanes
    # plain numbers, constant in the compiled kernel: Numba prunes the branches not taken
    exact_a, count_a, half_a = twice_a > 0, twice_a // 2, twice_a % 2 == 1
    exact_b, count_b, half_b = twice_b > 0, twice_b // 2, twice_b % 2 == 1

    @_jit(cache=True)
    def run(x: np.ndarray, y: np.ndarray, k0: int, k1: int, p0: float, p1: float, p2: float,
            p3: float, offset: int) -> None:
        n = x.size
        k0, k1 = _u32(k0), _u32(k1)
        p0, p1, p2, p3 = _f32(p0), _f32(p1), _f32(p2), _f32(p3)
        g_a = np.empty(block, np.float32)
        g_b = np.empty(block, np.float32)
        pending = np.zeros(lanes, np.int32)
        todo = np.empty(block, np.int32)  # the rejection stage's pending elements: lanes
        rows = np.empty(block, np.int32)  # and rows
        values = np.empty(block, np.float32)
        accepted = np.empty(block, np.bool_)
        q = np.empty(block, np.float32)  # the exact stage's running products
        for p in range(0, (n + block - 1) // block):
            base = p * block
            first = (p + offset) * lanes  # the offset enters the counters only
            if exact_a:
                _exact_stage(g_a, q, k0, k1, first, 0, lanes, count_a, half_a)
            else:
                _rejection_stage(g_a, k0, k1, first, 0, p0, p1, pending, todo, rows,
                                 values, accepted)
            count = min(block, n - base)
            if beta:
                if exact_b:
                    _exact_stage(g_b, q, k0, k1, first, 1, lanes, count_b, half_b)
                else:
                    _rejection_stage(g_b, k0, k1, first, 1, p2, p3, pending, todo, rows,
                                     values, accepted)
                for i in range(count):
                    xi = g_a[i] / (g_a[i] + g_b[i])
                    y[base + i] = xi if draw_only else x[base + i] * xi
            else:
                if boost:  # element j of a lane: word j % 2 of pair stream j // 2's call
                    for lane in range(lanes):
                        counter = _u32(first + lane)
                        v0, v1, _, _ = _philox(counter, _u32(0), _u32(0), _u32(1), k0, k1)
                        v2, v3, _, _ = _philox(counter, _u32(0), _u32(1), _u32(1), k0, k1)
                        g_a[lane] *= _exp(_log(_open_uniform(v0)) * p2)
                        g_a[lane + lanes] *= _exp(_log(_open_uniform(v1)) * p2)
                        g_a[lane + 2 * lanes] *= _exp(_log(_open_uniform(v2)) * p2)
                        g_a[lane + 3 * lanes] *= _exp(_log(_open_uniform(v3)) * p2)
                for i in range(count):
                    xi = math.sqrt(p3 / g_a[i])
                    y[base + i] = xi if draw_only else x[base + i] * xi

    return run  # type: ignore[no-any-return]


@cache
def kernel(law: int, twice_a: int, twice_b: int, boost: bool, lanes: int,
           draw_only: bool = False) -> Callable[..., None]:
    """``run(x, y, k0, k1, p0, p1, p2, p3, offset)``: y = x ⊙ ξ over flat float32 arrays, ξ drawn
    from the Philox key (k0, k1) as the Triton kernel with ``LANES = lanes`` draws it for the
    elements from program ``offset`` on (x and y: a slice of the whole, starting at element
    ``4·lanes·offset``). With ``draw_only``: y = ξ, and x is not read (pass y as x)."""
    if law in (_LAW_INVERSE_NAKAGAMI, _LAW_BETA):
        return _gamma_kernel(law, twice_a, twice_b, boost, lanes, draw_only)
    block = 4 * lanes

    # constant in the compiled kernel: Numba prunes the laws not taken (and, closing over plain
    # numbers only, caches the kernel on disk)
    bernoulli, uniform, rayleigh = law == _LAW_BERNOULLI, law == _LAW_UNIFORM, law == _LAW_RAYLEIGH
    beta_two_two = law == _LAW_BETA_TWO_TWO
    normal, log_normal = law in (_LAW_GAUSSIAN, _LAW_LOG_NORMAL), law == _LAW_LOG_NORMAL

    @_jit(cache=True)
    def run(x: np.ndarray, y: np.ndarray, k0: int, k1: int, p0: float, p1: float, p2: float,
            p3: float, offset: int) -> None:
        n = x.size
        k0, k1 = _u32(k0), _u32(k1)
        p0, p1 = _f32(p0), _f32(p1)
        xi = np.empty(block, np.float32)
        for p in range(0, (n + block - 1) // block):
            base = p * block
            first = (p + offset) * lanes  # the offset enters the counters only
            for lane in range(lanes):  # ξ of the program's elements: vectorised
                counter = _u32(first + lane)
                if normal:
                    xi0, xi1, xi2, xi3 = _normals(k0, k1, counter, p0, p1)
                    if log_normal:
                        xi0, xi1, xi2, xi3 = _exp(xi0), _exp(xi1), _exp(xi2), _exp(xi3)
                else:
                    if bernoulli:
                        f = _bernoulli
                    elif uniform:
                        f = _uniform_law
                    elif rayleigh:
                        f = _rayleigh
                    elif beta_two_two:
                        f = _beta_two_two
                    else:
                        f = _half_cauchy
                    w0, w1, w2, w3 = _words(k0, k1, counter)
                    xi0, xi1, xi2, xi3 = f(w0, p0, p1), f(w1, p0, p1), f(w2, p0, p1), \
                        f(w3, p0, p1)
                xi[lane], xi[lane + lanes], xi[lane + 2 * lanes], xi[lane + 3 * lanes] = \
                    xi0, xi1, xi2, xi3
            for i in range(min(block, n - base)):
                y[base + i] = xi[i] if draw_only else x[base + i] * xi[i]

    return run  # type: ignore[no-any-return]


@cache
def block_kernel(law: int, twice_a: int, twice_b: int, boost: bool, lanes: int
                 ) -> Callable[..., None]:
    """``run(y, k0, k1, p0, p1, p2, p3)``: ξ alone into every row of the 2-D float32 array y, row
    g drawn from its own Philox key (k0[g], k1[g]) exactly as :func:`kernel` with
    ``draw_only=True`` draws a whole array from one key: one call for many independent draws."""
    run = kernel(law, twice_a, twice_b, boost, lanes, True)

    @_jit()
    def run_blocks(y: np.ndarray, k0: np.ndarray, k1: np.ndarray, p0: float, p1: float,
                   p2: float, p3: float) -> None:
        for g in range(y.shape[0]):
            run(y[g], y[g], k0[g], k1[g], p0, p1, p2, p3, 0)

    return run_blocks  # type: ignore[no-any-return]


# Programs per thread below which a pass stays on the calling thread (64 programs = 65 536
# elements at 256 lanes: below that, handing work to a thread costs about what it saves; the
# timings are in docs/layers/benchmarks.md).
_MIN_PROGRAMS_PER_THREAD = 64


@cache
def _pool(pid: int, threads: int) -> ThreadPoolExecutor:
    """The worker threads of this process (``pid``: a forked child gets its own, since threads do
    not survive a fork)."""
    return ThreadPoolExecutor(threads, thread_name_prefix="dropprior-noise")


def run_programs(run: Callable[..., None], x: np.ndarray, y: np.ndarray, lanes: int,
                 threads: int, *args: Any) -> None:
    """``run(x, y, *args, offset)`` over every program of x, the programs split into ``threads``
    contiguous ranges run at once (each a slice of x and y; the calling thread takes the first);
    one range when x is small."""
    block = 4 * lanes
    programs = -(-x.size // block)
    parts = max(1, min(threads, programs // _MIN_PROGRAMS_PER_THREAD))
    if parts == 1:
        run(x, y, *args, 0)
        return
    bounds = [programs * i // parts for i in range(parts + 1)]

    def part(i: int) -> None:
        low, high = bounds[i] * block, bounds[i + 1] * block
        run(x[low:high], y[low:high], *args, bounds[i])

    pool = _pool(os.getpid(), threads - 1)
    futures = [pool.submit(part, i) for i in range(1, parts)]
    part(0)
    for future in futures:
        future.result()
