"""Laws at extreme parameters (found by fuzzing): draws stay finite and of the right size, on the
law's own sampler and through the layers' fused path."""

from __future__ import annotations

import math

import pytest
import scipy.stats
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from dropprior.functional import multiplicative_noise
from dropprior.noise import Rayleigh

SCALES = st.floats(min_value=-35.0, max_value=35.0).map(lambda e: 10.0**e)


@settings(max_examples=60, deadline=None)
@given(scale=SCALES)
def test_rayleigh_draws_are_finite_at_every_float32_scale(scale: float) -> None:
    law = Rayleigh(scale)
    g = torch.Generator().manual_seed(0)
    for draws in (law.sample((256,), generator=g),
                  multiplicative_noise(torch.ones(4, 64), law, "unit", generator=g).reshape(-1)):
        assert bool(torch.isfinite(draws).all()) and bool((draws > 0).all())
        unit = (draws.double() / float(law.scale)).numpy()  # a standard Rayleigh draw
        assert 1e-4 < unit.min() and unit.max() < 7.0


def test_huge_and_tiny_scales_follow_the_law() -> None:
    for scale in (1e20, 1e-30):
        law = Rayleigh(scale)
        draws = law.sample((20000,), generator=torch.Generator().manual_seed(1)).double()
        unit = (draws / float(law.scale)).numpy()
        assert scipy.stats.kstest(unit, scipy.stats.rayleigh.cdf).pvalue > 1e-3
        assert not math.isinf(float(draws.max()))


CONCENTRATIONS = st.floats(min_value=0.05, max_value=20.0)


@settings(max_examples=80, deadline=None)
@given(a=CONCENTRATIONS, b=CONCENTRATIONS, n=st.integers(1, 40), seed=st.integers(0, 2**31))
def test_learned_beta_draws_do_not_depend_on_grad_mode(a: float, b: float, n: int,
                                                       seed: int) -> None:
    """The same generator state gives the same learned (float64) draws with and without grad,
    on the law and through the noise function."""
    from dropprior.noise import Beta

    conc1 = torch.tensor(a, dtype=torch.float64, requires_grad=True)
    conc0 = torch.tensor(b, dtype=torch.float64, requires_grad=True)
    law = Beta(conc1, conc0)
    with_grad = law.rsample((n,), generator=torch.Generator().manual_seed(seed))
    with torch.no_grad():
        without = law.rsample((n,), generator=torch.Generator().manual_seed(seed))
    assert torch.equal(with_grad.detach(), without)
    x = torch.ones(3, n, dtype=torch.float64)
    y1 = multiplicative_noise(x, law, "unit", generator=torch.Generator().manual_seed(seed))
    with torch.no_grad():
        y2 = multiplicative_noise(x, law, "unit", generator=torch.Generator().manual_seed(seed))
    assert torch.equal(y1.detach(), y2)


def test_tiny_keep_bernoulli_never_gives_nan() -> None:
    from dropprior.noise import Bernoulli

    law = Bernoulli(1e-45, inverted=True)
    for granularity in ("batch", "example"):
        y = multiplicative_noise(torch.ones(4, 8), law, "unit", granularity)
        assert not bool(torch.isnan(y).any())
    assert float(law.mean) == 1.0


def test_learned_inverse_nakagami_gradients_are_finite_at_huge_spread() -> None:
    from dropprior.noise import InverseNakagami

    grads = []
    for dtype in (torch.float32, torch.float64):
        m = torch.tensor(2.0, dtype=dtype, requires_grad=True)
        spread = torch.tensor(1e30, dtype=dtype, requires_grad=True)
        InverseNakagami(m, spread).rsample((5,), generator=torch.Generator().manual_seed(0)) \
            .sum().backward()
        assert bool(torch.isfinite(m.grad)) and bool(torch.isfinite(spread.grad))
        grads.append(float(m.grad))
    assert grads[0] == pytest.approx(grads[1], rel=1e-5)  # float32 agrees with float64


def test_local_reparametrization_is_finite_for_huge_gaussian_std() -> None:
    from dropprior.nn import NoisyLinear
    from dropprior.noise import Gaussian

    for dtype in (torch.float32, torch.float64):
        layer = NoisyLinear(4, 2, Gaussian(1.0, 1e20), "weight", local_reparam=True).to(dtype)
        assert bool(torch.isfinite(layer(torch.randn(3, 4, dtype=dtype))).all())


def test_unbroadcastable_parameters_and_massless_truncation_are_named() -> None:
    from dropprior import Truncated
    from dropprior.noise import Gaussian, InverseNakagami

    with pytest.raises(ValueError, match=r"must broadcast to one shape, got shapes \(3,\), \(2,\)"):
        Gaussian(torch.ones(3), torch.ones(2))
    with pytest.raises(ValueError, match=r"F\(upper\) = 1.73e-37 .* needs F\(upper\) >= 1e-06"):
        Truncated(InverseNakagami(0.75, 1e-3), upper=3.0)


def test_sample_and_rsample_give_the_same_draws_for_every_law() -> None:
    """So a learned law (rsample) and a fixed one (sample) draw the same noise from the same
    generator state, whatever the grad mode."""
    from dropprior.noise import (
        Bernoulli,
        Beta,
        Gaussian,
        HalfCauchy,
        InverseNakagami,
        LogNormal,
        Uniform,
    )

    laws = {"bernoulli": Bernoulli(0.7, inverted=True), "gaussian": Gaussian(1.0, 0.5),
            "rayleigh": Rayleigh(0.8), "inverse_nakagami": InverseNakagami(2.3, 2.0),
            "half_cauchy": HalfCauchy(1.0), "beta": Beta(2.5, 1.7), "beta_small": Beta(0.3, 0.9),
            "uniform": Uniform(0.5, 1.5), "log_normal": LogNormal(0.0, 0.3)}
    for name, law in laws.items():
        law = law.to(dtype=torch.float64)
        if not law.has_rsample:
            continue
        a = law.sample((300,), generator=torch.Generator().manual_seed(3))
        b = law.rsample((300,), generator=torch.Generator().manual_seed(3))
        torch.testing.assert_close(a, b, rtol=1e-12, atol=0, msg=name)
