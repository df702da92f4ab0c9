"""Truncated noise laws against closed forms and scipy: moments, density, cdf, sampling (KS test),
the marginal prior, use in a layer, and bad input."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from numpy.testing import assert_allclose
from scipy import integrate, stats
from torch.testing import assert_close

from dropprior.nn import NoisyLinear
from dropprior.noise import Bernoulli, Gaussian, HalfCauchy, InverseNakagami
from dropprior.truncation import Truncated


@pytest.mark.parametrize(("s", "u"), [(1.0, 10.0), (0.5, 2.0)])
def test_truncated_half_cauchy_moments_match_closed_form(s: float, u: float) -> None:
    law = Truncated(HalfCauchy(s), u)
    a = math.atan(u / s)
    mean = s * math.log1p((u / s) ** 2) / (2 * a)  # ∫ξ p / F(u)
    second = s * s * (u / s - a) / a
    assert_allclose(float(law.mean), mean, rtol=1e-6)
    assert_allclose(float(law.second_moment), second, rtol=1e-6)
    assert_allclose(float(law.variance), second - mean**2, rtol=1e-6)
    # the density at 0 is positive, so E[ξ⁻²] diverges there, truncated or not
    assert math.isinf(float(law.inverse_square_mean))
    assert math.isinf(float(law.inverse_square_variance))


def test_truncated_inverse_nakagami_matches_scipy() -> None:
    m, omega, u = 0.75, 1.0, 5.0
    law = Truncated(InverseNakagami(m, omega), u)
    eta = stats.nakagami(m, scale=math.sqrt(omega))  # ξ = 1/η, so ξ ≤ u ⇔ η ≥ 1/u

    def moment(k: float) -> float:
        return eta.expect(lambda e: e ** (-k), lb=1 / u, ub=np.inf, conditional=True)

    assert_allclose(float(law.mean), moment(1), rtol=1e-5)
    assert_allclose(float(law.second_moment), moment(2), rtol=1e-5)
    assert_allclose(float(law.inverse_square_mean), moment(-2), rtol=1e-5)
    assert_allclose(float(law.inverse_square_variance), moment(-4) - moment(-2) ** 2, rtol=1e-5)
    # the base law has no variance (m ≤ 1); the truncated one has every moment
    assert math.isinf(float(InverseNakagami(m, omega).variance))
    assert math.isfinite(float(law.variance))


def test_density_and_cdf_match_scipy() -> None:
    u = 3.0
    law = Truncated(HalfCauchy(1.0), u)
    x = torch.tensor([0.0, 0.3, 1.0, 2.9, 3.0, 3.5, -0.1], dtype=torch.float64)
    ref = stats.halfcauchy()
    inside = (x.numpy() >= 0) & (x.numpy() <= u)
    expected = np.where(inside, ref.logpdf(x.numpy()) - ref.logcdf(u), -np.inf)
    assert_allclose(law.log_prob(x).numpy(), expected, rtol=1e-6)
    expected_cdf = np.clip(ref.cdf(np.clip(x.numpy(), 0, u)) / ref.cdf(u), 0, 1)
    assert_allclose(law.cdf(x).numpy(), expected_cdf, rtol=1e-6)
    total, _ = integrate.quad(lambda t: math.exp(float(law.log_prob(torch.tensor(t)))), 0, u)
    assert_allclose(total, 1.0, rtol=1e-5)


@pytest.mark.parametrize(("base", "ref"), [
    (HalfCauchy(1.0), stats.halfcauchy()),
    (InverseNakagami(0.75, 2.0), stats.nakagami(0.75, scale=math.sqrt(2.0))),  # of η = 1/ξ
], ids=["half_cauchy", "inverse_nakagami"])
def test_icdf_is_scipys_base_quantile_of_the_kept_mass(base, ref) -> None:
    """F_u⁻¹(q) = F⁻¹(q·F(u)) within [0, u], F⁻¹ from scipy (for ξ = 1/η through η's isf),
    and a q that is no probability named."""
    u = 3.0
    law = Truncated(base, u).to(dtype=torch.float64)
    q = np.array([0.0, 1e-6, 0.2, 0.5, 0.9, 1.0])
    if isinstance(base, HalfCauchy):
        expected = ref.ppf(q * ref.cdf(u))
    else:  # P(ξ ≤ x) = P(η ≥ 1/x)
        with np.errstate(divide="ignore"):
            expected = 1 / ref.isf(q * ref.sf(1 / u))
    assert_allclose(law.icdf(torch.tensor(q)).numpy(), expected, rtol=1e-9)
    assert float(law.icdf(torch.tensor(1.0))) == u
    with pytest.raises(ValueError, match=r"Truncated.icdf takes probabilities in \[0, 1\]; "
                                         r"got 1.5"):
        law.icdf(torch.tensor([0.5, 1.5]))


@pytest.mark.parametrize("base", [InverseNakagami(0.75, 1.0), HalfCauchy(1.0)],
                         ids=["rejection", "inverse-cdf"])
def test_samples_follow_the_truncated_law(base) -> None:
    law = Truncated(base, 4.0)
    draws = law.sample((20000,), generator=torch.Generator().manual_seed(0))
    assert float(draws.max()) <= 4.0 and float(draws.min()) >= 0
    result = stats.kstest(draws.double().numpy(),
                          lambda t: law.cdf(torch.as_tensor(t)).numpy())
    assert result.pvalue > 0.01
    # a wrong law (the untruncated base) is rejected by the same test
    wrong = stats.kstest(draws.double().numpy(),
                         lambda t: base.cdf(torch.as_tensor(t)).numpy())
    assert wrong.pvalue < 1e-6
    again = law.sample((20000,), generator=torch.Generator().manual_seed(0))
    assert torch.equal(draws, again)
    assert_allclose(float(draws.mean()), float(law.mean), rtol=0.03)
    assert law.sample((3, 2)).shape == (3, 2)


def test_marginal_prior_is_the_truncated_scale_mixture() -> None:
    law = Truncated(HalfCauchy(1.0), 5.0)
    marginal = law.marginal(0.5)
    w = torch.tensor([0.05, 0.5, 2.0, 4.0], dtype=torch.float64)

    def density(wi: float) -> float:
        def integrand(xi: float) -> float:
            p = math.exp(float(law.log_prob(torch.tensor(xi, dtype=torch.float64))))
            return stats.norm(scale=0.5 * xi).pdf(wi) * p

        return integrate.quad(integrand, 0, 5.0, limit=200, points=[wi])[0]

    expected = np.log([density(float(v)) for v in w])
    assert_allclose(marginal.log_prob(w).double().numpy(), expected, rtol=1e-5)


def test_layer_uses_the_truncated_mean_in_eval_and_draws_in_train() -> None:
    law = Truncated(HalfCauchy(1.0), 10.0)
    torch.manual_seed(0)
    layer = NoisyLinear(5, 3, law)
    x = torch.randn(4, 5)
    layer.eval()
    with torch.no_grad():
        assert_close(layer(x), torch.nn.functional.linear(x * law.mean, layer.weight, layer.bias))
    layer.train()
    out = layer(x)
    assert out.shape == (4, 3) and bool(torch.isfinite(out).all())
    assert law.to(dtype=torch.float64).mean.dtype == torch.float64
    assert law.expand((2, 3)).sample((4,)).shape == (4, 2, 3)


def test_bad_input() -> None:
    with pytest.raises(ValueError, match="upper must be finite and > 0"):
        Truncated(HalfCauchy(1.0), 0.0)
    with pytest.raises(ValueError, match="law on ξ ≥ 0"):
        Truncated(Gaussian(1.0, 0.5), 3.0)
    with pytest.raises(ValueError, match="continuous"):
        Truncated(Bernoulli(0.5), 3.0)
    with pytest.raises(TypeError, match="NoiseLaw"):
        Truncated(torch.distributions.HalfCauchy(1.0), 3.0)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="already Truncated"):
        Truncated(Truncated(HalfCauchy(1.0), 3.0), 2.0)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="scalar"):
        Truncated(HalfCauchy(1.0), torch.tensor([1.0, 2.0]))
    with pytest.raises(NotImplementedError, match="no reparametrized sampler"):
        Truncated(HalfCauchy(1.0), 3.0).rsample((2,))
    # cdf(nan) is no probability: refused naming the truncated law, not the inner one; a nan
    # stays outside the support for log_prob (-inf), as for every law
    law = Truncated(InverseNakagami(0.75, 1.0), 3.0)
    with pytest.raises(ValueError, match=r"1 nan\(s\); Truncated\.cdf takes real numbers"):
        law.cdf(torch.tensor([0.5, float("nan")]))
    assert float(law.log_prob(torch.tensor(float("nan")))) == -math.inf
