"""``dropprior uncertainty``: five predictors, one record, every condition's metrics."""

from __future__ import annotations

import pytest

from dropprior.cli import main
from dropprior.experiments.records import record_store
from dropprior.experiments.report import build_pages
from dropprior.experiments.uncertainty import VARIANTS, UncertaintySettings


def test_the_comparison_records_every_predictor_and_condition(data_dir, tmp_path,
                                                              capsys) -> None:
    argv = ["uncertainty", "--data-dir", str(data_dir), "--epochs", "1", "--train-size", "600",
            "--samples", "2", "--members", "2", "--results", str(tmp_path / "results")]
    assert main(argv) == 0
    (record,) = record_store("uncertainty", tmp_path / "results").records().values()
    assert sorted(record["metrics"]) == sorted(v for v in VARIANTS
                                               if v not in ("laplace", "temperature"))
    for result in record["metrics"].values():
        rows = result["rows"]
        assert [r["condition"] for r in rows] == ["mnist", "rotate15", "rotate30", "rotate45",
                                                  "rotate60", "noise"]
        assert all(0.0 <= r["accuracy"] <= 1.0 and r["nll"] > 0 for r in rows)
        assert all(0.0 <= r["auroc_entropy"] <= 1.0 for r in rows[1:])
    # one epoch on 600 images already beats chance for the deterministic net
    assert record["metrics"]["deterministic"]["rows"][0]["accuracy"] > 0.5
    assert main(argv) == 0 and "read:" in capsys.readouterr().out
    # --laplace: a second record, with the post-hoc last-layer Laplace as a sixth predictor
    assert main([*argv, "--laplace"]) == 0
    assert "\nlaplace (" in capsys.readouterr().out
    records = record_store("uncertainty", tmp_path / "results").records().values()
    (with_laplace,) = [r for r in records if r["config"].get("laplace")]
    assert sorted(with_laplace["metrics"]) == sorted(v for v in VARIANTS if v != "temperature")
    laplace, plain = with_laplace["metrics"]["laplace"], with_laplace["metrics"]["deterministic"]
    assert laplace["train_seconds"] >= plain["train_seconds"]
    # the posterior around the same net: above chance, with its own predictive
    assert laplace["rows"][0]["accuracy"] > 0.3
    assert laplace["rows"][0]["nll"] != plain["rows"][0]["nll"]
    page = build_pages(tmp_path)[tmp_path / "docs/results/uncertainty.md"]
    assert page.count("| laplace |") == 1 and page.count("| deterministic |") == 2
    assert page.count("ensemble members, and a last-layer Laplace posterior\n") == 1


def test_bad_settings_name_the_value() -> None:
    with pytest.raises(ValueError, match="heavy_law='bernoulli' is not valid"):
        UncertaintySettings(heavy_law="bernoulli")
    with pytest.raises(ValueError, match=r"dropout must be a number in \(0, 1\), got 1.5"):
        UncertaintySettings(dropout=1.5)
    with pytest.raises(ValueError, match="members must be an int >= 1"):
        UncertaintySettings(members=0)


def test_validate_records_the_choices_and_trains_the_chosen_values(data_dir, tmp_path,
                                                                   capsys) -> None:
    from dropprior.experiments.uncertainty import TUNED

    argv = ["uncertainty", "--data-dir", str(data_dir), "--epochs", "1", "--train-size", "600",
            "--samples", "2", "--members", "2", "--validate", "--results",
            str(tmp_path / "results")]
    assert main(argv) == 0
    out = capsys.readouterr().out
    (record,) = record_store("uncertainty", tmp_path / "results").records().values()
    choices = record["metrics"]["validation"]
    assert sorted(choices) == sorted([*TUNED, "temperature"])
    # temperature scaling: the deterministic net trained on 500 images, T fitted on the other
    # 100, never worse on them than T = 1
    scaling = choices.pop("temperature")
    assert scaling["values"][0] == 1.0 and scaling["chosen"] == scaling["values"][1] > 0
    assert scaling["nll"][1] <= scaling["nll"][0]
    assert "temperature" in record["metrics"] and "\ntemperature (" in out
    for variant, choice in choices.items():
        setting, grid = TUNED[variant]
        assert choice["setting"] == setting and choice["values"] == list(grid)
        assert all(n > 0 for n in choice["nll"])
        assert choice["chosen"] == grid[choice["nll"].index(min(choice["nll"]))]
        assert f"{variant}: {setting} = {choice['chosen']:g} chosen on validation" in out
    page = build_pages(tmp_path)[tmp_path / "docs/results/uncertainty.md"]
    def grid(variant: str) -> str:
        return ", ".join(f"{v:g}" for v in TUNED[variant][1])

    assert f"dropout chosen on validation from {grid('bernoulli')}, heavy law" in page
    assert f"learned scales' KL weight β chosen from {grid('learned_scales')}, and a" not in page
    assert f"ensemble members, learned scales' KL weight β chosen from {grid('learned_scales')}" \
        in page
    assert page.count("| 0 | ") == len(TUNED) + 1
