"""Deep ensembles: predict_ensemble against the members' outputs averaged by hand, fit_ensemble
against single fits with the members' seeds."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from dropprior import fit, fit_ensemble, predict_ensemble
from dropprior.likelihoods import Categorical, Gaussian
from dropprior.nn import NoisyLinear
from dropprior.noise import Bernoulli

f64 = torch.float64


def _data() -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    x = torch.randn(40, 3, generator=g, dtype=f64)
    return x, (x[:, 0] > x[:, 1]).long()


def _factory() -> nn.Module:
    return nn.Sequential(nn.Linear(3, 8), nn.Tanh(), nn.Linear(8, 2)).double()


def test_the_ensemble_predictive_is_the_mean_of_the_members_softmax() -> None:
    x, _ = _data()
    members = [_factory() for _ in range(3)]
    pred = predict_ensemble(members, x, Categorical(), samples=4)
    by_hand = torch.stack([torch.softmax(m(x), -1) for m in members]).mean(0)
    torch.testing.assert_close(pred.probs, by_hand.detach())
    assert pred.sample_probs.shape == (12, 40, 2)  # each deterministic member weighs 4 draws


def test_noisy_members_contribute_their_draws_to_one_mixture() -> None:
    x, _ = _data()
    torch.manual_seed(0)
    members = [nn.Sequential(NoisyLinear(3, 1, Bernoulli(0.5, inverted=True))).double()
               for _ in range(2)]
    y = torch.zeros(40, 1, dtype=f64)
    pred = predict_ensemble(members, x, Gaussian(0.5), samples=5)
    assert pred.sample_means.shape == (10, 40, 1)
    torch.testing.assert_close(pred.mean, pred.sample_means.mean(0))
    by_hand = torch.logsumexp(torch.distributions.Normal(pred.sample_means, 0.5).log_prob(y)
                              .sum(-1), 0) - torch.log(torch.tensor(10.0, dtype=f64))
    torch.testing.assert_close(pred.log_density(y), by_hand)


def test_each_member_is_a_fit_with_its_own_seed() -> None:
    x, y = _data()
    members = fit_ensemble(_factory, 3, Categorical(), x, y, seed=5, epochs=3, lr=0.05,
                           batch_size=10, progress=False)
    for m, member in enumerate(members):
        torch.manual_seed(5 + m)
        alone = _factory()
        fit(alone, Categorical(), x, y, seed=5 + m, epochs=3, lr=0.05, batch_size=10,
            progress=False)
        for p, q in zip(member.parameters(), alone.parameters(), strict=True):
            torch.testing.assert_close(p, q)
    assert not torch.equal(members[0][0].weight, members[1][0].weight)


def test_member_seeds_wrap_modulo_2_64_as_torch_reads_seeds() -> None:
    """From seed 2**64 - 2 the third member's seed 2**64 wraps to 0: that member is the one
    seed 0 trains; seed -1 trains as 2**64 - 1, torch's reading of -1."""
    x, y = _data()
    kwargs = {"epochs": 2, "lr": 0.05, "batch_size": 10, "progress": False}
    top = fit_ensemble(_factory, 3, Categorical(), x, y, seed=2**64 - 2, **kwargs)
    (zero,) = fit_ensemble(_factory, 1, Categorical(), x, y, seed=0, **kwargs)
    (minus_one,) = fit_ensemble(_factory, 1, Categorical(), x, y, seed=-1, **kwargs)
    for p, q, r in zip(top[2].parameters(), zero.parameters(), minus_one.parameters(),
                       strict=True):
        torch.testing.assert_close(p, q)
        assert not torch.equal(p, r)
    for p, r in zip(top[1].parameters(), minus_one.parameters(), strict=True):
        torch.testing.assert_close(p, r)


def test_bad_ensemble_arguments_name_the_value() -> None:
    x, y = _data()
    with pytest.raises(ValueError, match="members must be an int >= 1, got 0"):
        fit_ensemble(_factory, 0, Categorical(), x, y)
    with pytest.raises(TypeError, match="factory must be a callable"):
        fit_ensemble(_factory(), 2, Categorical(), x, y)
    with pytest.raises(ValueError, match="non-empty sequence of models"):
        predict_ensemble([], x, Categorical())
    same = _factory()
    with pytest.raises(ValueError, match="built member 1 with trainable parameters of member 0"):
        fit_ensemble(lambda: same, 2, Categorical(), x, y, epochs=1, progress=False)
    backbone = nn.Linear(3, 3).double().requires_grad_(False)  # shared and frozen: allowed
    members = fit_ensemble(lambda: nn.Sequential(backbone, nn.Linear(3, 2).double()), 2,
                           Categorical(), x, y, epochs=1, progress=False)
    assert members[0][0] is members[1][0] and members[0][1] is not members[1][1]
    with pytest.raises(TypeError, match="seed must be an int, got 0.5"):
        fit_ensemble(_factory, 2, Categorical(), x, y, seed=0.5)
    three_classes = nn.Sequential(nn.Linear(3, 3)).double()
    with pytest.raises(ValueError, match=r"must predict alike: member 0 gives outputs of shape "
                                         r"\(40, 2\) per draw, member 1 \(40, 3\)"):
        predict_ensemble([_factory(), three_classes], x, Categorical())
