"""The uncertainty page's sections of several seeds: the grouping by settings, the mean and
standard error against numpy, and the verdicts against MC dropout by the combined standard
error, with each metric's direction."""

from __future__ import annotations

import math

import numpy as np
import pytest

from dropprior.experiments.report import _uncertainty
from dropprior.experiments.uncertainty import (
    PAGE_METRICS,
    group_seeds,
    metric_values,
    summarise_seeds,
)

CONDITIONS = ("mnist", "rotate15", "rotate30", "rotate45", "rotate60", "noise")


def _result(accuracy: float, nll: float, seconds: float = 10.0) -> dict:
    """A predictor's metrics: accuracy and NLL given, every other metric 0.5."""
    rows = [{"condition": c, "accuracy": accuracy if c == "mnist" else 0.5,
             "nll": nll if c == "mnist" else 0.5, "ece": 0.5, "brier": 0.5, "aurc": 0.5,
             "auroc_entropy": 0.5} for c in CONDITIONS]
    return {"rows": rows, "train_seconds": seconds}


def _record(seed: int, metrics: dict, laplace: bool = False) -> dict:
    config = {"epochs": 1, "train_size": 600, "batch_size": 128, "lr": 0.001, "sigma0": 1.0,
              "dropout": 0.2, "heavy_law": "inverse_nakagami", "samples": 2, "members": 2,
              "seed": seed, "laplace": laplace}
    return {"config": config, "metrics": metrics, "seconds": 1.0, "commit": "abc",
            "command": f"dropprior uncertainty --seed {seed}" + (" --laplace" * laplace)}


# bernoulli: accuracy 0.90, 0.91, 0.92 (se 0.00577), NLL 0.30, 0.31, 0.32;
# heavy: accuracy 0.95 ± 0.00577 (better by 0.05 > 0.0082), NLL 0.40 ± 0.00577 (worse: higher);
# deterministic: accuracy 0.905, 0.915, 0.925 (level: 0.005 < 0.0082), NLL the same as bernoulli
ACC = {"bernoulli": (0.90, 0.91, 0.92), "heavy": (0.94, 0.95, 0.96),
       "deterministic": (0.905, 0.915, 0.925)}
NLL = {"bernoulli": (0.30, 0.31, 0.32), "heavy": (0.39, 0.40, 0.41),
       "deterministic": (0.30, 0.31, 0.32)}


def _records() -> list[dict]:
    return [_record(k, {v: _result(ACC[v][k], NLL[v][k], seconds=10.0 + k) for v in ACC})
            for k in range(3)]


def test_means_and_standard_errors_against_numpy() -> None:
    summary = summarise_seeds(_records())
    assert list(summary) == ["deterministic", "bernoulli", "heavy"]  # VARIANTS' order
    for variant in ACC:
        for values, (mean, se) in ((ACC[variant], summary[variant]["metrics"][0]),
                                   (NLL[variant], summary[variant]["metrics"][1])):
            assert mean == pytest.approx(np.mean(values), abs=1e-15)
            assert se == pytest.approx(np.std(values, ddof=1) / math.sqrt(3), abs=1e-15)
        assert summary[variant]["train_seconds"] == pytest.approx(11.0)
    assert [t for *_, t in PAGE_METRICS][:2] == ["accuracy", "NLL"]
    assert metric_values(_result(0.9, 0.3))[:2] == [0.9, 0.3]


def test_a_predictor_missing_from_one_seed_is_left_out() -> None:
    records = _records()
    records[1]["metrics"].pop("heavy")
    assert "heavy" not in summarise_seeds(records)


def test_records_group_by_their_settings_but_the_seed() -> None:
    records = _records()
    other = _record(0, {v: _result(0.9, 0.3) for v in ACC}, laplace=True)
    groups = group_seeds([records[2], other, records[0], records[1]])
    assert sorted(len(g) for g in groups) == [1, 3]
    (three,) = [g for g in groups if len(g) == 3]
    assert [r["config"]["seed"] for r in three] == [0, 1, 2]


def test_records_chosen_over_different_grids_are_not_pooled() -> None:
    records = _records()
    for k, record in enumerate(records):
        values = [1.0, 0.3] if k == 2 else [1.0, 0.3, 0.1]
        record["metrics"]["validation"] = {"learned_scales": {
            "setting": "vi_prior_weight", "values": values, "nll": [0.2] * len(values),
            "chosen": 0.3}, "temperature": {
            "setting": "temperature", "values": [1.0, 1.5 + k], "nll": [0.2, 0.1],
            "chosen": 1.5 + k}}
    groups = group_seeds(records)
    assert sorted([r["config"]["seed"] for r in g] for g in groups) == [[0, 1], [2]]
    headers = [line for line in _uncertainty(records).splitlines() if line.startswith("## ")]
    assert len(headers) == 2
    assert sum(h.endswith("learned scales' KL weight β chosen from 1, 0.3, 0.1, seeds 0, 1")
               for h in headers) == 1
    assert sum(h.endswith("learned scales' KL weight β chosen from 1, 0.3") for h in headers) == 1


def test_the_page_gives_the_verdicts_by_each_metrics_direction() -> None:
    page = _uncertainty(_records())
    assert ", seeds 0–2\n" in page
    assert "| bernoulli | 0.9100±0.0058 | 0.3100±0.0058 |" in page
    against = page.split("Against MC dropout")[1]
    heavy = next(line for line in against.splitlines() if line.startswith("| heavy |"))
    assert heavy.startswith("| heavy | 0.0400±0.0082 (better) | 0.0900±0.0082 (worse) | "
                            "0.0000±0.0000 (level)")
    det = next(line for line in against.splitlines() if line.startswith("| deterministic |"))
    assert det.startswith("| deterministic | 0.0050±0.0082 (level) | 0.0000±0.0082 (level)")
    # one seed: the single-run table, no verdicts
    single = _uncertainty(_records()[:1])
    assert "Against MC dropout" not in single and "| bernoulli | 0.9000 | 0.3000 |" in single


def test_a_difference_that_rounds_to_zero_prints_without_a_sign() -> None:
    records = _records()
    for k, r in enumerate(records):  # heavy's NLL a hair below bernoulli's
        r["metrics"]["heavy"] = _result(ACC["heavy"][k], NLL["bernoulli"][k] - 1e-6)
    against = _uncertainty(records).split("Against MC dropout")[1]
    heavy = next(line for line in against.splitlines() if line.startswith("| heavy |"))
    assert heavy.split(" | ")[2] == "0.0000±0.0082 (level)"


def test_a_small_standard_error_gets_the_digits_it_needs() -> None:
    """AURC-sized values: a difference of −2e-5 with a combined s.e. of 6.5e-6 prints 2
    significant digits of the s.e. (7 decimals), and bernoulli's s.e. of 2.9e-6 likewise, not
    0.0000±0.0000."""
    records = _records()
    for k, r in enumerate(records):
        for variant, base in (("bernoulli", 0.00070), ("heavy", 0.00068)):
            for row in r["metrics"][variant]["rows"]:
                row["aurc"] = base + 1e-5 * (k - 1) * (1 if variant == "heavy" else 0.5)
    page = _uncertainty(records)
    against = page.split("Against MC dropout")[1]
    heavy = next(line for line in against.splitlines() if line.startswith("| heavy |"))
    # heavy − bernoulli: −2e-5; s.e. √(se_h² + se_b²) with se = spread/√3 of ±1e-5, ±0.5e-5
    se = math.hypot(np.std([-1e-5, 0, 1e-5], ddof=1), np.std([-5e-6, 0, 5e-6], ddof=1))
    se /= math.sqrt(3)
    assert heavy.split(" | ")[5] == f"−0.0000200±{se:.7f} (better)"
    assert "| bernoulli | 0.9100±0.0058 | 0.3100±0.0058 | 0.5000±0.0000 | 0.5000±0.0000 | " \
        f"0.0007000±{np.std([-5e-6, 0, 5e-6], ddof=1) / math.sqrt(3):.7f} |" in page
