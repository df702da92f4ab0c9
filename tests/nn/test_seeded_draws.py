"""Seeded MC prediction: the same numbers however the S draws are split into passes.

The reference for "same numbers" is the looped prediction (``vectorize=False``): one sample per
pass, each noisy module drawing from its own seeded generator. Vectorised passes of every size
(``max_rows``) must reproduce it. The reference for "the right law" is the mask itself, read back
through an identity-weight Bernoulli layer (out / x), against Bernoulli(keep)."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from dropprior import predict
from dropprior.nn import MultiplicativeNoise, NoisyConv2d, NoisyLinear, Residual, seeded_draws
from dropprior.noise import Bernoulli, Gaussian, Rayleigh
from dropprior.objectives import output_samples

KEEP = 0.6


def _mlp() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(
        NoisyLinear(5, 16, Bernoulli(0.8, inverted=True)), nn.ReLU(),
        Residual(nn.Sequential(NoisyLinear(16, 16, Gaussian(1.0, 0.3)), nn.Tanh()),
                 depth_noise=Bernoulli(0.7, inverted=True)),
        MultiplicativeNoise(Rayleigh(1.0)),
        NoisyLinear(16, 3, Bernoulli(0.9, inverted=True), structure="weight"),
    ).double().eval()


def _conv() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(NoisyConv2d(2, 4, 3, Bernoulli(0.7, inverted=True), padding=1),
                         nn.ReLU(), nn.Flatten(),
                         NoisyLinear(4 * 6 * 6, 2, Bernoulli(0.8, inverted=True))
                         ).double().eval()


def _local_reparam() -> nn.Module:
    torch.manual_seed(0)
    first = NoisyLinear(5, 8, Gaussian(1.0, 0.5), structure="weight", local_reparam=True)
    return nn.Sequential(first, nn.ReLU(),
                         NoisyLinear(8, 2, Bernoulli(0.8, inverted=True))).double().eval()


@pytest.mark.parametrize("build, shape", [(_mlp, (7, 5)), (_conv, (5, 2, 6, 6)),
                                          (_local_reparam, (7, 5))])
def test_seeded_draws_are_the_same_vectorised_looped_and_chunked(build, shape) -> None:
    model = build()
    x = torch.randn(*shape, dtype=torch.float64, generator=torch.Generator().manual_seed(3))
    looped = predict(model, x, samples=12, likelihood=None, seed=4, vectorize=False)
    assert looped.sample_means.std(0).min() > 0  # the samples differ
    for max_rows in (None, x.shape[0], 3 * x.shape[0], 5 * x.shape[0]):
        torch.manual_seed(99)  # the global generator plays no part
        chunked = predict(model, x, samples=12, likelihood=None, seed=4, max_rows=max_rows)
        torch.testing.assert_close(chunked.sample_means, looped.sample_means,
                                   rtol=1e-12, atol=1e-12)
    other = predict(model, x, samples=12, likelihood=None, seed=5)
    assert not torch.allclose(other.sample_means, looped.sample_means)


def test_unseeded_chunks_differ_so_the_seed_is_what_makes_them_equal() -> None:
    model, x = _mlp(), torch.randn(7, 5, dtype=torch.float64)
    torch.manual_seed(1)
    a = predict(model, x, samples=12, likelihood=None, vectorize=False).sample_means
    torch.manual_seed(1)
    b = predict(model, x, samples=12, likelihood=None, max_rows=21).sample_means
    assert not torch.allclose(a, b)


def _identity(d: int = 8) -> nn.Module:
    layer = NoisyLinear(d, d, Bernoulli(KEEP, inverted=True)).double()
    with torch.no_grad():
        layer.weight.copy_(torch.eye(d, dtype=torch.float64))
        layer.bias.zero_()
    return nn.Sequential(layer).eval()


def test_seeded_masks_follow_the_law_and_are_independent_across_samples_and_batches() -> None:
    x = torch.rand(40, 8, dtype=torch.float64) + 0.5
    masks = predict(_identity(), x, samples=500, likelihood=None, seed=0, batch_size=10,
                    max_rows=70).sample_means / x  # (S, N, 8), 0 or 1/keep
    kept = (masks > 0).double()
    # Bernoulli(0.6) on 160 000 draws: standard error 0.0012; a keep of 0.595 is rejected
    assert abs(float(kept.mean()) - KEEP) < 0.004
    nonzero = masks[masks != 0]
    torch.testing.assert_close(nonzero, torch.full_like(nonzero, 1 / KEEP))
    # rows of one batch, the batches and the samples are uncorrelated (|r| < 4.5 / sqrt(n))
    flat = kept.reshape(500, 40 * 8)
    across_samples = torch.corrcoef(flat.T[:, :250])  # samples 0..249 against each other
    off = across_samples - torch.eye(320, dtype=flat.dtype)
    assert float(off.abs().max()) < 4.5 / 250**0.5
    per_row = kept.permute(1, 0, 2).reshape(40, -1)  # each example's 4000 draws
    rows = torch.corrcoef(per_row) - torch.eye(40, dtype=flat.dtype)
    assert float(rows.abs().max()) < 4.5 / 4000**0.5  # batch b's rows are not batch b+1's


def test_seeded_draws_restore_generators_and_forwards() -> None:
    model = _identity()
    gen = torch.Generator().manual_seed(5)
    model[0].generator = gen
    with seeded_draws(model, 0) as seeded:
        assert "forward" in model[0].__dict__ and seeded.layers == [model[0]]
    assert model[0].generator is gen and "forward" not in model[0].__dict__
    predict(model, torch.rand(4, 8, dtype=torch.float64), samples=3, likelihood=None, seed=1)
    assert model[0].generator is gen and "forward" not in model[0].__dict__
    own = model[0].forward  # a forward set on the instance survives the context
    model[0].forward = own
    with seeded_draws(model, 0):
        assert model[0].forward is not own
    assert model[0].__dict__["forward"] is own


def test_output_samples_takes_the_handle() -> None:
    model, x = _mlp(), torch.randn(6, 5, dtype=torch.float64)
    with torch.no_grad(), seeded_draws(model, 2) as seeded:
        model.train()
        a = output_samples(model, x, 9, vectorize=True, max_rows=24, seeded=seeded)
        c = output_samples(model, x, 9, vectorize=False, seeded=seeded)  # the streams go on
        seeded.start_batch(0)  # the same batch again: the same generators from their start
        b = output_samples(model, x, 9, vectorize=False, seeded=seeded)
    torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-12)
    assert not torch.allclose(a, c)


def test_seeded_prediction_refuses_what_it_cannot_seed() -> None:
    x = torch.rand(4, 8, dtype=torch.float64)
    torch_dropout = nn.Sequential(nn.Linear(8, 8), nn.Dropout(0.2)).double()
    with pytest.raises(ValueError, match=r"seeded prediction.*'1' is torch's Dropout.*seed=None"):
        predict(torch_dropout, x, samples=3, likelihood=None, seed=0)
    with pytest.raises(TypeError, match="seed must be an int or None"):
        predict(_identity(), x, samples=3, likelihood=None, seed=1.5)
    batchwise = nn.Sequential(NoisyLinear(8, 8, Bernoulli(0.5), granularity="batch")).double()
    with pytest.raises(ValueError, match=r"cannot split them.*granularity 'example'"):
        predict(batchwise, x, samples=3, likelihood=None, seed=0, vectorize=True)
    looped = predict(batchwise, x, samples=3, likelihood=None, seed=0)  # granularity batch: loops
    assert looped.sample_means.shape == (3, 4, 8)
