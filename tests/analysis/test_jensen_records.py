"""The Jensen sweep's settings, result record and generated page (``results/jensen/``)."""

from __future__ import annotations

import json
import math

import pytest

from dropprior.cli import main
from dropprior.experiments.jensen import (
    JensenRow,
    JensenSettings,
    jensen_findings,
    record_jensen,
    rows_from_record,
)
from dropprior.experiments.report import build_pages


def _row(path: str, level: float, ep: float, ep_leading: float, hp: float,
         hp_leading: float, rmse: float, n: int = 10, groups: int = 4) -> JensenRow:
    return JensenRow(path=path, second_moment=level, variance=0.1,
                     inverse_square_variance=math.inf if math.isinf(hp) else 2.0,
                     ep_gap=ep * n, ep_stderr=0.01, ep_per_example=ep,
                     ep_leading=ep_leading * n, ep_converges=False, hp_gap=hp * groups,
                     hp_stderr=0.02, hp_per_group=hp, hp_leading=hp_leading * groups,
                     hp_converges=False, n_examples=n, n_groups=groups, test_rmse=rmse)


def test_settings_refuse_bad_values_naming_them() -> None:
    with pytest.raises(ValueError, match="unknown law or path 'laplace'"):
        JensenSettings("energy", ("laplace",))
    with pytest.raises(ValueError, match="each level"):
        JensenSettings("energy", ("rayleigh",), levels=(0.5, -1.0))
    with pytest.raises(ValueError, match="each level"):
        JensenSettings("energy", ("rayleigh",), levels=(math.nan,))
    with pytest.raises(ValueError, match="laws must be a non-empty"):
        JensenSettings("energy", "rayleigh")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="hp_samples must be an int >= 2, got 1"):
        JensenSettings("energy", ("rayleigh",), hp_samples=1)


def test_record_round_trips_infinite_gaps_as_strict_json(tmp_path) -> None:
    rows = [_row("rayleigh", 0.9, 0.1, 0.08, math.inf, math.inf, 0.3),
            _row("log_normal", 0.3, 0.05, 0.04, 3.0, 20.0, 0.3)]
    settings = JensenSettings("energy", ("rayleigh", "log_normal"), levels=(0.9, 0.3))
    path = record_jensen(settings, rows, 1.5, "dropprior jensen", "abc", tmp_path)

    def refuse(name: str) -> float:
        raise AssertionError(f"non-standard JSON constant {name}")

    record = json.loads(path.read_text(), parse_constant=refuse)["record"]
    assert rows_from_record(record) == rows
    assert record["config"]["laws"] == ["rayleigh", "log_normal"]


def test_findings_are_computed_from_the_rows() -> None:
    rows = [_row("rayleigh", 0.9, 0.10, 0.08, math.inf, math.inf, 0.3),
            _row("rayleigh", 0.3, 0.05, 0.045, math.inf, math.inf, 0.3),
            _row("gaussian", 0.9, 0.02, 0.001, math.inf, math.inf, 1.0),
            _row("log_normal", 0.9, 0.10, 0.09, 3.0, 20.0, 0.3),
            _row("log_normal", 0.05, 0.04, 0.035, 12.0, 900.0, 0.3)]
    text = "".join(jensen_findings(rows))
    assert "+∞ in 3 of 5 rows (rayleigh, gaussian)" in text
    # leading/EP over the four learned rows: 0.8, 0.9, 0.9, 0.875
    assert "(test RMSE < 0.9, 4 rows), Prop. 4.1's leading term is 0.8× to 0.9× the EP" in text
    assert "gaussian at E[ξ²] = 0.9: RMSE 1, leading term 0.05× the EP gap" in text
    # finite HP rows: 3 / 0.1 = 30 and 12 / 0.04 = 300
    assert "3 to 12 nats per weight group, 30× to 300× the per-example EP gap" in text
    assert "goes from 20 to 900, the EP gap per example from 0.1 to 0.04" in text


def test_command_writes_the_record_the_page_is_built_from(data_dir, tmp_path, capsys) -> None:
    results = tmp_path / "results"
    code = main(["jensen", "--data-dir", str(data_dir), "--dataset", "yacht", "--law",
                 "rayleigh", "inverse_nakagami", "--levels", "0.5", "--epochs", "1",
                 "--hidden", "8", "--ep-samples", "50", "--hp-samples", "200",
                 "--out", str(tmp_path / "out"), "--results", str(results)])
    assert code == 0
    assert "wrote the result record" in capsys.readouterr().out
    (record_file,) = (results / "jensen").glob("*.json")
    rows = rows_from_record(json.loads(record_file.read_text())["record"])
    assert [r.path for r in rows] == ["rayleigh", "inverse_nakagami_m2"]
    assert math.isinf(rows[0].hp_gap) and math.isfinite(rows[1].hp_gap)
    page = build_pages(tmp_path)[tmp_path / "docs/results/jensen.md"]
    assert "## yacht, split 0: rayleigh, inverse_nakagami" in page
    assert "| rayleigh | 0.5 |" in page and "+∞ in 1 of 2 rows (rayleigh)" in page


@pytest.mark.parametrize(("flag", "value", "message"), [
    ("--ep-samples", "1", "ep_samples must be an int >= 2, got 1"),
    ("--hidden", "0", "hidden must be an int >= 1, got 0"),
    ("--epochs", "-3", "epochs must be an int >= 1, got -3")])
def test_command_rejects_a_bad_count_before_reading_data(tmp_path, capsys, flag, value,
                                                         message) -> None:
    # the data folder does not exist: the settings are refused before it is read
    code = main(["jensen", "--data-dir", str(tmp_path / "absent"), "--dataset", "yacht",
                 "--law", "rayleigh", flag, value, "--out", str(tmp_path / "out")])
    assert code != 0 and message in capsys.readouterr().err
