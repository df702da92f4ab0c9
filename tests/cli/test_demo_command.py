"""``dropprior demo`` end to end (shrunk) and its argument checks."""

from __future__ import annotations

import csv
import json
import math

from dropprior.cli import main


def test_demo_writes_table_and_plots(tmp_path, capsys):
    out = tmp_path / "demo"
    code = main(["demo", "--law", "bernoulli", "rayleigh", "--epochs-regression", "3",
                 "--epochs-classification", "1", "--samples", "5", "--hidden", "8",
                 "--out", str(out), "--no-progress"])
    stdout = capsys.readouterr().out
    assert code == 0
    for name in ("demo.md", "demo.csv", "calibration.png", "relevance.png", "run.json"):
        assert (out / name).is_file(), name
    rows = list(csv.DictReader((out / "demo.csv").read_text().splitlines()))
    assert [r["law"] for r in rows] == ["bernoulli", "rayleigh"]
    for row in rows:
        assert math.isfinite(float(row["diabetes RMSE"])) and float(row["diabetes RMSE"]) > 0
        assert 0 <= float(row["digits error %"]) <= 100
        assert 0 <= float(row["digits ECE"]) <= 1
    assert "| bernoulli |" in stdout and "| rayleigh |" in stdout
    assert json.loads((out / "run.json").read_text())["config"]["epochs_regression"] == 3


def test_demo_record_rebuilds_the_run_table_on_its_page(tmp_path, capsys):
    """--results writes a record from which `dropprior report` rebuilds the run's own demo.md;
    a rerun of the same settings replaces it."""
    from dropprior.experiments.report import build_pages

    argv = ["demo", "--law", "bernoulli", "half_cauchy", "--epochs-regression", "2",
            "--epochs-classification", "1", "--samples", "3", "--hidden", "6",
            "--results", str(tmp_path / "results"), "--no-progress"]
    assert main([*argv, "--out", str(tmp_path / "run")]) == 0
    assert main([*argv, "--out", str(tmp_path / "run2")]) == 0
    assert "wrote the result record" in capsys.readouterr().out
    assert len(list((tmp_path / "results" / "demo").glob("*.json"))) == 1
    page = build_pages(tmp_path)[tmp_path / "docs/results/demo.md"]
    assert (tmp_path / "run2" / "demo.md").read_text() in page
    assert "## p = 0.1, 6 hidden units, 2 / 1 epochs, S = 3, seed 0" in page


def test_demo_rejects_bad_values(tmp_path, capsys):
    assert main(["demo", "--dropout", "1.5", "--out", str(tmp_path)]) == 2
    assert "dropout must be a number in (0, 1), got 1.5" in capsys.readouterr().err
    assert main(["demo", "--samples", "0", "--out", str(tmp_path)]) == 2
    assert "samples must be an int >= 1, got 0" in capsys.readouterr().err


def test_a_law_without_a_mean_trains_under_the_marginal_objective() -> None:
    from dropprior.experiments.demo import failure, objective_for

    assert objective_for("half_cauchy", 0.1) == "marginal"
    assert objective_for("bernoulli", 0.1) == "mc"
    assert failure({"error": 0.886}).startswith("failed: error 88.6% is near chance")
    assert "objective='marginal'" in failure({"rmse": 2755.0}, y_std=77.0)
    assert "median" in failure({"rmse": 1559.0, "objective": "marginal"}, y_std=77.0)
    assert failure({"rmse": 55.0}, y_std=77.0) == "" and failure({"error": 0.05}) == ""
