"""``dropprior resnet / cnn / ptb``: user errors, and the models they build."""

from __future__ import annotations

import pytest
import torch

from dropprior.cli import main
from dropprior.experiments.mnist import (
    CNN_VARIANTS,
    RESNET_VARIANTS,
    MnistSettings,
    build_cnn,
    build_resnet,
)


@pytest.mark.parametrize("command", ["resnet", "cnn", "ptb"])
def test_missing_data_dir_is_exit_2_without_traceback(command, tmp_path, capsys):
    assert main([command, "--data-dir", str(tmp_path / "nowhere")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("dropprior: error:") and "does not exist" in err
    assert "Traceback" not in err


@pytest.mark.parametrize("command", ["resnet", "cnn", "ptb"])
def test_data_dir_without_the_subfolder(command, tmp_path, capsys):
    assert main([command, "--data-dir", str(tmp_path)]) == 2
    assert "subdirectory" in capsys.readouterr().err


@pytest.mark.parametrize("variant", RESNET_VARIANTS)
def test_resnet_variants_build_and_run(variant):
    model = build_resnet(variant, MnistSettings(width=8, blocks=2))
    assert model(torch.randn(3, 784)).shape == (3, 10)


@pytest.mark.parametrize("variant", CNN_VARIANTS)
def test_cnn_variants_build_and_run(variant):
    model = build_cnn(variant, MnistSettings(channels=(2, 3)))
    assert model(torch.randn(3, 784)).shape == (3, 10)


def test_resnet_runs_end_to_end_and_resumes(data_dir, tmp_path, capsys):
    """The command's settings pass its checks, travel through the job store and come back:
    a second run reads the finished job instead of training again."""
    argv = ["resnet", "--data-dir", str(data_dir), "--epochs", "1", "--train-size", "300",
            "--variant", "add", "--out", str(tmp_path)]
    assert main(argv) == 0
    rows = (tmp_path / "resnet.csv").read_text().splitlines()
    assert len(rows) == 2 and rows[1].startswith("add,gaussian,")
    stored = {p: p.stat().st_mtime_ns for p in (tmp_path / "jobs").rglob("*") if p.is_file()}
    assert stored
    assert main(argv) == 0
    assert (tmp_path / "resnet.csv").read_text().splitlines() == rows
    assert {p: p.stat().st_mtime_ns for p in (tmp_path / "jobs").rglob("*")
            if p.is_file()} == stored  # read back, not retrained
