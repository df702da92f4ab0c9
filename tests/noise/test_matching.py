"""match_dropout: E[ξ] = 1 and Var[ξ] = p/(1−p), checked on the scipy reference of the returned
parameters; clear errors for families that cannot match and for bad rates."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from _noise_reference import BY_NAME
from numpy.testing import assert_allclose

from dropprior.noise import Rayleigh, inverse_nakagami_shape_for, match_dropout

MATCHABLE = ["bernoulli", "gaussian", "uniform", "log_normal", "inverse_nakagami"]
RATES = [1e-4, 0.05, 0.1, 0.25, 0.5, 0.8, 0.95]


def _params(law) -> dict:
    out = {k: float(v) for k, v in law.params().items()}
    if hasattr(law, "inverted"):
        out["inverted"] = law.inverted
    return out


@pytest.mark.parametrize("name", MATCHABLE)
@pytest.mark.parametrize("p", RATES)
def test_matched_law_has_unit_mean_and_dropout_variance(name, p) -> None:
    law = match_dropout(name, p, dtype=torch.float64)
    assert isinstance(law, BY_NAME[name].law)
    # scipy's moments of the returned parameters, independent of the law's own moment code
    if name == "inverse_nakagami":  # ξ² ~ InverseGamma: E[ξ²] in closed form, E[ξ] = E[√ξ²]
        square = BY_NAME[name].scipy_square(**_params(law))
        ref_mean = square.expect(np.sqrt, epsrel=1e-10)
        ref_var = square.mean() - ref_mean**2
    else:
        ref = BY_NAME[name].scipy(**_params(law))
        ref_mean, ref_var = ref.mean(), ref.var()
    assert_allclose(ref_mean, 1.0, rtol=1e-7)
    assert_allclose(ref_var, p / (1 - p), rtol=1e-6)
    assert_allclose(float(law.mean), 1.0, rtol=1e-9)
    assert_allclose(float(law.variance), p / (1 - p), rtol=1e-6)


def test_default_dtype_is_torch_default() -> None:
    assert match_dropout("inverse_nakagami", 0.5).shape.dtype == torch.get_default_dtype()
    assert match_dropout("gaussian", 0.5, dtype=torch.float64).std.dtype == torch.float64


def test_bernoulli_match_is_torch_dropout_convention() -> None:
    law = match_dropout("bernoulli", 0.3)
    assert law.inverted and math.isclose(float(law.keep), 0.7, rel_tol=1e-7)
    assert float(match_dropout("bernoulli", 0.0).variance) == 0.0


@pytest.mark.parametrize(("name", "why"), [("rayleigh", "one parameter"),
                                           ("half_cauchy", "no mean"),
                                           ("beta", r"\[0, 1\]")])
def test_unmatchable_families_say_why(name, why) -> None:
    with pytest.raises(ValueError, match=why):
        match_dropout(name, 0.5)


@pytest.mark.parametrize("p", [-0.1, 1.0, 1.5, float("nan")])
def test_bad_rate_is_named(p) -> None:
    with pytest.raises(ValueError, match=r"p must be a drop probability in \[0, 1\)"):
        match_dropout("gaussian", p)


@pytest.mark.parametrize("p", ["0.5", True, torch.tensor(0.5)])
def test_non_number_rate_is_a_type_error(p) -> None:
    with pytest.raises(TypeError, match="real number"):
        match_dropout("gaussian", p)


def test_unknown_law_and_zero_rate() -> None:
    with pytest.raises(ValueError, match="unknown noise law 'gauss'"):
        match_dropout("gauss", 0.5)
    with pytest.raises(ValueError, match="p = 0 means no noise"):
        match_dropout("gaussian", 0.0)


def test_rayleigh_with_mean_matches_the_mean_only() -> None:
    law = Rayleigh.with_mean(torch.tensor(1.0, dtype=torch.float64))
    ref = BY_NAME["rayleigh"].scipy(scale=float(law.scale))
    assert_allclose(ref.mean(), 1.0, rtol=1e-12)
    p_equiv = 1 - math.pi / 4  # Var = 4/π − 1 = p/(1−p) at this p
    assert_allclose(ref.var(), p_equiv / (1 - p_equiv), rtol=1e-12)
    with pytest.raises(ValueError, match="mean must be finite and > 0"):
        Rayleigh.with_mean(-1.0)


def test_inverse_nakagami_shape_is_monotone_and_large_for_small_rates() -> None:
    shapes = [inverse_nakagami_shape_for(p) for p in (1e-6, 0.1, 0.5, 0.99)]
    assert all(a > b > 1 for a, b in zip(shapes, shapes[1:], strict=False))
    assert shapes[0] > 1e5
