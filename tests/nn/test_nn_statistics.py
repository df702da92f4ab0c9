"""Statistical contracts over every registered law and structure: output moments given the input,
and which axes share one draw."""

from __future__ import annotations

import pytest
import scipy.stats
import torch
from _nn_laws import LAWS, assert_moments

from dropprior.functional import multiplicative_noise
from dropprior.noise import Gaussian

SHAPES = {"unit": (20000, 3), "channel": (10000, 3, 2, 2), "layer": (30000, 2, 2)}


@pytest.mark.parametrize("structure", sorted(SHAPES))
@pytest.mark.parametrize("name", sorted(set(LAWS) - {"half_cauchy"}))
def test_output_mean_and_variance_match_the_law(name, structure) -> None:
    """E[x ξ] = x E[ξ] and Var[x ξ] = x² Var[ξ] per entry, within 6 standard errors."""
    law = LAWS[name]
    torch.manual_seed(0)
    x = torch.full(SHAPES[structure], 1.5, dtype=torch.float64)
    y = multiplicative_noise(x, law, structure, generator=torch.Generator().manual_seed(1))
    # one independent draw per example (and per unit / channel): reduce over the examples
    draws = (y / x).flatten(1)[:, 0] if structure != "unit" else (y / x)[:, 0]
    assert_moments(draws, law.mean.double(), law.variance.double())


def test_half_cauchy_output_has_the_half_cauchy_law() -> None:
    """Half-Cauchy has no mean or variance: test y/x by a KS test against scipy's half-Cauchy."""
    x = torch.full((20000, 2), 2.0, dtype=torch.float64)
    y = multiplicative_noise(x, LAWS["half_cauchy"], generator=torch.Generator().manual_seed(4))
    ratio = (y / x).flatten().numpy()
    assert scipy.stats.kstest(ratio, scipy.stats.halfcauchy(scale=1.0).cdf).pvalue > 1e-3
    # ... and would reject a half-Cauchy of another scale
    assert scipy.stats.kstest(ratio, scipy.stats.halfcauchy(scale=1.3).cdf).pvalue < 1e-6


def _ratio(x_shape, structure, granularity, time_dim=0):
    x = torch.rand(x_shape, dtype=torch.float64) + 0.5
    y = multiplicative_noise(x, Gaussian(1.0, 0.5), structure, granularity,
                             generator=torch.Generator().manual_seed(7), time_dim=time_dim)
    return y / x


def _shared(r: torch.Tensor, dim: int) -> bool:
    return torch.allclose(r, r.select(dim, 0).unsqueeze(dim).expand_as(r))


@pytest.mark.parametrize(
    ("shape", "structure", "granularity", "time_dim", "shared", "distinct"),
    [
        ((6, 5), "unit", "example", 0, [], [0, 1]),
        ((6, 5), "unit", "batch", 0, [0], [1]),
        ((4, 6, 5), "unit", "sequence", 0, [0], [1, 2]),
        ((6, 4, 5), "unit", "sequence", 1, [1], [0, 2]),
        ((6, 5, 3, 3), "channel", "example", 0, [2, 3], [0, 1]),
        ((6, 5, 3, 3), "channel", "batch", 0, [0, 2, 3], [1]),
        ((6, 5, 3), "layer", "example", 0, [1, 2], [0]),
        ((6, 5, 3), "layer", "batch", 0, [0, 1, 2], []),
        ((4, 6, 5), "layer", "sequence", 0, [0, 2], [1]),
    ],
)
def test_which_axes_share_a_draw(shape, structure, granularity, time_dim, shared,
                                 distinct) -> None:
    r = _ratio(shape, structure, granularity, time_dim)
    for dim in shared:
        assert _shared(r, dim), f"axis {dim} should share one draw"
    for dim in distinct:
        assert not _shared(r, dim), f"axis {dim} should get distinct draws"


def test_draws_are_independent_across_units() -> None:
    r = _ratio((20000, 2), "unit", "example")
    corr = torch.corrcoef(r.T)[0, 1]
    assert abs(corr) < 6 / 20000**0.5


@pytest.mark.parametrize("name", sorted(set(LAWS) - {"half_cauchy"}))
def test_dropconnect_output_moments(name) -> None:
    """Exact per-example DropConnect: E[y] = E[ξ] x Wᵀ + b, Var[y] = Var[ξ] x² (W²)ᵀ."""
    from dropprior.functional import dropconnect_linear

    law = LAWS[name]
    torch.manual_seed(0)
    w = torch.randn(3, 4, dtype=torch.float64)
    b = torch.randn(3, dtype=torch.float64)
    x = torch.randn(1, 4, dtype=torch.float64).expand(20000, 4)
    y = dropconnect_linear(x, w, b, law, generator=torch.Generator().manual_seed(9))
    mean = law.mean.double() * (x[0] @ w.T) + b
    var = law.variance.double() * (x[0] ** 2 @ (w**2).T)
    assert_moments(y, mean, var)
