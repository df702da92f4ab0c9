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
                   "--sgld-warmup", "20", "--sgld-samples", "5", "--sgld-thin", "2",
                   "--methods", "mc-map,nuts-hp,sgld-ep", "--out", str(out)])
    assert status == 0
    result = json.loads(out.read_text())
    assert {r["method"] for r in result["rows"]} == {"mc-map", "nuts-hp", "sgld-ep"}
    for row in result["rows"]:
        assert row["rmse"] > 0
    nuts = next(r for r in result["rows"] if r["method"] == "nuts-hp")
    assert nuts["rhat_train_ll"] > 0 and nuts["ess_train_ll"] > 0 and nuts["rhat_precision"] > 0


def test_bad_sgld_step_size_is_a_user_error(tmp_path, capsys):
    assert main(["mcmc", "--data-dir", str(tmp_path), "--sgld-step-size", "0"]) == 2
    assert "sgld_step_size must be a finite number > 0, got 0.0" in capsys.readouterr().err
    # these ran every MAP fit before NUTS refused them
    assert main(["mcmc", "--data-dir", str(tmp_path), "--warmup", "-1"]) == 2
    assert "warmup must be an int >= 0, got -1" in capsys.readouterr().err
    assert main(["mcmc", "--data-dir", str(tmp_path), "--max-tree-depth", "0"]) == 2
    assert "max_tree_depth must be an int >= 1, got 0" in capsys.readouterr().err
    assert main(["mcmc", "--data-dir", str(tmp_path), "--p", "nan"]) == 2
    assert "p must be a number in (0, 1), got nan" in capsys.readouterr().err
