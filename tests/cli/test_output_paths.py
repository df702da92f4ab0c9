"""The folders a command writes to (``--out``, ``--results``, ``--checkpoint-dir``) and
``mcmc``'s ``--out`` file are checked before any work: a file standing where a folder must be
(or a folder where the file must be), or a place where nothing can be written, exits with
status 2 and names the option and the path, instead of a traceback from ``mkdir`` (or, for
``mcmc``, after all the sampling)."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from dropprior.cli import build_parser, main
from dropprior.cli._common import OUTPUT_DIRS

REQUIRED = {"jensen": ["--dataset", "yacht", "--law", "bernoulli"]}


def _cases() -> list[tuple[str, str]]:
    parser = build_parser()
    commands = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    out = []
    for name, sub in commands.choices.items():
        dests = {a.dest for a in sub._actions}
        out += [(name, dest) for dest in OUTPUT_DIRS if dest in dests]
    return out


CASES = _cases()


def test_every_command_that_writes_is_covered() -> None:
    assert {name for name, _ in CASES} >= {"uci", "mcmc", "ptb", "mnist", "conv-resnet",
                                            "resnet", "cnn", "uncertainty", "selection",
                                            "demo", "jensen", "figure1", "evaluate"}


@pytest.mark.parametrize(("command", "dest"), CASES, ids=[f"{c}--{d}" for c, d in CASES])
def test_a_file_in_the_way_is_a_user_error(command: str, dest: str, tmp_path: Path,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    blocker = tmp_path / "taken"
    blocker.write_text("")
    flag = "--" + dest.replace("_", "-")
    is_file = command == "mcmc" and dest == "out"
    target = blocker / "run.json" if is_file else blocker
    argv = [command, flag, str(target), *REQUIRED.get(command, [])]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert f"{flag} {str(target)!r}" in err and "file" in err, err
    assert "Traceback" not in err
    nested = [command, flag, str(blocker / "sub" / "deeper"), *REQUIRED.get(command, [])]
    assert main(nested) == 2
    assert f"{str(blocker)!r} is a file, so no folder can be made below it" in \
        capsys.readouterr().err


PROC = Path("/proc")


@pytest.mark.skipif(not (PROC / "self").exists(), reason="needs Linux's /proc, where no folder "
                    "can be made (permission bits do not stop root)")
@pytest.mark.parametrize(("command", "dest"), CASES, ids=[f"{c}--{d}" for c, d in CASES])
def test_a_place_where_nothing_can_be_written_is_a_user_error(
        command: str, dest: str, capsys: pytest.CaptureFixture[str]) -> None:
    flag = "--" + dest.replace("_", "-")
    target = PROC / "dropprior-test" / ("run.json" if command == "mcmc" and dest == "out"
                                        else "run")
    assert main([command, flag, str(target), *REQUIRED.get(command, [])]) == 2
    err = capsys.readouterr().err
    assert f"{flag} {str(target)!r}: nothing can be written in '/proc'" in err, err
    assert "Traceback" not in err


def test_a_writable_place_is_probed_and_left_as_it_was(tmp_path: Path) -> None:
    from dropprior.cli._common import _check_output_path

    before = sorted(tmp_path.iterdir())
    _check_output_path("--out", tmp_path / "new" / "run", "directory")
    assert sorted(tmp_path.iterdir()) == before


def test_mcmc_out_must_be_a_file_name(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["mcmc", "--out", str(tmp_path)]) == 2
    assert f"--out {str(tmp_path)!r} is a directory; give a file name" in capsys.readouterr().err


def test_an_unwritable_path_is_one_line_not_a_traceback(tmp_path: Path, monkeypatch,
                                                        capsys: pytest.CaptureFixture[str]
                                                        ) -> None:
    """Any other OSError (permissions, a read-only disk) is reported the same way."""
    def refuse(*args: object, **kwargs: object) -> None:
        raise PermissionError(13, "Permission denied", str(tmp_path / "figs"))

    monkeypatch.setattr(Path, "mkdir", refuse)
    assert main(["figure1", "--out", str(tmp_path / "figs")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("dropprior: error: [Errno 13] Permission denied") and "figs" in err
