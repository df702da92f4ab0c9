"""A run directory: where a command writes its tables and plots, with what is needed to redo it.

``run.json`` records the command line, the resolved configuration, the seed, the versions of
Python / dropprior / torch / numpy / scipy, the host's platform and CPU model, and
the start, end and duration.
``config.toml`` holds the resolved configuration in a form ``--config`` reads back.
"""

from __future__ import annotations

import json
import os
import platform
import sys
import time
from collections.abc import Mapping, Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

__all__ = ["RunDirectory", "now", "versions"]


def versions() -> dict[str, str]:
    """Versions of the interpreter and of the libraries the results depend on, the host's
    platform and its CPU model (floating-point results, and with them a seeded run's
    trajectory, can differ between CPUs)."""
    import numpy
    import scipy
    import torch

    from dropprior import __version__

    return {
        "python": platform.python_version(),
        "dropprior": __version__,
        "torch": torch.__version__,
        "numpy": numpy.__version__,
        "scipy": scipy.__version__,
        "platform": platform.platform(),
        "cpu": cpu_model(),
    }


def cpu_model() -> str:
    """The CPU's model name (Linux's /proc/cpuinfo, else ``platform.processor()``), or
    "unknown"."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


class RunDirectory:
    """Create ``root`` and record how the run was made; :meth:`finish` adds the timing.

    Args:
        root: the directory (created; may exist, e.g. to resume a grid).
        command: the subcommand name.
        config: the resolved settings (JSON-serialisable values; paths become strings).
        seed: the run's seed.
        argv: the command line (default: ``sys.argv``).
        started: the (commit, ISO time) the run started from, where the directory is made
            after the run (default: the current commit and time).
    """

    def __init__(self, root: str | os.PathLike[str], command: str, config: Mapping[str, Any],
                 seed: int, argv: Sequence[str] | None = None, *,
                 started: tuple[str | None, str] | None = None) -> None:
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        self._start = time.perf_counter()
        commit, started_at = (_commit(), now()) if started is None else started
        self.info: dict[str, Any] = {
            "command": command,
            "argv": list(sys.argv if argv is None else argv),
            "config": _plain(config),
            "seed": int(seed),
            "versions": versions(),
            "started_at": started_at,
            "commit": commit,
        }
        self._write()
        (self.root / "config.toml").write_text(to_toml(self.info["config"]))

    def path(self, name: str) -> Path:
        """A file inside the run directory."""
        return self.root / name

    def finish(self, seconds: float | None = None, **extra: Any) -> float:
        """Record the end time, the duration in seconds (returned; default: since the directory
        was made) and any ``extra`` fields."""
        if seconds is None:
            seconds = time.perf_counter() - self._start
        self.info.update(finished_at=now(), seconds=round(seconds, 3), **_plain(extra))
        self._write()
        return seconds

    def _write(self) -> None:
        (self.root / "run.json").write_text(json.dumps(self.info, indent=2, sort_keys=True))


def to_toml(config: Mapping[str, Any]) -> str:
    """Flat ``key = value`` TOML for strings, numbers, booleans and lists of them (None omitted)."""
    lines = []
    for key, value in sorted(config.items()):
        if value is None:
            continue
        lines.append(f"{key} = {_toml_value(value)}")
    return "\n".join(lines) + "\n"


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    return json.dumps(str(value))


def _plain(config: Mapping[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in config.items():
        if isinstance(value, Path):
            value = str(value)
        elif isinstance(value, (list, tuple)):
            value = [str(v) if isinstance(v, Path) else v for v in value]
        out[key] = value
    return out


def _commit() -> str | None:
    from dropprior.experiments.records import git_commit  # records imports this module

    return git_commit()


def now() -> str:
    """The current UTC time as an ISO string (seconds)."""
    return datetime.now(timezone.utc).isoformat(timespec="seconds")
