"""The EP-vs-HP stability experiment (``dropprior.experiments.mcmc_stability``) and its table."""

from __future__ import annotations

import math

import pytest
import torch

from dropprior.experiments.mcmc_stability import (
    StabilitySettings,
    regression_data,
    run_stability,
    stability_table,
)
from dropprior.experiments.records import make_record
from dropprior.experiments.tables import paired_mean_se


def test_settings_refuse_unknown_laws_and_forms() -> None:
    with pytest.raises(ValueError, match="law='laplace' is not valid"):
        StabilitySettings("laplace", "ep")
    with pytest.raises(ValueError, match="form='nc' is not valid"):
        StabilitySettings("rayleigh", "nc")
    with pytest.raises(ValueError, match="chains must be an int >= 2, got 1"):
        StabilitySettings("rayleigh", "ep", chains=1)


def test_data_has_three_non_zero_coefficients_recovered_by_least_squares() -> None:
    X, y = regression_data(3)
    assert X.dtype == torch.float64 and X.shape == (50, 10) and y.shape == (50,)
    w = torch.linalg.lstsq(X, y[:, None]).solution[:, 0]
    assert torch.allclose(w[:3], torch.tensor([2.0, -1.5, 1.0], dtype=torch.float64), atol=0.5)
    assert w[3:].abs().max() < 0.5
    assert torch.equal(regression_data(3)[1], y)


def test_a_short_run_reports_the_diagnostics_of_w() -> None:
    m = run_stability(StabilitySettings("rayleigh", "hp", warmup=10, samples=10))
    assert m["second_moment"] == pytest.approx(2 * 0.05**2)  # Rayleigh: E[ξ²] = 2s²
    assert m["min_ess_per_gradient"] > 0 and m["divergences"] >= 0 and m["max_rhat"] > 0
    inf = run_stability(StabilitySettings("half_cauchy", "ep", warmup=10, samples=10))
    assert inf["second_moment"] == "inf"
    top = run_stability(StabilitySettings("rayleigh", "hp", seed=2**64 - 1, warmup=10,
                                          samples=10))  # its chains' seed wraps to 0
    assert top["max_rhat"] > 0


def _record(law: str, form: str, seed: int, ess: float, div: int) -> dict:
    config = {"law": law, "form": form, "seed": seed, "warmup": 150, "samples": 150,
              "chains": 2}
    metrics = {"min_ess_per_gradient": ess, "divergences": div, "max_rhat": 1.01 + seed / 100,
               "seconds": 1.0}
    return make_record("python scripts/mcmc_stability.py", config, seed, metrics, 1.0, "abc")


def test_table_pairs_the_forms_by_seed_and_judges_by_the_standard_error() -> None:
    ep_ess, hp_ess = [4e-3, 5e-3, 6e-3], [1e-3, 1.5e-3, 1e-3]
    ep_div, hp_div = [2, 3, 2], [3, 1, 2]
    records = [_record("half_cauchy", "ep", k, e, d) for k, (e, d) in
               enumerate(zip(ep_ess, ep_div, strict=True))]
    records += [_record("half_cauchy", "hp", k, e, d) for k, (e, d) in
                enumerate(zip(hp_ess, hp_div, strict=True))]
    records.append(_record("rayleigh", "ep", 0, 2e-2, 0))
    table = stability_table(records)
    mean, se = paired_mean_se(hp_ess, ep_ess)
    assert mean < -se  # HP less efficient by more than one standard error
    paired = table.split("HP − EP, paired")[1]
    row = next(line for line in paired.splitlines() if line.startswith("| half-Cauchy"))
    assert f"| −{-mean:.2e} ± {se:.1e} | EP |" in row  # a minus sign, as on every page
    d_mean, d_se = paired_mean_se([float(x) for x in hp_div], [float(x) for x in ep_div])
    assert abs(d_mean) <= d_se and "| neither (within 1 s.e.) |" in row
    assert "| Rayleigh s = 0.05 (Laplace) | EP | 1 | 2.00e-02 | 0.0 | 1.010 |" in table
    s = math.sqrt(sum((x - 5e-3) ** 2 for x in ep_ess) / 2) / math.sqrt(3)
    assert f"| half-Cauchy s = 0.01 (horseshoe) | EP | 3 | 5.00e-03 ± {s:.1e} |" in table
