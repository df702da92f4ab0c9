"""``dropprior priors``: Table 1 with computed moments, families and a KS check."""

from __future__ import annotations

import math

import pytest
import torch

from dropprior.cli import main
from dropprior.experiments.table1 import table_rows
from dropprior.noise import Gaussian, match_dropout, registered_laws


@pytest.fixture(autouse=True)
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def test_table_is_computed_for_every_registered_law(capsys):
    assert main(["priors", "--samples", "400", "--seed", "1", "--sigma0", "0.7"]) == 0
    out = capsys.readouterr().out
    assert "z ~ N(0, 0.7^2)" in out and "400 hierarchical samples (seed 1)" in out
    body = [line.split() for line in out.splitlines()[3:]]
    names = [cells[0] for cells in body]
    assert sorted(set(names)) == sorted(registered_laws())
    by_marginal = {(cells[0], cells[-4]) for cells in body}
    for pair in [("bernoulli", "SpikeAndSlab"), ("rayleigh", "Laplace"),
                 ("inverse_nakagami", "StudentT"), ("half_cauchy", "Horseshoe"),
                 ("gaussian", "VarianceGamma"), ("gaussian", "QuadratureMarginal")]:
        assert pair in by_marginal
    # the printed moments are the laws' exact moments at the matched parameters
    law = match_dropout("log_normal", 0.5, dtype=torch.float64)
    row = next(cells for cells in body if cells[0] == "log_normal")
    assert f"{float(law.inverse_square_variance):.4g}" in row
    assert "inf" in next(cells for cells in body if cells[0] == "half_cauchy")


def test_ks_check_passes_for_the_true_marginal_and_rows_are_seeded():
    rows = table_rows(rate=0.3, sigma0=1.5, samples=600, seed=0)
    assert all(r.ks_pvalue > 1e-3 for r in rows), [(r.name, r.ks_pvalue) for r in rows]
    again = table_rows(rate=0.3, sigma0=1.5, samples=600, seed=0)
    assert [r.ks_statistic for r in rows] == [r.ks_statistic for r in again]
    gauss = [r for r in rows if r.name == "gaussian"]
    assert {r.marginal for r in gauss} == {"VarianceGamma", "QuadratureMarginal"}
    zero_mean = next(r for r in gauss if r.marginal == "VarianceGamma")
    assert zero_mean.moments["E[xi]"] == 0.0
    assert zero_mean.moments["Var[xi]"] == pytest.approx(0.3 / 0.7)
    assert zero_mean.law.params()["std"].item() == pytest.approx(math.sqrt(0.3 / 0.7))
    assert isinstance(zero_mean.law, Gaussian)


def test_ks_check_detects_a_wrong_marginal(monkeypatch):
    # If the registry paired Rayleigh noise with a Laplace of the wrong scale, the check fails.
    from dropprior.noise import Rayleigh
    from dropprior.priors import Laplace
    from dropprior.priors._registry import _MARGINALS

    monkeypatch.setitem(_MARGINALS, Rayleigh,
                        lambda law, sigma0, d: Laplace.from_law(law, 1.5 * sigma0, d))
    rows = table_rows(samples=1500, seed=0)
    assert next(r for r in rows if r.name == "rayleigh").ks_pvalue < 1e-3


def test_bad_options_exit_with_status_2(capsys):
    assert main(["priors", "--sigma0", "-1"]) == 2
    assert "sigma0" in capsys.readouterr().err
    assert main(["priors", "--rate", "1.5"]) == 2
    assert "--rate" in capsys.readouterr().err
