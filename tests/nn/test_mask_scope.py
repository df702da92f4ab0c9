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
    assert torch.equal(a, b)
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
