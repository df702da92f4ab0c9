"""prune() on convolutions: a pruned model equals the unpruned one with the removed groups' weights
zeroed (eval / mean-scaling mode), and parameter and FLOP counts drop by the removed weights."""

from __future__ import annotations

import copy

import pytest
import torch
from torch import nn
from torch.testing import assert_close

from dropprior import relevance
from dropprior.nn import (
    LSTMOutput,
    NoisyConv1d,
    NoisyConv2d,
    NoisyEmbedding,
    NoisyLinear,
    NoisyLSTM,
)
from dropprior.noise import Bernoulli, Rayleigh
from dropprior.pruning import SelectFeatures, count_flops, count_parameters, prune


def _cnn(structure: str, law=None) -> nn.Sequential:
    torch.manual_seed(0)
    law = law if law is not None else Rayleigh(1.0)
    return nn.Sequential(
        NoisyConv2d(3, 8, 3, law, structure=structure, padding=1), nn.BatchNorm2d(8), nn.ReLU(),
        nn.MaxPool2d(2),
        NoisyConv2d(8, 6, 3, law, structure=structure), nn.ReLU(),
        nn.Flatten(), nn.Linear(6 * 2 * 2, 5),
    )


def _randomise_batchnorm(model: nn.Module) -> None:
    g = torch.Generator().manual_seed(1)
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.copy_(torch.randn(m.num_features, generator=g))
            m.running_var.copy_(torch.rand(m.num_features, generator=g) + 0.5)
            m.weight.data.copy_(torch.randn(m.num_features, generator=g))
            m.bias.data.copy_(torch.randn(m.num_features, generator=g))


def _zeroed_filters(model: nn.Sequential, conv: int, consumer: int, removed: torch.Tensor,
                    per: int = 1) -> nn.Sequential:
    """The unpruned model with filters ``removed`` of map ``conv`` zeroed (weights and bias) and
    the consumer's weights reading those channels zeroed."""
    ref = copy.deepcopy(model)
    with torch.no_grad():
        ref[conv].weight[removed] = 0
        ref[conv].bias[removed] = 0
        cols = (removed[:, None] * per + torch.arange(per)).reshape(-1)
        ref[consumer].weight[:, cols] = 0
    return ref


@pytest.mark.parametrize("structure", ["filter", "channel+filter"])
def test_filter_pruning_equals_zeroed_filters(structure: str) -> None:
    model = _cnn(structure)
    _randomise_batchnorm(model)
    with torch.no_grad():  # switch off filters 1, 4, 6 of the first conv and 0, 3 of the second
        model[0].weight[[1, 4, 6]] *= 1e-3
        model[4].weight[[0, 3]] *= 1e-3
    x = torch.randn(4, 3, 8, 8, generator=torch.Generator().manual_seed(2))
    res = prune(model, keep=0.6, example_input=x)
    assert res.kept["0"].tolist() == [0, 2, 3, 5, 7]
    assert res.kept["4"].tolist() == [1, 2, 4, 5]
    removed0, removed4 = torch.tensor([1, 4, 6]), torch.tensor([0, 3])
    ref = _zeroed_filters(model, 0, 4, removed0)
    ref = _zeroed_filters(ref, 4, 7, removed4, per=4)  # Flatten: 2×2 features per channel
    small = res.model
    assert small[0].weight.shape == (5, 3, 3, 3) and small[0].out_channels == 5
    assert small[1].num_features == 5 and small[1].running_mean.shape == (5,)
    assert small[4].weight.shape == (4, 5, 3, 3) and small[4].in_channels == 5
    assert small[7].weight.shape == (5, 16)
    model.eval()
    ref.eval()
    small.eval()
    with torch.no_grad():
        assert_close(small(x), ref(x))
        assert not torch.allclose(ref(x), model(x), atol=1e-3)  # the zeroing did change it
    params_before = (8 * 27 + 8) + 2 * 8 + (6 * 72 + 6) + (24 * 5 + 5)
    params_after = (5 * 27 + 5) + 2 * 5 + (4 * 45 + 4) + (16 * 5 + 5)
    assert res.params_before == count_parameters(model) == params_before
    assert res.params_after == count_parameters(small) == params_after
    macs_before = 8 * 27 * 64 + 6 * 72 * 4 + 24 * 5
    macs_after = 5 * 27 * 64 + 4 * 45 * 4 + 16 * 5
    assert res.flops_before == 2 * macs_before == count_flops(model, x)
    assert res.flops_after == 2 * macs_after


def test_filter_pruning_in_training_mode_draws_in_the_smaller_shape() -> None:
    model = _cnn("filter", Bernoulli(0.8, inverted=True))
    res = prune(model, keep=0.5, layers=["0"], example_input=torch.zeros(1, 3, 8, 8))
    res.model.train()
    out = res.model(torch.randn(2, 3, 8, 8))
    assert out.shape == (2, 5)


def test_channel_pruning_removes_producer_filters_and_front_channels() -> None:
    torch.manual_seed(0)
    law = Rayleigh(1.0)
    model = nn.Sequential(nn.Conv1d(4, 6, 3), nn.ReLU(), NoisyConv1d(6, 5, 3, law,
                                                                     structure="channel"),
                          nn.ReLU(), nn.Flatten(), nn.Linear(5 * 6, 2))
    with torch.no_grad():
        model[2].weight[:, [0, 5]] *= 1e-3  # input channels 0 and 5 of the noisy conv are off
    x = torch.randn(3, 4, 10, generator=torch.Generator().manual_seed(3))
    res = prune(model, keep=0.5, example_input=x)
    assert res.kept["2"].numel() == 3 and not set(res.kept["2"].tolist()) & {0, 5}
    removed = torch.tensor(sorted(set(range(6)) - set(res.kept["2"].tolist())))
    ref = copy.deepcopy(model)
    with torch.no_grad():
        ref[0].weight[removed] = 0
        ref[0].bias[removed] = 0
        ref[2].weight[:, removed] = 0
    model.eval(), ref.eval(), res.model.eval()
    with torch.no_grad():
        assert_close(res.model(x), ref(x))
    assert res.model[0].out_channels == 3 and res.model[2].in_channels == 3
    assert res.params_after < res.params_before and res.flops_after < res.flops_before
    # a noisy conv reading the model's input directly gets a channel-selecting front
    first = nn.Sequential(NoisyConv1d(4, 3, 3, law, structure="channel"), nn.Flatten(),
                          nn.Linear(3 * 8, 1))
    res2 = prune(first, keep=0.5, example_input=x)
    assert isinstance(res2.model[0], SelectFeatures) and res2.model[0].dim == 1
    first.eval(), res2.model.eval()
    ref2 = copy.deepcopy(first)
    dropped = torch.tensor(sorted(set(range(4)) - set(res2.kept["0"].tolist())))
    with torch.no_grad():
        ref2[0].weight[:, dropped] = 0
        assert_close(res2.model(x), ref2(x))


def test_relevance_of_conv_structures() -> None:
    model = _cnn("channel+filter")
    scores = relevance(model, scale="none")
    w = model[0].weight.detach()
    assert_close(scores["0"], w.flatten(2).norm(dim=2).T)  # (channel, filter)
    assert scores["0"].shape == (3, 8)


def test_conv_pruning_errors() -> None:
    law = Rayleigh(1.0)
    torch.manual_seed(0)
    last = nn.Sequential(nn.Conv2d(3, 4, 3), NoisyConv2d(4, 2, 3, law, structure="filter"))
    with pytest.raises(ValueError, match="model's output"):
        prune(last, keep=0.5, example_input=torch.zeros(1, 3, 8, 8))
    both = nn.Sequential(NoisyConv2d(3, 4, 3, law, structure="filter"), nn.ReLU(),
                         NoisyConv2d(4, 2, 3, law, structure="channel"), nn.Flatten(),
                         nn.Linear(2 * 16, 1))
    with pytest.raises(ValueError, match="both prune the features between"):
        prune(both, keep=0.5, example_input=torch.zeros(1, 3, 8, 8))
    res = prune(both, keep=0.5, layers=["0"], example_input=torch.zeros(1, 3, 8, 8))
    assert res.model[2].in_channels == 2
    with pytest.raises(ValueError, match="example_input"):
        prune(both, keep=0.5, layers=["0"])
    weight = nn.Sequential(NoisyConv2d(3, 4, 3, law, structure="weight"), nn.Flatten(),
                           nn.Linear(4 * 36, 1))
    with pytest.raises(ValueError, match="cannot remove groups"):
        prune(weight, keep=0.5, example_input=torch.zeros(1, 3, 8, 8))
    lin = nn.Sequential(nn.Flatten(), NoisyLinear(48, 3, law))
    with pytest.raises(ValueError, match="cannot prune the inputs"):
        prune(lin, keep=0.5, example_input=torch.zeros(1, 3, 4, 4))


@pytest.mark.parametrize("embedding", ["torch", "noisy"])
@pytest.mark.parametrize("gates", ["tied", "untied"])
def test_lstm_input_pruning_equals_zeroed_inputs(gates: str, embedding: str) -> None:
    """The LSTM's removed input dimensions take the producing embedding's columns with them,
    torch's or dropprior's (whose word types stay: it is left out of ``layers``)."""
    torch.manual_seed(0)
    law = Rayleigh(1.0)
    embed = nn.Embedding(20, 8) if embedding == "torch" else \
        NoisyEmbedding(20, 8, law, batch_first=True)
    model = nn.Sequential(embed, NoisyLSTM(8, 6, noise=law, gates=gates, batch_first=True),
                          LSTMOutput(), nn.Linear(6, 3))
    with torch.no_grad():
        model[1].weight_ih_l0[:, [2, 5, 7]] *= 1e-3  # input dimensions 2, 5, 7 are off
    tokens = torch.randint(0, 20, (4, 5), generator=torch.Generator().manual_seed(4))
    res = prune(model, keep=5 / 8, example_input=tokens, layers=["1"])
    assert res.kept["1"].tolist() == [0, 1, 3, 4, 6]
    ref = copy.deepcopy(model)
    with torch.no_grad():
        ref[1].weight_ih_l0[:, [2, 5, 7]] = 0
    small = res.model
    assert small[0].weight.shape == (20, 5) and small[1].input_size == 5
    assert type(small[0]) is type(embed)
    model.eval(), ref.eval(), small.eval()
    with torch.no_grad():
        assert_close(small(tokens), ref(tokens))
    assert res.params_before - res.params_after == 3 * (20 + 4 * 6)
    macs_per_step_removed = 4 * 6 * 3
    assert res.flops_before - res.flops_after == 2 * 5 * macs_per_step_removed
    small.train()
    assert small(tokens).shape == (4, 5, 3)


def test_lstm_flops_count_unbatched_input_as_a_batch_of_one() -> None:
    """An unbatched (T, D) sequence into the LSTM counts the FLOPs of the same sequence as a
    batch of one: 2·T·(|W_ih| + |W_hh|) for the LSTM plus the head, per entry of dim 0."""
    model = nn.Sequential(nn.Embedding(20, 8), NoisyLSTM(8, 6, noise=Rayleigh(1.0)),
                          LSTMOutput(), nn.Linear(6, 3))
    tokens = torch.randint(0, 20, (5,))
    lstm_flops = 2 * 5 * (4 * 6 * 8 + 4 * 6 * 6)
    head_flops = 2 * 5 * 6 * 3
    assert count_flops(model, tokens.unsqueeze(1)) == (lstm_flops + head_flops) / 5
    assert count_flops(model, tokens) == count_flops(model, tokens.unsqueeze(1))
