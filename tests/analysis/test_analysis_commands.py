"""The ``dropprior figure1`` and ``dropprior jensen`` commands."""

from __future__ import annotations

import csv

import pytest

from dropprior.cli import main


def test_figure1_command_writes_png_svg_csv(tmp_path, capsys):
    assert main(["figure1", "--out", str(tmp_path), "--points", "4"]) == 0
    assert {p.name for p in tmp_path.iterdir()} == {"figure1.png", "figure1.svg", "figure1.csv"}
    with (tmp_path / "figure1.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    nak = [r for r in rows if r["path"] == "inverse_nakagami_m2"]
    # E[ξ²] = 2 at the end of the grid: Ω = 1, Var[ξ⁻²] = Ω²/m = 0.5 (the paper's "≈ 0.5")
    assert float(nak[-1]["second_moment"]) == pytest.approx(2.0)
    assert float(nak[-1]["inverse_square_variance"]) == pytest.approx(0.5)
    assert "wrote PNG" in capsys.readouterr().out


def test_figure1_rejects_bad_points(capsys):
    assert main(["figure1", "--points", "1"]) == 2
    assert "--points must be >= 2" in capsys.readouterr().err


def test_jensen_rejects_unknown_law_and_bad_levels(tmp_path, capsys):
    base = ["jensen", "--data-dir", str(tmp_path), "--dataset", "energy"]
    assert main([*base, "--law", "laplace"]) == 2
    assert "unknown law or path 'laplace'" in capsys.readouterr().err
    assert main([*base, "--law", "rayleigh", "--levels", "0.5,x"]) == 2
    assert "--levels must be comma-separated numbers" in capsys.readouterr().err


def test_jensen_runs_on_a_uci_split(data_dir, tmp_path, capsys):
    code = main(["jensen", "--data-dir", str(data_dir), "--dataset", "yacht", "--law",
                 "rayleigh", "inverse_nakagami", "--levels", "0.5", "--epochs", "1",
                 "--hidden", "8", "--ep-samples", "50", "--hp-samples", "200",
                 "--out", str(tmp_path)])
    assert code == 0
    with (tmp_path / "jensen.csv").open() as handle:
        rows = {r["path"]: r for r in csv.DictReader(handle)}
    assert float(rows["rayleigh"]["hp_gap"]) == float("inf")  # E[ξ⁻²] = ∞
    assert 0 < float(rows["inverse_nakagami_m2"]["hp_gap"]) < float("inf")
    assert float(rows["rayleigh"]["ep_gap"]) > 0
    assert "| law path |" in capsys.readouterr().out
