"""The fused CUDA kernel of multiplicative_noise: its draws against scipy, its replay in backward,
its seeding, and when it is used.

The kernel's draws are made by ``fused_draws.py`` in a subprocess under Triton's CPU interpreter
(``TRITON_INTERPRET=1`` must be set before Triton is imported), and on the GPU where one exists.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from scipy import stats

from dropprior import Truncated
from dropprior.functional import multiplicative_noise
from dropprior.functional._fused import LANES, LawId, fused_plan, kernel_plan, launch
from dropprior.noise import (
    Bernoulli,
    Beta,
    Gaussian,
    HalfCauchy,
    InverseNakagami,
)

pytest.importorskip("triton")

SCRIPT = Path(__file__).with_name("fused_draws.py")
sys.path.insert(0, str(SCRIPT.parent))
from fused_draws import CASES, N, reference, statistic  # noqa: E402

DEVICES = ["interpreter"] + (["cuda"] if torch.cuda.is_available() else [])


@pytest.fixture(scope="module", params=DEVICES)
def draws(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
          ) -> dict[str, np.ndarray]:
    out = tmp_path_factory.mktemp("fused") / "draws.npz"
    env = dict(os.environ)
    if request.param == "interpreter":
        env["TRITON_INTERPRET"] = "1"
        device = "cpu"
    else:
        env.pop("TRITON_INTERPRET", None)
        device = "cuda"
    subprocess.run([sys.executable, str(SCRIPT), str(out), device], env=env, check=True,
                   timeout=600)
    with np.load(out) as data:
        return {key: data[key] for key in data.files} | {"device": np.array(request.param)}


CONTINUOUS = [name for name, law in CASES.items() if not isinstance(law, Bernoulli)]


@pytest.mark.parametrize("name", CONTINUOUS)
def test_fused_draws_follow_the_law(draws: dict[str, np.ndarray], name: str) -> None:
    """KS against scipy passes, and KS against the same law 10% wider fails (the test's power)."""
    sample = statistic(name, draws[f"{name}/xi"])
    assert sample.shape == (N,) and np.isfinite(sample).all()
    law = reference(CASES[name])
    assert stats.kstest(sample, law.cdf).pvalue > 1e-3
    loc = law.mean() if np.isfinite(law.mean()) else 0.0
    assert stats.kstest((sample - loc) / 1.1 + loc, law.cdf).pvalue < 1e-6


@pytest.mark.parametrize("name", ["bernoulli", "bernoulli_plain"])
def test_fused_bernoulli_is_a_scaled_indicator(draws: dict[str, np.ndarray], name: str) -> None:
    law = CASES[name]
    keep = float(law.keep)
    value = 1.0 / keep if law.inverted else 1.0
    xi = draws[f"{name}/xi"]
    kept = xi != 0
    np.testing.assert_array_equal(xi[kept], np.float32(value))
    assert stats.binomtest(int(kept.sum()), N, keep).pvalue > 1e-3
    assert stats.binomtest(int(kept.sum()), N, keep * 1.1).pvalue < 1e-6


@pytest.mark.parametrize("name", list(CASES))
def test_fused_draws_are_independent_across_the_words_of_a_lane(
        draws: dict[str, np.ndarray], name: str) -> None:
    """The four elements one Philox call serves (j·LANES apart) and neighbouring lanes show no
    rank correlation beyond 4 standard errors."""
    xi = draws[f"{name}/xi"][: N - N % (4 * LANES)].reshape(-1, 4, LANES)
    pairs = [(xi[:, 0], xi[:, 1]), (xi[:, 0], xi[:, 2]), (xi[:, 2], xi[:, 3]),
             (xi[:, :, :-1], xi[:, :, 1:])]
    for a, b in pairs:
        rho = stats.spearmanr(a.ravel(), b.ravel()).statistic
        assert abs(rho) < 4 / np.sqrt(a.size), (name, rho)


@pytest.mark.parametrize("name", list(CASES))
def test_cpu_kernel_draws_what_the_triton_kernel_draws(draws: dict[str, np.ndarray],
                                                       name: str) -> None:
    """The Numba CPU kernel (polynomial log, sin, cos) and the Triton kernel (accurate functions,
    interpreter) give the same ξ from the same seed to float32 rounding; with rejection sampling,
    a rounding may flip an accept decision, so a few entries may differ."""
    if str(draws["device"]) == "cuda":
        pytest.skip("compared with the interpreter's accurate mode")
    seed = torch.randint(0, 2**62, (1,), generator=torch.Generator().manual_seed(1234))
    got = launch(torch.ones(N), kernel_plan(CASES[name]), seed).numpy()
    want = draws[f"{name}/xi"]
    close = np.isclose(got, want, rtol=1e-5, atol=1e-6)
    exact_sum = kernel_plan(CASES[name]).twice_a > 0 and (
        not isinstance(CASES[name], Beta) or kernel_plan(CASES[name]).twice_b > 0)
    if isinstance(CASES[name], InverseNakagami | Beta) and not exact_sum:
        assert close.mean() > 1 - 1e-3, close.mean()
    else:
        assert close.all(), (got[~close][:5], want[~close][:5])


@pytest.mark.parametrize("name", list(CASES))
def test_fused_backward_replays_the_forward_draw(draws: dict[str, np.ndarray],
                                                 name: str) -> None:
    d = {key: torch.from_numpy(draws[f"{name}/{key}"]) for key in
         ("xi", "xi_grad", "x", "y", "upstream", "x_grad", "again", "fresh", "bf16")}
    torch.testing.assert_close(d["xi_grad"], d["xi"], rtol=0, atol=0)
    xi = d["xi"][: d["x"].numel()]  # the same seed gives the same ξ for any x
    torch.testing.assert_close(d["y"], d["x"] * xi, rtol=0, atol=0)
    torch.testing.assert_close(d["x_grad"], d["upstream"] * xi, rtol=0, atol=0)
    torch.testing.assert_close(d["again"], d["y"].detach(), rtol=0, atol=0)
    assert (d["fresh"] != d["y"]).float().mean() > 0.2  # a new seed, a new draw
    # bfloat16 output: the same ξ, rounded (the interpreter truncates; a GPU rounds to nearest)
    torch.testing.assert_close(d["bf16"], xi, rtol=2**-7, atol=0)


def test_kernel_plan_covers_the_fast_laws_and_declines_the_rest() -> None:
    for law in CASES.values():
        assert kernel_plan(law) is not None
    assert kernel_plan(Beta(0.3, 2.0)) is None  # needs the log-space form
    assert kernel_plan(Beta(2.0, 2.0)).law == LawId.BETA_TWO_TWO  # inverse CDF, no gammas
    assert kernel_plan(Beta(2.0, 2.5)).law == LawId.BETA
    assert kernel_plan(Truncated(HalfCauchy(1.0), 5.0)) is None  # not a fused law
    plans = {m: kernel_plan(InverseNakagami(m, 1.0)) for m in (0.5, 0.6, 2.0, 2.3, 8.0, 8.5)}
    assert [(p.twice_a, p.boost) for p in plans.values() if p is not None] == [
        (1, False), (0, True), (4, False), (0, False), (16, False), (0, False)]


def test_fused_plan_on_cpu_is_the_kernel_plan_for_the_fused_dtypes() -> None:
    """On CPU (no interpreter) the Numba kernel takes float32, float16 and bfloat16 inputs and
    every law the kernel draws; float64 and empty inputs go to the general path."""
    x = torch.ones(8)
    for law in CASES.values():
        assert fused_plan(law, x) == kernel_plan(law) == fused_plan(law, x.bfloat16())
    assert fused_plan(Gaussian(1.0, 0.5), x.double()) is None
    assert fused_plan(Gaussian(1.0, 0.5), torch.ones(0)) is None


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_multiplicative_noise_uses_the_fused_kernel_on_cuda() -> None:
    """Unit noise with per-example draws on CUDA is the fused kernel (the same numbers as
    fused_multiply from the same generator state, one int64 saved for backward); per-batch noise
    and float64 take the general path."""
    from dropprior.functional._fused import fused_multiply

    law = Gaussian(1.0, 0.5)
    x = torch.randn(64, 300, device="cuda", requires_grad=True)
    gen = torch.Generator("cuda").manual_seed(5)
    state = gen.get_state()
    saved: list[torch.Tensor] = []
    with torch.autograd.graph.saved_tensors_hooks(lambda t: saved.append(t) or t, lambda t: t):
        y = multiplicative_noise(x, law, generator=gen)
    gen.set_state(state)
    torch.testing.assert_close(y, fused_multiply(x, fused_plan(law, x), gen), rtol=0, atol=0)
    assert [t.numel() * t.element_size() for t in saved] == [8]
    batch = multiplicative_noise(x, law, granularity="batch", generator=gen)
    ratio = batch / x
    torch.testing.assert_close(ratio, ratio[:1].expand_as(ratio), rtol=1e-5, atol=1e-5)
    assert multiplicative_noise(x.double(), law, generator=gen).dtype == torch.float64


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_fused_bernoulli_matches_dropout_in_law_on_cuda() -> None:
    """Inverted Bernoulli unit noise keeps a fraction π of the entries and scales them by 1/π,
    as F.dropout(p = 1 − π) does."""
    x = torch.ones(1 << 20, device="cuda")
    y = multiplicative_noise(x, Bernoulli(0.8, inverted=True))
    kept = y != 0
    torch.testing.assert_close(y[kept], torch.full_like(y[kept], 1.25))
    assert abs(kept.float().mean().item() - 0.8) < 5 * (0.8 * 0.2 / x.numel()) ** 0.5


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_noisy_linear_trains_on_cuda(dtype: torch.dtype) -> None:
    """A NoisyLinear ("unit", inverse Nakagami: the fused kernel) in a small regression on CUDA:
    finite gradients and a falling loss."""
    from dropprior.nn import NoisyLinear

    torch.manual_seed(0)
    model = torch.nn.Sequential(
        NoisyLinear(16, 64, InverseNakagami(2.0, 1.0)), torch.nn.ReLU(), torch.nn.Linear(64, 1)
    ).to("cuda", dtype)
    x = torch.randn(512, 16, device="cuda", dtype=dtype)
    y = x[:, :1] * 2.0
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    losses = []
    for _ in range(60):
        opt.zero_grad()
        loss = (model(x) - y).float().square().mean()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert np.isfinite(losses).all() and np.mean(losses[-10:]) < 0.5 * np.mean(losses[:5])


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # inductor's import of torch.jit
def test_noise_compiles_without_graph_breaks_on_cuda() -> None:
    """Under torch.compile(fullgraph=True) the layer traces its plain-op form on CUDA too."""
    x = torch.randn(256, 128, device="cuda")
    f = torch.compile(lambda t: multiplicative_noise(t, Gaussian(1.0, 0.5)), fullgraph=True)
    y = f(x)
    ratio = (y / x).double().cpu().numpy().ravel()
    assert stats.kstest(ratio, stats.norm(1.0, 0.5).cdf).pvalue > 1e-3
