"""NoisyEmbedding: nn.Embedding with one ξ per word type, tied by granularity.

References: ``nn.Embedding`` (the same weights, with ξ recovered from the output), scipy's
Rayleigh law for the draws, hand-computed gradients, and the tying each granularity promises.
"""

from __future__ import annotations

import pytest
import torch
from scipy import stats
from torch import nn
from torch.testing import assert_close

from dropprior import learn_scales, learned_scales, prune, relevance, variational
from dropprior.nn import LSTMOutput, NoisyEmbedding, NoisyLSTM, mc
from dropprior.noise import Bernoulli, Gaussian, HalfCauchy, Rayleigh

V, D = 50, 4


def _xi(layer: NoisyEmbedding, tokens: torch.Tensor) -> torch.Tensor:
    """The ξ each token got: the output over nn.Embedding's output with the same weights (every
    coordinate of a row carries the same ξ, which the check confirms; nan at a zero row)."""
    reference = nn.functional.embedding(tokens, layer.weight.detach())
    with torch.no_grad():
        ratio = layer(tokens) / reference
    assert_close(ratio, ratio[..., :1].expand_as(ratio), equal_nan=True)
    return ratio[..., 0]


def test_without_noise_and_in_eval_mode_it_is_torch_embedding_times_the_mean() -> None:
    torch.manual_seed(0)
    tokens = torch.randint(0, V, (6, 3))
    plain = NoisyEmbedding(V, D, Bernoulli(1.0))  # ξ = 1: nn.Embedding
    torch_layer = nn.Embedding(V, D)
    torch_layer.load_state_dict(plain.state_dict())  # state dicts are interchangeable
    assert_close(plain(tokens), torch_layer(tokens))
    layer = NoisyEmbedding(V, D, Rayleigh(1.0)).eval()
    assert_close(layer(tokens), nn.functional.embedding(tokens, layer.weight) * Rayleigh(1.0).mean)


def test_sequence_granularity_ties_a_word_within_its_sequence_only() -> None:
    """(T, N): column n is a sequence; with batch_first the rows are."""
    torch.manual_seed(1)
    tokens = torch.tensor([[1, 1, 7], [2, 1, 7], [1, 3, 2], [2, 1, 7]])
    for batch_first in (False, True):
        layer = NoisyEmbedding(V, D, Rayleigh(1.0), batch_first=batch_first)
        seqs = tokens.T if batch_first else tokens
        xi = _xi(layer, seqs)
        xi = xi.T if batch_first else xi
        for n in range(tokens.shape[1]):
            for word in tokens[:, n].unique():
                values = xi[:, n][tokens[:, n] == word]
                assert torch.all(values == values[0])  # tied over the repeats
        # word 1 in sequences 0 and 1, word 2 in sequences 0 and 2: independent draws
        assert xi[0, 0] != xi[0, 1] and xi[1, 0] != xi[2, 2]
        assert len(set(xi.flatten().tolist())) == 6  # the distinct (sequence, word) pairs


def test_batch_granularity_ties_a_word_over_the_call_and_example_ties_nothing() -> None:
    torch.manual_seed(2)
    tokens = torch.tensor([[1, 1, 7], [2, 1, 7], [1, 3, 2]])
    xi = _xi(NoisyEmbedding(V, D, Rayleigh(1.0), granularity="batch"), tokens)
    for word in tokens.unique():
        assert torch.all(xi[tokens == word] == xi[tokens == word][0])
    assert len(set(xi.flatten().tolist())) == 4
    xi = _xi(NoisyEmbedding(V, D, Rayleigh(1.0), granularity="example"), tokens)
    assert len(set(xi.flatten().tolist())) == tokens.numel()
    # any shape for these two
    layer = NoisyEmbedding(V, D, Rayleigh(1.0), granularity="batch")
    assert layer(torch.randint(0, V, (2, 3, 4))).shape == (2, 3, 4, D)


@pytest.mark.parametrize("granularity", ["sequence", "batch", "example"])
def test_draws_follow_the_law(granularity: str) -> None:
    """One draw per distinct key, of the layer's law: a KS test against scipy's Rayleigh over
    4000 distinct keys, which a wrong scale or law fails."""
    torch.manual_seed(3)
    vocab = 4000
    tokens = torch.randperm(vocab).view(1000, 4)  # every key distinct under every granularity
    layer = NoisyEmbedding(vocab, 2, Rayleigh(1.5), granularity=granularity)
    xi = _xi(layer, tokens).flatten().double().numpy()
    assert stats.kstest(xi, stats.rayleigh(scale=1.5).cdf).pvalue > 0.01
    assert stats.kstest(xi, stats.rayleigh(scale=1.3).cdf).pvalue < 1e-6


def test_bernoulli_word_dropout_drops_whole_rows_at_the_rate() -> None:
    torch.manual_seed(4)
    tokens = torch.randperm(20000).view(2000, 10)
    layer = NoisyEmbedding(20000, 3, Bernoulli(0.7, inverted=True))
    xi = _xi(layer, tokens)
    assert_close(xi[xi > 0], torch.full_like(xi[xi > 0], 1 / 0.7))
    kept = (xi > 0).double().mean().item()
    assert abs(kept - 0.7) < 4 * (0.7 * 0.3 / tokens.numel()) ** 0.5


def test_gradient_is_the_sum_of_xi_over_a_words_occurrences() -> None:
    torch.manual_seed(5)
    tokens = torch.tensor([[1, 4], [1, 4], [2, 1]])
    layer = NoisyEmbedding(V, D, Rayleigh(1.0), padding_idx=2)
    upstream = torch.randn(3, 2, D)
    state = torch.get_rng_state()
    xi = _xi(layer, tokens)
    torch.set_rng_state(state)  # the same draws again, now with autograd
    (layer(tokens) * upstream).sum().backward()
    expected = torch.zeros(V, D)
    expected.index_add_(0, tokens.flatten(), (xi.unsqueeze(-1) * upstream).view(-1, D))
    expected[2] = 0  # padding_idx: no gradient, as nn.Embedding
    assert_close(layer.weight.grad, expected)
    assert torch.all(layer.weight[2] == 0)


def test_mc_draws_in_eval_mode_and_a_law_without_mean_points_to_it() -> None:
    tokens = torch.randint(0, V, (5, 2))
    layer = NoisyEmbedding(V, D, Gaussian(1.0, 0.5)).eval()
    assert torch.equal(layer(tokens), layer(tokens))
    with mc(layer):
        assert not torch.equal(layer(tokens), layer(tokens))
    with pytest.raises(ValueError, match="mc"):
        NoisyEmbedding(V, D, HalfCauchy(1.0)).eval()(tokens)


def test_compiles_without_graph_breaks() -> None:
    for granularity in ("sequence", "batch", "example"):
        layer = NoisyEmbedding(V, D, Rayleigh(1.0), granularity=granularity)
        compiled = torch.compile(layer, fullgraph=True, backend="eager")
        tokens = torch.tensor([[1, 1], [3, 1]])
        xi = _xi(compiled, tokens)
        if granularity != "example":
            assert xi[0, 1] == xi[1, 1]  # word 1 repeats in sequence 1 (and in the batch)


def test_scale_groups_relevance_and_pruning() -> None:
    """One learned scale per word type, (V, 1) against the weight (V, D); relevance has one
    score per word; prune leaves the embedding's rows and names it when asked to cut them."""
    law = Rayleigh(1.0)
    model = nn.Sequential(NoisyEmbedding(V, 6, law), NoisyLSTM(6, 5, noise=law), LSTMOutput(),
                          nn.Linear(5, V))
    learn_scales(model)
    assert learned_scales(model)["0:unit"].shape == (V, 1)
    assert relevance(model)["0"].shape == (V,)
    tokens = torch.randint(0, V, (7, 3))
    assert model(tokens).shape == (7, 3, V)
    with pytest.raises(ValueError, match="cannot remove groups of layer '0' .*NoisyEmbedding.*"
                                         "layers="):
        prune(model, keep=0.5, example_input=tokens)
    vi = nn.Sequential(NoisyEmbedding(V, 6, law), NoisyLSTM(6, 5, noise=law), LSTMOutput(),
                       nn.Linear(5, V))
    assert [g.group_name for g in variational(vi)] == ["0:unit", "1:tied"]
    assert vi.train()(tokens).shape == (7, 3, V)


@pytest.mark.parametrize(("kwargs", "tokens", "error", "match"), [
    ({}, torch.tensor([[1.0]]), TypeError, "integer tokens.*torch.float32"),
    ({}, torch.tensor([[V]]), ValueError, f"token {V}, outside \\[0, {V - 1}\\]"),
    ({}, torch.tensor([[-1]]), ValueError, "token -1, outside"),
    ({}, torch.zeros(2, 2, 2, dtype=torch.long), ValueError,
     "granularity='sequence'.*\\(2, 2, 2\\)"),
    ({"granularity": "word"}, None, ValueError, "granularity='word' is not valid"),
    ({"padding_idx": V}, None, ValueError, f"padding_idx must be None or an int in \\[-{V}"),
    ({"batch_first": 1}, None, TypeError, "batch_first must be True or False"),
])
def test_bad_input_is_named(kwargs, tokens, error, match) -> None:
    with pytest.raises(error, match=match):
        NoisyEmbedding(V, D, Bernoulli(0.9, inverted=True), **kwargs)(tokens)


def test_bad_sizes_and_law_are_named() -> None:
    with pytest.raises(ValueError, match="num_embeddings must be an int >= 1, got 0"):
        NoisyEmbedding(0, D, Bernoulli(0.9))
    with pytest.raises(TypeError, match="noise must be a dropprior.noise.NoiseLaw"):
        NoisyEmbedding(V, D, 0.5)  # type: ignore[arg-type]
