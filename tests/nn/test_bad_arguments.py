"""Bad arguments found by fuzzing get a clear error naming the value (never a silent truthy
reading or a crash inside torch); the edge cases that are valid give torch's answer."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from dropprior.functional import draw_noise, multiplicative_noise
from dropprior.nn import NoisyConv2d, NoisyLinear, NoisyLSTM, StackedNoisyLinear, apply_noise
from dropprior.noise import Bernoulli, Gaussian, InverseNakagami, Rayleigh

LAW = Bernoulli(0.5)


@pytest.mark.parametrize(("make", "match"), [
    (lambda: NoisyLinear(2, 2, LAW, "weight", local_reparam="no"),
     "local_reparam must be True or False, got 'no'"),
    (lambda: NoisyLinear(2, 2, LAW, bias="no"), "bias must be True or False, got 'no'"),
    (lambda: NoisyLSTM(2, 2, noise=LAW, recurrent_weight_noise=0.5),
     "recurrent_weight_noise must be a dropprior.noise.NoiseLaw .*got 0.5"),
    (lambda: NoisyConv2d(2, 3, 3, LAW, bias=1), "bias must be True or False, got 1"),
    (lambda: NoisyLSTM(2, 3, noise=LAW, batch_first="no"),
     "batch_first must be True or False, got 'no'"),
    (lambda: multiplicative_noise(torch.ones(2, 2), LAW, training="no"),
     "training must be True or False, got 'no'"),
    (lambda: Bernoulli(keep=True), r"real number .* got True \(bool\)"),
    (lambda: Bernoulli(0.5, inverted="no"), "inverted must be True or False, got 'no'"),
    (lambda: Rayleigh(True), r"real number .* got True \(bool\)"),
    (lambda: Gaussian("1", 0.5), r"got '1' \(str\)"),
    (lambda: Rayleigh(None), r"got None \(NoneType\)"),
    (lambda: InverseNakagami(2.0, 1 + 2j), r"got \(1\+2j\) \(complex\)"),
    (lambda: Rayleigh(1.0).sample((3,), generator="seed"),
     "generator must be a torch.Generator or None, got 'seed'"),
    (lambda: NoisyLSTM(2, 3, noise=LAW)([torch.ones(2, 1, 2)]),
     r"NoisyLSTM takes a tensor of shape \(T, N, D\) or a PackedSequence, got list"),
    (lambda: apply_noise(torch.nn.Sequential(torch.nn.Dropout(0.2)), "bernoulli", verbose="no"),
     "verbose must be True or False, got 'no'"),
    # a seed where a generator belongs was accepted and failed at the first draw
    (lambda: NoisyLinear(2, 2, LAW, generator=0),
     "generator must be a torch.Generator or None, got 0"),
    (lambda: NoisyConv2d(2, 3, 3, LAW, generator="g"),
     "generator must be a torch.Generator or None, got 'g'"),
    (lambda: NoisyLSTM(2, 3, noise=LAW, generator=1), "generator must be a torch.Generator"),
    (lambda: StackedNoisyLinear(2, 2, 2, LAW, generators=[torch.Generator(), 7]),
     r"generators\[1\] must be a torch.Generator or None, got 7"),
    # an integer dtype cut the inverted Bernoulli's 1/keep = 1.25 to 1
    (lambda: draw_noise(Bernoulli(0.8, inverted=True), (3,), torch.device("cpu"), torch.long),
     "dtype must be a floating-point torch.dtype, got torch.int64"),
])
def test_type_errors_name_the_value(make, match) -> None:
    with pytest.raises(TypeError, match=match):
        make()


@pytest.mark.parametrize(("kwargs", "match"), [
    ({"kernel_size": True}, "kernel_size must be an int >= 1 .* got True"),
    ({"kernel_size": 0}, "kernel_size must be an int >= 1 .* got 0"),
    ({"stride": 0}, "stride must be an int >= 1 .* got 0"),
    ({"dilation": 0}, "dilation must be an int >= 1 .* got 0"),
    ({"padding": "foo"}, r"padding='foo' is not valid; expected one of \['same', 'valid'\]"),
    ({"padding": "same", "stride": 2}, "padding='same' needs stride 1"),
    ({"padding": -1}, "padding must be an int >= 0 .* got -1"),
])
def test_conv_geometry_is_checked_at_construction(kwargs, match) -> None:
    args = {"kernel_size": 3, **kwargs}
    with pytest.raises(ValueError, match=match):
        NoisyConv2d(2, 3, args.pop("kernel_size"), LAW, **args)


def test_numpy_numbers_are_parameters() -> None:
    assert float(Rayleigh(np.float32(0.5)).scale) == 0.5


def test_empty_batch_through_pair_noise_is_torchs_empty_result() -> None:
    conv = NoisyConv2d(2, 3, 3, LAW, "channel")
    out = conv(torch.zeros(0, 2, 5, 5))
    assert out.shape == torch.nn.functional.conv2d(torch.zeros(0, 2, 5, 5), conv.weight).shape


def test_meta_device_forward_is_a_clear_error() -> None:
    layer = NoisyLinear(2, 2, LAW, device="meta")
    with pytest.raises(ValueError, match="cannot run on the meta device"):
        layer(torch.zeros(1, 2, device="meta"))


def test_float64_inverted_bernoulli_scales_by_the_exact_reciprocal() -> None:
    x = torch.ones(3, 2000, dtype=torch.float64)
    y = multiplicative_noise(x, Bernoulli(0.7, inverted=True), "unit", "batch",
                             generator=torch.Generator().manual_seed(0))
    assert set(torch.unique(y).tolist()) == {0.0, 1 / 0.7}  # F.dropout's 1/(1 − p) in float64
    assert float(Bernoulli(1e-45, inverted=True).mean) == 1.0


def test_empty_sequence_is_a_clear_error() -> None:
    """nn.LSTM raises inside its kernel for T = 0; NoisyLSTM says so up front, in either
    layout."""
    with pytest.raises(ValueError, match=r"at least one step, got input of shape \(0, 2, 2\) "
                                         r"\(layout \(T, N, D\)\)"):
        NoisyLSTM(2, 3, noise=LAW)(torch.zeros(0, 2, 2))
    with pytest.raises(ValueError, match=r"shape \(2, 0, 2\) \(layout \(N, T, D\)\)"):
        NoisyLSTM(2, 3, noise=LAW, batch_first=True)(torch.zeros(2, 0, 2))


def test_packed_sequence_of_other_features_is_a_clear_error() -> None:
    packed = torch.nn.utils.rnn.pack_sequence([torch.ones(2, 3)])
    with pytest.raises(ValueError, match=r"NoisyLSTM expects a PackedSequence of 2 features "
                                         r"\(data of shape \(R, 2\)\), got data of shape "
                                         r"\(2, 3\)"):
        NoisyLSTM(2, 3, noise=LAW)(packed)
    with pytest.raises(ValueError, match=r"hx: h_0 must have shape \(num_layers, batch, "
                                         r"hidden_size\) = \(1, 1, 3\), got \(1, 2, 3\)"):
        NoisyLSTM(3, 3, noise=LAW)(packed, (torch.zeros(1, 2, 3), torch.zeros(1, 2, 3)))


@pytest.mark.parametrize(("kwargs", "match"), [
    ({"dropout": 0.3},
     r"NoisyLSTM takes no dropout=0.3: .* noise=Bernoulli\(1 - p, inverted=True\)"),
    ({"dropout": "0"}, "NoisyLSTM takes no dropout='0'"),
    ({"dropout": True}, "NoisyLSTM takes no dropout=True"),
    ({"bidirectional": True}, "NoisyLSTM is unidirectional, got bidirectional=True"),
    ({"proj_size": 2}, r"NoisyLSTM has no projection, got proj_size=2 \(0 is accepted\)"),
])
def test_lstm_refuses_nn_lstm_options_it_lacks(kwargs, match) -> None:
    with pytest.raises(ValueError, match=match):
        NoisyLSTM(2, 3, 2, noise=LAW, **kwargs)


def test_lstm_takes_nn_lstms_defaults_of_the_options_it_lacks() -> None:
    """dropout=0, bidirectional=False, proj_size=0 (code written for nn.LSTM) build the same
    module as leaving them out: nn.LSTM's parameter names and shapes."""
    kwargs = {"dropout": 0.0, "bidirectional": False, "proj_size": 0}
    lstm = NoisyLSTM(2, 3, 2, noise=LAW, **kwargs)
    reference = torch.nn.LSTM(2, 3, 2, **kwargs)
    assert {k: v.shape for k, v in lstm.state_dict().items()} == \
        {k: v.shape for k, v in reference.state_dict().items()}
