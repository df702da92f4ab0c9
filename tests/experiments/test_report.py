"""The committed results pages are exactly what ``dropprior report`` writes from the records."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
from scipy import stats

from dropprior.experiments.report import PAGES, build_pages

ROOT = Path(__file__).resolve().parents[2]


def test_committed_pages_equal_the_generated_ones() -> None:
    pages = build_pages(ROOT)
    assert set(pages) == {ROOT / rel for rel in PAGES}
    for path, text in pages.items():
        assert path.read_text() == text, f"{path} is stale: run `dropprior report`"


def test_pages_are_built_from_records(tmp_path) -> None:
    from dropprior.experiments.records import make_record, record_store

    store = record_store("selection", tmp_path / "results")
    metrics = {"input_scales": [0.5, 0.4, 0.3] + [0.01] * 9, "block_scales": [0.05] * 6,
               "inputs_kept": [0, 1, 2], "blocks_kept": [], "test_rmse": 0.11,
               "test_rmse_pruned": 0.105, "input_snr": [5.0] * 3 + [0.3] * 9,
               "block_snr": [0.3] * 6}
    config = {"inference": "vi", "hyperprior": "log_uniform", "objective": "mc", "samples": 1}
    store.put("k", make_record("dropprior selection", config, 0, metrics, 12.0))
    text = build_pages(tmp_path)[tmp_path / "docs/results/selection.md"]
    assert "| vi | log_uniform | mc | — | [0, 1, 2] | 0 of 6 | 0.3–0.5 | 0.01 |" in text
    assert "| yes |" in text and "`dropprior selection`" in text


def _uci_run(results: Path, name: str, law: str, lls: list[float],
             validation: list[float] | None = None, objective: str = "mc",
             taus: tuple[float, float] | None = None) -> None:
    """A ``dropprior uci`` run directory of the grid protocol: one job per split, with the
    split's best inner-validation LL where ``validation`` gives it (at the grid points ``taus``
    where given)."""
    import json

    from dropprior.experiments.store import ResultStore

    run = results / "uci" / name
    store = ResultStore(run / "jobs")
    for split, ll in enumerate(lls):
        params = {"dataset": "yacht", "law": law, "structure": "unit", "objective": objective,
                  "splits": [split]}
        scores = {"split": split, "rmse": 0.6, "ll": ll}
        if validation is not None:
            scores["validation"] = [{"ll": validation[split] - 1}, {"ll": validation[split]}]
            for entry, tau in zip(scores["validation"], taus or (), strict=False):
                entry["tau"] = tau
        store.put(f"{name}-{split}", {"params": params, "seconds": 10.0, "result": {
            "epochs": 4000, "splits": [scores]}})
    (run / "run.json").write_text(json.dumps({"argv": ["dropprior", "uci", "--law", law],
                                              "started_at": "t", "commit": "abc"}))


def _uci_section(root: Path, heading: str) -> str:
    """The generated UCI page's section under ``## heading``, up to the next section."""
    text = build_pages(root)[root / "docs/results/uci.md"]
    return text.split(f"## {heading}")[1].split("\n## ")[0]


def test_uci_protocol_rows_name_their_law_and_both_verdicts(tmp_path) -> None:
    """Complete runs of the grid protocol go in the by-law table with the 2018 and Deep
    Ensembles verdicts; a run short of 20 splits is listed as partial, not in the table."""
    _uci_run(tmp_path / "results", "yacht-grid-gaussian", "gaussian", [-1.19, -1.21] * 10)
    _uci_run(tmp_path / "results", "yacht-grid-rayleigh", "rayleigh", [-1.0] * 3)
    _uci_run(tmp_path / "results", "yacht-grid-half-cauchy", "half_cauchy", [-4.0] * 20)
    _uci_run(tmp_path / "results", "yacht-grid-bernoulli", "bernoulli", [-1.3] * 20)
    _uci_run(tmp_path / "results", "yacht-grid-inverse-nakagami", "inverse_nakagami",
             [-1.5] * 20)
    _uci_run(tmp_path / "results", "yacht-grid-bernoulli-marginal", "bernoulli", [-1.2] * 20,
             objective="marginal")
    text = build_pages(tmp_path)[tmp_path / "docs/results/uci.md"]
    protocol = text.split("## The grid protocol")[1].split("## Learned group scales")[0]
    rows = [line.split(" | ")[1:4:2] for line in protocol.splitlines()
            if line.startswith("| yacht")]
    # Table 1's order, not the folders' (which puts half-Cauchy before inverse Nakagami), each
    # law's objectives together
    assert rows == [["bernoulli", "marginal"], ["bernoulli", "mc"], ["gaussian", "mc"],
                    ["inverse_nakagami", "mc"], ["half_cauchy", "mc"]]

    # mean −1.20, s.e. 0.0023: beats 2018's −1.25 ± 0.01, not Deep Ensembles' −1.18 ± 0.21/√20
    row = next(line for line in protocol.splitlines() if line.startswith("| yacht | gaussian"))
    assert row.startswith("| yacht | gaussian | unit | mc | 20 | 4000 | 0.60±0.00 | −1.20±0.00 |")
    assert row.endswith("| 200 | 0.67±0.05 / −1.25±0.01 | yes | −1.18 | no |")
    assert "| yacht | rayleigh" not in protocol
    assert "Partial, not results: yacht rayleigh / unit / mc (3 of 20 splits)." in protocol


def test_uci_law_chosen_on_validation_is_judged_against_both_anchors(tmp_path) -> None:
    """Per split the law with the better validation LL is kept: Gaussian on the even splits
    (test −1.19), Bernoulli on the odd ones (−1.10), so −1.145 ± 0.010: above 2018's
    −1.25 ± 0.01 by more than the combined s.e., not above Deep Ensembles' −1.18 ± 0.047.
    (Chosen on the test LL, Bernoulli would win every split, −1.125 ± 0.006, beating both.)"""
    _uci_run(tmp_path / "results", "g", "gaussian", [-1.19, -1.21] * 10, [0.0, -1.0] * 10)
    _uci_run(tmp_path / "results", "b", "bernoulli", [-1.15, -1.10] * 10, [-1.0, 0.0] * 10)
    text = build_pages(tmp_path)[tmp_path / "docs/results/uci.md"]
    chosen = text.split("## Chosen on inner validation")[1].split("## Best row")[0]
    (row,) = [line for line in chosen.splitlines() if line.startswith("| yacht |")]
    assert row.startswith("| yacht | 2 | 20 | 0.60±0.00 |")
    assert row.endswith("| −1.25±0.01 | yes | −1.18 | no | "
                        "gaussian/unit/mc (10), bernoulli/unit/mc (10) |")
    assert ("beats the 2018 MC-dropout test LL on 1 of 1 data sets and Deep Ensembles' on 0 of "
            "1," in text)


def test_uci_baselines_are_not_candidates_but_are_compared_with_the_choice(tmp_path) -> None:
    """The law "none" rows (baselines) stay out of the choice on validation, even with the best
    validation LL; the chosen −1.145 ± 0.0103 is then set against each baseline with the
    combined s.e.: map −1.20 ± 0 (0.055 > 0.0103: noise better), laplace −1.14 ± 0.0023
    (−0.005, |·| < 0.0106: level). A baseline on 3 splits is left out."""
    results = tmp_path / "results"
    _uci_run(results, "g", "gaussian", [-1.19, -1.21] * 10, [0.0, -1.0] * 10)
    _uci_run(results, "b", "bernoulli", [-1.15, -1.10] * 10, [-1.0, 0.0] * 10)
    _uci_run(results, "m", "none", [-1.2] * 20, [5.0] * 20, objective="map")
    _uci_run(results, "l", "none", [-1.13, -1.15] * 10, [5.0] * 20, objective="laplace")
    text = build_pages(tmp_path)[tmp_path / "docs/results/uci.md"]
    chosen = text.split("## Chosen on inner validation")[1].split("## Best row")[0]
    assert "| yacht | 2 | 20 | 0.60±0.00 | −1.15±0.01 |" in chosen  # the baselines not chosen
    (row,) = [line for line in chosen.split("### Against the baselines")[1].splitlines()
              if line.startswith("| yacht |")]
    chosen_se = stats.sem([-1.19, -1.10] * 10)
    se = math.hypot(chosen_se, stats.sem([-1.13, -1.15] * 10))
    assert row == ("| yacht | −1.15±0.01 | −1.20±0.00 | "
                   f"0.0550±{chosen_se:.4f} (noise better) | "
                   f"−1.14±0.00 | −0.0050±{se:.4f} (level) |")
    short = tmp_path / "short"
    _uci_run(short / "results", "g", "gaussian", [-1.19, -1.21] * 10, [0.0, -1.0] * 10)
    _uci_run(short / "results", "b", "bernoulli", [-1.15, -1.10] * 10, [-1.0, 0.0] * 10)
    _uci_run(short / "results", "m", "none", [-1.2] * 3, objective="map")
    assert "### Against the baselines" not in build_pages(short)[short / "docs/results/uci.md"]


def test_uci_best_row_is_the_complete_noisy_row_of_the_highest_test_ll(tmp_path) -> None:
    """The best row skips the baselines (law none, −0.5) and partial runs (−0.9 on 3 splits)
    however good; of the complete rows, Bernoulli with the marginal objective (−1.10) wins,
    beating 2018's −1.25 ± 0.01 and Deep Ensembles' −1.18 ± 0.21/√20 = ±0.047 (0.08 > 0.047)."""
    results = tmp_path / "results"
    _uci_run(results, "g", "gaussian", [-1.19, -1.21] * 10)
    _uci_run(results, "b", "bernoulli", [-1.10] * 20, objective="marginal")
    _uci_run(results, "r", "rayleigh", [-0.9] * 3)
    _uci_run(results, "m", "none", [-0.5] * 20, objective="map")
    best = _uci_section(tmp_path, "Best row per data set")
    (row,) = [line for line in best.splitlines() if line.startswith("| yacht |")]
    assert row == ("| yacht | bernoulli / unit / marginal / — | −1.10±0.00 (−1.100±0.000) | "
                   "−1.25±0.01 | yes | −1.18 | yes |")
    assert "beats the 2018 MC-dropout test LL on 1 of 1 data sets and Deep Ensembles' on 1 of 1" \
        in best
    # a best row of −1.15 (s.e. 0): above Deep Ensembles' mean by 0.03 < 0.047, so not beyond
    results = tmp_path / "other" / "results"
    _uci_run(results, "g", "gaussian", [-1.15] * 20)
    best = build_pages(tmp_path / "other")[tmp_path / "other/docs/results/uci.md"]
    assert "| yacht | gaussian / unit / mc / — | −1.15±0.00 (−1.150±0.000) | −1.25±0.01 | yes | " \
        "−1.18 | no |" in best


def test_report_outside_a_repository_root_is_an_error_that_writes_nothing(tmp_path,
                                                                           capsys) -> None:
    """It wrote empty pages (and empty results/ folders) wherever it was pointed."""
    from dropprior.cli import main

    assert main(["report", "--root", str(tmp_path)]) == 2
    assert f"no results folder {str(tmp_path / 'results')!r}" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []


def test_every_hand_written_table_is_marked_not_regenerated() -> None:
    """docs/results.md predates the records: each of its sections with a table must say so."""
    import re

    text = (ROOT / "docs" / "results.md").read_text()
    sections = re.split(r"\n(?=#{2,3} )", text)[1:]
    unmarked = [s.splitlines()[0] for s in sections
                if re.search(r"^\|", s, flags=re.M) and "**Not regenerated.**" not in s]
    assert not unmarked, unmarked


def test_cost_compares_records_of_one_commit_only() -> None:
    """The pages' cost column: the baseline's speed over the record's where both ran the same
    commit (a dirty tree counts as its commit), and — across commits or without a baseline."""
    from dropprior.experiments.report import _cost

    def record(commit: str, speed: float) -> dict:
        return {"commit": commit, "metrics": {"train_images_per_second": speed}}

    base = record("abc123", 900.0)
    assert _cost(base, record("abc123+dirty", 600.0), "train_images_per_second") == "1.50"
    assert _cost(base, record("def456", 600.0), "train_images_per_second") == "—"
    assert _cost(None, record("abc123", 600.0), "train_images_per_second") == "—"


def _lenet_record(beta: float, ft_lr: float, kept: str, valid: float, loss: float) -> dict:
    config = {"arch": "lenet-300-100", "inference": "map", "prior_weight": beta, "epochs": 100,
              "fine_tune_epochs": 30, "fine_tune_lr": ft_lr, "fine_tune_patience": 5,
              "fine_tune_schedule": "cosine", "validation": 10_000}
    metrics = {"kept_architecture": kept, "valid_error_pruned": valid + 0.01,
               "valid_error_fine_tuned": valid, "fine_tune_valid_loss": loss}
    return {"config": config, "metrics": metrics}


def test_lenet_beta_and_fine_tune_are_chosen_together_on_validation() -> None:
    """Records that differ in β, epochs and fine-tune settings are one choice on the validation
    error, among those small enough (≤ a third of each layer); the fine-tune-loss choice leaves
    records with a validation error alone, so it cannot overrule that choice."""
    from dropprior.experiments.report import (
        _lenet_chosen,
        _lenet_chosen_on_validation,
        _lenet_inference,
    )

    small_a = _lenet_record(20, 3e-4, "130-90-30", valid=0.020, loss=0.05)
    small_b = _lenet_record(20, 1e-3, "130-90-30", valid=0.018, loss=0.07)
    large = _lenet_record(10, 3e-4, "200-150-45", valid=0.015, loss=0.03)
    other_beta = _lenet_record(30, 1e-3, "100-70-28", valid=0.019, loss=0.04)
    longer = _lenet_record(20, 1e-3, "120-80-33", valid=0.0185, loss=0.06)
    longer["config"]["epochs"] = 200
    rows = [small_a, small_b, large, other_beta, longer]
    chosen, compared = _lenet_chosen_on_validation(rows)
    assert chosen == {id(small_b)}
    assert compared == {id(r) for r in rows}
    assert _lenet_chosen(rows) == (set(), set())
    # a rerun with another seed joins the same choice: chosen only if its validation error is
    # lower, whatever its test error
    reseeded = _lenet_record(20, 1e-3, "130-90-30", valid=0.0182, loss=0.05)
    reseeded["config"]["seed"] = 1
    for r in rows:
        r["config"]["seed"] = 0
    chosen, compared = _lenet_chosen_on_validation([*rows, reseeded])
    assert chosen == {id(small_b)} and id(reseeded) in compared
    assert _lenet_inference(reseeded["config"]) == "map, β=20, seed 1"
    assert _lenet_inference(small_b["config"]) == "map, β=20"
    reseeded["metrics"]["valid_error_fine_tuned"] = 0.017
    assert _lenet_chosen_on_validation([*rows, reseeded])[0] == {id(reseeded)}
    # without a validation error the fine-tune loss chooses among fine-tune settings only
    for r in rows:
        r["metrics"].pop("valid_error_pruned")
    chosen, compared = _lenet_chosen(rows)
    assert chosen == {id(small_a)} and compared == {id(small_a), id(small_b)}


def test_lenet5_moonshot_is_chosen_on_validation_among_records_that_small() -> None:
    """Among LeNet-5 records compared on validation, the moonshot line names the one with the
    lowest final validation error of those at most 158K multiply–accumulates (a larger record's
    lower validation error does not count), and says whether its test error is ≤ 1.0%."""
    from dropprior.experiments.report import _lenet_moonshot

    def record(cap: str, macs: int, valid: float, test: float) -> dict:
        config = {"arch": "lenet-5-caffe", "inference": "map", "prior_weight": 30, "epochs": 40,
                  "max_kept": cap, "fine_tune_epochs": 30, "validation": 10_000}
        metrics = {"kept_architecture": "x", "valid_error": 0.012, "valid_error_pruned": 0.02,
                   "valid_error_fine_tuned": valid, "test_error": 0.011,
                   "test_error_pruned": 0.02, "test_error_fine_tuned": test,
                   "flops_after": 2 * macs}
        return {"config": config, "metrics": metrics}

    big = record("6,10,500", 193_790, valid=0.0090, test=0.0080)
    small = record("5,9,500", 154_318, valid=0.0099, test=0.0095)
    smaller = record("4,9,500", 120_000, valid=0.0120, test=0.0090)
    lines = _lenet_moonshot([big, small, smaller])
    assert len(lines) == 1 and "at most 5-9-500" in lines[0]
    assert lines[0].endswith("(154,318 multiply–accumulates): 0.95%, met.\n")
    small["metrics"]["test_error_fine_tuned"] = 0.0101
    assert _lenet_moonshot([big, small, smaller])[0].endswith("1.01%, not met.\n")
    assert _lenet_moonshot([big]) == []
    # a tie on validation is named beside the choice
    smaller["metrics"]["valid_error_fine_tuned"] = 0.0099
    (line,) = _lenet_moonshot([big, smaller, small])
    assert "at most 4-9-500" in line and line.endswith(
        "0.90%, met; tied on validation with map, β=30, scale, at most 5-9-500: 1.01%.\n")


def test_uci_bernoulli_mc_row_is_set_against_the_calibration_script(tmp_path) -> None:
    """Yacht's Bernoulli / unit / mc row against the script's RMSE 0.659 ± 0.045 and LL
    −1.248 ± 0.019: an RMSE of 0.60 ± 0 is better by 0.059 > 0.045, an LL of −1.20 ± 0 better
    by 0.048 > 0.019, one of −1.24 ± s.e. level; other laws and objectives are not compared, nor
    a partial run."""
    results = tmp_path / "results"
    _uci_run(results, "b", "bernoulli", [-1.20] * 20)
    _uci_run(results, "g", "gaussian", [-1.0] * 20)
    _uci_run(results, "m", "bernoulli", [-1.0] * 20, objective="marginal")
    section = _uci_section(tmp_path, "Against a plain PyTorch MC-dropout script")
    (row,) = [line for line in section.splitlines() if line.startswith("| yacht |")]
    assert row == ("| yacht | 0.66±0.04 | 0.60±0.00 | −0.0590±0.0450 (dropprior better) | "
                   "−1.25±0.02 | −1.20±0.00 | 0.0480±0.0190 (dropprior better) | 132 | 200 |")
    level = tmp_path / "level"
    _uci_run(level / "results", "b", "bernoulli", [-1.25, -1.23] * 10)
    section = _uci_section(level, "Against a plain PyTorch MC-dropout script")
    se = math.hypot(stats.sem([-1.25, -1.23] * 10), 0.019)
    assert f"| −1.25±0.02 | −1.24±0.00 | 0.0080±{se:.4f} (level) | 132 | 200 |" in section
    partial = tmp_path / "partial"
    _uci_run(partial / "results", "b", "bernoulli", [-1.20] * 5)
    assert "## Against a plain" not in build_pages(partial)[partial / "docs/results/uci.md"]


def test_uci_job_time_of_the_full_table_from_the_records(tmp_path) -> None:
    """Yacht: Bernoulli MC 200 s and marginal 600 s (ratio 3), Gaussian MC on 5 splits 50 s
    (scaled 200 s, marginal estimated 600 s), the other three laws 200 s (MC mean) and 600 s:
    in all 5 × 200 + 5 × 600 = 4000 s; the other five data sets have no MC record and are named
    outside the total."""
    results = tmp_path / "results"
    _uci_run(results, "b", "bernoulli", [-1.2] * 20)
    _uci_run(results, "m", "bernoulli", [-1.2] * 20, objective="marginal")
    for path in (results / "uci" / "m" / "jobs").glob("*.json"):
        path.write_text(path.read_text().replace('"seconds": 10.0', '"seconds": 30.0'))
    _uci_run(results, "g", "gaussian", [-1.2] * 5)
    section = _uci_section(tmp_path, "Job time of the full table")
    rows = [line for line in section.splitlines() if line.startswith("| ")][1:]
    assert rows == [
        "| yacht | bernoulli | 200 | 600 | 3.00× |",
        "| yacht | gaussian | 200 (scaled from 5 splits) | 600 (estimated: MC × 3.00) | — |",
        *[f"| yacht | {law} | 200 (estimated: the data set's MC mean) | "
          "600 (estimated: MC × 3.00) | — |"
          for law in ("rayleigh", "inverse_nakagami", "half_cauchy")]]
    assert ("In all, 4,000 s (1.1 hours) of job time over 10 cells: 2 measured, 1 scaled from "
            "partial runs, 7 estimated" in section)
    assert ("Not in the total, with no MC record: bostonHousing, energy, naval-propulsion-plant, "
            "power-plant, wine-quality-red." in section)


def test_uci_ceiling_of_the_tau_grid_beside_the_best_grid_row(tmp_path) -> None:
    """Yacht's grids searched τ up to 0.75: ceiling ½ log(0.75 / 2π) = −1.063, 0.137 above the
    best complete row (Bernoulli, −1.20; the Gaussian row, higher, is partial). Deep Ensembles'
    −1.18 lies below the ceiling: "no". Runs without validation grids give no section."""
    results = tmp_path / "results"
    _uci_run(results, "plain", "gaussian", [-1.3] * 20)
    assert "## The τ grid's ceiling" not in build_pages(tmp_path)[tmp_path / "docs/results/uci.md"]
    _uci_run(results, "b", "bernoulli", [-1.2] * 20, validation=[-1.0] * 20, taus=(0.5, 0.75))
    _uci_run(results, "g", "gaussian", [-0.9] * 5, validation=[-1.0] * 5, taus=(0.25, 0.5))
    section = _uci_section(tmp_path, "The τ grid's ceiling on the test LL")
    rows = [line for line in section.splitlines() if line.startswith("| ")][1:]
    assert 0.5 * math.log(0.75 / (2 * math.pi)) == pytest.approx(-1.0628, abs=1e-4)
    assert rows == ["| yacht | 0.75 | −1.063 | bernoulli / mc | −1.20±0.00 | 0.137 | −1.18 | no |"]
