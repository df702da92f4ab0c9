"""The untied LSTM's float32 CPU path through oneDNN (``functional._onednn``): the same layer as
the float64 path (gradient-checked in test_lstm_bptt.py) and as nn.LSTM, gradients included.
The input projections take oneDNN from a size on (``_lstm._ONEDNN_MIN_MACS``); these tests set
that size to 0 so that their small layers take it too, except the test of the dispatch itself."""

import pytest
import torch
from torch import nn
from torch.testing import assert_close

import dropprior.functional._lstm as lstm
import dropprior.functional._onednn as onednn
from dropprior.functional import gate_projections, lstm_recurrence

pytestmark = pytest.mark.skipif(not onednn.enabled(),
                                reason="torch's oneDNN linear ops are not available here")


@pytest.fixture(autouse=True)
def _onednn_at_every_size(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    if request.node.name != "test_input_projections_take_onednn_from_a_size_on":
        monkeypatch.setattr(lstm, "_ONEDNN_MIN_MACS", 0)


def test_input_projections_take_onednn_from_a_size_on(monkeypatch: pytest.MonkeyPatch) -> None:
    """Below ``_ONEDNN_MIN_MACS`` multiply-adds per gate group the batched torch product, from it
    on oneDNN; both give the same projections."""
    calls = []
    apply = lstm.GateProjection.apply

    def counted(*args):  # noqa: ANN002, ANN202
        calls.append(args[0].shape)
        return apply(*args)

    monkeypatch.setattr(lstm.GateProjection, "apply", counted)
    hidden, d = 64, 64
    w, b = torch.randn(4 * hidden, d), torch.randn(4 * hidden)
    small = torch.randn(2, 3, d)
    steps = -(-lstm._ONEDNN_MIN_MACS // (3 * d * hidden))  # the first T at the threshold
    large = torch.randn(steps, 3, d)
    noise = torch.rand(4, 3, d)
    out_small = gate_projections(small, w, b, noise)
    assert calls == []
    out_large = gate_projections(large, w, b, noise)
    assert calls == [large.shape]
    assert_close(out_large, lstm.batched_gate_projections(large, w, b, noise), rtol=1e-4,
                 atol=1e-4)
    monkeypatch.setattr(lstm, "_ONEDNN_MIN_MACS", 0)
    assert_close(out_small, gate_projections(small, w, b, noise), rtol=1e-4, atol=1e-4)
    assert len(calls) == 2


def _layer(x, w_ih, b_ih, w_hh, b_hh, noise, rec, h0, c0):
    proj = gate_projections(x, w_ih, b_ih, noise)
    out, (h, c) = lstm_recurrence(proj, w_hh, b_hh, (h0, c0), rec)
    return out, h, c


def _leaves(noise_rows: int, recurrent: bool, seed: int, groups: int = 4) -> list:
    g = torch.Generator().manual_seed(seed)
    t, n, d, hidden = 6, 3, 5, 4

    def leaf(*shape: int, scale: float = 1.0) -> torch.Tensor:
        return (scale * torch.randn(*shape, generator=g)).requires_grad_()

    noise = (torch.rand(groups, noise_rows, d, generator=g) * 2).requires_grad_()
    rec = torch.rand(n, hidden, generator=g) * 2 if recurrent else None
    return [leaf(t, n, d), leaf(4 * hidden, d, scale=0.5), leaf(4 * hidden),
            leaf(4 * hidden, hidden, scale=0.5), leaf(4 * hidden), noise, rec,
            leaf(n, hidden), leaf(n, hidden)]


@pytest.mark.parametrize("groups", [4, 1])
@pytest.mark.parametrize("noise_rows", [1, 3])
@pytest.mark.parametrize("recurrent", [False, True])
def test_float32_onednn_path_equals_the_float64_path(noise_rows: int, recurrent: bool,
                                                     groups: int) -> None:
    """Outputs and the gradients of x, both weights, both biases, the gate noise and the
    initial state agree with the float64 computation to float32 accuracy, for untied (one
    noise row per gate) and tied (one shared by the four) gate noise."""
    leaves = _leaves(noise_rows, recurrent, seed=noise_rows + 2 * recurrent, groups=groups)
    doubled = [None if v is None else v.detach().double().requires_grad_(v.requires_grad)
               for v in leaves]
    assert onednn.usable(leaves[0]) and not onednn.usable(doubled[0])
    grads = []
    for args in (leaves, doubled):
        out, h, c = _layer(*args)
        loss = (out * torch.linspace(-1, 1, out.shape[-1], dtype=out.dtype)).square().sum() \
            + h.sum() + 2 * c.sum()
        wrt = [v for v in args if v is not None and v.requires_grad]
        grads.append([out, *torch.autograd.grad(loss, wrt)])
    for a, b in zip(*grads, strict=True):
        assert_close(a, b.float(), rtol=1e-4, atol=1e-5)


def test_float32_onednn_layer_equals_nn_lstm() -> None:
    """All-ones gate noise: nn.LSTM's output and weight gradients, in float32."""
    torch.manual_seed(3)
    lstm = nn.LSTM(8, 6)
    x = torch.randn(9, 4, 8, requires_grad=True)
    out, (hn, cn) = lstm(x)
    weights = [lstm.weight_ih_l0, lstm.weight_hh_l0, lstm.bias_ih_l0, lstm.bias_hh_l0]
    ref = torch.autograd.grad(out.square().sum() + cn.sum(), [x, *weights])
    zeros = torch.zeros(4, 6)
    ours_out, h, c = _layer(x, weights[0], weights[2], weights[1], weights[3],
                            torch.ones(4, 1, 8), None, zeros, zeros)
    ours = torch.autograd.grad(ours_out.square().sum() + c.sum(), [x, *weights])
    assert_close(ours_out, out, rtol=1e-5, atol=1e-6)
    for a, b in zip(ours, ref, strict=True):
        assert_close(a, b, rtol=1e-4, atol=1e-5)


def test_switched_off_it_is_not_used(monkeypatch: pytest.MonkeyPatch) -> None:
    """float64, or the switch off: torch.mm's path."""
    x = torch.zeros(2, 3)
    assert onednn.usable(x) and not onednn.usable(x.double())
    monkeypatch.setattr(onednn, "enabled", lambda: False)
    assert not onednn.usable(x)


def test_linear_reads_transposed_and_sliced_operands() -> None:
    """x Wᵀ for transposes, row and column slices of wider matrices, an expanded (stride-0)
    operand and a non-contiguous bias, against torch's own product."""
    g = torch.Generator().manual_seed(5)
    wide = torch.randn(40, 4, 9, generator=g)
    w = torch.randn(9, 40, generator=g)
    cases = [
        (wide[:, 1], torch.randn(7, 9, generator=g)),  # rows of a wider matrix
        (wide[:, 2].t(), w),  # a transposed slice
        (torch.randn(9, 40, generator=g).t(), torch.randn(6, 9, generator=g).t().t()),
        (torch.randn(1, 9, generator=g).expand(40, 9), w.t()),  # stride 0
        (wide[::2, 0], wide[1::2, 3].t().t()),  # every other row
    ]
    for x, weight in cases:
        assert_close(onednn.linear(x, weight), x @ weight.t(), rtol=1e-5, atol=1e-5)
    bias = torch.randn(2, 7, generator=g)[1]
    assert_close(onednn.linear(wide[:, 1], cases[0][1], bias), wide[:, 1] @ cases[0][1].t() + bias,
                 rtol=1e-5, atol=1e-5)
