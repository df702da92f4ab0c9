"""NoisyLSTM against a reference loop in torch's gate order, values and gradients."""

from __future__ import annotations

import pytest
import torch
from _lstm_reference import _params, _reference_lstm
from torch import nn
from torch.testing import assert_close

from dropprior.nn import (
    NoisyLSTM,
)
from dropprior.noise import Bernoulli, Gaussian, Rayleigh

f64 = torch.float64


def gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


# ---- LSTM -----------------------------------------------------------------------------------

@pytest.mark.parametrize("gates", ["tied", "untied"])
def test_lstm_equals_a_reference_loop(gates) -> None:
    law = Gaussian(1.0, 0.4)
    lstm = NoisyLSTM(3, 4, 2, noise=law, gates=gates, generator=gen(12)).double()
    x = torch.randn(5, 2, 3, dtype=f64)
    replay, law64 = gen(12), law.to(dtype=f64)
    rows = 4 if gates == "untied" else 1
    xi0 = law64.sample((rows, 2, 3), generator=replay).expand(4, 2, 3)
    h1 = _reference_lstm(x, _params(lstm, 0), xi0)
    xi1 = law64.sample((rows, 2, 4), generator=replay).expand(4, 2, 4)
    expected = _reference_lstm(h1, _params(lstm, 1), xi1)
    out, (h_n, c_n) = lstm(x)  # nn.LSTM's return: the output and each layer's last state
    assert_close(out, expected)
    assert_close(h_n, torch.stack([h1[-1], expected[-1]]))
    assert c_n.shape == h_n.shape == (2, 2, 4)


@pytest.mark.parametrize("bias", [True, False])
def test_untied_lstm_gradients_equal_the_reference_loop(bias) -> None:
    """Outputs and the gradients of every parameter (b_ih and b_hh enter as one summed bias
    inside the batched projection) against autograd through the per-step reference loop."""
    law = Gaussian(1.0, 0.4)
    lstm = NoisyLSTM(3, 4, noise=law, gates="untied", bias=bias, generator=gen(14)).double()
    x = torch.randn(5, 2, 3, dtype=f64)
    xi = law.to(dtype=f64).sample((4, 2, 3), generator=gen(14))
    params = [lstm.weight_ih_l0, lstm.weight_hh_l0]
    ref_params = [p.detach().clone().requires_grad_() for p in params]
    if bias:
        params += [lstm.bias_ih_l0, lstm.bias_hh_l0]
        ref_params += [p.detach().clone().requires_grad_() for p in params[2:]]
        loop_params = ref_params
    else:
        loop_params = [*ref_params, torch.zeros(16, dtype=f64), torch.zeros(16, dtype=f64)]
    weights = torch.randn(5, 2, 4, dtype=f64)
    (lstm(x)[0] * weights).sum().backward()
    (_reference_lstm(x, loop_params, xi) * weights).sum().backward()
    for p, ref in zip(params, ref_params, strict=True):
        assert_close(p.grad, ref.grad)


@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("rows", [2, 1])
def test_untied_lstm_through_the_fused_kernel_equals_the_reference_loop(bias, rows) -> None:
    """untied_lstm_fused (widened input, block-diagonal W_ih, torch.lstm: the CUDA path) gives
    the reference loop's outputs and parameter gradients, and the recurrence path's final c."""
    from dropprior.functional import gate_projections, lstm_recurrence, untied_lstm_fused

    params = [torch.randn(16, 3, dtype=f64), torch.randn(16, 4, dtype=f64)]
    params += [torch.randn(16, dtype=f64), torch.randn(16, dtype=f64)] if bias else \
        [torch.zeros(16, dtype=f64), torch.zeros(16, dtype=f64)]
    ours = [p.clone().requires_grad_() for p in params]
    ref = [p.clone().requires_grad_() for p in params]
    x = torch.randn(5, 2, 3, dtype=f64)
    xi = Gaussian(1.0, 0.4).to(dtype=f64).sample((4, rows, 3), generator=gen(15))
    zeros = torch.zeros(2, 4, dtype=f64)
    b_ih, b_hh = (ours[2], ours[3]) if bias else (None, None)
    out, (h, c) = untied_lstm_fused(x, ours[0], ours[1], b_ih, b_hh, (zeros, zeros), xi)
    expected = _reference_lstm(x, ref, xi.expand(4, 2, 3))
    assert_close(out, expected)
    assert_close(h, expected[-1])
    proj = gate_projections(x, params[0], params[2] + params[3], xi.expand(4, 2, 3))
    assert_close(c, lstm_recurrence(proj, params[1], None, (zeros, zeros))[1][1])
    weights = torch.randn(5, 2, 4, dtype=f64)
    (out * weights).sum().backward()
    (expected * weights).sum().backward()
    for p, r in zip(ours[:4] if bias else ours[:2], ref, strict=False):
        assert_close(p.grad, r.grad)


def test_lstm_recurrent_noise_and_batch_first() -> None:
    lstm = NoisyLSTM(3, 4, noise=Gaussian(1.0, 0.4), gates="untied", batch_first=True,
                     recurrent_noise=Gaussian(1.0, 0.2), generator=gen(13)).double()
    x = torch.randn(2, 5, 3, dtype=f64)
    replay = gen(13)
    xi = Gaussian(1.0, 0.4).to(dtype=f64).sample((4, 2, 3), generator=replay)
    rec = Gaussian(1.0, 0.2).to(dtype=f64).sample((2, 4), generator=replay)
    ref = _reference_lstm(x.transpose(0, 1), _params(lstm, 0), xi, rec).transpose(0, 1)
    assert_close(lstm(x)[0], ref)


def test_lstm_eval_is_nn_lstm_with_scaled_inputs() -> None:
    lstm = NoisyLSTM(3, 4, noise=Rayleigh(0.5), gates="untied").eval()
    reference = nn.LSTM(3, 4)
    reference.load_state_dict(lstm.state_dict())
    x = torch.randn(5, 2, 3)
    out, (h_n, c_n) = lstm(x)
    ref_out, (ref_h, ref_c) = reference(x * Rayleigh(0.5).mean)
    assert_close(out, ref_out)
    assert_close(h_n, ref_h)
    assert_close(c_n, ref_c)


def test_lstm_group_norms() -> None:
    tied = NoisyLSTM(3, 4, noise=Gaussian(1.0, 0.4))
    untied = NoisyLSTM(3, 4, noise=Gaussian(1.0, 0.4), gates="untied")
    assert tied.group_norms().shape == (3,)
    assert untied.group_norms().shape == (4, 3)
    untied.load_state_dict(tied.state_dict())
    # the four gates' groups of input d together hold the tied group of input d
    assert_close(untied.group_norms().pow(2).sum(0), tied.group_norms().pow(2))
    assert_close(tied.group_norms(), tied.weight_ih_l0.norm(dim=0))


def test_lstm_output_keeps_the_output_for_a_sequential() -> None:
    """LSTMOutput after an LSTM in nn.Sequential: the same as unpacking by hand, for NoisyLSTM
    and nn.LSTM alike; anything but an LSTM's result is refused by name."""
    from dropprior.nn import LSTMOutput

    for lstm in (NoisyLSTM(3, 4, noise=Rayleigh(0.5)).eval(), nn.LSTM(3, 4)):
        x = torch.randn(5, 2, 3)
        assert_close(nn.Sequential(lstm, LSTMOutput())(x), lstm(x)[0])
        packed = torch.nn.utils.rnn.pack_sequence([torch.randn(4, 3), torch.randn(2, 3)])
        out = nn.Sequential(lstm, LSTMOutput())(packed)
        assert isinstance(out, torch.nn.utils.rnn.PackedSequence)
        assert_close(out.data, lstm(packed)[0].data)
    with pytest.raises(TypeError, match=r"LSTMOutput takes an LSTM's \(output, \(h_n, c_n\)\), "
                                        r"got torch.Tensor"):
        LSTMOutput()(torch.randn(5, 2, 3))


def test_unbatched_input_is_nn_lstms() -> None:
    """(T, D) input with (num_layers, H) states, as nn.LSTM takes it: in eval mode (E[ξ] = 1 on
    each layer's input) nn.LSTM's own unbatched result; in training mode the batch-of-one result
    under the same draws, tied and untied, batch_first or not."""
    lstm = NoisyLSTM(3, 4, 2, noise=Rayleigh.with_mean(1.0), gates="untied").eval()
    reference = nn.LSTM(3, 4, 2)
    reference.load_state_dict(lstm.state_dict())
    x, h0, c0 = torch.randn(5, 3), torch.randn(2, 4), torch.randn(2, 4)
    out, (h_n, c_n) = lstm(x, (h0, c0))
    ref_out, (ref_h, ref_c) = reference(x, (h0, c0))
    assert out.shape == (5, 4) and h_n.shape == c_n.shape == (2, 4)
    assert_close(out, ref_out)
    assert_close(h_n, ref_h)
    assert_close(c_n, ref_c)
    for gates in ("tied", "untied"):
        for batch_first in (False, True):
            layer = NoisyLSTM(3, 4, noise=Gaussian(1.0, 0.4), gates=gates,
                              batch_first=batch_first, generator=gen(21)).train()
            single, (h1, c1) = layer(x)
            layer.generator.manual_seed(21)
            batched, (hb, cb) = layer(x.unsqueeze(0 if batch_first else 1))
            assert_close(single, batched.squeeze(0 if batch_first else 1))
            assert_close(h1, hb[:, 0])
            assert_close(c1, cb[:, 0])
    with pytest.raises(ValueError, match=r"hx: h_0 must have shape \(num_layers, hidden_size\) "
                                         r"for unbatched input \(T, D\) = \(1, 4\), got "
                                         r"\(1, 2, 4\)"):
        layer(x, (torch.zeros(1, 2, 4), torch.zeros(1, 2, 4)))
    with pytest.raises(ValueError, match=r"or \(T, D\) unbatched, with D = 3, got \(5, 2\)"):
        layer(torch.randn(5, 2))


# ---- DropConnect on the recurrent weights (AWD-LSTM's WeightDrop) ----------------------------

@pytest.mark.parametrize("dtype", [torch.float32, f64])
@pytest.mark.parametrize("gates", ["tied", "untied"])
def test_recurrent_weight_noise_is_nn_lstm_with_the_masked_weight(gates, dtype) -> None:
    """Bernoulli(0.7, inverted) on U is WeightDrop at p = 0.3: one mask Ξ^U ∈ {0, 1/0.7} per
    call; outputs, final states and every gradient equal nn.LSTM's with weight_hh = U ⊙ Ξ^U (U's
    gradient: weight_hh's, masked). Ξ^U replayed: the law's sample in float64, the fused
    kernel's draw in float32."""
    from dropprior.functional import fused_plan, fused_sample

    law = Bernoulli(0.7, inverted=True)
    lstm = NoisyLSTM(3, 4, noise=Bernoulli(1.0, inverted=True), gates=gates,
                     recurrent_weight_noise=law, generator=gen(21)).to(dtype)
    if dtype == f64:
        mask = law.to(dtype=f64).sample((16, 4), generator=gen(21))
    else:
        plan = fused_plan(law, torch.empty(16, 4))
        assert plan is not None
        mask = fused_sample(torch.empty(16, 4), plan, gen(21))
    values = mask.unique()
    assert values.tolist() == [0.0, pytest.approx(1 / 0.7)]
    reference = nn.LSTM(3, 4).to(dtype)
    reference.load_state_dict(lstm.state_dict())
    with torch.no_grad():
        reference.weight_hh_l0.mul_(mask)
    x = torch.randn(6, 2, 3, dtype=dtype)
    out, (h, c) = lstm(x)
    ref_out, (ref_h, ref_c) = reference(x)
    for ours, theirs in ((out, ref_out), (h, ref_h), (c, ref_c)):
        assert_close(ours, theirs)
    g = torch.randn_like(out)
    (out * g).sum().backward()
    (ref_out * g).sum().backward()
    for name, p in lstm.named_parameters():
        expected = getattr(reference, name).grad
        assert_close(p.grad, expected * mask if name == "weight_hh_l0" else expected)


@pytest.mark.parametrize("gates", ["tied", "untied"])
def test_recurrent_weight_noise_draws_each_layer_once_per_call(gates) -> None:
    """Two layers: each layer's Ξ^U drawn before its input noise, in layer order, against the
    reference loop; a second call draws afresh."""
    law, weight_law = Gaussian(1.0, 0.4), Rayleigh(0.8)
    lstm = NoisyLSTM(3, 4, 2, noise=law, gates=gates, recurrent_weight_noise=weight_law,
                     generator=gen(22)).double()
    x = torch.randn(5, 2, 3, dtype=f64)
    replay, law64, weight64 = gen(22), law.to(dtype=f64), weight_law.to(dtype=f64)
    rows = 4 if gates == "untied" else 1
    seq = x
    for layer, width in ((0, 3), (1, 4)):
        w_ih, w_hh, b_ih, b_hh = _params(lstm, layer)
        masked = w_hh * weight64.sample((16, 4), generator=replay)
        xi = law64.sample((rows, 2, width), generator=replay).expand(4, 2, width)
        seq = _reference_lstm(seq, [w_ih, masked, b_ih, b_hh], xi)
    first = lstm(x)[0]
    assert_close(first, seq)
    assert not torch.allclose(lstm(x)[0], first)


def test_recurrent_weight_noise_in_eval_scales_u_by_the_mean() -> None:
    lstm = NoisyLSTM(3, 4, noise=Rayleigh(0.5), recurrent_weight_noise=Bernoulli(0.7)).eval()
    reference = nn.LSTM(3, 4)
    reference.load_state_dict(lstm.state_dict())
    with torch.no_grad():
        reference.weight_hh_l0.mul_(0.7)
    x = torch.randn(5, 2, 3)
    assert_close(lstm(x)[0], reference(x * Rayleigh(0.5).mean)[0])


@pytest.mark.parametrize("gates", ["tied", "untied"])
def test_recurrent_weight_noise_on_a_packed_sequence(gates) -> None:
    """Sequences of equal length packed and padded give the same output under the same seed
    (the input noise is 1, so only Ξ^U, drawn first, is random)."""
    from torch.nn.utils.rnn import pack_padded_sequence

    def make() -> NoisyLSTM:
        torch.manual_seed(0)
        return NoisyLSTM(3, 4, noise=Bernoulli(1.0, inverted=True), gates=gates,
                         recurrent_weight_noise=Rayleigh(0.8), generator=gen(23)).double()

    x = torch.randn(5, 2, 3, dtype=f64)
    padded = make()(x)[0]
    packed = make()(pack_padded_sequence(x, [5, 5]))[0]
    assert_close(packed.data, padded.reshape(10, 4))


def test_repr_shows_sizes_and_every_law_set() -> None:
    law, rec, weight = (Bernoulli(0.7, inverted=True), Bernoulli(0.8, inverted=True),
                        Bernoulli(0.5, inverted=True))
    text = repr(NoisyLSTM(3, 4, 2, noise=law, recurrent_noise=rec, recurrent_weight_noise=weight))
    assert text == (f"NoisyLSTM(3, 4, num_layers=2, noise={law!r}, structure='tied', "
                    f"granularity='sequence', recurrent_noise={rec!r}, "
                    f"recurrent_weight_noise={weight!r})")
    assert repr(NoisyLSTM(3, 4, noise=law)) == (f"NoisyLSTM(3, 4, noise={law!r}, "
                                                "structure='tied', granularity='sequence')")
