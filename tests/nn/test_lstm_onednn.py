"""The untied LSTM's float32 CPU path through oneDNN (``functional._onednn``): the same layer as
the float64 path (gradient-checked in test_lstm_bptt.py) and as nn.LSTM, gradients included.
The input projections take oneDNN from a size on (``_lstm._ONEDNN_MIN_MACS``), and so do the
recurrence's packed per-step products and the gradient of U (``_bptt._PACK_MIN_MACS``,
``_bptt._ONEDNN_GRAD_MIN_ELEMENTS``); these tests set those sizes to 0 so that their small layers
take oneDNN too, except the tests of the dispatch itself and the float32 runs below the sizes."""

import pytest
import torch
from torch import nn
from torch.testing import assert_close

import dropprior.functional._bptt as bptt
import dropprior.functional._lstm as lstm
import dropprior.functional._onednn as onednn
from dropprior.functional import gate_projections, lstm_recurrence

pytestmark = pytest.mark.skipif(not onednn.enabled(),
                                reason="torch's oneDNN linear ops are not available here")


_SIZES = [(lstm, "_ONEDNN_MIN_MACS"), (bptt, "_PACK_MIN_MACS"),
          (bptt, "_ONEDNN_GRAD_MIN_ELEMENTS")]


@pytest.fixture(autouse=True)
def _onednn_at_every_size(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    if "from_a_size_on" not in request.node.name:
        for module, name in _SIZES:
            monkeypatch.setattr(module, name, 0)


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


def test_recurrence_takes_onednn_from_a_size_on(monkeypatch: pytest.MonkeyPatch) -> None:
    """U is packed for the per-step products (forward U, backward Uᵀ) from ``_PACK_MIN_MACS``
    multiply-adds N·4H·H per step on, and the gradient of U goes through oneDNN from
    ``_ONEDNN_GRAD_MIN_ELEMENTS`` elements of U on; below both, torch's products. Every
    combination gives the same outputs and gradients."""
    packs, grads = [], []
    pack, linear = onednn.pack, onednn.linear
    monkeypatch.setattr(onednn, "pack", lambda w, rows: packs.append(w.shape) or pack(w, rows))
    monkeypatch.setattr(onednn, "linear", lambda *a: grads.append(a[1].shape) or linear(*a))
    n, hidden = 3, 4
    leaves = _leaves(n, False, seed=9)
    proj = gate_projections(leaves[0], leaves[1], leaves[2], leaves[5].detach())
    proj = proj.detach().requires_grad_()
    w_hh, h0, c0 = leaves[3], leaves[7], leaves[8]
    per_step = n * 4 * hidden * hidden
    results = {}
    for pack_at, grad_at in [(per_step + 1, w_hh.numel() + 1), (per_step, w_hh.numel())]:
        monkeypatch.setattr(bptt, "_PACK_MIN_MACS", pack_at)
        monkeypatch.setattr(bptt, "_ONEDNN_GRAD_MIN_ELEMENTS", grad_at)
        packs.clear()
        grads.clear()
        out, (h, c) = lstm_recurrence(proj, w_hh, leaves[4], (h0, c0))
        loss = (out * torch.linspace(-1, 1, hidden)).square().sum() + h.sum() + 2 * c.sum()
        results[pack_at] = [out, *torch.autograd.grad(loss, [proj, w_hh, leaves[4], h0, c0])]
        if pack_at > per_step:
            assert packs == [] and grads == []
        else:
            assert packs == [(4 * hidden, hidden), (hidden, 4 * hidden)]  # U, then Uᵀ
            assert grads == [(hidden, proj.shape[0] * n)]  # H̃ᵀ: the gradient of U
    below, above = results.values()
    for a, b in zip(below, above, strict=True):
        assert_close(a, b, rtol=1e-5, atol=1e-5)


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
@pytest.mark.parametrize("sizes", ["onednn", "default"])
def test_float32_onednn_path_equals_the_float64_path(noise_rows: int, recurrent: bool,
                                                     groups: int, sizes: str,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    """Outputs and the gradients of x, both weights, both biases, the gate noise and the
    initial state agree with the float64 computation to float32 accuracy, for untied (one
    noise row per gate) and tied (one shared by the four) gate noise; every product through
    oneDNN, or (``default``) the dispatch's own sizes, under which this small layer's products
    are torch's."""
    if sizes == "default":
        monkeypatch.undo()
        assert all(getattr(module, name) > 0 for module, name in _SIZES)
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
