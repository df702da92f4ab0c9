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
