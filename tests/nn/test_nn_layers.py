"""Layers against independent references given the same draw: explicit loops, torch's layers."""

from __future__ import annotations

import re

import pytest
import scipy.stats
import torch
import torch.nn.functional as F
from _nn_laws import LAWS
from torch import nn
from torch.testing import assert_close

from dropprior.functional import dropconnect_linear
from dropprior.nn import (
    NoisyConv1d,
    NoisyConv2d,
    NoisyLinear,
    NoisyLSTM,
    Residual,
    apply_noise,
    mc,
)
from dropprior.noise import Bernoulli, Gaussian, HalfCauchy, Rayleigh

f64 = torch.float64


def gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


# ---- NoisyLinear ----------------------------------------------------------------------------

def test_linear_unit_is_dropout_then_linear() -> None:
    layer = NoisyLinear(6, 4, Bernoulli(0.7, inverted=True), generator=gen(1)).double()
    x = torch.randn(9, 6, dtype=f64)
    mask = torch.rand((9, 6), dtype=f64, generator=gen(1)) < 0.7  # the layer's draw, replayed
    assert_close(layer(x), F.linear(x * mask / 0.7, layer.weight, layer.bias))


@pytest.mark.parametrize("name", ["bernoulli", "gaussian", "inverse_nakagami"])
def test_exact_dropconnect_equals_explicit_per_example_weights(name) -> None:
    """Chunked forward and regenerated backward against autograd on explicit Ξ_n ⊙ W."""
    law = LAWS[name].to(dtype=f64)
    x = torch.randn(7, 5, dtype=f64, requires_grad=True)
    w = torch.randn(3, 5, dtype=f64, requires_grad=True)
    y = dropconnect_linear(x, w, None, law, generator=gen(2), max_elements=40)  # 3 chunks
    g = torch.randn(7, 3, dtype=f64)
    gx, gw = torch.autograd.grad(y, (x, w), g)
    replay = gen(2)  # chunks of 2 examples, drawn in order
    xi = torch.cat([law.sample((e - s, 3, 5), generator=replay)
                    for s, e in [(0, 2), (2, 4), (4, 6), (6, 7)]])
    ref = torch.einsum("ni,noi->no", x, xi * w)
    rx, rw = torch.autograd.grad(ref, (x, w), g)
    assert_close(y, ref)
    assert_close(gx, rx)
    assert_close(gw, rw)


def test_local_reparam_matches_exact_dropconnect_in_distribution() -> None:
    law = Gaussian(1.0, 0.6)
    exact = NoisyLinear(8, 3, law, "weight", generator=gen(3)).double()
    local = NoisyLinear(8, 3, law, "weight", local_reparam=True, generator=gen(4)).double()
    local.load_state_dict(exact.state_dict())
    x = torch.randn(1, 8, dtype=f64).expand(4000, 8)
    with torch.no_grad():
        a, b = exact(x), local(x)
        wrong = NoisyLinear(8, 3, Gaussian(1.0, 0.9), "weight", generator=gen(5)).double()
        wrong.load_state_dict(exact.state_dict())
        c = wrong(x)
    for o in range(3):
        assert scipy.stats.ks_2samp(a[:, o], b[:, o]).pvalue > 1e-3
        assert scipy.stats.ks_2samp(c[:, o], b[:, o]).pvalue < 1e-6  # the test has power


def test_linear_batch_dropconnect_shares_one_mask() -> None:
    layer = NoisyLinear(4, 2, Bernoulli(0.5), "weight", "batch", bias=False, generator=gen(6))
    x = torch.randn(1, 4).expand(5, 4)
    y = layer(x)
    assert_close(y, y[:1].expand_as(y))


# ---- convolutions ---------------------------------------------------------------------------

def _pair_reference(x, weight, scales):
    """a_{n,f} = Σ_c conv(X_{n,c}, W_{f,c}) s_{n,f,c}: a loop over (example, filter, channel)."""
    n, c = x.shape[:2]
    out = []
    for i in range(n):
        filters = []
        for f in range(weight.shape[0]):
            acc = sum(F.conv2d(x[i:i + 1, ch:ch + 1], weight[f:f + 1, ch:ch + 1] * scales[i, f, ch])
                      for ch in range(c))
            filters.append(acc)
        out.append(torch.cat(filters, 1))
    return torch.cat(out)


@pytest.mark.parametrize("structure", ["channel", "channel+filter", "weight"])
def test_conv_pair_and_weight_noise_equal_an_explicit_loop(structure) -> None:
    law = Rayleigh(0.8)
    conv = NoisyConv2d(3, 4, 3, law, structure, bias=False, generator=gen(8)).double()
    x = torch.randn(2, 3, 6, 6, dtype=f64)
    replay, law64 = gen(8), law.to(dtype=f64)
    kernel = (3, 3) if structure == "weight" else (1, 1)
    scales = law64.sample((2, 4, 3, *kernel), generator=replay)
    if structure == "channel+filter":
        scales = scales * law64.sample((2, 4, 1, 1, 1), generator=replay)
    assert_close(conv(x), _pair_reference(x, conv.weight, scales))


def test_conv_filter_is_dropout2d_on_the_output() -> None:
    conv = NoisyConv2d(3, 5, 3, Bernoulli(0.6, inverted=True), "filter", bias=False,
                       generator=gen(9)).double()
    x = torch.randn(4, 3, 7, 7, dtype=f64)
    y = conv(x)
    mask = torch.rand((4, 5, 1, 1), dtype=f64, generator=gen(9)) < 0.6
    # nn.Dropout2d's semantics: whole output channels zeroed, survivors scaled by 1/(1-p)
    assert_close(y, F.conv2d(x, conv.weight) * mask / 0.6)


def test_conv1d_channel_runs_and_eval_uses_the_mean() -> None:
    conv = NoisyConv1d(2, 3, 3, Gaussian(1.0, 0.3), "channel", padding=1)
    x = torch.randn(4, 2, 10)
    assert conv(x).shape == (4, 3, 10)
    conv.eval()
    assert_close(conv(x), F.conv1d(x, conv.weight, conv.bias, padding=1))


# ---- residual -------------------------------------------------------------------------------

@pytest.mark.parametrize("granularity", ["example", "batch"])
def test_residual_add_is_stochastic_depth(granularity) -> None:
    lin = nn.Linear(5, 5, bias=False).double()
    block = Residual(nn.Sequential(lin, nn.ReLU()), depth_noise=Bernoulli(0.7, inverted=True),
                     granularity=granularity, generator=gen(10))
    h = torch.randn(8, 5, dtype=f64)
    rows = 8 if granularity == "example" else 1
    tau = (torch.rand((rows, 1), dtype=f64, generator=gen(10)) < 0.7) / 0.7
    out = block(h)
    # torchvision's StochasticDepth: input * noise, noise = bernoulli(survival) / survival,
    # applied to the block's output, then the skip connection
    assert_close(out, tau * F.relu(h @ lin.weight.T) + h)
    assert_close(out, F.relu(tau * (h @ lin.weight.T)) + h)


def test_residual_ard_add_multiplies_both_draws() -> None:
    lin = nn.Linear(4, 4, bias=False).double()
    block = Residual(lin, depth_noise=Gaussian(1.0, 0.3), unit_noise=Rayleigh(1.0),
                     generator=gen(11))
    h = torch.randn(6, 4, dtype=f64)
    replay = gen(11)
    xi = Rayleigh(1.0).to(dtype=f64).sample((6, 4), generator=replay)
    tau = Gaussian(1.0, 0.3).to(dtype=f64).sample((6, 1), generator=replay)
    assert_close(block(h), (tau * h * xi) @ lin.weight.T + h)
    assert block.group_norms().shape == (1,)


# ---- LSTM -----------------------------------------------------------------------------------

def _reference_lstm(x, params, gate_noise, rec_noise=None):
    """Per-step loop, torch's gate order (i, f, g, o); gate_noise (4, N, D) reused every step."""
    w_ih, w_hh, b_ih, b_hh = params
    hidden = w_hh.shape[1]
    h = x.new_zeros(x.shape[1], hidden)
    c = x.new_zeros(x.shape[1], hidden)
    outs = []
    for t in range(x.shape[0]):
        hh = h if rec_noise is None else h * rec_noise
        pre = [(x[t] * gate_noise[k]) @ w_ih[k * hidden:(k + 1) * hidden].T
               + b_ih[k * hidden:(k + 1) * hidden]
               + hh @ w_hh[k * hidden:(k + 1) * hidden].T + b_hh[k * hidden:(k + 1) * hidden]
               for k in range(4)]
        i, f, g, o = torch.sigmoid(pre[0]), torch.sigmoid(pre[1]), torch.tanh(pre[2]), \
            torch.sigmoid(pre[3])
        c = f * c + i * g
        h = o * torch.tanh(c)
        outs.append(h)
    return torch.stack(outs)


def _params(lstm, layer):
    return [getattr(lstm, f"{n}_l{layer}") for n in
            ("weight_ih", "weight_hh", "bias_ih", "bias_hh")]


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
    assert_close(lstm(x), _reference_lstm(h1, _params(lstm, 1), xi1))


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
    (lstm(x) * weights).sum().backward()
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
    assert_close(lstm(x), ref)


def test_lstm_eval_is_nn_lstm_with_scaled_inputs() -> None:
    lstm = NoisyLSTM(3, 4, noise=Rayleigh(0.5), gates="untied").eval()
    reference = nn.LSTM(3, 4)
    reference.load_state_dict(lstm.state_dict())
    x = torch.randn(5, 2, 3)
    assert_close(lstm(x), reference(x * Rayleigh(0.5).mean)[0])


def test_lstm_group_norms() -> None:
    tied = NoisyLSTM(3, 4, noise=Gaussian(1.0, 0.4))
    untied = NoisyLSTM(3, 4, noise=Gaussian(1.0, 0.4), gates="untied")
    assert tied.group_norms().shape == (3,)
    assert untied.group_norms().shape == (4, 3)
    untied.load_state_dict(tied.state_dict())
    # the four gates' groups of input d together hold the tied group of input d
    assert_close(untied.group_norms().pow(2).sum(0), tied.group_norms().pow(2))
    assert_close(tied.group_norms(), tied.weight_ih_l0.norm(dim=0))


# ---- modes, state, compatibility ------------------------------------------------------------

def test_eval_is_deterministic_and_mc_samples_including_torch_dropout() -> None:
    model = nn.Sequential(NoisyLinear(4, 8, Gaussian(1.0, 0.5)), nn.Dropout(0.5),
                          nn.Linear(8, 1)).eval()
    x = torch.randn(3, 4)
    assert torch.equal(model(x), model(x))
    with mc(model):
        assert not model[0].training and model[1].training
        assert not torch.equal(model(x), model(x))
    assert not model[1].training
    assert torch.equal(model(x), model(x))


def test_eval_with_half_cauchy_points_to_mc() -> None:
    layer = NoisyLinear(3, 2, HalfCauchy(1.0)).eval()
    with pytest.raises(ValueError, match="mc\\(model\\)"):
        layer(torch.randn(2, 3))
    with mc(layer):
        assert layer(torch.randn(2, 3)).shape == (2, 2)


def _layers():
    law = Bernoulli(0.8, inverted=True)
    return [NoisyLinear(4, 3, law), NoisyLinear(4, 3, law, "weight"),
            NoisyConv2d(2, 3, 3, law, "channel+filter"), NoisyConv1d(2, 3, 3, law, "filter"),
            NoisyLSTM(4, 3, 2, noise=law, gates="untied"),
            Residual(nn.Linear(4, 4), depth_noise=law)]


def test_state_dict_round_trips() -> None:
    for layer, fresh in zip(_layers(), _layers(), strict=True):
        fresh.load_state_dict(layer.state_dict())
        for (k, v), (k2, v2) in zip(layer.state_dict().items(), fresh.state_dict().items(),
                                    strict=True):
            assert k == k2 and torch.equal(v, v2)


@pytest.mark.parametrize("dtype", [torch.float64, torch.bfloat16])
def test_layers_run_in_dtype(dtype) -> None:
    inputs = [torch.randn(5, 4), torch.randn(5, 4), torch.randn(2, 2, 6, 6),
              torch.randn(2, 2, 6), torch.randn(3, 2, 4), torch.randn(5, 4)]
    for layer, x in zip(_layers(), inputs, strict=True):
        layer = layer.to(dtype)
        y = layer(x.to(dtype))
        y.float().sum().backward()
        assert y.dtype == dtype


def test_group_norm_shapes() -> None:
    shapes = [(4,), (3, 4), (2, 3), (3,), (4, 4), (1,)]
    for layer, shape in zip(_layers(), shapes, strict=True):
        assert layer.group_norms().shape == shape


def test_torch_compile_without_graph_breaks() -> None:
    """fullgraph=True fails on any graph break; the eager backend keeps the test fast."""
    law = Gaussian(1.0, 0.5)
    cases = [
        (nn.Sequential(NoisyLinear(4, 3, law), nn.ReLU(), NoisyLinear(3, 4, law, "weight"),
                       Residual(nn.Linear(4, 4), depth_noise=Bernoulli(0.8, inverted=True))),
         torch.randn(5, 4)),
        (nn.Sequential(NoisyConv2d(2, 3, 3, law, "channel+filter"),
                       NoisyConv2d(3, 3, 3, Bernoulli(0.8, inverted=True), "filter")),
         torch.randn(2, 2, 7, 7)),
        (NoisyLSTM(4, 3, noise=law, gates="untied"), torch.randn(5, 2, 4)),
        (NoisyLSTM(4, 3, noise=law, gates="tied"), torch.randn(5, 2, 4)),
    ]
    for model, x in cases:
        x.requires_grad_(True)
        compiled = torch.compile(model, fullgraph=True, backend="eager")
        y = compiled(x)
        y.sum().backward()
        assert x.grad is not None
    # a second batch size recompiles with dynamic shapes, which must trace too
    assert compiled(torch.randn(5, 3, 4)).shape == (5, 3, 3)


def test_data_parallel_wrapper_runs() -> None:
    """On CPU DataParallel calls the module directly; replicas' independence is the
    draw_generator mechanism (tested in test_nn_functional.py)."""
    layer = nn.DataParallel(NoisyLinear(4, 3, Gaussian(1.0, 0.5)))
    assert layer(torch.randn(6, 4)).shape == (6, 3)


def test_apply_noise_converts_and_reports(capsys) -> None:
    model = nn.Sequential(nn.Linear(4, 8), nn.Dropout(0.5), nn.Linear(8, 2))
    x = torch.randn(3, 4)
    before = model.eval()(x)
    apply_noise(model, Gaussian(1.0, 0.5))
    out = capsys.readouterr().out
    assert "1 + 2: Dropout(p=0.5" in out and "Identity + NoisyLinear" in out
    assert_close(model(x), before)  # E[ξ] = 1 in eval mode
    apply_noise(model, Gaussian(1.0, 0.5), "weight", layers=["linear"])
    assert isinstance(model[0], NoisyLinear) and model[0].structure == "weight"
    assert model[2].structure == "unit"  # the dropout's layer is not converted twice
    assert_close(model(x), before)
    conv = nn.Sequential(nn.Conv2d(2, 3, 3), nn.LSTM(3, 3))
    apply_noise(conv, Rayleigh.with_mean(1.0), layers=["conv", "lstm"], verbose=False)
    assert isinstance(conv[0], NoisyConv2d) and isinstance(conv[1], NoisyLSTM)


# ---- bad input ------------------------------------------------------------------------------

def test_bad_layer_input() -> None:
    law = Bernoulli(0.5)
    with pytest.raises(ValueError, match=r"\(\*, 4\)"):
        NoisyLinear(4, 2, law)(torch.randn(3, 5))
    with pytest.raises(ValueError, match=r"\(N, 2, H, W\)"):
        NoisyConv2d(2, 3, 3, law)(torch.randn(2, 6, 6))
    with pytest.raises(ValueError, match="D = 4"):
        NoisyLSTM(4, 3, noise=law)(torch.randn(5, 2, 3))
    with pytest.raises(ValueError, match=r"'dropconnect'.*\['unit', 'weight'\]"):
        NoisyLinear(4, 2, law, "dropconnect")
    with pytest.raises(ValueError, match=r"'tiles'.*'channel', 'filter', 'channel\+filter'"):
        NoisyConv2d(2, 3, 3, law, "tiles")
    with pytest.raises(ValueError, match="'gates'|gates="):
        NoisyLSTM(4, 3, noise=law, gates="per-gate")
    with pytest.raises(ValueError, match="exact only for Gaussian"):
        NoisyLinear(4, 2, law, "weight", local_reparam=True)
    with pytest.raises(ValueError, match="depth_noise"):
        Residual(nn.Linear(2, 2))
    with pytest.raises(TypeError, match="NoiseLaw"):
        NoisyLSTM(4, 3)
    with pytest.raises(ValueError, match="in_features"):
        NoisyLinear(0, 2, law)


@pytest.mark.parametrize("gates", ["tied", "untied"])
def test_lstm_bad_state_and_dtype(gates) -> None:
    """A wrong (h_0, c_0) or a dtype mismatch is named, not left to torch's kernels (a state of
    another batch size would otherwise run silently on the tied path)."""
    lstm = NoisyLSTM(3, 4, noise=Bernoulli(0.5), gates=gates)
    x = torch.randn(5, 2, 3)
    for bad, shape in (((1, 3, 4), "(1, 3, 4)"), ((1, 2, 5), "(1, 2, 5)"), ((2, 4), "(2, 4)")):
        with pytest.raises(ValueError, match=r"h_0 must have shape .*\(1, 2, 4\), got " +
                           re.escape(shape)):
            lstm(x, (torch.zeros(bad), torch.zeros(bad)))
    with pytest.raises(ValueError, match=r"c_0 .*got \(1, 2, 3\)"):
        lstm(x, (torch.zeros(1, 2, 4), torch.zeros(1, 2, 3)))
    with pytest.raises(TypeError, match="tuple \\(h_0, c_0\\)"):
        lstm(x, torch.zeros(1, 2, 4))
    with pytest.raises(TypeError, match="torch.float32 but the input is torch.float64"):
        lstm(x.double())
    with pytest.raises(TypeError, match="h_0 is torch.float64"):
        lstm(x, (torch.zeros(1, 2, 4, dtype=f64), torch.zeros(1, 2, 4)))


@pytest.mark.parametrize("gates", ["tied", "untied"])
def test_lstm_under_autocast_is_the_bfloat16_module(gates) -> None:
    """Under CPU autocast (bfloat16) the LSTM runs in bfloat16, as nn.LSTM does, with float32
    parameters that get gradients: the same output as the module converted to bfloat16."""
    law = Gaussian(1.0, 0.4)
    lstm = NoisyLSTM(3, 4, noise=law, gates=gates, generator=gen(15))
    low = NoisyLSTM(3, 4, noise=law, gates=gates, generator=gen(15))
    low.load_state_dict(lstm.state_dict())
    low = low.to(torch.bfloat16)
    x = torch.randn(5, 2, 3)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        y = lstm(x)
    assert y.dtype == torch.bfloat16
    assert torch.equal(y, low(x.to(torch.bfloat16)))
    y.float().sum().backward()
    assert lstm.weight_ih_l0.grad is not None and lstm.weight_ih_l0.grad.dtype == torch.float32


def test_apply_noise_and_mc_bad_input() -> None:
    with pytest.raises(TypeError, match="nn.Module"):
        apply_noise("model", Gaussian(1.0, 0.5))  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"'attention'.*'dropout', 'linear', 'conv', 'lstm'"):
        apply_noise(nn.Linear(2, 2), Gaussian(1.0, 0.5), layers=["attention"])
    with pytest.raises(TypeError, match="nn.Module"):
        with mc("model"):  # type: ignore[arg-type]
            pass


def test_apply_noise_reports_what_it_leaves_unchanged(capsys) -> None:
    model = nn.Sequential(nn.LSTM(3, 3, bidirectional=True))
    apply_noise(model, Gaussian(1.0, 0.5), layers=["lstm"])
    assert "left unchanged: bidirectional" in capsys.readouterr().out
    assert type(model[0]) is nn.LSTM


def test_multiplicative_noise_module_in_a_model() -> None:
    from dropprior.nn import MultiplicativeNoise

    layer = MultiplicativeNoise(Bernoulli(0.5, inverted=True), "channel", generator=gen(20))
    y = layer(torch.ones(4, 3, 2, 2))
    assert torch.equal(y, y[:, :, :1, :1].expand_as(y))
    assert set(y.unique().tolist()) <= {0.0, 2.0}
    layer.eval()
    assert torch.equal(layer(torch.ones(4, 3, 2, 2)), torch.ones(4, 3, 2, 2))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_untied_lstm_on_cuda_equals_the_reference_loop() -> None:
    """On CUDA the untied layer runs through cuDNN (untied_lstm_fused); same draw, same output."""
    law = Gaussian(1.0, 0.4)
    lstm = NoisyLSTM(3, 4, noise=law, gates="untied",
                     generator=torch.Generator("cuda").manual_seed(16)).cuda().double()
    x = torch.randn(5, 2, 3, dtype=f64, device="cuda")
    xi = law.to("cuda", f64).sample((4, 2, 3), generator=torch.Generator("cuda").manual_seed(16))
    assert_close(lstm(x), _reference_lstm(x, _params(lstm, 0), xi))


WEIGHT_LAYERS = {
    "linear unit": lambda: NoisyLinear(6, 4, Gaussian(1.0, 0.4), "unit", generator=gen(17)),
    "linear weight": lambda: NoisyLinear(6, 4, Gaussian(1.0, 0.4), "weight", generator=gen(17)),
    "linear local reparam": lambda: NoisyLinear(6, 4, Gaussian(1.0, 0.4), "weight",
                                                local_reparam=True, generator=gen(17)),
    **{f"conv {s}": (lambda s=s: NoisyConv2d(2, 3, 3, Gaussian(1.0, 0.4), s, generator=gen(17)))
       for s in ("channel", "filter", "channel+filter", "weight")},
}


@pytest.mark.parametrize("name", list(WEIGHT_LAYERS))
def test_weight_layers_under_autocast_are_the_bfloat16_module(name) -> None:
    """Under CPU autocast every structure's output is bfloat16, as torch's layers give: the
    output of the module converted to bfloat16 (same draws), with float32 parameter gradients."""
    layer, low = WEIGHT_LAYERS[name](), WEIGHT_LAYERS[name]()
    low.load_state_dict(layer.state_dict())
    low = low.to(torch.bfloat16)
    x = torch.randn(5, 6) if name.startswith("linear") else torch.randn(5, 2, 7, 7)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        y = layer(x)
    assert y.dtype == torch.bfloat16
    assert_close(y, low(x.to(torch.bfloat16)), rtol=2e-2, atol=2e-2)
    y.float().sum().backward()
    assert layer.weight.grad is not None and layer.weight.grad.dtype == torch.float32


@pytest.mark.parametrize("name", list(WEIGHT_LAYERS))
def test_weight_layers_reject_an_input_of_another_dtype(name) -> None:
    layer = WEIGHT_LAYERS[name]()
    x = torch.randn(5, 6) if name.startswith("linear") else torch.randn(5, 2, 7, 7)
    with pytest.raises(TypeError, match=r"parameters are torch.float32 but the input is "
                                        r"torch.float64; convert one of them"):
        layer(x.double())
    layer.eval()
    with pytest.raises(TypeError, match="torch.float64"):
        layer(x.double())
