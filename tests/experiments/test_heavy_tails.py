"""The heavy-tails experiments (``dropprior.experiments.heavy_tails``), their records and page."""

from __future__ import annotations

import math
import statistics
import subprocess
import sys
from pathlib import Path

import pytest

from dropprior.experiments.heavy_tails import (
    DIABETES,
    MNIST,
    DiabetesTailSettings,
    MnistTailSettings,
    diabetes_table,
    mnist_table,
    run_diabetes,
)
from dropprior.experiments.records import make_record, record_store
from dropprior.experiments.report import build_pages

ROOT = Path(__file__).resolve().parents[2]


def test_settings_name_a_configuration_of_their_table() -> None:
    with pytest.raises(ValueError, match="configuration=.* is not valid; expected one of"):
        DiabetesTailSettings("half-Cauchy(2) MC S=1")
    with pytest.raises(ValueError, match="configuration=.* is not valid; expected one of"):
        MnistTailSettings(DIABETES[0].label)
    with pytest.raises(ValueError, match="train_size \\+ val_size must be <= 60000"):
        MnistTailSettings(MNIST[0].label, train_size=58_000)
    with pytest.raises(ValueError, match="epochs must be an int >= 1, got 0"):
        DiabetesTailSettings(DIABETES[0].label, epochs=0)


def test_dropout_ranks_the_real_features_above_the_noise_features() -> None:
    """Bernoulli ARD at seed 0 finds bmi, s5 and bp and predicts better than the mean."""
    from dropprior.data import load_diabetes

    m = run_diabetes(DiabetesTailSettings(DIABETES[0].label, seed=0))
    y_std = float(load_diabetes()[1].std())
    assert m["finite"] and m["ranked"]
    assert m["rmse_mean"] < 0.8 * y_std and m["rmse_median"] < 0.8 * y_std


def test_the_largest_seed_runs() -> None:
    """Prediction is seeded seed + 1000, which wraps modulo 2**64 instead of passing torch's
    largest seed."""
    m = run_diabetes(DiabetesTailSettings(DIABETES[0].label, seed=2**64 - 1, epochs=2,
                                          test_samples=5))
    assert math.isfinite(m["rmse_mean"])


def _diabetes_record(label: str, seed: int, rmse: float, ranked: bool) -> dict:
    config = {"configuration": label, "seed": seed, "epochs": 300, "test_samples": 200}
    metrics = {"finite": True, "rmse_mean": rmse, "rmse_median": rmse - 1, "ranked": ranked,
               "seconds": 1.0}
    return make_record("python scripts/heavy_tails.py diabetes", config, seed, metrics, 1.0,
                       "abc")


def test_diabetes_table_aggregates_the_seeds_in_table_order() -> None:
    later, first = DIABETES[3].label, DIABETES[0].label
    records = [_diabetes_record(later, s, v, s != 1) for s, v in enumerate([60.0, 70.0, 65.0])]
    records.append(_diabetes_record(first, 0, 52.0, True))
    lines = diabetes_table(records).splitlines()
    assert lines[2].startswith(f"| {first} | 300 | 200 | 0 | 1/1 | 52.0 | 51.0 | 1/1 |")
    sd = statistics.stdev([60.0, 70.0, 65.0])
    assert lines[3] == (f"| {later} | 300 | 200 | 0–2 | 3/3 | 65.0 ± {sd:.1f} | "
                        f"64.0 ± {sd:.1f} | 2/3 |")


def test_page_is_built_from_both_stores(tmp_path) -> None:
    results = tmp_path / "results"
    record_store("heavy_tails_diabetes", results).put(
        "k", _diabetes_record(DIABETES[1].label, 0, 3000.0, False))
    config = {"configuration": MNIST[8].label, "train_size": 20000, "epochs": 2,
              "val_size": 5000, "seed": 0}
    metrics = {"finite": True, "last_train_loss": 0.582, "val_error": 7.04, "seconds": 26.0}
    record_store("heavy_tails_mnist", results).put(
        "m", make_record("python scripts/heavy_tails.py mnist", config, 0, metrics, 26.0, "abc"))
    page = build_pages(tmp_path)[tmp_path / "docs/results/heavy_tails.md"]
    assert f"| {DIABETES[1].label} | 300 | 200 | 0 | 1/1 | 3000.0 | 2999.0 | 0/1 |" in page
    assert f"| {MNIST[8].label} | 20000 | 2 | 0 | 1/1 | 0.582 | 7.04 | 26 |" in page
    assert "- `python scripts/heavy_tails.py mnist` (commit `abc`)" in page
    assert mnist_table([]).count("\n") == 2


def test_mnist_table_aggregates_the_seeds() -> None:
    records = []
    for seed, error in enumerate([7.0, 8.0, 9.5]):
        config = {"configuration": MNIST[8].label, "train_size": 20000, "epochs": 2,
                  "val_size": 5000, "seed": seed}
        metrics = {"finite": seed != 1, "last_train_loss": 0.5 + seed / 10, "val_error": error,
                   "seconds": 10.0 + seed}
        records.append(make_record("c", config, seed, metrics, 1.0, "abc"))
    sd = statistics.stdev([7.0, 8.0, 9.5])
    assert (f"| {MNIST[8].label} | 20000 | 2 | 0–2 | 2/3 | 0.6 ± 0.1 | 8.17 ± {sd:.2f} | 11 |"
            in mnist_table(records))


def test_script_writes_records_and_refuses_bad_rows(tmp_path) -> None:
    script = [sys.executable, str(ROOT / "scripts" / "heavy_tails.py"), "diabetes"]
    bad = subprocess.run([*script, "--only", "10"], capture_output=True, text=True)
    assert bad.returncode == 2 and "--only takes row numbers 0..9, got [10]" in bad.stderr
    out = subprocess.run([*script, "--seeds", "0", "--only", "0", "--results",
                          str(tmp_path)], capture_output=True, text=True, check=True).stdout
    assert f"| {DIABETES[0].label} | 300 | 200 | 0 | 1/1 |" in out
    assert len(record_store("heavy_tails_diabetes", tmp_path)) == 1
