"""Generator-driven Gamma draws against scipy; R-hat and bulk ESS against known answers."""

from __future__ import annotations

import pytest
import torch
from scipy import stats

from dropprior.inference import bulk_ess, split_rhat
from dropprior.inference._random import inverse_gamma, standard_gamma


@pytest.mark.parametrize("shape", [0.4, 1.0, 3.5, 200.0])
def test_standard_gamma_matches_scipy(shape):
    g = torch.Generator().manual_seed(0)
    x = standard_gamma(torch.full((20000,), shape, dtype=torch.float64), generator=g)
    assert stats.kstest(x.numpy(), stats.gamma(shape).cdf).pvalue > 1e-3


def test_inverse_gamma_matches_scipy():
    g = torch.Generator().manual_seed(1)
    x = inverse_gamma(torch.full((20000,), 2.5, dtype=torch.float64), torch.tensor(3.0), g)
    assert stats.kstest(x.numpy(), stats.invgamma(2.5, scale=3.0).cdf).pvalue > 1e-3


def _ar1(chains: int, n: int, rho: float, seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    e = torch.randn(chains, n, dtype=torch.float64, generator=g)
    x = torch.empty_like(e)
    x[:, 0] = e[:, 0]
    for t in range(1, n):
        x[:, t] = rho * x[:, t - 1] + (1 - rho**2) ** 0.5 * e[:, t]
    return x


def test_bulk_ess_of_ar1_matches_theory():
    """AR(1) with coefficient ρ: ESS = C·n·(1 − ρ)/(1 + ρ)."""
    x = _ar1(4, 4000, 0.8, 0)
    expected = 4 * 4000 * 0.2 / 1.8
    assert abs(float(bulk_ess(x)) / expected - 1) < 0.2
    assert float(split_rhat(x)) < 1.01


def test_rhat_flags_disagreeing_chains():
    x = _ar1(4, 1000, 0.5, 1)
    x[0] += 3.0
    assert float(split_rhat(x)) > 1.1


def test_constant_scalar_is_finite_and_does_not_spoil_others():
    x = _ar1(2, 500, 0.0, 2)[..., None].repeat(1, 1, 2)
    x[..., 1] = 1.0
    ess = bulk_ess(x)
    assert torch.isfinite(ess).all()
    assert float(ess[1]) == 1000.0
    assert 700 < float(ess[0]) < 1400
    torch.testing.assert_close(split_rhat(x)[1], torch.tensor(1.0, dtype=torch.float64))


def test_diagnostics_reject_bad_shapes():
    with pytest.raises(ValueError, match="chains, samples"):
        bulk_ess(torch.randn(10))
    with pytest.raises(ValueError, match="at least 4"):
        split_rhat(torch.randn(2, 3))


def test_antithetic_chains_give_a_positive_bounded_ess():
    """AR(−0.7), 2 × 200 draws: theory gives ESS ≈ 400·1.7/0.3 ≈ 2267 > S; the estimate must be
    positive (a missing Geyer truncation gave −57 067) and at most S·log10(S)."""
    x = _ar1(2, 200, -0.7, 3)
    ess = float(bulk_ess(x))
    assert 400 < ess <= 400 * torch.log10(torch.tensor(400.0)).item() + 1e-6


def test_one_chain_has_a_positive_ess():
    x = _ar1(1, 300, 0.3, 4)
    ess = float(bulk_ess(x))
    assert 0 < ess <= 300 * 2.5
    assert abs(ess / (300 * 0.7 / 1.3) - 1) < 0.5


def test_diagnostics_reject_nonfinite_draws():
    """A chain that diverged to nan has no R-hat or ESS: an error, not ArviZ's nan."""
    draws = torch.randn(2, 20, generator=torch.Generator().manual_seed(0))
    draws[1, 7] = float("nan")
    for diagnostic in (split_rhat, bulk_ess):
        with pytest.raises(ValueError, match=r"draws hold 1 non-finite value\(s\)"):
            diagnostic(draws)
