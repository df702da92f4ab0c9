"""The τ grid's ceiling on the grid protocol's test LL: against scipy's Gaussian density at its
mode, and as a bound on dropprior's own test log-likelihood metric."""

from __future__ import annotations

import math

import pytest
import torch
from scipy import stats

from dropprior.experiments.uci_ceiling import grid_tau_max, ll_ceiling
from dropprior.metrics import test_log_likelihood as mc_test_ll


@pytest.mark.parametrize("tau", [0.15, 0.75, 3.5, 50000.0])
def test_ceiling_is_the_log_density_of_a_gaussian_at_its_mode(tau: float) -> None:
    assert ll_ceiling(tau) == pytest.approx(stats.norm.logpdf(0.0, scale=tau**-0.5), rel=1e-12)


def test_ceiling_bounds_the_test_log_likelihood_and_is_reached_by_exact_draws() -> None:
    gen = torch.Generator().manual_seed(0)
    y = torch.randn(50, generator=gen, dtype=torch.float64)
    for tau in (0.2, 3.5, 5e4):
        for spread in (1e-3, 0.1, 3.0):
            draws = y + spread * torch.randn(100, 50, generator=gen, dtype=torch.float64)
            assert float(mc_test_ll(draws, y, tau)) < ll_ceiling(tau)
        exact = y.expand(10, 50)
        assert float(mc_test_ll(exact, y, tau)) == pytest.approx(ll_ceiling(tau),
                                                                           rel=1e-12)


@pytest.mark.parametrize("tau", [0.0, -1.0, math.nan, math.inf])
def test_ceiling_names_a_bad_precision(tau: float) -> None:
    with pytest.raises(ValueError, match=r"tau must be a finite number > 0, got"):
        ll_ceiling(tau)
    with pytest.raises(TypeError, match="tau must be a number, got '1'"):
        ll_ceiling("1")  # type: ignore[arg-type]


def _record(dataset: str, taus: list[list[float]], variant: str = "") -> dict:
    params = {"dataset": dataset, **({"variant": variant} if variant else {})}
    splits = [{"validation": [{"p": 0.05, "tau": t, "ll": -1.0} for t in grid]} if grid else {}
              for grid in taus]
    return {"params": params, "result": {"splits": splits}}


def test_tau_max_over_the_grid_protocol_records_only() -> None:
    records = [
        _record("yacht", [[0.25, 0.5], [0.5, 0.75]]),
        _record("yacht", [[0.1]]),
        _record("yacht", [[99.0]], variant="depth 0, vi, log_uniform"),  # learned scales
        _record("naval", [[30000.0, 50000.0], []]),  # a split without a grid
        _record("boston", [[]]),
    ]
    assert grid_tau_max(records) == {"yacht": 0.75, "naval": 50000.0}
