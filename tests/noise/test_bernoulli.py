"""Bernoulli noise against torch's own dropout given the same random state."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from dropprior.noise import Bernoulli, match_dropout


def test_inverted_bernoulli_draws_the_mask_of_torch_dropout() -> None:
    x = torch.ones(64, 257)
    for p in (0.1, 0.3, 0.5, 0.9):
        torch.manual_seed(123)
        expected = F.dropout(x, p, training=True)
        torch.manual_seed(123)
        got = x * match_dropout("bernoulli", p).sample(x.shape)
        torch.testing.assert_close(got, expected)


def test_inverted_values_are_zero_and_one_over_keep() -> None:
    g = torch.Generator().manual_seed(9)
    a = Bernoulli(torch.tensor(0.75, dtype=torch.float64), inverted=True).sample((1000,),
                                                                               generator=g)
    assert set(a.unique().tolist()) == {0.0, 1 / 0.75}


def test_batched_keep_probabilities() -> None:
    keep = torch.tensor([0.1, 0.5, 1.0], dtype=torch.float64)
    law = Bernoulli(keep, inverted=True)
    draws = law.sample((20_000,), generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(draws.mean(0), torch.ones(3, dtype=torch.float64), rtol=0.05,
                               atol=0)
    assert bool((draws[:, 2] == 1).all())
    assert float(law.inverse_square_mean[2]) == 1.0 and float(law.inverse_square_variance[2]) == 0
