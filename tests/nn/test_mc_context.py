"""mc() reaches attention dropout, reports dropout it cannot reach and models without noise, and
keeps batch norm in eval; predict takes one pass for a model with no noise."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from dropprior.likelihoods import Categorical
from dropprior.nn import NoisyLinear, mc
from dropprior.noise import Bernoulli
from dropprior.prediction import predict


class _FunctionalDropout(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.lin = nn.Linear(4, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.dropout(self.lin(x), 0.5, self.training)


def test_attention_dropout_samples_inside_mc_and_batch_norm_stays_in_eval() -> None:
    attention = nn.MultiheadAttention(8, 2, dropout=0.5)
    norm = nn.BatchNorm1d(8)
    model = nn.ModuleList([attention, norm]).eval()
    x = torch.randn(5, 3, 8)
    with torch.no_grad():
        assert torch.equal(attention(x, x, x)[0], attention(x, x, x)[0])
        with mc(model):
            assert attention.training and not norm.training
            assert not torch.equal(attention(x, x, x)[0], attention(x, x, x)[0])
    assert not attention.training


def test_functional_dropout_is_reported_and_refused_with_strict() -> None:
    model = nn.Sequential(NoisyLinear(4, 4, Bernoulli(0.9, inverted=True)), _FunctionalDropout())
    with pytest.warns(UserWarning, match=r"\['1'\] call a functional dropout in forward"):
        with mc(model):
            pass
    with pytest.raises(ValueError, match="functional dropout"):
        with mc(model, strict=True):
            pass


@pytest.mark.parametrize("strict", [20, 1, "yes", None])
def test_mc_refuses_a_strict_that_is_not_a_bool(strict) -> None:
    """``mc(model, 20)`` (a number of samples meant) is an error naming the value, not a flag."""
    model = nn.Sequential(NoisyLinear(4, 4, Bernoulli(0.9, inverted=True)))
    model.train()
    with pytest.raises(TypeError, match=rf"strict must be True or False, got {strict!r}"):
        with mc(model, strict):
            pass
    assert model.training  # nothing switched


def test_a_model_without_noise_warns_and_predicts_in_one_pass() -> None:
    model = nn.Sequential(nn.Linear(3, 4))
    with pytest.warns(UserWarning, match="no noise .* every Monte Carlo sample will be the same"):
        with mc(model):
            pass
    calls = []
    model.register_forward_hook(lambda *_: calls.append(1))
    prediction = predict(model, torch.randn(6, 3), samples=50, likelihood=Categorical())
    assert len(calls) == 1 and prediction.sample_probs.shape[0] == 1


def _embedding_model() -> nn.Module:
    from dropprior.nn import NoisyEmbedding

    torch.manual_seed(0)
    return nn.ModuleDict({
        "embed": NoisyEmbedding(12, 6, Bernoulli(0.5, inverted=True), granularity="batch"),
        "drop": nn.Dropout(0.5),
        "head": NoisyLinear(6, 3, Bernoulli(0.5, inverted=True)),
    }).eval()


@pytest.mark.parametrize("by", ["name", "module"])
def test_exclude_keeps_those_modules_at_their_mean(by) -> None:
    """Inside ``mc(model, exclude=...)`` the excluded embedding and dropout give their eval
    output (``nn.Embedding`` with the same weights: E[ξ] = 1 for inverted Bernoulli, dropout the
    identity) on every pass, while the layer left in still samples; modes come back on exit."""
    model = _embedding_model()
    tokens = torch.tensor([[1, 2, 3, 1], [4, 5, 1, 0]])
    reference = F.embedding(tokens, model["embed"].weight)
    exclude = ["embed", "drop"] if by == "name" else [model["embed"], model["drop"]]
    with torch.no_grad(), mc(model, exclude=exclude):
        for _ in range(5):
            e = model["embed"](tokens)
            torch.testing.assert_close(e, reference, rtol=0, atol=0)
            torch.testing.assert_close(model["drop"](e), reference, rtol=0, atol=0)
        outs = torch.stack([model["head"](reference) for _ in range(20)])
        assert not model["drop"].training
    assert outs.std(0).max() > 0.1  # the head still draws
    with torch.no_grad(), mc(model):  # without exclude both sample
        assert model["drop"].training
        assert not torch.equal(model["embed"](tokens), model["embed"](tokens))
    assert not model["drop"].training and not model["embed"].sampling


def test_exclude_reaches_every_module_below_the_one_named() -> None:
    model = nn.Sequential(nn.Sequential(nn.Dropout(0.5), NoisyLinear(4, 4, Bernoulli(0.5))),
                          NoisyLinear(4, 2, Bernoulli(0.5))).eval()
    with mc(model, exclude="0"):
        assert not model[0][0].training and not model[0][1].sampling and model[1].sampling


def test_excluding_every_noisy_module_warns_that_samples_are_the_same() -> None:
    model = _embedding_model()
    with pytest.warns(UserWarning, match="no noise .*outside exclude"):
        with mc(model, exclude=["embed", "drop", "head"]):
            pass


@pytest.mark.parametrize("exclude, error, match", [
    (["emb"], ValueError, r"exclude names 'emb', which is not a submodule .*'embed'"),
    ([nn.Linear(2, 2)], ValueError, "a Linear that is not a submodule"),
    ([3], TypeError, "exclude takes submodule names .* got 3"),
    (3, TypeError, "exclude takes submodule names or modules of the model, got 3"),
])
def test_exclude_refuses_what_is_not_in_the_model(exclude, error, match) -> None:
    model = _embedding_model()
    with pytest.raises(error, match=match):
        with mc(model, exclude=exclude):
            pass
    assert not model["head"].sampling  # nothing switched


@pytest.mark.parametrize("scope, seed", [("example", None), ("batch", None), ("function", 3),
                                         ("example", 3)])
def test_predict_with_exclude_equals_the_model_without_that_noise(scope, seed) -> None:
    """predict(exclude=["0"]) equals predict on the same network whose first layer is torch's
    nn.Linear with the same weights (inverted Bernoulli: E[ξ] = 1) and no noise, with the same
    draws elsewhere (seed=None: the same global seed; seeded: the remaining layer is module 0 of
    the plain copy, and the excluded layer is dropped from the seeded list, so it is module 0
    there too); torch dropout excluded is allowed under every scope."""
    from dropprior.likelihoods import Gaussian

    torch.manual_seed(0)
    noisy = nn.Sequential(NoisyLinear(5, 8, Bernoulli(0.6, inverted=True)), nn.Dropout(0.3),
                          nn.Tanh(), NoisyLinear(8, 2, Bernoulli(0.7, inverted=True)))
    plain = nn.Sequential(nn.Linear(5, 8), nn.Identity(), nn.Tanh(), noisy[3])
    plain[0].load_state_dict(noisy[0].state_dict())
    x = torch.randn(7, 5)
    got, want = [], []
    for model, exclude, out in ((noisy, ["0", "1"], got), (plain, (), want)):
        torch.manual_seed(11)
        out.append(predict(model, x, samples=16, likelihood=Gaussian(noise_std=0.1), scope=scope,
                           seed=seed, exclude=exclude, batch_size=4))
    torch.testing.assert_close(got[0].mean, want[0].mean, rtol=1e-6, atol=1e-6)
    torch.testing.assert_close(got[0].epistemic, want[0].epistemic, rtol=1e-5, atol=1e-7)
    assert float(got[0].epistemic.max()) > 1e-4  # the last layer still draws
    torch.manual_seed(11)
    every = predict(noisy, x, samples=16, likelihood=Gaussian(noise_std=0.1), scope="example")
    assert not torch.allclose(every.mean, got[0].mean)


def test_predict_exclude_refusals() -> None:
    model = _embedding_model()
    tokens = torch.tensor([[1, 2, 3]])
    with pytest.raises(ValueError, match=r"predict\(\): exclude names 'nope'"):
        predict(model["embed"], tokens, samples=2, likelihood=None, exclude=["nope"])
    with pytest.raises(ValueError, match="method='mean_scaling' draws no noise anywhere"):
        predict(model["embed"], tokens, samples=2, likelihood=None, method="mean_scaling",
                exclude=[model["embed"]])
    calls = []
    model["embed"].register_forward_hook(lambda *_: calls.append(1))
    predict(model["embed"], tokens, samples=9, likelihood=None, exclude=[model["embed"]])
    assert len(calls) == 1  # nothing left to draw: one pass
