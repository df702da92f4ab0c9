"""Every number a subcommand takes is checked before any training: a bad value (a negative
count, a nan or negative rate, scale or step) exits with status 2 and an error that names the
option and quotes the value, instead of running, failing deep inside torch or Pyro, or being
ignored. ``--seed`` takes an int from 0 to torch's largest seed, 2**64 - 1 (the experiments seed
numpy too, which takes no negative seed)."""

from __future__ import annotations

import argparse
import math
import re
import signal
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch
from torch import nn

from dropprior._validation import check_number
from dropprior.cli import build_parser, main

SECONDS = 30  # a check that is missing lets the command train: the alarm stops it


def _numeric_options() -> Iterator[tuple[str, str, type, set[str]]]:
    """(command, option, int or float, every option the command takes), built once."""
    parser = build_parser()
    commands = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    for name, sub in commands.choices.items():
        options = sub.get_default("_options")
        takes = {a.dest for a in sub._actions}
        for dest, spec in (options.specs.items() if options is not None else ()):
            if spec.kind in (int, float):
                yield name, dest, spec.kind, takes


def _bad_values(dest: str, kind: type) -> list[str]:
    if dest == "seed":
        return ["-1", str(2**64)]  # below numpy's seeds, above torch's
    return ["-1"] if kind is int else ["nan", "-1"]


CASES = [pytest.param(name, dest, bad, takes, id=f"{name}--{dest}={bad}")
         for name, dest, kind, takes in _numeric_options()
         for bad in _bad_values(dest, kind)]


def test_the_table_covers_every_command_with_numbers() -> None:
    commands = {case.values[0] for case in CASES}
    assert {"uci", "mcmc", "ptb", "mnist", "conv-resnet", "resnet", "cnn", "uncertainty",
            "selection", "demo", "jensen", "priors", "figure1", "evaluate"} <= commands
    seeded = {case.values[0] for case in CASES if case.values[1] == "seed"}
    assert seeded == commands - {"figure1"}  # every command that draws takes --seed


class _Timeout(Exception):
    pass


def _alarm(signum: int, frame: object) -> None:
    raise _Timeout


@pytest.mark.parametrize(("command", "dest", "bad", "takes"), CASES)
def test_a_bad_number_is_refused_up_front(command: str, dest: str, bad: str, takes: set[str],
                                          data_dir: Path, tmp_path: Path,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    argv = [command, "--" + dest.replace("_", "-"), bad]
    if "data_dir" in takes:
        argv += ["--data-dir", str(data_dir)]
    for out in ("out", "results"):
        if out in takes:
            argv += [f"--{out}", str(tmp_path / out)]
    if command == "jensen":
        argv += ["--dataset", "yacht", "--law", "bernoulli"]
    if command == "evaluate":
        torch.save(nn.Sequential(nn.Flatten(), nn.Linear(784, 10)), tmp_path / "m.pt")
        argv += ["--model", str(tmp_path / "m.pt")]
    previous = signal.signal(signal.SIGALRM, _alarm)
    signal.alarm(SECONDS)
    try:
        status = main(argv)
    except _Timeout:
        pytest.fail(f"{' '.join(argv)} started training: {dest}={bad} was not checked")
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)
    err = capsys.readouterr().err
    assert status == 2, err
    names = rf"(--)?({re.escape(dest)}|{re.escape(dest.replace('_', '-'))})"
    assert re.search(names, err) and re.search(rf"{re.escape(bad)}(\.0)?\b", err), err


def test_check_number_states_the_accepted_range() -> None:
    assert check_number("lr", 3) == 3.0
    assert check_number("keep", 1.0, 0.0, 1.0, high_open=False) == 1.0
    assert check_number("scale", math.inf, 0.0, math.inf, high_open=False) == math.inf
    for value, message in ((math.nan, "lr must be a finite number > 0, got nan"),
                           (0.0, "lr must be a finite number > 0, got 0.0"),
                           (math.inf, "lr must be a finite number > 0, got inf")):
        with pytest.raises(ValueError, match=re.escape(message)):
            check_number("lr", value)
    with pytest.raises(ValueError, match=re.escape("keep must be a number in (0, 1], got 0")):
        check_number("keep", 0, 0.0, 1.0, high_open=False)
    with pytest.raises(ValueError, match=re.escape("std must be a finite number >= 0, got -1")):
        check_number("std", -1, low_open=False)
    with pytest.raises(TypeError, match="lr must be a number, got True"):
        check_number("lr", True)
    with pytest.raises(TypeError, match="lr must be a number, got '0.1'"):
        check_number("lr", "0.1")
