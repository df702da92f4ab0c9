"""apply_noise gives the model a torch user wants: per-layer rates, no doubled noise, the same
parameters and eval outputs, a model relevance/prune accept, and every skip reported."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn
from torch.testing import assert_close

from dropprior import relevance
from dropprior.nn import MultiplicativeNoise, NoisyLinear, apply_noise
from dropprior.noise import Bernoulli, Gaussian, HalfCauchy, registered_laws
from dropprior.pruning import prune


def _mlp(dtype=torch.float32) -> nn.Sequential:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Dropout(0.1), nn.Linear(8, 8), nn.ReLU(),
                         nn.Dropout(0.6), nn.Linear(8, 2)).to(dtype)


def test_a_family_name_matches_each_layers_own_rate(capsys) -> None:
    model = apply_noise(_mlp(), "gaussian")
    assert "matched to its own dropout rate" in capsys.readouterr().out
    for index, p in ((3, 0.1), (6, 0.6)):
        law = model[index].noise
        assert isinstance(law, Gaussian)
        assert float(law.std) == pytest.approx(math.sqrt(p / (1 - p)), rel=1e-6)


def test_a_law_instance_is_used_everywhere_and_the_summary_says_so(capsys) -> None:
    law = Gaussian(1.0, 0.5)
    model = apply_noise(_mlp(), law)
    assert "one law everywhere" in capsys.readouterr().out
    assert model[3].noise is law and model[6].noise is law


def test_dropout_and_the_next_linear_become_one_noisy_layer() -> None:
    model = apply_noise(_mlp(), "bernoulli", verbose=False)
    assert not any(isinstance(m, nn.Dropout) for m in model.modules())
    assert not any(isinstance(m, MultiplicativeNoise) for m in model.modules())
    assert [type(m).__name__ for m in model] == ["Linear", "ReLU", "Identity", "NoisyLinear",
                                                 "ReLU", "Identity", "NoisyLinear"]


def test_relevance_and_prune_accept_the_default_conversion() -> None:
    model = apply_noise(_mlp(), "bernoulli", verbose=False)
    scores = relevance(model)
    assert set(scores) == {"3", "6"}
    result = prune(model, keep=0.5)
    assert result.params_after < result.params_before


def test_parameters_dtype_and_freezing_are_kept_and_optimizers_keep_working() -> None:
    model = _mlp(torch.float64)
    model[3].bias.requires_grad_(False)
    before = {id(p) for p in model.parameters()}
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    apply_noise(model, "gaussian", verbose=False)
    assert {id(p) for p in model.parameters()} == before
    assert all(p.dtype == torch.float64 for p in model.parameters())
    assert not model[3].bias.requires_grad and model[3].weight.requires_grad
    w = model[3].weight.detach().clone()
    model(torch.randn(5, 4, dtype=torch.float64)).sum().backward()
    opt.step()
    assert not torch.equal(model[3].weight, w)  # the old optimizer updates the new layer


@pytest.mark.parametrize("family", ["bernoulli", "gaussian", "inverse_nakagami", "log_normal",
                                    "uniform"])
def test_eval_outputs_are_unchanged_for_every_family_with_a_mean(family) -> None:
    assert family in registered_laws()
    model = _mlp(torch.float64).eval()
    x = torch.randn(6, 4, dtype=torch.float64)
    before = model(x)
    apply_noise(model, family, layers=["dropout", "linear"], verbose=False)
    assert_close(model(x), before)


def test_a_law_with_another_mean_is_refused() -> None:
    with pytest.raises(ValueError, match=r"needs E\[ξ\] = 1.*E\[ξ\] = 0.8.*inverted=True"):
        apply_noise(_mlp(), Bernoulli(0.8))
    apply_noise(_mlp(), Bernoulli(0.8, inverted=True), verbose=False)
    apply_noise(_mlp(), HalfCauchy(1.0), verbose=False)  # no mean, no eval rule to break


def test_every_skip_is_reported(capsys) -> None:
    attention = nn.Sequential(nn.MultiheadAttention(8, 2))
    apply_noise(attention, "gaussian", layers=["linear"])
    out = capsys.readouterr().out
    assert "out_proj" in out and "left unchanged: a subclass of nn.Linear" in out
    root = nn.Linear(3, 3)
    apply_noise(root, "gaussian", layers=["linear"])
    assert "<root>: Linear" in capsys.readouterr().out
    apply_noise(nn.Sequential(nn.Dropout(0.0), nn.Linear(2, 2)), "gaussian")
    assert "p=0 draws no noise" in capsys.readouterr().out
    # dropouts that layers=("dropout",) cannot convert are named, not passed over in silence
    model = nn.Sequential(nn.Linear(8, 8), nn.SELU(), nn.AlphaDropout(0.2),
                          nn.TransformerEncoderLayer(8, 2, 16, dropout=0.1))
    apply_noise(model, "gaussian")
    out = capsys.readouterr().out
    assert "2: AlphaDropout(p=0.2, inplace=False) left unchanged: alpha dropout is not " \
           "multiplicative noise" in out
    assert "3.self_attn: MultiheadAttention left unchanged: its dropout of the attention " \
           "weights runs inside F.multi_head_attention_forward" in out
    assert type(model[2]) is nn.AlphaDropout
    assert "3.dropout1: Dropout(p=0.1, inplace=False) -> MultiplicativeNoise" in out


def test_meta_device_model_is_a_clear_error() -> None:
    with torch.device("meta"):
        model = _mlp()
    with pytest.raises(ValueError, match="meta device"):
        apply_noise(model, "gaussian")


@pytest.mark.parametrize(("p", "error"), [(2.0, ValueError), (float("nan"), ValueError),
                                          (-0.1, ValueError), ("0.5", TypeError)])
def test_a_bad_rate_is_refused_even_where_no_layer_would_use_it(p, error) -> None:
    """``p`` serves only weight layers without a dropout of their own; a model with none (here
    its dropout has its own rate) still gets the error naming the value, not a silent pass."""
    model = nn.Sequential(nn.Linear(3, 3), nn.Dropout(0.5), nn.Linear(3, 1))
    with pytest.raises(error, match=r"p must be a .*drop probability"):
        apply_noise(model, "gaussian", p=p, verbose=False)
    assert isinstance(model[1], nn.Dropout)  # nothing converted


def test_the_fused_layer_is_dropout_then_linear_given_the_same_mask() -> None:
    """The fused layer is exactly Dropout then Linear given the same mask."""
    model = apply_noise(nn.Sequential(nn.Dropout(0.3), nn.Linear(5, 2)).double(), "bernoulli",
                        verbose=False)  # float64: the general path, whose draws torch.rand replays
    layer = model[1]
    assert isinstance(layer, NoisyLinear)
    layer.generator = torch.Generator().manual_seed(4)
    x = torch.randn(7, 5, dtype=torch.float64)
    mask = torch.rand((7, 5), dtype=torch.float64, generator=torch.Generator().manual_seed(4)) < 0.7
    assert_close(model.train()(x), nn.functional.linear(x * mask / 0.7, layer.weight, layer.bias))


class _Tagger(nn.Module):
    """A model written for nn.LSTM: it unpacks (output, (h_n, c_n)) and reads both."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.lstm = nn.LSTM(4, 6, num_layers=2, batch_first=True)
        self.head = nn.Linear(12, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out, (h_n, c_n) = self.lstm(x)
        return self.head(torch.cat([out[:, -1], c_n[-1]], dim=-1))


def test_a_converted_lstm_runs_in_the_model_written_for_nn_lstm() -> None:
    """NoisyLSTM returns nn.LSTM's (output, (h_n, c_n)), so the converted model's own forward
    runs unchanged; in eval mode (E[ξ] = 1) it equals the original model, and in training mode
    its final state is the output's last step, as nn.LSTM's is."""
    model = _Tagger().eval()
    x = torch.randn(5, 7, 4)
    before = model(x)
    apply_noise(model, Bernoulli(0.7, inverted=True), layers=["lstm"], verbose=False)
    assert type(model.lstm).__name__ == "NoisyLSTM"
    assert_close(model(x), before)
    model.train()
    out, (h_n, c_n) = model.lstm(x)
    assert_close(h_n[-1], out[:, -1])
    assert model(x).shape == (5, 3) and c_n.shape == (2, 5, 6)


def test_lstm_weight_noise_converts_to_weight_drop_at_the_layers_rate() -> None:
    """lstm_weight_noise=True: the converted LSTM also carries the layer's law, Bernoulli(1 − p)
    inverted, on U (the layer's values are tested in tests/nn/test_lstm_layer.py); E[ξ] = 1, so
    in eval mode the model is the original."""
    model = _Tagger().eval()
    x = torch.randn(5, 7, 4)
    before = model(x)
    apply_noise(model, "bernoulli", layers=["lstm"], p=0.3, lstm_weight_noise=True,
                verbose=False)
    lstm = model.lstm
    assert lstm.recurrent_weight_noise.keep == pytest.approx(0.7)
    assert lstm.recurrent_weight_noise.inverted
    assert_close(model(x), before)
    with pytest.raises(TypeError, match="lstm_weight_noise must be True or False, got 'yes'"):
        apply_noise(_Tagger(), "bernoulli", layers=["lstm"], lstm_weight_noise="yes")


@pytest.mark.parametrize("granularity", ["example", "batch"])
def test_an_embedding_converts_to_word_type_noise(granularity: str, capsys) -> None:
    """nn.Embedding → NoisyEmbedding holding the same weight Parameter and padding_idx; in eval
    mode (E[ξ] = 1) the model is the original, in training mode each token's vector is its row
    times a draw of the layer's law; max_norm / sparse embeddings are left, with the reason."""
    torch.manual_seed(0)
    embed = nn.Embedding(30, 5, padding_idx=0)
    model = nn.Sequential(embed, nn.Flatten(1)).eval()
    tokens = torch.randint(0, 30, (4, 6))
    before = model(tokens)
    apply_noise(model, "bernoulli", layers=["embedding"], p=0.25, granularity=granularity,
                verbose=False)
    noisy = model[0]
    assert type(noisy).__name__ == "NoisyEmbedding" and noisy.weight is embed.weight
    assert noisy.padding_idx == 0 and noisy.granularity == granularity
    assert noisy.noise.keep == pytest.approx(0.75) and noisy.noise.inverted
    assert_close(model(tokens), before)
    ratio = (noisy.train()(tokens) / embed.weight[tokens]).detach()[tokens != 0]
    kept = ratio[ratio != 0]
    assert_close(kept, torch.full_like(kept, 1 / 0.75))
    assert 0 < kept.numel() < ratio.numel()  # some rows dropped, some kept (seeded)
    skipped = nn.Sequential(nn.Embedding(30, 5, max_norm=1.0))
    apply_noise(skipped, "bernoulli", layers=["embedding"])
    assert "left unchanged: max_norm, scale_grad_by_freq and sparse are not supported" in \
        capsys.readouterr().out
    assert type(skipped[0]) is nn.Embedding
