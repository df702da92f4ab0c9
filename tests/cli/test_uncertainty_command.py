"""``dropprior uncertainty``: five predictors, one record, every condition's metrics."""

from __future__ import annotations

import pytest

from dropprior.cli import main
from dropprior.experiments.records import record_store
from dropprior.experiments.uncertainty import VARIANTS, UncertaintySettings


def test_the_comparison_records_every_predictor_and_condition(data_dir, tmp_path,
                                                              capsys) -> None:
    argv = ["uncertainty", "--data-dir", str(data_dir), "--epochs", "1", "--train-size", "600",
            "--samples", "2", "--members", "2", "--results", str(tmp_path)]
    assert main(argv) == 0
    (record,) = record_store("uncertainty", tmp_path).records().values()
    assert sorted(record["metrics"]) == sorted(VARIANTS)
    for result in record["metrics"].values():
        rows = result["rows"]
        assert [r["condition"] for r in rows] == ["mnist", "rotate15", "rotate30", "rotate45",
                                                  "rotate60", "noise"]
        assert all(0.0 <= r["accuracy"] <= 1.0 and r["nll"] > 0 for r in rows)
        assert all(0.0 <= r["auroc_entropy"] <= 1.0 for r in rows[1:])
    # one epoch on 600 images already beats chance for the deterministic net
    assert record["metrics"]["deterministic"]["rows"][0]["accuracy"] > 0.5
    assert main(argv) == 0 and "read:" in capsys.readouterr().out


def test_bad_settings_name_the_value() -> None:
    with pytest.raises(ValueError, match="heavy_law='bernoulli' is not valid"):
        UncertaintySettings(heavy_law="bernoulli")
    with pytest.raises(ValueError, match=r"dropout must be a number in \(0, 1\), got 1.5"):
        UncertaintySettings(dropout=1.5)
    with pytest.raises(ValueError, match="members must be an int >= 1"):
        UncertaintySettings(members=0)
