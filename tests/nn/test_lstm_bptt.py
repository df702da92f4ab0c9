"""The LSTM recurrence's hand-written backward against numerical derivatives and nn.LSTM."""

import pytest
import torch
from torch import nn
from torch.testing import assert_close

from dropprior.functional import gate_projections, lstm_recurrence
from dropprior.functional._bptt import RecurrenceBPTT

f64 = torch.float64


def _inputs(n: int, hidden: int, steps: int, bias: bool, seed: int) -> list:
    g = torch.Generator().manual_seed(seed)

    def leaf(*shape: int) -> torch.Tensor:
        return torch.randn(*shape, dtype=f64, generator=g).requires_grad_()

    return [leaf(steps, n, 4 * hidden), leaf(4 * hidden, hidden),
            leaf(4 * hidden) if bias else None, leaf(n, hidden), leaf(n, hidden)]


@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("noise_rows", [None, 1, 3])
def test_bptt_gradcheck(bias, noise_rows) -> None:
    proj, u, b, h0, c0 = _inputs(3, 2, 4, bias, seed=1)
    noise = None if noise_rows is None else \
        torch.rand(noise_rows, 2, dtype=f64, generator=torch.Generator().manual_seed(2)) + 0.5

    def f(proj, u, b, h0, c0):
        return RecurrenceBPTT.apply(proj, u, b, h0, c0, noise)

    assert torch.autograd.gradcheck(f, (proj, u, b, h0, c0))


def test_bptt_matches_nn_lstm_gradients() -> None:
    """All-ones gate noise: the recurrence is nn.LSTM's, so output and every gradient agree."""
    torch.manual_seed(3)
    lstm = nn.LSTM(5, 6).double()
    x = torch.randn(7, 4, 5, dtype=f64, requires_grad=True)
    h0, c0 = (torch.randn(1, 4, 6, dtype=f64, requires_grad=True) for _ in range(2))
    weights = [lstm.weight_ih_l0, lstm.weight_hh_l0, lstm.bias_ih_l0, lstm.bias_hh_l0]

    out, (hn, cn) = lstm(x, (h0, c0))
    ref_loss = out.square().sum() + hn.sum() + 2 * cn.sum()
    ref = torch.autograd.grad(ref_loss, [x, h0, c0, *weights])

    proj = gate_projections(x, weights[0], weights[2], torch.ones(4, 1, 5, dtype=f64))
    ours_out, (hn2, cn2) = lstm_recurrence(proj, weights[1], weights[3], (h0[0], c0[0]))
    loss = ours_out.square().sum() + hn2.sum() + 2 * cn2.sum()
    ours = torch.autograd.grad(loss, [x, h0, c0, *weights])

    assert_close(ours_out, out)
    for a, b in zip(ours, ref, strict=True):
        assert_close(a, b)


@pytest.mark.parametrize("dtype", [torch.float32, f64])
@pytest.mark.parametrize("noise_rows", [1, 3])
def test_tied_gate_projection_is_one_linear_map_of_the_noisy_input(dtype, noise_rows) -> None:
    """Tied gate noise (one row, shared by the four gates) gives F.linear(x ⊙ ξ, W, b), and so
    does the untied form with that row repeated for every gate; their gradients (x, W, b and ξ,
    the untied ξ's summed over its four copies) agree. float32 takes the oneDNN path where it
    is available, float64 torch's products."""
    g = torch.Generator().manual_seed(11)
    t, n, d, hidden = 5, 3, 4, 2
    x, w, b = (torch.randn(*shape, dtype=dtype, generator=g).requires_grad_()
               for shape in ((t, n, d), (4 * hidden, d), (4 * hidden,)))
    xi = (torch.rand(1, noise_rows, d, dtype=dtype, generator=g) * 2).requires_grad_()
    xi4 = xi.detach().expand(4, noise_rows, d).clone().requires_grad_()
    weights = torch.linspace(-1, 1, 4 * hidden, dtype=dtype)
    results = []
    for proj in (gate_projections(x, w, b, xi), gate_projections(x, w, b, xi4),
                 torch.nn.functional.linear(x * xi[0], w, b)):
        grads = torch.autograd.grad((proj * weights).square().sum(), [x, w, b, xi, xi4],
                                    allow_unused=True)
        results.append((proj, grads))
    (tied, g_tied), (untied, g_untied), (ref, g_ref) = results
    tol = {"rtol": 1e-5, "atol": 1e-5} if dtype == torch.float32 else {}
    assert_close(tied, ref, **tol)
    assert_close(untied, ref, **tol)
    for k in range(3):  # x, W, b
        assert_close(g_tied[k], g_ref[k], **tol)
        assert_close(g_untied[k], g_ref[k], **tol)
    assert_close(g_tied[3], g_ref[3], **tol)
    assert_close(g_untied[4].sum(0, keepdim=True), g_ref[3], **tol)


def test_gate_projections_rejects_other_noise_groups() -> None:
    x, w = torch.randn(2, 3, 4), torch.randn(8, 4)
    with pytest.raises(ValueError, match=r"4 \(untied\) or 1 \(tied\).*\(2, 3, 4\)"):
        gate_projections(x, w, None, torch.ones(2, 3, 4))


def test_bptt_outputs_do_not_alias_saved_states() -> None:
    proj, u, b, h0, c0 = _inputs(2, 3, 4, True, seed=4)
    out, hn, cn = RecurrenceBPTT.apply(proj, u, b, h0, c0, None)
    expected = torch.autograd.grad(out.sum() + hn.sum(), [u])[0]
    out2, hn2, _ = RecurrenceBPTT.apply(proj, u, b, h0, c0, None)
    loss = out2.sum() + hn2.sum()
    out2.data.zero_()  # a user writing into the output must not corrupt backward
    assert_close(torch.autograd.grad(loss, [u])[0], expected)
