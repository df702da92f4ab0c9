"""The MAP/NUTS/SGLD comparison as runner jobs: the same rows as ``dropprior mcmc`` for any group
of splits, and the generated page's table of their records."""

from __future__ import annotations

import json
from dataclasses import asdict, replace

import pytest
import torch

from dropprior.cli import main
from dropprior.experiments.mcmc_uci import (
    McmcSettings,
    mcmc_table,
    run_mcmc_job,
    summarise_methods,
)
from dropprior.experiments.report import build_pages
from dropprior.experiments.runner import Job, run_jobs
from dropprior.experiments.store import ResultStore

TINY = replace(McmcSettings(), hidden=3, epochs=2, samples=2, warmup=5, num_samples=5,
               max_tree_depth=3)


def test_a_job_of_any_splits_gives_the_commands_rows(data_dir, tmp_path):
    """Split k is seeded k whether it runs after split 0 (the command) or alone (a job)."""
    out = tmp_path / "cli.json"
    assert main(["mcmc", "--data-dir", str(data_dir), "--dataset", "yacht", "--splits", "2",
                 "--hidden", "3", "--epochs", "2", "--samples", "2", "--warmup", "5",
                 "--num-samples", "5", "--max-tree-depth", "3",
                 "--methods", "mc-dropout,nuts-ep", "--out", str(out)]) == 0
    want = [r for r in json.loads(out.read_text())["rows"] if r["split"] == 1]
    params = {"data_dir": str(data_dir / "uci"), "dataset": "yacht", "law": "gaussian",
              "methods": ["mc-dropout", "nuts-ep"], "splits": [1], "seed": 0, **asdict(TINY)}
    store = ResultStore(tmp_path / "jobs", required=("params", "result"))
    record = run_jobs(run_mcmc_job, [Job("yacht/gaussian/1", params)], store, progress=False)[0]
    got = record["result"]["rows"]
    assert [(r["method"], r["split"]) for r in got] == [("mc-dropout", 1), ("nuts-ep", 1)]
    for g, w in zip(got, want, strict=True):
        assert g["rmse"] == pytest.approx(w["rmse"], rel=1e-9)
        assert g["test_ll"] == pytest.approx(w["test_ll"], rel=1e-9)
    assert record["result"]["summary"] == summarise_methods(got, ["mc-dropout", "nuts-ep"])
    with pytest.raises(ValueError, match=r"splits \[20\] are not among yacht's 20 splits"):
        run_mcmc_job({**params, "splits": [3, 20]})


def test_split_seeds_wrap_modulo_2_64(data_dir):
    """At seed 2**64 - 1 split 1 is seeded (2**64 - 1) + 1 mod 2**64 = 0: the same scores as
    run_method called with seed 0, not torch's overflow error."""
    from dropprior.data import load_uci
    from dropprior.experiments.mcmc_uci import method_rows, run_method
    from dropprior.noise import match_dropout

    ds = load_uci(str(data_dir / "uci"), "yacht")
    law = match_dropout("gaussian", TINY.p, dtype=torch.float64)
    row = next(method_rows(ds, law, ["mc-dropout"], TINY, seed=2**64 - 1, splits=[1]))
    train, test = ds.splits[1]
    want = run_method("mc-dropout", ds.X, ds.y, train, test, law, TINY, seed=0)
    assert row["rmse"] == pytest.approx(want["rmse"], rel=1e-12)
    assert row["test_ll"] == pytest.approx(want["test_ll"], rel=1e-12)


def _record(dataset: str, law: str, rows: list[dict]) -> dict:
    return {"params": {"dataset": dataset, "law": law, "p": 0.05}, "result": {"rows": rows}}


def _nuts(split: int, rmse: float, ll: float, rhat: float, div: int) -> dict:
    return {"method": "nuts-ep", "split": split, "rmse": rmse, "test_ll": ll, "seconds": 10.0,
            "max_rhat": rhat, "rhat_train_ll": 1.0, "rhat_precision": 1.1, "divergences": div}


def test_table_counts_each_split_once_and_marks_partial_rows():
    """Yacht's Gaussian prior: splits 0-19 in two records and split 3 again (counted once):
    complete; its RMSE 1 on every split, LL −1 on even and −2 on odd splits: mean −1.5, standard
    error 0.5/√20·√(20/19) = 0.1147; max R-hat 2 on split 0, 4 elsewhere (median 4); 19 + 1
    divergences. Boston's Student-t prior on 2 splits: partial."""
    rows = [_nuts(k, 1.0, -1.0 - (k % 2), 2.0 if k == 0 else 4.0, 1 if k == 5 else 0)
            for k in range(20)]
    rows[7]["divergences"] = 19
    records = [_record("yacht", "gaussian", rows[:10]), _record("yacht", "gaussian", rows[10:]),
               _record("yacht", "gaussian", [dict(rows[3], test_ll=99.0)]),
               _record("bostonHousing", "inverse_nakagami", [_nuts(0, 3.0, -2.5, 1.5, 0),
                                                             _nuts(1, 3.2, -2.7, 1.7, 2)]),
               _record("bostonHousing", "gaussian",
                       [{"method": "mc-dropout", "split": 0, "rmse": 2.9, "test_ll": -2.4,
                         "seconds": 3.0}])]
    table = mcmc_table(records)
    assert 0.5 / 20**0.5 * (20 / 19) ** 0.5 == pytest.approx(0.1147, abs=1e-4)
    assert ("| yacht | nuts-ep | variance-gamma (Gaussian noise) | 20 (complete) | 1.00±0.00 | "
            "−1.50±0.11 | 4.00 | 1.00 | 1.10 | 20 | 10 |") in table
    assert ("| bostonHousing | nuts-ep | Student-t (inverse-Nakagami noise) | 2 (partial) | "
            "3.10±0.10 | −2.60±0.10 | 1.60 | 1.00 | 1.10 | 2 | 10 |") in table
    assert ("| bostonHousing | mc-dropout | Bernoulli, p = 0.05 | 1 (partial) | 2.90 | "
            "−2.40 |  |  |  |  | 3 |") in table
    assert "| bostonHousing | *MC dropout 2018 (grid-searched)* (published) | | 20 |" in table
    assert table.index("bostonHousing") < table.index("| yacht |")


def test_page_is_built_from_the_run_directory(tmp_path):
    run = tmp_path / "results" / "mcmc-uci"
    store = ResultStore(run / "jobs")
    store.put("yacht/gaussian/0", {"params": {"dataset": "yacht", "law": "gaussian", "p": 0.05},
                                   "seconds": 1.0, "result": {"rows": [_nuts(0, 1, -1, 1, 0)]}})
    (run / "run.json").write_text(json.dumps({"argv": ["scripts/nuts_uci.py", "../shared/data"],
                                              "started_at": "t", "commit": "abc"}))
    page = build_pages(tmp_path)[tmp_path / "docs/results/mcmc_uci.md"]
    assert "| yacht | nuts-ep | variance-gamma (Gaussian noise) | 1 (partial) |" in page
    assert ("- `python scripts/nuts_uci.py ../shared/data` (started t, commit `abc`, 1 job "
            "recorded)") in page


def test_a_recorded_run_is_a_section_of_the_page_with_its_own_rows(data_dir, tmp_path):
    """``dropprior mcmc --results`` writes what ``--out`` prints, as a run directory whose
    single-run section counts its splits without calling them partial."""
    run = tmp_path / "results" / "mcmc-methods" / "yacht-split0"
    out = tmp_path / "cli.json"
    assert main(["mcmc", "--data-dir", str(data_dir), "--dataset", "yacht", "--splits", "1",
                 "--hidden", "3", "--epochs", "2", "--samples", "2", "--warmup", "5",
                 "--num-samples", "5", "--max-tree-depth", "3",
                 "--methods", "mc-map,nuts-hp", "--out", str(out), "--results", str(run)]) == 0
    (record,) = ResultStore(run / "jobs", required=("params", "result")).records().values()
    assert record["result"]["rows"] == json.loads(out.read_text())["rows"]
    assert record["params"]["splits"] == [0] and record["params"]["warmup"] == 5
    info = json.loads((run / "run.json").read_text())
    assert info["command"] == "mcmc" and info["config"]["methods"] == ["mc-map", "nuts-hp"]
    # the run's own duration and start, not those of writing its directory afterwards
    assert info["seconds"] == pytest.approx(record["seconds"], abs=0.01) and info["seconds"] > 0.05
    assert info["started_at"] <= info["finished_at"]
    page = build_pages(tmp_path)[tmp_path / "docs/results/mcmc_uci.md"]
    section = page.split("## Single runs of `dropprior mcmc`")[1]
    assert "### yacht, gaussian noise matched to p = 0.05: 5 warm-up and 5 draws" in section
    rows = [line for line in section.splitlines() if line.startswith("| yacht | nuts-hp")]
    assert len(rows) == 1 and "| 1 |" in rows[0] and "partial" not in rows[0]
    assert "| yacht | *PBP* (published) | | 20 |" in section
