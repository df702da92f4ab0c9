"""Every command takes ``--config FILE``, including those declared with plain add_argument."""

from __future__ import annotations

import argparse

from dropprior.cli import build_parser, main


def _subparsers() -> dict[str, argparse.ArgumentParser]:
    parser = build_parser()
    action = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return dict(action.choices)


def test_every_command_has_config() -> None:
    missing = [name for name, sub in _subparsers().items()
               if not any("--config" in a.option_strings for a in sub._actions)]
    assert not missing, missing


def test_an_adopted_command_reads_its_config_and_flags_override_it(tmp_path, capsys) -> None:
    config = tmp_path / "figure1.toml"
    config.write_text(f'out = "{tmp_path / "from_file"}"\npoints = 5\nxscale = "linear"\n')
    assert main(["figure1", "--config", str(config)]) == 0
    assert (tmp_path / "from_file" / "figure1.csv").is_file()
    rows = (tmp_path / "from_file" / "figure1.csv").read_text().splitlines()
    assert main(["figure1", "--config", str(config), "--out", str(tmp_path / "flag")]) == 0
    assert (tmp_path / "flag" / "figure1.csv").read_text().splitlines() == rows
    config.write_text("points = 'many'\n")
    assert main(["figure1", "--config", str(config)]) == 2
    assert "expected a number, got 'many'" in capsys.readouterr().err


def test_a_required_option_may_come_from_the_file_but_must_come(tmp_path, capsys) -> None:
    assert main(["jensen", "--law", "bernoulli"]) == 2
    assert "--dataset is required (as a flag or a --config entry)" in capsys.readouterr().err
    config = tmp_path / "jensen.toml"
    config.write_text("unknown = 1\n")
    assert main(["jensen", "--config", str(config)]) == 2
    assert "unknown key 'unknown'" in capsys.readouterr().err


def test_a_command_that_resolves_its_settings_reads_the_file_once(tiny_uci, tmp_path,
                                                                  monkeypatch) -> None:
    """main resolves the options (flag, else file, else default) before the command runs; the
    command's own resolve then reads them from the namespace, not the file again."""
    from dropprior.cli import _config

    reads = []
    real = _config.load_toml
    monkeypatch.setattr(_config, "load_toml", lambda path: reads.append(path) or real(path))
    config = tmp_path / "uci.toml"
    config.write_text(f'data-dir = "{tiny_uci}"\ndataset = ["tiny"]\nsplits = [0]\nepochs = 2\n'
                      f'test-samples = 5\nvalidation-samples = 5\nout = "{tmp_path / "run"}"\n'
                      "progress = false\n")
    assert main(["uci", "--config", str(config), "--lr", "0.002"]) == 0
    assert reads == [config]
    recorded = (tmp_path / "run" / "config.toml").read_text()
    assert "epochs = 2" in recorded and "lr = 0.002" in recorded  # file and flag both applied
