"""Laws at extreme parameters (found by fuzzing): draws stay finite and of the right size, on the
law's own sampler and through the layers' fused path."""

from __future__ import annotations

import math

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
