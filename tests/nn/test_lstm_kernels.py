"""The LSTM cell's compiled CPU kernels (``functional._lstm_kernels``): σ and tanh against scipy and
numpy in float64, and the recurrence with them against the same recurrence in torch operations."""

import numba
import numpy as np
import pytest
import torch
from scipy.special import expit
from torch.testing import assert_close

import dropprior.functional._lstm_kernels as kernels
import dropprior.functional._onednn as onednn
from dropprior.functional import lstm_recurrence


@numba.njit
def _apply(which: int, x: np.ndarray) -> np.ndarray:
    out = np.empty_like(x)
    for k in range(x.size):
        out[k] = kernels._sigmoid(x[k]) if which == 0 else kernels._tanh(x[k])
    return out


def _grid() -> np.ndarray:
    dense = np.linspace(-30, 30, 600_001)
    tiny = np.concatenate([np.geomspace(1e-38, 1, 2000), -np.geomspace(1e-38, 1, 2000)])
    edges = [0.0, -0.0, 0.625, -0.625, 88.0, -88.0, 1e4, -1e4, np.inf, -np.inf]
    return np.concatenate([dense, tiny, edges]).astype(np.float32)


def test_sigmoid_and_tanh_are_float32_accurate() -> None:
    """Within 2 float32 ulps of float64 scipy / numpy (relative, or 1e-38 absolute near 0)
    everywhere on [−30, 30], near 0 down to 1e-38, at the branch point 0.625 and at ±inf."""
    x = _grid()
    exact = [expit(x.astype(np.float64)), np.tanh(x.astype(np.float64))]
    for which, ref in enumerate(exact):
        got = _apply(which, x).astype(np.float64)
        tol = 2 * np.finfo(np.float32).eps * np.abs(ref) + 1e-38
        worst = np.max(np.abs(got - ref) - tol)
        assert worst <= 0, (which, x[np.argmax(np.abs(got - ref) - tol)])


def test_nan_passes_through() -> None:
    """A NaN pre-activation gives NaN, not a clamped number."""
    x = np.array([np.nan, 1.0], dtype=np.float32)
    for which in (0, 1):
        out = _apply(which, x)
        assert np.isnan(out[0]) and np.isfinite(out[1])


def _recurrence(seed: int, recurrent: bool) -> list[torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    t, n, hidden = 7, 3, 5
    proj = torch.randn(t, n, 4 * hidden, generator=g).requires_grad_()
    u = (0.5 * torch.randn(4 * hidden, hidden, generator=g)).requires_grad_()
    b = torch.randn(4 * hidden, generator=g).requires_grad_()
    h0 = torch.randn(n, hidden, generator=g).requires_grad_()
    c0 = torch.randn(n, hidden, generator=g).requires_grad_()
    rec = torch.rand(n, hidden, generator=g) * 2 if recurrent else None
    out, (h, c) = lstm_recurrence(proj, u, b, (h0, c0), rec)
    weights = torch.linspace(-1, 1, hidden)
    loss = (out * weights).square().sum() + (h * weights).sum() + 2 * c.sum()
    return [out, h, c, *torch.autograd.grad(loss, [proj, u, b, h0, c0])]


@pytest.mark.parametrize("recurrent", [False, True])
@pytest.mark.parametrize("with_onednn", [False, True])
def test_recurrence_with_kernels_equals_torch_operations(
        monkeypatch: pytest.MonkeyPatch, recurrent: bool, with_onednn: bool) -> None:
    """Outputs, final state and the gradients of the projections, U, b_hh and the initial state
    agree with the torch-operations path (switched off by the environment variable), with the
    products through oneDNN or torch.mm."""
    if with_onednn and not onednn.enabled():
        pytest.skip("torch's oneDNN linear ops are not available here")
    if not with_onednn:
        monkeypatch.setattr(onednn, "enabled", lambda: False)
    assert kernels.usable(torch.zeros(1))
    ours = _recurrence(4, recurrent)
    monkeypatch.setenv("DROPPRIOR_LSTM_KERNELS", "0")
    assert not kernels.usable(torch.zeros(1))
    reference = _recurrence(4, recurrent)
    for a, b in zip(ours, reference, strict=True):
        assert_close(a, b, rtol=1e-5, atol=1e-6)


def test_only_float32_cpu() -> None:
    assert kernels.usable(torch.zeros(2, dtype=torch.float32))
    assert not kernels.usable(torch.zeros(2, dtype=torch.float64))
    assert not kernels.usable(torch.zeros(2), torch.zeros(2, dtype=torch.float16))


def test_nan_input_reaches_the_output(monkeypatch: pytest.MonkeyPatch) -> None:
    """A NaN in one example's projections spreads through that example's outputs exactly as in
    the torch-operations path, and leaves the other example's finite."""
    proj = torch.randn(4, 2, 12, generator=torch.Generator().manual_seed(0))
    proj[1, 0, 3] = float("nan")
    zeros, u = torch.zeros(2, 3), torch.ones(12, 3)
    out, _ = lstm_recurrence(proj, u, None, (zeros, zeros))
    monkeypatch.setenv("DROPPRIOR_LSTM_KERNELS", "0")
    reference, _ = lstm_recurrence(proj, u, None, (zeros, zeros))
    assert torch.equal(torch.isnan(out), torch.isnan(reference))
    assert torch.isnan(out[2:, 0]).all() and torch.isfinite(out[:, 1]).all()
