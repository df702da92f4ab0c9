"""End to end: VI with a log-uniform hyperprior switches off what a linear target does not need
(12 inputs of which 3 matter, a 6-block ResNet MLP), and the pruned model keeps its accuracy."""

from __future__ import annotations

import pytest

from dropprior.cli import main
from dropprior.experiments.selection import SelectionSettings, run_and_record


@pytest.mark.slow
def test_vi_log_uniform_keeps_the_relevant_inputs_and_switches_off_the_rest(tmp_path) -> None:
    settings = SelectionSettings()  # vi, log_uniform, 1000 epochs
    record, fresh = run_and_record(settings, "test", tmp_path)
    m = record["metrics"]
    assert fresh
    assert m["inputs_kept"] == [0, 1, 2]
    assert len(m["blocks_kept"]) <= 2  # "most of the 6 blocks" off
    assert min(m["input_scales"][:3]) > 10 * max(m["input_scales"][3:])
    # the pruned network still fits the target to its noise level (0.1)
    assert m["test_rmse_pruned"] < 0.12
    assert m["test_rmse_pruned"] < m["test_rmse"] * 1.05
    # a rerun reads the record instead of training again
    again, fresh = run_and_record(settings, "test", tmp_path)
    assert not fresh and again == record


def test_bad_settings_name_the_value() -> None:
    with pytest.raises(ValueError, match=r"inference='laplace' is not valid"):
        SelectionSettings(inference="laplace")
    with pytest.raises(ValueError, match="relevant=5 exceeds inputs=4"):
        SelectionSettings(inputs=4, relevant=5)
    with pytest.raises(ValueError, match="blocks must be an int >= 0, got -1"):
        SelectionSettings(blocks=-1)


def test_command_rejects_an_unknown_hyperprior(capsys) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["selection", "--hyperprior", "horseshoe"])
    assert exit_info.value.code == 2
    assert "invalid choice: 'horseshoe'" in capsys.readouterr().err
