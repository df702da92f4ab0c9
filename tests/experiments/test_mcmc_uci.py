"""The MAP/NUTS/SGLD comparison as a runner job: the same rows as ``dropprior mcmc``, and the
NUTS table script reads its records."""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import asdict, replace
from pathlib import Path

import pytest

from dropprior.cli import main
from dropprior.experiments.mcmc_uci import McmcSettings, run_mcmc_job, summarise_methods
from dropprior.experiments.runner import Job, run_jobs
from dropprior.experiments.store import ResultStore

ROOT = Path(__file__).resolve().parents[2]


def test_a_job_gives_the_commands_rows_and_the_table_reads_it(data_dir, tmp_path):
    settings = replace(McmcSettings(), hidden=3, epochs=2, samples=2, warmup=5, num_samples=5,
                       max_tree_depth=3)
    out = tmp_path / "cli.json"
    assert main(["mcmc", "--data-dir", str(data_dir), "--dataset", "yacht", "--splits", "1",
                 "--hidden", "3", "--epochs", "2", "--samples", "2", "--warmup", "5",
                 "--num-samples", "5", "--max-tree-depth", "3",
                 "--methods", "mc-dropout,nuts-ep", "--out", str(out)]) == 0
    want = json.loads(out.read_text())["rows"]
    params = {"data_dir": str(data_dir / "uci"), "dataset": "yacht", "law": "gaussian",
              "methods": ["mc-dropout", "nuts-ep"], "splits": 1, "seed": 0, **asdict(settings)}
    store = ResultStore(tmp_path / "jobs", required=("params", "result"))
    record = run_jobs(run_mcmc_job, [Job("yacht/gaussian", params)], store, progress=False)[0]
    got = record["result"]["rows"]
    assert [(r["method"], r["split"]) for r in got] == [(r["method"], r["split"]) for r in want]
    for g, w in zip(got, want, strict=True):
        assert g["rmse"] == pytest.approx(w["rmse"], rel=1e-9)
        assert g["test_ll"] == pytest.approx(w["test_ll"], rel=1e-9)
    assert record["result"]["summary"] == summarise_methods(got, ["mc-dropout", "nuts-ep"])
    table = subprocess.run([sys.executable, str(ROOT / "scripts" / "nuts_uci_table.py"),
                            *map(str, sorted((tmp_path / "jobs").rglob("*.json")))],
                           capture_output=True, text=True, check=True).stdout
    assert "| yacht | mc-dropout | Bernoulli, p = 0.05 | 1 |" in table
    assert "| yacht | nuts-ep | variance-gamma (Gaussian noise) | 1 |" in table
