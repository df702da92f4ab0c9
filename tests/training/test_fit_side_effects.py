"""fit and predict leave nothing behind and say what goes wrong: the caller's modes and global
RNG state, warnings for a law without a mean under the MC objective and for a collapsed model,
a required likelihood in predict, and empty data."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from dropprior import fit
from dropprior.likelihoods import Categorical
from dropprior.likelihoods import Gaussian as GaussianLikelihood
from dropprior.nn import NoisyLinear
from dropprior.noise import Bernoulli, HalfCauchy
from dropprior.prediction import predict


def _model(law=None) -> nn.Sequential:
    torch.manual_seed(0)
    return nn.Sequential(NoisyLinear(3, 8, law or Bernoulli(0.8, inverted=True)), nn.ReLU(),
                         nn.BatchNorm1d(8), nn.Linear(8, 1))


def _data(n: int = 32) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(1)
    return torch.randn(n, 3, generator=g), torch.randn(n, 1, generator=g)


def test_fit_restores_every_modules_mode() -> None:
    model = _model().eval()
    model[2].train()  # a mixed state the caller chose
    before = [m.training for m in model.modules()]
    fit(model, GaussianLikelihood(1.0), *_data(), epochs=2, progress=False)
    assert [m.training for m in model.modules()] == before


def test_fit_leaves_the_global_rng_as_it_was() -> None:
    model = _model()
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    fit(model, GaussianLikelihood(1.0), *_data(), epochs=2, seed=7, progress=False)
    assert torch.equal(torch.rand(3), expected)


def test_fit_still_reproduces_with_its_seed() -> None:
    a, b = _model(), _model()
    fit(a, GaussianLikelihood(1.0), *_data(), epochs=3, seed=5, progress=False)
    fit(b, GaussianLikelihood(1.0), *_data(), epochs=3, seed=5, progress=False)
    assert all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters(), strict=True))


def test_a_law_without_a_mean_under_mc_warns() -> None:
    with pytest.warns(UserWarning, match=r"HalfCauchy.*no mean.*objective='marginal'"):
        fit(_model(HalfCauchy(1.0)), GaussianLikelihood(1.0), *_data(), epochs=1,
            objective="mc", progress=False)


def test_a_collapsed_model_warns() -> None:
    x, _ = _data(20)
    model = nn.Sequential(NoisyLinear(3, 4, Bernoulli(0.9, inverted=True), bias=False))
    with pytest.warns(UserWarning, match="every weight of the model is below 1e-8"):
        fit(model, GaussianLikelihood(1.0), x, torch.zeros(20, 4), sigma0=0.1,
            optimizer="sgd", lr=0.1, epochs=400, progress=False)


def test_fit_on_empty_data_names_the_problem() -> None:
    with pytest.raises(ValueError, match=r"hold no examples \(x of shape \(0, 3\)\)"):
        fit(_model(), GaussianLikelihood(1.0), torch.zeros(0, 3), torch.zeros(0, 1),
            progress=False)


def test_predict_needs_a_likelihood() -> None:
    model = nn.Sequential(NoisyLinear(3, 5, Bernoulli(0.8, inverted=True)))
    with pytest.raises(TypeError, match=r"needs likelihood=: Categorical\(\)"):
        predict(model, torch.randn(4, 3), samples=3)
    assert predict(model, torch.randn(4, 3), samples=3, likelihood=Categorical()).probs.shape \
        == (4, 5)
    assert predict(model, torch.randn(4, 3), samples=3, likelihood=None).mean.shape == (4, 5)


def test_predict_on_empty_x_names_the_problem() -> None:
    model = nn.Sequential(NoisyLinear(3, 1, Bernoulli(0.8, inverted=True)))
    with pytest.raises(ValueError, match=r"x holds no examples \(shape \(0, 3\)\)"):
        predict(model, torch.zeros(0, 3), likelihood=None)


class _Rows(nn.Module):
    """A linear classifier that records the rows of every input it sees."""

    def __init__(self, out: int = 3) -> None:
        super().__init__()
        self.linear = nn.Linear(3, out)
        self.rows: list[int] = []

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.rows.append(x.shape[0])
        return self.linear(x)


def test_the_target_check_sees_one_batch_and_every_label() -> None:
    """Before training fit checks every target against the model's output without a pass over
    the whole training set: a label out of range in the last row is the likelihood's clear
    error before any step, and the check's pass sees one batch."""
    x, _ = _data(200)
    y = torch.arange(200) % 3
    model = _Rows()
    fit(model, Categorical(), x, y, epochs=1, batch_size=16, progress=False)
    assert model.rows[0] == 16 and max(model.rows) == 16
    bad = y.clone()
    bad[-1] = 3
    model = _Rows()
    with pytest.raises(ValueError, match=r"labels must lie in \[0, 2\]"):
        fit(model, Categorical(), x, bad, epochs=1, batch_size=16, progress=False)
    assert model.rows == [16]  # the check alone ran


def test_an_output_of_the_wrong_length_names_its_shape() -> None:
    """A model whose output does not have one row per input gets the likelihood's shape error,
    naming the shapes it produced (not a view stretched to the data's length)."""

    class OneRow(_Rows):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return super().forward(x)[:1]

    x, _ = _data(40)
    with pytest.raises(ValueError, match=r"y has shape \(8,\) but the logits have shape \(1, 3\)"):
        fit(OneRow(), Categorical(), x, torch.zeros(40, dtype=torch.long), epochs=1,
            batch_size=8, progress=False)


def test_a_model_that_returns_a_tuple_is_refused_by_name() -> None:
    """fit and predict (both methods, both vectorized and not) take a model whose forward returns
    one tensor; an LSTM's (output, (h_n, c_n)) gets a TypeError that names LSTMOutput, and with
    LSTMOutput after it the same LSTM predicts."""
    from dropprior.nn import LSTMOutput, NoisyLSTM

    lstm = NoisyLSTM(3, 4, noise=Bernoulli(0.8, inverted=True))
    x, y = torch.randn(5, 2, 3), torch.randn(5, 2, 4)
    message = r"NoisyLSTM returned tuple: an LSTM returns .*LSTMOutput\(\)"
    with pytest.raises(TypeError, match=message):
        fit(lstm, GaussianLikelihood(0.1), x, y, epochs=1)
    for kwargs in ({"method": "mean_scaling"}, {"vectorize": True}, {"vectorize": False}):
        with pytest.raises(TypeError, match=message):
            predict(lstm, x, samples=3, likelihood=None, **kwargs)
    pred = predict(nn.Sequential(lstm, LSTMOutput()), x, samples=3, likelihood=None)
    assert pred.mean.shape == (5, 2, 4)
