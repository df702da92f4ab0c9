"""Triton kernels of the fused multiplicative-noise path (see :mod:`dropprior.functional._fused`).

One kernel, ``noise_product``, computes ``y = x ⊙ ξ`` for noise of x's own shape, drawing ξ in
registers: nothing but ``x`` is read and nothing but ``y`` is written. Backward runs the same
kernel on the incoming gradient with the same seed, so ξ is regenerated, never stored.

Randomness. Philox-4x32-10 keyed by the int64 seed; program ``p`` owns ``LANES`` counters
``c0 = p·LANES + lane`` and the ``4·LANES`` elements ``p·4·LANES + j·LANES + lane`` (j = 0..3,
each a contiguous run, so loads coalesce). One Philox call gives four 32-bit words, used by the
four elements of a lane:

* uniform-based laws (Bernoulli, uniform, Rayleigh, half-Cauchy, and Beta(2, 2) by its inverse
  CDF ξ = ½ + sin(arcsin(2U − 1)/3), the root in [0, 1] of 3ξ² − 2ξ³ = U): one word per element;
* normal-based laws (Gaussian, log-normal): Box–Muller on word pairs, two normals per pair;
* gamma-based laws (inverse Nakagami, Beta), Gamma(α) of gamma stream ``s``:

  - α = k or k + ½ with k ≤ 8 (inverse Nakagami's m = 2, Beta(2, 3), ...): the exact sum
    ``G = −log(V₁⋯V_k) + Z²/2`` (k exponentials, plus half a χ²₁), word i of element j from the
    counter ``(c0, i, s, 2)``, the normal from ``(c0, 0, s, 3)``; one logarithm per 4 factors;
  - any other α: Marsaglia–Tsang, one normal and one uniform per element and attempt, attempt
    ``k`` from the counter ``(c0, k, 2s + h, 0)`` (h: which half of the lane's elements); the
    boost ``G(α) = G(α+1)·V^{1/α}`` for α < 1 takes its uniform from ``(c0, 0, 2s + h, 1)``.
    Rejection is exact (a lane loops until it accepts).

Every element's value depends only on the seed and its index, so a replay in backward gives the
same ξ bit for bit, whatever the launch's warp count.

A uniform ``U = uint_to_uniform_float(word)`` lies in [0, 1); ``V = 1 − U`` in (0, 1] is used
wherever a logarithm is taken. A Box–Muller normal is therefore bounded by √(−2 log 2⁻²⁴) ≈ 5.8
in absolute value (probability beyond it: 7·10⁻⁹), as with torch's own CUDA ``normal_``.

With ``FAST`` (the default on a GPU) the logarithms, sines and cosines of the samplers are the
hardware approximations (``lg2.approx``, ``sin.approx``, ``cos.approx``: absolute error of about
2⁻²⁰ or less on the ranges used here), far below any Monte Carlo error. Half-Cauchy's tail
ξ = s·cot(a), a → 0, needs sin(a) to relative accuracy: below a = 1/16 it is the series
a − a³/6 + a⁵/120 − a⁷/5040 (error < 10⁻¹⁴ relative), above it ``sin.approx`` (relative error
< 10⁻⁵). Triton's CPU interpreter, which the tests run, has no approximate functions, so it
runs with ``FAST=False`` (the accurate functions); the tests on a GPU run ``FAST=True``.
"""

from __future__ import annotations

import triton
import triton.language as tl
from triton.language.extra import libdevice

from dropprior.functional._plans import LawId

# Globals read inside a kernel must be constexpr. The parameters p0..p3 of each law:
BERNOULLI = tl.constexpr(int(LawId.BERNOULLI))  # keep probability π, value of a kept draw
UNIFORM = tl.constexpr(int(LawId.UNIFORM))  # low, high − low
GAUSSIAN = tl.constexpr(int(LawId.GAUSSIAN))  # mean, standard deviation
LOG_NORMAL = tl.constexpr(int(LawId.LOG_NORMAL))  # μ, σ of log ξ
RAYLEIGH = tl.constexpr(int(LawId.RAYLEIGH))  # −2s²: ξ = √(p0 · log V)
HALF_CAUCHY = tl.constexpr(int(LawId.HALF_CAUCHY))  # s: ξ = s·|cot(πV/2)|
# d, c of Gamma(α) (α = m, or m + 1 with the boost), 1/m, m/Ω: ξ = √(p3 / G)
INVERSE_NAKAGAMI = tl.constexpr(int(LawId.INVERSE_NAKAGAMI))
BETA = tl.constexpr(int(LawId.BETA))  # d, c of Gamma(a); d, c of Gamma(b): ξ = G_a / (G_a + G_b)
BETA_TWO_TWO = tl.constexpr(int(LawId.BETA_TWO_TWO))  # no parameters

TWO_PI = tl.constexpr(6.283185307179586)
HALF_PI = tl.constexpr(1.5707963267948966)
SIXTH_PI = tl.constexpr(0.5235987755982988)


@triton.jit
def _log(x, FAST: tl.constexpr):
    if FAST:
        y = libdevice.fast_logf(x)
    else:
        y = tl.log(x)
    return y


@triton.jit
def _cos_sin(angle, FAST: tl.constexpr):
    if FAST:
        c = libdevice.fast_cosf(angle)
        s = libdevice.fast_sinf(angle)
    else:
        c = tl.cos(angle)
        s = tl.sin(angle)
    return c, s


@triton.jit
def _open_uniform(word):
    """V in (0, 1] from one Philox word."""
    return 1.0 - tl.uint_to_uniform_float(word)


@triton.jit
def _box_muller(word_a, word_b, FAST: tl.constexpr):
    """Two independent standard normals from two Philox words."""
    radius = tl.sqrt(-2.0 * _log(_open_uniform(word_a), FAST))
    c, s = _cos_sin(tl.uint_to_uniform_float(word_b) * TWO_PI, FAST)
    return radius * c, radius * s


@triton.jit
def _accept(z, word, d, c, value, pending, FAST: tl.constexpr):
    """One Marsaglia–Tsang step: d·(1 + c z)³ is kept where accepted and still pending."""
    t = 1.0 + c * z
    v = t * t * t
    log_v = _log(tl.where(t > 0.0, v, 1.0), FAST)  # v ≤ 0 is rejected: no log of it is taken
    ok = (t > 0.0) & (_log(_open_uniform(word), FAST) < 0.5 * z * z + d - d * v + d * log_v)
    take = ok & (pending != 0)
    return tl.where(take, d * v, value), tl.where(ok, 0, pending)


@triton.jit
def _rejection_pair(seed, counter, stream, d, c, inv_alpha, BOOST: tl.constexpr,
                    FAST: tl.constexpr):
    """Two Gamma(α) draws per lane by Marsaglia–Tsang (α = d + 1/3, or 1/inv_alpha with the
    boost)."""
    zero = counter * 0
    streams = zero + stream
    value_a = zero.to(tl.float32)
    value_b = zero.to(tl.float32)
    pending_a = zero.to(tl.int32) + 1
    pending_b = zero.to(tl.int32) + 1
    attempt = zero
    while tl.max(pending_a + pending_b, axis=0) > 0:
        w0, w1, w2, w3 = tl.philox(seed, counter, attempt, streams, zero)
        z_a, z_b = _box_muller(w0, w1, FAST)
        value_a, pending_a = _accept(z_a, w2, d, c, value_a, pending_a, FAST)
        value_b, pending_b = _accept(z_b, w3, d, c, value_b, pending_b, FAST)
        attempt = attempt + 1
    if BOOST:
        b0, b1, b2, b3 = tl.philox(seed, counter, zero, streams, zero + 1)
        value_a = value_a * tl.exp(_log(_open_uniform(b0), FAST) * inv_alpha)
        value_b = value_b * tl.exp(_log(_open_uniform(b1), FAST) * inv_alpha)
    return value_a, value_b


@triton.jit
def _gamma4(seed, counter, stream, d, c, inv_alpha, TWICE: tl.constexpr, BOOST: tl.constexpr,
            FAST: tl.constexpr):
    """Gamma(α) for the four elements of a lane: the exact sum for α = TWICE/2 (TWICE > 0),
    Marsaglia–Tsang otherwise."""
    if TWICE > 0:
        zero = counter * 0
        streams = zero + stream
        g0 = zero.to(tl.float32)
        g1 = g0
        g2 = g0
        g3 = g0
        q0 = g0 + 1.0
        q1 = q0
        q2 = q0
        q3 = q0
        for i in tl.static_range(TWICE // 2):  # k exponentials: −log of a product of uniforms
            w0, w1, w2, w3 = tl.philox(seed, counter, zero + i, streams, zero + 2)
            q0 = q0 * _open_uniform(w0)
            q1 = q1 * _open_uniform(w1)
            q2 = q2 * _open_uniform(w2)
            q3 = q3 * _open_uniform(w3)
            if (i % 4 == 3) or (i == TWICE // 2 - 1):  # ≥ 2⁻⁹⁶: no underflow in 4 factors
                g0 = g0 - _log(q0, FAST)
                g1 = g1 - _log(q1, FAST)
                g2 = g2 - _log(q2, FAST)
                g3 = g3 - _log(q3, FAST)
                q0 = g0 * 0.0 + 1.0
                q1 = q0
                q2 = q0
                q3 = q0
        if TWICE % 2 == 1:  # half a χ²₁
            w0, w1, w2, w3 = tl.philox(seed, counter, zero, streams, zero + 3)
            z0, z1 = _box_muller(w0, w1, FAST)
            z2, z3 = _box_muller(w2, w3, FAST)
            g0 = g0 + 0.5 * z0 * z0
            g1 = g1 + 0.5 * z1 * z1
            g2 = g2 + 0.5 * z2 * z2
            g3 = g3 + 0.5 * z3 * z3
    else:
        g0, g1 = _rejection_pair(seed, counter, 2 * stream, d, c, inv_alpha, BOOST, FAST)
        g2, g3 = _rejection_pair(seed, counter, 2 * stream + 1, d, c, inv_alpha, BOOST, FAST)
    return g0, g1, g2, g3


@triton.jit
def _beta_two_two(word):
    """Beta(2, 2) from one word: ξ = ½ + sin(arcsin(t)/3), t = 2U − 1, computed as g = ½ −
    sin(arcsin|t|/3) (ξ = g for t < 0, 1 − g else). Cephes' float32 arcsine gives arcsin|t|: for
    |t| > ½ as π/2 − 2w, w = arcsin √m with m = (1 − |t|)/2 = min(U, 1 − U) taken from U itself,
    and there g = 2 cos(π/6 − w/3) sin(w/3): no cancellation as ξ → 0. Cephes' sine and cosine
    polynomials, the Numba kernel's own, so both give the same ξ to float32 rounding."""
    u = tl.uint_to_uniform_float(word)
    m = tl.minimum(u, 1.0 - u)  # (1 − |t|)/2, exact
    big = m < 0.25  # |t| > ½
    a = 1.0 - 2.0 * m
    z = tl.where(big, m, a * a)
    r = tl.where(big, tl.sqrt(z), a)
    p = (((4.2163199048e-2 * z + 2.4181311049e-2) * z + 4.5470025998e-2) * z
         + 7.4953002686e-2) * z + 1.6666752422e-1
    theta = (p * z * r + r) * (1.0 / 3.0)  # w/3 (big) or arcsin|t|/3, in [0, π/18]
    q = theta * theta
    sin = ((-1.9515295891e-4 * q + 8.3321608736e-3) * q - 1.6666654611e-1) * q * theta + theta
    v = (SIXTH_PI - theta) * (SIXTH_PI - theta)
    cos = ((2.443315711809948e-5 * v - 1.388731625493765e-3) * v
           + 4.166664568298827e-2) * v * v - 0.5 * v + 1.0
    g = tl.where(big, 2.0 * cos * sin, 0.5 - sin)
    return tl.where(u < 0.5, g, 1.0 - g)


@triton.jit
def _from_word(word, p0, p1, LAW: tl.constexpr, FAST: tl.constexpr):
    """ξ of a uniform-based law from one Philox word."""
    if LAW == BERNOULLI:
        xi = tl.where(tl.uint_to_uniform_float(word) < p0, p1, 0.0)
    elif LAW == UNIFORM:
        xi = p0 + p1 * tl.uint_to_uniform_float(word)
    elif LAW == RAYLEIGH:
        xi = tl.sqrt(p0 * _log(_open_uniform(word), FAST))
    elif LAW == BETA_TWO_TWO:
        xi = _beta_two_two(word)
    else:  # HALF_CAUCHY
        angle = _open_uniform(word) * HALF_PI
        if FAST:  # the tail (angle → 0) needs sin's relative accuracy: its series below 1/16
            a2 = angle * angle
            series = angle * (1.0 - a2 * (1.0 / 6.0 - a2 * (1.0 / 120.0 - a2 / 5040.0)))
            sin = tl.where(angle < 0.0625, series, libdevice.fast_sinf(angle))
            cos = libdevice.fast_cosf(angle)
        else:
            sin = tl.sin(angle)
            cos = tl.cos(angle)
        xi = p0 * tl.abs(cos / sin)
    return xi


@triton.jit
def _from_normal(z, p0, p1, LAW: tl.constexpr):
    if LAW == GAUSSIAN:
        xi = p0 + p1 * z
    else:  # LOG_NORMAL
        xi = tl.exp(p0 + p1 * z)
    return xi


@triton.jit
def _load(x_ptr, index, n):
    return tl.load(x_ptr + index, mask=index < n).to(tl.float32)


@triton.jit
def _store(y_ptr, index, n, value):
    tl.store(y_ptr + index, value.to(y_ptr.dtype.element_ty), mask=index < n)


@triton.jit
def noise_product(x_ptr, y_ptr, seed_ptr, n, p0, p1, p2, p3,
                  LAW: tl.constexpr, TWICE_A: tl.constexpr, TWICE_B: tl.constexpr,
                  BOOST: tl.constexpr, FAST: tl.constexpr, LANES: tl.constexpr):
    """y = x ⊙ ξ over n contiguous elements; ξ drawn from (seed, element index) as above.
    TWICE_A, TWICE_B: 2α of the (first, second) gamma where it is a half-integer ≤ 8, else 0."""
    pid = tl.program_id(0)
    lane = tl.arange(0, LANES)
    counter = (pid * LANES + lane).to(tl.uint32)
    base = pid.to(tl.int64) * (4 * LANES) + lane  # element indices past 2³¹ stay exact
    # The loads go first, so that memory latency overlaps the drawing.
    x0 = _load(x_ptr, base, n)
    x1 = _load(x_ptr, base + LANES, n)
    x2 = _load(x_ptr, base + 2 * LANES, n)
    x3 = _load(x_ptr, base + 3 * LANES, n)
    seed = tl.load(seed_ptr)
    zero = counter * 0
    if LAW == INVERSE_NAKAGAMI:
        g0, g1, g2, g3 = _gamma4(seed, counter, 0, p0, p1, p2, TWICE_A, BOOST, FAST)
        xi0 = tl.sqrt(p3 / g0)
        xi1 = tl.sqrt(p3 / g1)
        xi2 = tl.sqrt(p3 / g2)
        xi3 = tl.sqrt(p3 / g3)
    elif LAW == BETA:
        a0, a1, a2, a3 = _gamma4(seed, counter, 0, p0, p1, 0.0, TWICE_A, False, FAST)
        b0, b1, b2, b3 = _gamma4(seed, counter, 1, p2, p3, 0.0, TWICE_B, False, FAST)
        xi0 = a0 / (a0 + b0)
        xi1 = a1 / (a1 + b1)
        xi2 = a2 / (a2 + b2)
        xi3 = a3 / (a3 + b3)
    elif (LAW == GAUSSIAN) or (LAW == LOG_NORMAL):
        w0, w1, w2, w3 = tl.philox(seed, counter, zero, zero, zero)
        z0, z1 = _box_muller(w0, w1, FAST)
        z2, z3 = _box_muller(w2, w3, FAST)
        xi0 = _from_normal(z0, p0, p1, LAW)
        xi1 = _from_normal(z1, p0, p1, LAW)
        xi2 = _from_normal(z2, p0, p1, LAW)
        xi3 = _from_normal(z3, p0, p1, LAW)
    else:
        w0, w1, w2, w3 = tl.philox(seed, counter, zero, zero, zero)
        xi0 = _from_word(w0, p0, p1, LAW, FAST)
        xi1 = _from_word(w1, p0, p1, LAW, FAST)
        xi2 = _from_word(w2, p0, p1, LAW, FAST)
        xi3 = _from_word(w3, p0, p1, LAW, FAST)
    _store(y_ptr, base, n, x0 * xi0)
    _store(y_ptr, base + LANES, n, x1 * xi1)
    _store(y_ptr, base + 2 * LANES, n, x2 * xi2)
    _store(y_ptr, base + 3 * LANES, n, x3 * xi3)
