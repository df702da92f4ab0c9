"""Layer modes, state, compatibility (compile, DataParallel, dtypes, autocast) and bad input."""

from __future__ import annotations

import re

import pytest
import torch
from _lstm_reference import _params, _reference_lstm
from torch import nn
from torch.testing import assert_close

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
        if isinstance(layer, NoisyLSTM):
            y, (h_n, c_n) = y  # nn.LSTM's (output, (h_n, c_n))
            assert h_n.dtype == c_n.dtype == dtype
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
        y = y[0] if isinstance(model, NoisyLSTM) else y
        y.sum().backward()
        assert x.grad is not None
    # a second batch size recompiles with dynamic shapes, which must trace too
    assert compiled(torch.randn(5, 3, 4))[0].shape == (5, 3, 3)


@pytest.mark.filterwarnings("ignore:`torch.jit.script` is deprecated:DeprecationWarning")
def test_torch_jit_script_is_refused_with_a_clear_error() -> None:
    """TorchScript cannot type a noise law: every layer, also nested in a torch container, names
    the layer and the alternatives instead of failing inside torch's annotation parser."""
    for layer in _layers():
        with pytest.raises(TypeError, match=f"{type(layer).__name__} cannot be compiled by "
                                            "torch.jit.script.*torch.export"):
            torch.jit.script(nn.Sequential(nn.Identity(), layer))


def test_eval_models_export_to_their_eager_outputs() -> None:
    """In eval mode ξ is E[ξ], so torch.export records the deterministic network, which gives
    the eager module's output on a new input."""
    law = Bernoulli(0.8, inverted=True)
    model = nn.Sequential(NoisyLinear(4, 8, law), nn.ReLU(), NoisyLinear(8, 4, law, "weight"),
                          Residual(nn.Linear(4, 4), depth_noise=law)).eval()
    x, new = torch.randn(5, 4), torch.randn(5, 4)
    exported = torch.export.export(model, (x,)).module()
    assert_close(exported(new), model(new))


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
        y, (h_n, c_n) = lstm(x)
    assert y.dtype == h_n.dtype == c_n.dtype == torch.bfloat16
    low_y, (low_h, low_c) = low(x.to(torch.bfloat16))
    assert torch.equal(y, low_y) and torch.equal(h_n, low_h) and torch.equal(c_n, low_c)
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
    assert_close(lstm(x)[0], _reference_lstm(x, _params(lstm, 0), xi))


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
