"""``dropprior mcmc``: user errors exit 2; a tiny end-to-end run writes its JSON."""

from __future__ import annotations

import json

from dropprior.cli import main


def test_unknown_method_is_a_user_error(tmp_path, capsys):
    assert main(["mcmc", "--data-dir", str(tmp_path), "--methods", "nuts-xx"]) == 2
    assert "unknown method" in capsys.readouterr().err


def test_missing_data_dir_is_a_user_error(tmp_path, capsys):
    assert main(["mcmc", "--data-dir", str(tmp_path / "nope")]) == 2
    assert "does not exist" in capsys.readouterr().err


def test_tiny_run_on_yacht(data_dir, tmp_path):
    out = tmp_path / "r.json"
    status = main(["mcmc", "--data-dir", str(data_dir), "--dataset", "yacht", "--splits", "1",
                   "--hidden", "3", "--epochs", "2", "--samples", "2", "--warmup", "5",
                   "--num-samples", "5", "--max-tree-depth", "3",
                   "--methods", "mc-map,nuts-hp", "--out", str(out)])
    assert status == 0
    result = json.loads(out.read_text())
    assert {r["method"] for r in result["rows"]} == {"mc-map", "nuts-hp"}
    for row in result["rows"]:
        assert row["rmse"] > 0
