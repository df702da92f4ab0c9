"""Result records: one small JSON file per finished job, in a tracked folder.

A record holds what is needed to regenerate and judge a number: the command, the resolved
configuration, the seed, the package versions, the git commit of the code that ran (the dropprior
package's own checkout), the metrics and the seconds the job took. Records live under
``results/<experiment>/`` in the repository (not in the ignored ``runs/``), one file per job key,
written atomically by :class:`ResultStore`, so a rerun skips what is finished and a fresh checkout
resumes where the last run stopped.
"""

from __future__ import annotations

import subprocess
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, field, fields
from pathlib import Path
from typing import Any

from dropprior.experiments.rundir import versions
from dropprior.experiments.store import ResultStore

__all__ = ["added_setting", "checkpoint_file", "key_fields", "make_record", "record_store",
           "git_commit", "run_recorded", "settings_key", "RESULTS_DIR", "PARTIAL"]

RESULTS_DIR = Path("results")
"""The tracked folder of result records, relative to the repository root."""

PARTIAL = "#partial"
"""Suffix of the job key of a run's partial record (see :func:`run_recorded`)."""


def git_commit(cwd: str | Path | None = None) -> str | None:
    """The commit checked out at ``cwd`` (default: the folder of the dropprior package that is
    running, i.e. the code that made the record, wherever the command runs from), with
    ``+dirty`` if files below ``cwd`` have changes: a tracked file changed, or a file that git
    neither tracks nor ignores (a new module the run may have imported); None outside a git
    work tree."""
    where = Path(__file__).resolve().parents[1] if cwd is None else Path(cwd)
    try:
        head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=where, capture_output=True,
                              text=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=normal",
                                "--", "."], cwd=where, capture_output=True, text=True,
                               check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return None
    return head + ("+dirty" if dirty else "")


def make_record(command: str, config: Mapping[str, Any], seed: int,
                metrics: Mapping[str, Any], seconds: float,
                commit: str | None = None) -> dict[str, Any]:
    """A result record (module docstring); ``config`` and ``metrics`` must be JSON-serialisable.
    ``commit`` is the commit the job *started* from (take :func:`git_commit` before running it);
    None reads it now, which is right only for a job that did not outlive a commit.
    """
    return {"command": command, "config": dict(config), "seed": int(seed),
            "versions": versions(), "commit": git_commit() if commit is None else commit,
            "metrics": dict(metrics), "seconds": round(float(seconds), 2)}


def record_store(experiment: str, root: str | Path = RESULTS_DIR) -> ResultStore:
    """The store of ``experiment``'s records, ``<root>/<experiment>/``."""
    if not experiment or "/" in experiment:
        raise ValueError(f"experiment must be a plain folder name, got {experiment!r}")
    return ResultStore(Path(root) / experiment)


_ADDED = "dropprior_added_setting"


def added_setting(default: Any) -> Any:
    """A settings dataclass field added after records were written: :func:`settings_key` leaves
    it out at ``default``, so the earlier records (and checkpoints) keep their keys and are
    still found. ``default`` must be immutable (a str, number, bool or None)."""
    return field(default=default, metadata={_ADDED: True})


def key_fields(settings: Any) -> dict[str, Any]:
    """The fields of a settings dataclass that name its job: every field, an
    :func:`added_setting` only when it differs from its default (what a checkpoint written
    before the field existed holds)."""
    return {f.name: getattr(settings, f.name) for f in fields(settings)
            if not (f.metadata.get(_ADDED) and getattr(settings, f.name) == f.default)}


def settings_key(experiment: str, settings: Any) -> str:
    """The job key of a run: the experiment and its :func:`key_fields`, field by field."""
    return f"{experiment}/" + ",".join(f"{k}={v}" for k, v in key_fields(settings).items())


def checkpoint_file(experiment: str, settings: Any, checkpoint_dir: str | Path | None,
                    root: str | Path | None = None) -> Path | None:
    """The checkpoint file of a run in ``checkpoint_dir`` (None without one), named as its
    record: the readable settings and their digest, with ``.pt``."""
    if checkpoint_dir is None:
        return None
    store = record_store(experiment, RESULTS_DIR if root is None else root)
    return Path(checkpoint_dir) / (store.path(settings_key(experiment, settings)).stem + ".pt")


def run_recorded(experiment: str, settings: Any, command: str,
                 run: Callable[..., Mapping[str, Any]],
                 root: str | Path | None = None,
                 progress: bool = False) -> tuple[dict[str, Any], bool]:
    """The run's record from ``<root>/<experiment>/`` if it is there; else call ``run()`` for
    the metrics and write the record. ``settings`` is the run's settings dataclass (its key and
    config). Returns (record, whether it was run now).

    With ``progress``, ``run`` is called as ``run(report)``: each ``report(metrics)`` (re)writes
    the run's *partial* record (key + :data:`PARTIAL`, its metrics marked ``"partial": True``),
    which stays in the results when the job is stopped before it finishes, and is removed once
    the finished record is written.
    """
    store = record_store(experiment, RESULTS_DIR if root is None else root)
    key = settings_key(experiment, settings)
    if store.has(key):
        return store.get(key), False
    commit, start = git_commit(), time.perf_counter()

    def report(metrics: Mapping[str, Any]) -> None:
        store.put(key + PARTIAL, make_record(command, asdict(settings), settings.seed,
                                             {**metrics, "partial": True},
                                             time.perf_counter() - start, commit), replace=True)

    metrics = run(report) if progress else run()
    record = make_record(command, asdict(settings), settings.seed, metrics,
                         time.perf_counter() - start, commit)
    store.put(key, record)
    store.remove(key + PARTIAL)
    return record, True
