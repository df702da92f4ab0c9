"""The fused path's CPU kernel (Numba): its math functions against numpy, its draws against
scipy, its replay in backward, its memory, and when multiplicative_noise takes it.

Its agreement with the Triton kernel from the same seed is in test_fused_noise.py (which needs
Triton's interpreter).
"""

from __future__ import annotations

import sys
from pathlib import Path

import numba
import numpy as np
import pytest
import torch
from scipy import stats

from dropprior.functional import multiplicative_noise
from dropprior.functional._cpu_kernels import (
    _MIN_PROGRAMS_PER_THREAD,
    _beta_two_two,
    _cos_sin,
    _exp,
    _log,
    _uniform,
    kernel,
    run_programs,
)
from dropprior.functional._fused import LANES, fused_multiply, fused_plan, kernel_plan, launch
from dropprior.noise import Bernoulli, Beta, InverseNakagami

sys.path.insert(0, str(Path(__file__).parent))
from fused_draws import CASES, N, reference, statistic  # noqa: E402


def _elementwise(fn):  # noqa: ANN001, ANN202
    """A compiled loop applying the kernel's scalar function ``fn`` to every entry."""

    @numba.njit
    def apply(a: np.ndarray) -> np.ndarray:
        out = np.empty_like(a)
        for i in range(a.size):
            out[i] = fn(a[i])
        return out

    return apply


_logs, _exps = _elementwise(_log), _elementwise(_exp)


@numba.njit
def _cos_sins(a: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    c, s = np.empty_like(a), np.empty_like(a)
    for i in range(a.size):
        c[i], s[i] = _cos_sin(a[i])
    return c, s


def test_polynomial_log_matches_numpy_on_every_binade() -> None:
    rng = np.random.default_rng(0)
    mantissa = rng.uniform(1.0, 2.0, 4096)
    x = np.concatenate([np.ldexp(mantissa, e) for e in range(-126, 128)]).astype(np.float32)
    got, want = _logs(x).astype(np.float64), np.log(x.astype(np.float64))
    # 2⁻²³ relative, or 2⁻²⁴ absolute near x = 1
    assert np.all(np.abs(got - want) <= np.maximum(2.0**-23 * np.abs(want), 2.0**-24))
    assert _logs(np.float32([1.0]))[0] == 0.0


def test_polynomial_cos_sin_match_numpy_on_box_mullers_range() -> None:
    rng = np.random.default_rng(1)
    angle = np.concatenate([rng.uniform(0.0, 2 * np.pi, 200_000),
                            np.arange(8) * np.pi / 4]).astype(np.float32)
    c, s = _cos_sins(angle)
    wide = angle.astype(np.float64)
    assert np.max(np.abs(c - np.cos(wide))) < 2e-7
    assert np.max(np.abs(s - np.sin(wide))) < 2e-7
    tiny = rng.uniform(1e-7, 0.1, 10_000).astype(np.float32)  # half-Cauchy's tail: relative
    assert np.max(np.abs(_cos_sins(tiny)[1] / np.sin(tiny.astype(np.float64)) - 1)) < 3e-7


@numba.njit
def _beta_two_twos(words: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(U, ξ) of each word."""
    u, xi = np.empty(words.size, np.float32), np.empty(words.size, np.float32)
    for i in range(words.size):
        u[i] = _uniform(words[i])
        xi[i] = _beta_two_two(words[i], np.float32(0.0), np.float32(0.0))
    return u, xi


def test_beta_two_two_is_scipys_inverse_cdf_of_the_words_uniform() -> None:
    """Beta(2, 2)'s one-word draw (Cephes arcsine, sine, cosine) against scipy's quantile function
    at the word's uniform, across the whole word range and U's 2⁻²⁰ nearest to 0 and 1: absolute
    error within float32 rounding near 1, relative error small in the lower tail."""
    rng = np.random.default_rng(2)
    words = np.concatenate([np.linspace(0, 2**32 - 1, 400_001),
                            rng.integers(0, 2**12, 10_000), 2**31 - rng.integers(1, 2**12, 10_000)]
                           ).astype(np.uint32)
    u, got = (a.astype(np.float64) for a in _beta_two_twos(words))
    want = stats.beta(2, 2).ppf(u)
    assert got.min() == 0.0 and got.max() < 1.0
    assert np.max(np.abs(got - want)) < 2e-7
    tail = (want > 0) & (want < 0.01)
    assert tail.sum() > 1000 and np.max(np.abs(got[tail] / want[tail] - 1)) < 1e-5
    # a wrong root of 3ξ² − 2ξ³ = U (or a law's wrong quantile) is far off
    assert np.max(np.abs(got - stats.beta(2, 3).ppf(u))) > 0.05


@pytest.fixture(scope="module")
def cpu_draws() -> dict[str, np.ndarray]:
    """ξ of every case, seed 1234."""
    out = {}
    for name, law in CASES.items():
        seed = torch.randint(0, 2**62, (1,), generator=torch.Generator().manual_seed(1234))
        out[name] = launch(torch.ones(N), kernel_plan(law), seed).numpy()
    return out


@pytest.mark.parametrize("name", [n for n, law in CASES.items() if not isinstance(law, Bernoulli)])
def test_cpu_kernel_draws_follow_the_law(cpu_draws: dict[str, np.ndarray], name: str) -> None:
    """KS against scipy passes, and KS against the same law 10% wider fails."""
    sample = statistic(name, cpu_draws[name])
    assert np.isfinite(sample).all()
    law = reference(CASES[name])
    assert stats.kstest(sample, law.cdf).pvalue > 1e-3
    loc = law.mean() if np.isfinite(law.mean()) else 0.0
    assert stats.kstest((sample - loc) / 1.1 + loc, law.cdf).pvalue < 1e-6


@pytest.mark.parametrize("name", ["bernoulli", "bernoulli_plain"])
def test_cpu_kernel_bernoulli_is_a_scaled_indicator(cpu_draws: dict[str, np.ndarray],
                                                    name: str) -> None:
    law = CASES[name]
    keep = float(law.keep)
    xi = cpu_draws[name]
    kept = xi != 0
    np.testing.assert_array_equal(xi[kept], np.float32(1.0 / keep if law.inverted else 1.0))
    assert stats.binomtest(int(kept.sum()), N, keep).pvalue > 1e-3
    assert stats.binomtest(int(kept.sum()), N, keep * 1.1).pvalue < 1e-6


@pytest.mark.parametrize("name", list(CASES))
def test_cpu_kernel_words_of_a_lane_are_independent(cpu_draws: dict[str, np.ndarray],
                                                    name: str) -> None:
    xi = cpu_draws[name][: N - N % (4 * LANES)].reshape(-1, 4, LANES)
    for a, b in [(xi[:, 0], xi[:, 1]), (xi[:, 1], xi[:, 3]), (xi[:, :, :-1], xi[:, :, 1:])]:
        rho = stats.spearmanr(a.ravel(), b.ravel()).statistic
        assert abs(rho) < 4 / np.sqrt(a.size), (name, rho)


@pytest.mark.parametrize("law", [InverseNakagami(2.0, 1.5), CASES["inverse_nakagami_boost"],
                                 Beta(2.5, 1.7), CASES["half_cauchy"]])
def test_multiplicative_noise_on_cpu_is_the_kernel_and_replays_it(law) -> None:
    """Per-example unit noise on a float32 CPU tensor: the same numbers as fused_multiply from the
    same generator state, one int64 saved for backward, the gradient upstream ⊙ ξ bit for bit;
    a bfloat16 input gets the same ξ, rounded."""
    x = torch.randn(33, 70, requires_grad=True)
    gen = torch.Generator().manual_seed(5)
    state = gen.get_state()
    saved: list[torch.Tensor] = []
    with torch.autograd.graph.saved_tensors_hooks(lambda t: saved.append(t) or t, lambda t: t):
        y = multiplicative_noise(x, law, generator=gen)
    assert [t.numel() * t.element_size() for t in saved] == [8]
    gen.set_state(state)
    xi = fused_multiply(torch.ones(33, 70), fused_plan(law, x), gen)
    torch.testing.assert_close(y, x.detach() * xi, rtol=0, atol=0)
    upstream = torch.randn(33, 70)
    (grad,) = torch.autograd.grad(y, x, upstream)
    torch.testing.assert_close(grad, upstream * xi, rtol=0, atol=0)
    gen.set_state(state)
    half = multiplicative_noise(torch.ones(33, 70, dtype=torch.bfloat16), law, generator=gen)
    torch.testing.assert_close(half.float(), xi, rtol=2**-8, atol=0)
    assert not torch.equal(multiplicative_noise(x, law, generator=gen), y)  # a new seed


def test_float64_and_small_beta_concentrations_take_the_general_path() -> None:
    """float64 inputs, and Beta with a concentration below 1 other than ½ (the log-space form),
    keep the general sampler on CPU: ξ is then ``law.sample`` from the same generator."""
    for law, dtype in [(InverseNakagami(2.0, 1.0), torch.float64), (Beta(0.3, 2.0), torch.float32)]:
        x = torch.ones(12, 9, dtype=dtype)
        y = multiplicative_noise(x, law, generator=torch.Generator().manual_seed(3))
        want = law.to("cpu", dtype).sample((12, 9), generator=torch.Generator().manual_seed(3))
        torch.testing.assert_close(y, want, rtol=0, atol=0)


def test_non_contiguous_input_gets_the_draw_of_its_contiguous_copy() -> None:
    """A transposed input is multiplied in its logical (row-major) order, as the contiguous copy
    would be, and its gradient comes back in the input's layout."""
    law = InverseNakagami(2.0, 1.0)
    base = torch.randn(40, 30)
    x = base.t().requires_grad_()  # (30, 40), not contiguous
    y = multiplicative_noise(x, law, generator=torch.Generator().manual_seed(8))
    want = multiplicative_noise(x.detach().contiguous(), law,
                                generator=torch.Generator().manual_seed(8))
    torch.testing.assert_close(y, want, rtol=0, atol=0)
    (grad,) = torch.autograd.grad(y, x, torch.ones_like(y))
    xi = multiplicative_noise(torch.ones(30, 40), law, generator=torch.Generator().manual_seed(8))
    torch.testing.assert_close(grad, xi, rtol=0, atol=0)


def test_polynomial_exp_matches_numpy_to_overflow_and_underflow() -> None:
    rng = np.random.default_rng(2)
    x = np.concatenate([rng.uniform(-87.0, 88.0, 200_000), rng.uniform(-3, 3, 10_000),
                        [0.0, -1e-8, 1e-8]]).astype(np.float32)
    got, want = _exps(x).astype(np.float64), np.exp(x.astype(np.float64))
    assert np.max(np.abs(got / want - 1)) < 2.0**-22
    edge = np.float32([89.0, 120.0, -104.0, -200.0, -100.0])
    out = _exps(edge)
    assert np.isinf(out[0]) and np.isinf(out[1]) and out[2] == 0.0 and out[3] == 0.0
    assert 0 < out[4] < 1e-42  # a subnormal, as exp(−100) is in float32


def test_run_programs_splits_a_large_pass_into_contiguous_ranges_on_distinct_threads() -> None:
    """A pass of P programs on 3 threads is three slices of x, one after the other, covering it
    once, each with its first program's index; one runs on the calling thread and two on others,
    at the same time. A small pass stays one call on the calling thread."""
    import threading

    calls: list[tuple[int, int, int, str]] = []
    lock = threading.Lock()
    barrier = threading.Barrier(3, timeout=10)  # all three slices run at the same time

    def record(x: np.ndarray, y: np.ndarray, tag: int, offset: int) -> None:
        assert np.shares_memory(x, y) and x.size == y.size
        with lock:
            calls.append((offset, x.size, int(x[0]), threading.current_thread().name))
        barrier.wait()

    block = 4 * LANES
    programs = 3 * _MIN_PROGRAMS_PER_THREAD + 5
    x = np.arange(programs * block - 7, dtype=np.float32)  # the last program partly filled
    run_programs(record, x, x, LANES, 3, 0)
    calls.sort()
    assert [offset * block for offset, _, _, _ in calls] == [first for _, _, first, _ in calls]
    assert calls[0][0] == 0
    assert all(a[0] * block + a[1] == b[0] * block for a, b in zip(calls, calls[1:], strict=False))
    assert calls[-1][0] * block + calls[-1][1] == x.size
    assert len({name for *_, name in calls}) == 3
    assert threading.current_thread().name in {name for *_, name in calls}

    calls.clear()
    small = np.zeros(_MIN_PROGRAMS_PER_THREAD * block, np.float32)
    run_programs(lambda x, y, tag, offset: calls.append(
        (offset, x.size, 0, threading.current_thread().name)), small, small, LANES, 3, 0)
    assert calls == [(0, small.size, 0, threading.current_thread().name)]


@pytest.mark.parametrize("law", [Bernoulli(0.8), Beta(2.5, 1.7), InverseNakagami(2.3, 1.0)],
                         ids=["bernoulli", "beta-rejection", "inverse-nakagami-rejection"])
def test_threads_change_no_draw(law) -> None:  # noqa: ANN001
    """The same seed gives bit-identical products on 1, 2 and 3 threads (a program's draws depend
    only on its index), through the layer's own entry point."""
    x = torch.randn(3 * _MIN_PROGRAMS_PER_THREAD * 4 * LANES + 123)
    threads = torch.get_num_threads()
    outputs = []
    try:
        for count in (1, 2, 3):
            torch.set_num_threads(count)
            outputs.append(multiplicative_noise(x, law, generator=torch.Generator().manual_seed(5)))
    finally:
        torch.set_num_threads(threads)
    torch.testing.assert_close(outputs[1], outputs[0], rtol=0, atol=0)
    torch.testing.assert_close(outputs[2], outputs[0], rtol=0, atol=0)


def _threaded_pass(seed: int) -> np.ndarray:
    """A pass of the Bernoulli kernel on 2 threads, through numpy only (torch's own OpenMP pool
    hangs in a forked child once the parent has used it: a libgomp limitation, not ours)."""
    plan = kernel_plan(Bernoulli(0.5))
    run = kernel(int(plan.law), plan.twice_a, plan.twice_b, plan.boost, LANES)
    x = np.ones(2 * _MIN_PROGRAMS_PER_THREAD * 4 * LANES, np.float32)
    y = np.empty_like(x)
    run_programs(run, x, y, LANES, 2, seed, 0, *plan.params)
    return y


@pytest.mark.skipif(sys.platform != "linux", reason="the fork start method")
def test_a_forked_child_gets_its_own_worker_threads() -> None:
    """After the parent ran a threaded pass (so its worker threads exist), a forked child (a
    DataLoader worker, say) runs one too, on threads of its own (the parent's do not survive the
    fork: a pool inherited from it would never run the work), and draws what the parent draws."""
    import multiprocessing

    parent = _threaded_pass(6)
    with multiprocessing.get_context("fork").Pool(1) as pool:
        child = pool.apply_async(_threaded_pass, (6,)).get(timeout=60)
    np.testing.assert_array_equal(child, parent)


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_fused_sample_is_the_xi_fused_multiply_multiplies_by(dtype) -> None:  # noqa: ANN001
    """ξ drawn alone into ``out`` (its old values ignored) is, from the same seed, the ξ that
    the fused product multiplies by: 1 ⊙ ξ, in float32 and rounded to bfloat16."""
    from dropprior.functional._fused import fused_sample

    law = InverseNakagami(2.3, 1.0)
    out = torch.full((37, 301), float("nan"), dtype=dtype)
    plan = fused_plan(law, out)
    returned = fused_sample(out, plan, torch.Generator().manual_seed(9))
    assert returned is out
    product = fused_multiply(torch.ones(37, 301), plan, torch.Generator().manual_seed(9))
    torch.testing.assert_close(out, product.to(dtype), rtol=0, atol=0)
