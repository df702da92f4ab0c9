"""Mask scope of MC prediction: per example, per batch, and one draw per sampled function.

The reference is the mask itself: a unit-structured Bernoulli layer with identity weights outputs
x ⊙ m, so out / x recovers every row's mask exactly."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from dropprior import predict
from dropprior.nn import NoisyLinear, Residual
from dropprior.noise import Bernoulli
from dropprior.scales import variational

KEEP = 0.6


def _identity_layer(d: int = 8) -> nn.Sequential:
    layer = NoisyLinear(d, d, Bernoulli(KEEP, inverted=True)).double()
    with torch.no_grad():
        layer.weight.copy_(torch.eye(d, dtype=torch.float64))
        layer.bias.zero_()
    return nn.Sequential(layer)


def _masks(scope: str, batch_size: int | None, samples: int = 6, seed: int = 0,
           n: int = 12) -> torch.Tensor:
    torch.manual_seed(1)
    model = _identity_layer().eval()
    x = torch.rand(n, 8, dtype=torch.float64) + 0.5
    draws = predict(model, x, samples=samples, likelihood=None, scope=scope,
                    batch_size=batch_size, seed=seed).sample_means
    return draws / x  # (S, N, 8): each row's mask, 0 or 1/keep


def test_function_scope_uses_one_mask_per_sample_for_every_input_across_batches() -> None:
    masks = _masks("function", batch_size=5)
    assert torch.allclose(masks, masks[:, :1].expand_as(masks))  # all rows, all 3 batches
    assert not torch.allclose(masks[0], masks[1])  # samples are different networks
    nonzero = masks[masks != 0]
    assert torch.allclose(nonzero, torch.full_like(nonzero, 1 / KEEP))  # x·(1/keep)/x, rounded
    whole = _masks("function", batch_size=None)  # the same S networks at any batch size
    assert torch.equal(masks, whole)
    assert not torch.equal(_masks("function", 5, seed=1), masks)


def test_batch_scope_shares_a_mask_within_a_batch_only() -> None:
    masks = _masks("batch", batch_size=6)
    first, second = masks[:, :6], masks[:, 6:]
    assert torch.allclose(first, first[:, :1].expand_as(first))
    assert torch.allclose(second, second[:, :1].expand_as(second))
    assert not torch.allclose(first[:, 0], second[:, 0])


def test_example_scope_draws_per_row() -> None:
    masks = _masks("example", batch_size=None)
    assert not torch.allclose(masks[0, 0], masks[0, 1])


def test_function_scope_masks_follow_the_law() -> None:
    masks = _masks("function", batch_size=None, samples=4000, n=2)[:, 0]  # (S, 8)
    kept = (masks > 0).double().mean()
    # Bernoulli(0.6) on 32000 draws: standard error 0.0027; a keep of 0.58 or 0.62 is rejected
    assert abs(float(kept) - KEEP) < 0.01
    # the S networks are independent: units are uncorrelated across samples
    corr = torch.corrcoef(masks.T)
    assert float((corr - torch.eye(8, dtype=corr.dtype)).abs().max()) < 0.06


def test_function_scope_fixes_variational_weights_and_block_noise() -> None:
    torch.manual_seed(0)
    law = Bernoulli(0.7, inverted=True)
    model = nn.Sequential(NoisyLinear(3, 4, law), nn.ReLU(),
                          Residual(nn.Sequential(nn.Linear(4, 4)), depth_noise=law),
                          nn.Linear(4, 1)).double()
    variational(model, "log_uniform", init_std=0.3)
    x = torch.randn(10, 3, dtype=torch.float64)
    a = predict(model, x, samples=5, likelihood=None, scope="function", batch_size=3).sample_means
    b = predict(model, x, samples=5, likelihood=None, scope="function", batch_size=10).sample_means
    # the same draws in every batch; the matmuls of 3 and of 10 rows may round differently
    torch.testing.assert_close(a, b, rtol=0.0, atol=1e-12)
    assert a.std(0).min() > 0  # the samples differ


def test_scope_restores_the_layers() -> None:
    model = _identity_layer()
    gen = torch.Generator().manual_seed(5)
    model[0].generator = gen
    predict(model, torch.rand(4, 8, dtype=torch.float64), samples=3, likelihood=None,
            scope="function")
    assert model[0].granularity == "example" and model[0].generator is gen


def test_bad_scopes_are_refused_with_the_reason() -> None:
    x = torch.rand(4, 8, dtype=torch.float64)
    with pytest.raises(ValueError, match="scope"):
        predict(_identity_layer(), x, likelihood=None, scope="network")
    torch_dropout = nn.Sequential(nn.Linear(8, 8), nn.Dropout(0.2)).double()
    with pytest.raises(ValueError, match=r"'1' is torch's Dropout"):
        predict(torch_dropout, x, likelihood=None, scope="function")
    with pytest.raises(ValueError, match="vectorize=True repeats the batch"):
        predict(_identity_layer(), x, likelihood=None, scope="batch", vectorize=True)
    with pytest.raises(TypeError, match="seed must be an int"):
        predict(_identity_layer(), x, likelihood=None, scope="function", seed=0.5)


def test_stacked_layout_is_sample_major() -> None:
    from dropprior.likelihoods import Bernoulli as Bernoulli_likelihood
    from dropprior.likelihoods import Categorical

    torch.manual_seed(0)
    model = nn.Sequential(NoisyLinear(4, 3, Bernoulli(0.5, inverted=True))).double()
    x = torch.randn(5, 4, dtype=torch.float64)
    pred = predict(model, x, samples=7, likelihood=Categorical())
    stacked = pred.stacked()
    assert stacked.shape == (35, 3)
    for s in range(7):  # torch-uncertainty's layout: x.repeat(S, 1) through the model
        assert torch.equal(stacked[5 * s:5 * (s + 1)], pred.sample_logits[s])
    assert torch.allclose(torch.softmax(stacked, -1).reshape(7, 5, 3), pred.sample_probs)
    binary = predict(model[:1], x, samples=3, likelihood=Bernoulli_likelihood())
    torch.testing.assert_close(torch.sigmoid(binary.stacked()).reshape(3, 5, 3),
                               binary.sample_probs)
    reg = predict(model, x, samples=7, likelihood=None)
    assert torch.equal(reg.stacked().reshape(7, 5, 3), reg.sample_means)


def test_max_rows_bounds_each_vectorised_pass() -> None:
    torch.manual_seed(0)
    model = _identity_layer()
    rows = []
    model[0].register_forward_hook(lambda m, i, o: rows.append(i[0].shape[0]))
    x = torch.rand(10, 8, dtype=torch.float64)
    pred = predict(model, x, samples=25, likelihood=None, max_rows=40)
    assert rows == [40] * 6 + [10]  # 4 copies of 10 rows per pass, then the last draw
    assert pred.sample_means.shape == (25, 10, 8)
    masks = pred.sample_means / x
    assert not torch.allclose(masks[0], masks[4])  # each copy drew its own noise
    with pytest.raises(ValueError, match="max_rows must be an int >= 1"):
        predict(model, x, samples=3, likelihood=None, max_rows=0)
