"""Goodness of fit with fixed seeds: samples of ξ and of ξ² against scipy, strict enough that a
law off by 10% in scale is rejected (asserted alongside)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from _noise_reference import BY_NAME, FIXTURES, case_id, cases, make
from numpy.testing import assert_allclose
from scipy import stats

from dropprior.noise import Gaussian, ScaledBernoulli, ScaledNoncentralChi2

CONTINUOUS = [f for f in FIXTURES if not f.discrete]
N = 20_000
ALPHA = 1e-3


def _draws(law, sampler: str = "sample", seed: int = 0) -> np.ndarray:
    g = torch.Generator().manual_seed(seed)
    return getattr(law, sampler)((N,), generator=g).detach().numpy()


@pytest.mark.parametrize(("fixture", "params"), cases(CONTINUOUS), ids=case_id)
@pytest.mark.parametrize("sampler", ["sample", "rsample"])
def test_samples_follow_the_law_and_a_10pct_scale_error_is_rejected(fixture, params,
                                                                   sampler) -> None:
    law = make(fixture, params)
    x = _draws(law, sampler)
    ref = fixture.scipy(**params)
    assert stats.kstest(x, ref.cdf).pvalue > ALPHA
    assert stats.kstest(x, lambda v: ref.cdf(v / 1.1)).pvalue < ALPHA
    assert stats.kstest(x * 1.1, ref.cdf).pvalue < ALPHA


@pytest.mark.parametrize("params", BY_NAME["bernoulli"].examples, ids=case_id)
def test_bernoulli_frequency_and_a_10pct_keep_error_is_rejected(params) -> None:
    law = make(BY_NAME["bernoulli"], params)
    x = _draws(law)
    c = 1 / params["keep"] if params.get("inverted") else 1.0
    assert set(np.unique(x)) <= {0.0, c}
    kept = int(np.sum(x == c))
    assert stats.binomtest(kept, N, params["keep"]).pvalue > ALPHA
    assert stats.binomtest(kept, N, params["keep"] * 1.1).pvalue < ALPHA


# ---- variance priors: the law of ξ² --------------------------------------------------------

def _square_logpdf(ref, y: np.ndarray) -> np.ndarray:
    """Change of variables from the scipy law of ξ: [p(√y) + p(−√y)] / (2√y)."""
    r = np.sqrt(y)
    return np.logaddexp(ref.logpdf(r), ref.logpdf(-r)) - np.log(2 * r)


def _square_cdf(ref, y: np.ndarray) -> np.ndarray:
    r = np.sqrt(y)
    return ref.cdf(r) - ref.cdf(-r)


@pytest.mark.parametrize(("fixture", "params"), cases(CONTINUOUS), ids=case_id)
def test_variance_prior_log_prob_matches_transformation_and_scipy_family(fixture,
                                                                        params) -> None:
    law = make(fixture, params)
    prior = law.variance_prior()
    ref = fixture.scipy(**params)
    y = np.square(ref.rvs(size=40, random_state=np.random.default_rng(3)))
    got = prior.log_prob(torch.tensor(y)).numpy()
    assert_allclose(got, _square_logpdf(ref, y), rtol=1e-8, atol=1e-10)
    if fixture.scipy_square is not None:
        assert_allclose(got, fixture.scipy_square(**params).logpdf(y), rtol=1e-8, atol=1e-10)


@pytest.mark.parametrize(("fixture", "params"), cases(CONTINUOUS), ids=case_id)
def test_variance_prior_samples_follow_the_square_law(fixture, params) -> None:
    prior = make(fixture, params).variance_prior()
    torch.manual_seed(11)  # torch.distributions samplers take no generator
    y = prior.sample((N,)).numpy()
    ref = fixture.scipy(**params)
    assert stats.kstest(y, lambda v: _square_cdf(ref, v)).pvalue > ALPHA
    assert stats.kstest(y, lambda v: _square_cdf(ref, v / 1.1)).pvalue < ALPHA


def test_variance_prior_families() -> None:
    from torch import distributions as td

    from dropprior import noise

    assert isinstance(noise.Rayleigh(1.0).variance_prior(), td.Exponential)
    assert isinstance(noise.InverseNakagami(2.0, 1.0).variance_prior(), td.InverseGamma)
    assert isinstance(noise.LogNormal(0.0, 1.0).variance_prior(), td.LogNormal)
    chi2 = noise.Gaussian(0.0, 2.0).variance_prior()
    assert isinstance(chi2, td.TransformedDistribution) and isinstance(chi2.base_dist, td.Chi2)
    assert isinstance(noise.Gaussian(1.0, 2.0).variance_prior(), ScaledNoncentralChi2)
    assert isinstance(noise.Bernoulli(0.5).variance_prior(), td.Bernoulli)
    assert isinstance(noise.Bernoulli(0.5, inverted=True).variance_prior(), ScaledBernoulli)


def test_noncentral_chi2_against_scipy_ncx2() -> None:
    mean, std = torch.tensor([1.0, -0.5, 3.0], dtype=torch.float64), torch.tensor(
        [0.5, 2.0, 0.7], dtype=torch.float64)
    prior = Gaussian(mean, std).variance_prior()
    y = torch.tensor([[1e-8], [0.3], [1.0], [9.0], [50.0]], dtype=torch.float64)
    for i in range(3):
        ref = stats.ncx2(1, (mean[i] / std[i]).item() ** 2, scale=std[i].item() ** 2)
        assert_allclose(prior.log_prob(y)[:, i].numpy(), ref.logpdf(y[:, 0].numpy()), rtol=1e-8)
        assert_allclose(prior.cdf(y)[:, i].numpy(), ref.cdf(y[:, 0].numpy()), rtol=1e-8,
                        atol=1e-14)
        assert_allclose(float(prior.mean[i]), ref.mean(), rtol=1e-12)
        assert_allclose(float(prior.variance[i]), ref.var(), rtol=1e-12)
    assert torch.isneginf(prior.log_prob(torch.tensor(-1.0, dtype=torch.float64))).all()


def test_inverted_bernoulli_variance_prior_is_a_two_point_law() -> None:
    from dropprior.noise import Bernoulli

    prior = Bernoulli(torch.tensor(0.8, dtype=torch.float64), inverted=True).variance_prior()
    c2 = 1 / 0.8**2
    lp = prior.log_prob(torch.tensor([0.0, c2, 1.0], dtype=torch.float64))
    assert_allclose(lp.numpy(), [math.log(0.2), math.log(0.8), -math.inf], rtol=1e-12)
    y = prior.sample((N,), generator=torch.Generator().manual_seed(0))
    values = y.unique().tolist()
    assert len(values) == 2 and values[0] == 0.0
    assert_allclose(values[1], c2, rtol=1e-15)
    assert stats.binomtest(int((y > 0).sum()), N, 0.8).pvalue > ALPHA
