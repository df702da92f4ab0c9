"""Generic contracts, run over every registered noise law (reference table: _noise_reference.py)."""

from __future__ import annotations

import re

import numpy as np
import pytest
import torch
from _noise_reference import BY_NAME, FIXTURES, case_id, cases, make
from numpy.testing import assert_allclose

from dropprior import noise

MOMENTS = ["mean", "variance", "second_moment", "inverse_square_mean", "inverse_square_variance"]


def test_every_registered_law_has_a_fixture() -> None:
    assert set(noise.registered_laws()) == set(BY_NAME)
    for name, cls in noise.registered_laws().items():
        assert noise.law_by_name(name) is cls
        assert BY_NAME[name].law is cls
    with pytest.raises(ValueError, match="'laplace'.*expected one of"):
        noise.law_by_name("laplace")


def _grid(fixture, params) -> np.ndarray:
    """Draws from the scipy reference plus points outside the support."""
    ref = fixture.scipy(**params)
    inside = np.asarray(ref.rvs(size=30, random_state=np.random.default_rng(0)), dtype=float)
    if fixture.discrete:
        c = ref.c
        return np.concatenate([[0.0, c, 0.5 * c, -1.0, 2 * c], inside])
    lo, hi = ref.support()
    outside = [v for v in (lo - 1.0, hi + 1.0) if np.isfinite(v)]
    return np.concatenate([inside, outside])


@pytest.mark.parametrize(("fixture", "params"), cases(), ids=case_id)
def test_log_prob_matches_scipy(fixture, params) -> None:
    law = make(fixture, params)
    x = _grid(fixture, params)
    got = law.log_prob(torch.tensor(x)).numpy()
    want = fixture.scipy(**params).logpdf(x)
    assert not np.isnan(got).any()
    assert_allclose(got, want, rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize(("fixture", "params"), cases(), ids=case_id)
def test_cdf_matches_scipy(fixture, params) -> None:
    law = make(fixture, params)
    x = _grid(fixture, params)
    if fixture.name == "beta":  # torch has no regularized incomplete beta function
        with pytest.raises(NotImplementedError, match=r"Beta.cdf: .*scipy.stats.beta"):
            law.cdf(torch.tensor(x))
        return
    got = law.cdf(torch.tensor(x)).numpy()
    assert_allclose(got, fixture.scipy(**params).cdf(x), rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize(("fixture", "params"), cases(), ids=case_id)
def test_icdf_matches_scipy(fixture, params) -> None:
    """The quantile function against scipy's ``ppf`` inside (0, 1), the support's ends at 0 and
    1, and, in the far upper tail where scipy's ``ppf`` loses digits (it inverts through
    1 − q's rounding), F(F⁻¹(q)) = q through the scipy-tested ``cdf``."""
    law = make(fixture, params)
    if fixture.name == "beta":  # no cdf, hence no quantile function (see test_cdf_matches_scipy)
        with pytest.raises(NotImplementedError, match=r"Beta.icdf: .*scipy.stats.beta"):
            law.icdf(torch.tensor([0.5], dtype=torch.float64))
        return
    ref = fixture.scipy(**params)
    q = np.array([1e-9, 1e-3, 0.1, 0.3, 0.5, 0.7, 0.9, 0.999])
    if fixture.discrete:  # inf{x: F(x) ≥ q} jumps at q = 1 − π; stay off the jump itself
        q = q[~np.isclose(q, 1 - params["keep"])]
    assert_allclose(law.icdf(torch.tensor(q)).numpy(), ref.ppf(q), rtol=1e-9, atol=1e-300)
    ends = law.icdf(torch.tensor([0.0, 1.0], dtype=torch.float64)).tolist()
    if fixture.discrete:  # scipy's discrete ppf(0) is one below the support (−c here)
        assert ends == [0.0, ref.c]
        return
    assert ends == list(ref.support())
    tail = torch.tensor([1 - 1e-6, 1 - 1e-12], dtype=torch.float64)
    x = law.icdf(tail)
    assert_allclose(law.cdf(x).numpy(), tail.numpy(), rtol=0, atol=1e-15)
    assert_allclose(ref.cdf(x.numpy()), tail.numpy(), rtol=0, atol=1e-12)


@pytest.mark.parametrize(("fixture", "params"), cases(), ids=case_id)
def test_icdf_gradient_in_the_probability_is_one_over_the_density(fixture, params) -> None:
    """dF⁻¹(q)/dq = 1 / f(F⁻¹(q)), f from scipy's pdf: icdf can carry an inverse-CDF draw's
    gradient, as torch's own laws' icdf does."""
    if fixture.discrete or fixture.name == "beta":
        return
    law = make(fixture, params)
    ref = fixture.scipy(**params)
    q = torch.tensor([1e-3, 0.1, 0.5, 0.9, 0.999], dtype=torch.float64, requires_grad=True)
    (grad,) = torch.autograd.grad(law.icdf(q).sum(), q)
    assert_allclose(grad.numpy(), 1 / ref.pdf(ref.ppf(q.detach().numpy())), rtol=1e-7)


@pytest.mark.parametrize("fixture", FIXTURES, ids=case_id)
def test_icdf_refuses_what_is_no_probability(fixture) -> None:
    """nan, below 0 or above 1: a ValueError naming the law's icdf, the value and how many."""
    law = make(fixture, fixture.examples[0])
    if fixture.name == "beta":
        return
    name = type(law).__name__
    for bad, shown in ((float("nan"), "nan"), (-0.1, "-0.1"), (1.2, "1.2")):
        with pytest.raises(ValueError, match=rf"{name}.icdf takes probabilities in \[0, 1\]; "
                                             rf"got {shown} \(1 of 3 value\(s\) outside\)"):
            law.icdf(torch.tensor([0.5, bad, 0.25], dtype=torch.float64))


def _batched(fixture):
    """One law whose batch holds every example (batch_shape = (E,))."""
    keys = [k for k in fixture.examples[0] if k != "inverted"]
    examples = [ex for ex in fixture.examples if not ex.get("inverted", False)]
    kwargs = {k: torch.tensor([ex[k] for ex in examples], dtype=torch.float64) for k in keys}
    return fixture.law(**kwargs), len(examples)


@pytest.mark.parametrize("fixture", FIXTURES, ids=case_id)
def test_shapes_and_expand(fixture) -> None:
    law, n = _batched(fixture)
    g = torch.Generator().manual_seed(0)
    assert law.batch_shape == (n,) and law.event_shape == ()
    draws = law.sample((4, 5), generator=g)
    assert draws.shape == (4, 5, n) and draws.dtype == torch.float64
    assert law.sample(3, generator=g).shape == (3, n)
    assert law.log_prob(draws).shape == (4, 5, n)
    for name in MOMENTS:
        assert getattr(law, name).shape == (n,), name
    if law.has_rsample:
        assert law.rsample((2,), generator=g).shape == (2, n)
    big = law.expand((3, n))
    assert type(big) is type(law) and big.batch_shape == (3, n)
    assert big.sample((2,), generator=g).shape == (2, 3, n)
    torch.testing.assert_close(big.mean, law.mean.expand(3, n), equal_nan=False)
    with pytest.raises(TypeError, match="sample_shape"):
        law.sample("big")
    # torch's "negative dimension" RuntimeError (or a law's own code) never sees a bad size
    for bad in ((-2,), -1, (3, -1)):
        with pytest.raises(ValueError, match=r"sample_shape must hold sizes >= 0, got "
                                             + re.escape(repr(bad))):
            law.sample(bad, generator=g)
        if law.has_rsample:
            with pytest.raises(ValueError, match="sample_shape must hold sizes >= 0"):
                law.rsample(bad)


@pytest.mark.parametrize(("fixture", "params"), cases(), ids=case_id)
def test_samples_lie_in_support(fixture, params) -> None:
    law = make(fixture, params)
    draws = law.sample((2000,), generator=torch.Generator().manual_seed(1))
    assert bool(law.support.check(draws).all())
    assert bool(torch.isfinite(law.log_prob(draws)).all())
    if law.has_rsample:
        assert bool(law.support.check(law.rsample((500,))).all())


@pytest.mark.parametrize(("fixture", "params"), cases(), ids=case_id)
def test_generator_reproducibility(fixture, params) -> None:
    law = make(fixture, params)
    samplers = [law.sample] + ([law.rsample] if law.has_rsample else [])
    for draw in samplers:
        a = draw((200,), generator=torch.Generator().manual_seed(7))
        b = draw((200,), generator=torch.Generator().manual_seed(7))
        c = draw((200,), generator=torch.Generator().manual_seed(8))
        torch.testing.assert_close(a, b, rtol=0, atol=0)
        assert not torch.equal(a, c)


@pytest.mark.parametrize(("fixture", "params"), cases(), ids=case_id)
def test_to_float64(fixture, params) -> None:
    law32 = make(fixture, params, dtype=torch.float32)
    law64 = law32.to(dtype=torch.float64)
    assert type(law64) is type(law32)
    assert all(v.dtype == torch.float64 for v in law64.params().values())
    assert law64.sample((3,), generator=torch.Generator().manual_seed(0)).dtype == torch.float64
    for name in MOMENTS:
        assert getattr(law64, name).dtype == torch.float64
        torch.testing.assert_close(getattr(law64, name).float(), getattr(law32, name),
                                   rtol=1e-5, atol=0)
    if fixture.name == "bernoulli":
        assert law64.inverted == law32.inverted


@pytest.mark.parametrize("fixture", FIXTURES, ids=case_id)
def test_integer_dtype_and_nan_cdf_are_refused(fixture) -> None:
    """``to(dtype=torch.long)`` rounded the parameters (an inverted Bernoulli(0.7) became
    keep = 0) and ``cdf(nan)`` gave 0, 1 or nan by law; both are errors now. ``log_prob(nan)``
    stays ``-inf`` (outside the support), so that a sampler rejects such a point."""
    law = make(fixture, fixture.examples[0])
    with pytest.raises(TypeError, match="dtype must be a floating-point torch.dtype, got "
                                        "torch.int64"):
        law.to(dtype=torch.long)
    assert float(law.log_prob(torch.tensor(float("nan")))) == -np.inf
    # no density at ±inf (Rayleigh's composed law gave nan at +inf)
    assert law.log_prob(torch.tensor([np.inf, -np.inf])).tolist() == [-np.inf, -np.inf]
    if fixture.name == "beta":  # no cdf at all (test_cdf_matches_scipy)
        return
    with pytest.raises(ValueError, match=r"the value holds 1 nan\(s\); .*cdf takes real"):
        law.cdf(torch.tensor([0.5, float("nan")], dtype=torch.float64))


@pytest.mark.parametrize("fixture", FIXTURES, ids=case_id)
def test_bad_parameters_raise_naming_the_value(fixture) -> None:
    for params, shown in fixture.bad:
        with pytest.raises(ValueError, match=shown.replace("-", r"\-")) as info:
            make(fixture, params)
        assert any(k in str(info.value) for k in params), str(info.value)


@pytest.mark.parametrize("fixture", FIXTURES, ids=case_id)
def test_moments_never_nan(fixture) -> None:
    for params in fixture.examples + fixture.edges:
        law = make(fixture, params)
        for name in MOMENTS:
            value = getattr(law, name)
            assert not bool(torch.isnan(value).any()), (params, name)
            assert bool((value >= 0).all()) or name == "mean", (params, name)


def test_rsample_only_where_reparametrizable() -> None:
    for fixture in FIXTURES:
        assert fixture.law.has_rsample == (not fixture.discrete), fixture.name
    with pytest.raises(NotImplementedError, match="discrete"):
        noise.Bernoulli(0.5).rsample((2,))


def test_log_prob_outside_support_is_minus_inf_with_finite_gradient() -> None:
    scale = torch.tensor(1.5, dtype=torch.float64, requires_grad=True)
    lp = noise.Rayleigh(scale).log_prob(torch.tensor([-1.0, 1.0], dtype=torch.float64))
    assert lp[0] == -float("inf") and torch.isfinite(lp[1])
    lp[1].backward()
    assert torch.isfinite(scale.grad)


def test_repr_names_parameters() -> None:
    assert repr(noise.Bernoulli(0.8, inverted=True)) == "Bernoulli(keep=0.8, inverted=True)"
    assert repr(noise.InverseNakagami(2.0, 1.0)) == "InverseNakagami(shape=2, spread=1)"


def test_half_cauchy_log_prob_far_in_the_tail_matches_scipy_with_finite_gradients() -> None:
    """float32, where (ξ/s)² overflows: scipy's float64 logpdf and the analytic gradients."""
    import scipy.stats

    scale = torch.tensor(2.0, requires_grad=True)
    x = torch.tensor([0.0, 0.5, 2.0, 3.0, 1e19, 1e30, 3e38], requires_grad=True)
    lp = noise.HalfCauchy(scale).log_prob(x)
    ref = scipy.stats.halfcauchy(scale=2.0).logpdf(x.detach().double().numpy())
    assert_allclose(lp.detach().numpy(), ref, rtol=1e-6)
    lp.sum().backward()
    r = x.detach().double() / 2.0
    # ∂/∂ξ = −2r/(s(1 + r²)); ∂/∂s = Σ (−1 + 2r²/(1 + r²))/s
    assert_allclose(x.grad.numpy(), (-2 * r / (2.0 * (1 + r * r))).numpy(), rtol=1e-5, atol=1e-45)
    assert_allclose(scale.grad.item(), float(((-1 + 2 * r * r / (1 + r * r)) / 2.0).sum()),
                    rtol=1e-5)
