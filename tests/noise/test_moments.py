"""Exact moments against scipy and against quadrature of ξ^k p(ξ), including which are infinite.

Reference raw moments E[ξ^k] are integrated in t = log|ξ| (so heavy tails and poles at 0 are
reachable) over |t| ≤ 30 and |t| ≤ 45; a moment is judged divergent when the extra range
still adds to the integral. Densities come from scipy, not from dropprior.
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
import torch
from _noise_reference import FIXTURES, case_id, cases, make
from numpy.testing import assert_allclose
from scipy import integrate

CONTINUOUS = [f for f in FIXTURES if not f.discrete]


def _half_line(ref, k: int, sign: float, lo_t: float, hi_t: float, points: list[float]) -> float:
    """∫ over {sign·ξ > 0, lo_t ≤ log|ξ| ≤ hi_t} of ξ^k p(ξ) dξ, integrated in t = log|ξ|."""

    def integrand(t: float) -> float:
        x = sign * math.exp(t)
        return sign**k * math.exp((k + 1) * t + float(ref.logpdf(x)))

    inner = sorted(p for p in points if lo_t < p < hi_t)
    edges = [lo_t, *inner, hi_t]
    total = 0.0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", integrate.IntegrationWarning)
        for lo, hi in zip(edges[:-1], edges[1:], strict=True):
            total += integrate.quad(integrand, lo, hi, limit=200, epsabs=0, epsrel=1e-11)[0]
    return total


def reference_moment(ref, k: int) -> float:
    """E[ξ^k] by quadrature, ``inf`` when the integral keeps growing with the range."""
    lo, hi = ref.support()
    core, tails = 0.0, 0.0
    for sign in (1.0, -1.0):
        if (sign > 0 and hi <= 0) or (sign < 0 and lo >= 0):
            continue
        ends = [v for v in (lo, hi) if np.isfinite(v) and v * sign > 0]
        med = float(ref.median())
        pts = [math.log(sign * v) for v in ends]
        pts += [math.log(abs(med)) + d for d in (-2.0, 0.0, 2.0)] if med * sign > 0 else []
        core += _half_line(ref, k, sign, -30.0, 30.0, pts)
        tails += _half_line(ref, k, sign, -45.0, -30.0, pts)
        tails += _half_line(ref, k, sign, 30.0, 45.0, pts)
    if abs(tails) > 1e-6 * max(1.0, abs(core)):
        return math.inf
    return core + tails


def _reference_moments(ref) -> dict[str, float]:
    m1, m2, mm2, mm4 = (reference_moment(ref, k) for k in (1, 2, -2, -4))
    return {
        "mean": m1,
        "second_moment": m2,
        "variance": math.inf if not (np.isfinite(m1) and np.isfinite(m2)) else m2 - m1**2,
        "inverse_square_mean": mm2,
        "inverse_square_variance": math.inf if not np.isfinite(mm4) else mm4 - mm2**2,
    }


@pytest.mark.parametrize(
    ("fixture", "params"),
    [(f, p) for f in CONTINUOUS for p in f.examples + f.boundary],
    ids=case_id,
)
def test_moments_match_quadrature(fixture, params) -> None:
    law = make(fixture, params)
    want = _reference_moments(fixture.scipy(**params))
    for name, value in want.items():
        got = float(getattr(law, name))
        if math.isinf(value):
            assert math.isinf(got), (name, got)
        else:
            assert_allclose(got, value, rtol=1e-6, atol=1e-9, err_msg=name)


@pytest.mark.parametrize(("fixture", "params"), cases(CONTINUOUS), ids=case_id)
def test_mean_and_variance_match_scipy(fixture, params) -> None:
    ref = fixture.scipy(**params)
    if fixture.name == "inverse_nakagami":  # moments of the custom rv would be quadrature again
        sq = fixture.scipy_square(**params)
        m = params["shape"]
        law = make(fixture, params)
        if m > 1:
            assert_allclose(float(law.second_moment), sq.mean(), rtol=1e-12)
        assert_allclose(float(law.inverse_square_mean), sq.expect(lambda y: 1 / y), rtol=1e-8)
        return
    law = make(fixture, params)
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        mean, var = (float(v) for v in ref.stats("mv"))
    for name, value in (("mean", mean), ("variance", var)):
        got = float(getattr(law, name))
        if math.isfinite(value):
            assert_allclose(got, value, rtol=1e-10, err_msg=name)
        else:  # scipy reports inf or nan where the moment does not exist
            assert math.isinf(got), name


@pytest.mark.parametrize("params", [{"keep": 0.7}, {"keep": 0.25, "inverted": True},
                                    {"keep": 1.0, "inverted": True}, {"keep": 1.0}])
def test_bernoulli_moments_by_enumeration(params) -> None:
    from _noise_reference import BY_NAME

    law = make(BY_NAME["bernoulli"], params)
    keep = params["keep"]
    c = 1 / keep if params.get("inverted") else 1.0
    values, probs = np.array([0.0, c]), np.array([1 - keep, keep])
    support = probs > 0

    def moment(k: float) -> float:
        if k < 0 and probs[0] > 0:
            return math.inf
        return float(np.sum(values[support] ** k * probs[support]))

    assert_allclose(float(law.mean), moment(1), rtol=1e-14)
    assert_allclose(float(law.second_moment), moment(2), rtol=1e-14)
    assert_allclose(float(law.variance), moment(2) - moment(1) ** 2, rtol=1e-12, atol=1e-15)
    mm2, mm4 = moment(-2), moment(-4)
    for got, want in ((law.inverse_square_mean, mm2),
                      (law.inverse_square_variance, mm4 - mm2**2 if math.isfinite(mm4) else mm4)):
        if math.isinf(want):
            assert torch.isinf(got)
        else:
            assert_allclose(float(got), want, rtol=1e-12, atol=1e-15)


def test_quadrature_reference_detects_divergence() -> None:
    """The divergence judge itself: log divergence (Rayleigh E[ξ⁻²]) and a slow tail."""
    from scipy import stats

    assert math.isinf(reference_moment(stats.rayleigh(scale=2.5), -2))
    assert math.isinf(reference_moment(stats.halfcauchy(scale=0.1), 1))
    assert_allclose(reference_moment(stats.rayleigh(scale=2.5), 2), 2 * 2.5**2, rtol=1e-8)


def test_moment_gradients_are_finite() -> None:
    from dropprior.noise import InverseNakagami

    shape = torch.tensor(3.0, dtype=torch.float64, requires_grad=True)
    law = InverseNakagami(shape, torch.tensor(2.0, dtype=torch.float64))
    (law.mean + law.variance).backward()
    assert torch.isfinite(shape.grad)
