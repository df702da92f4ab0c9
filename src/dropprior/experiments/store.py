"""A result store that survives interruption: one JSON file per finished job.

Each job has a string key. :meth:`ResultStore.put` writes the job's record to a temporary file and
renames it into place (``os.replace`` is atomic on POSIX and Windows), so a run killed at any moment
leaves either the whole record or nothing. A record is written once: a second ``put`` for the same
key is refused, and a rerun of a grid asks :meth:`ResultStore.has` and skips what is finished.

Records validate themselves: a file that is not JSON, lacks ``key`` / ``record``, belongs to
another key, or lacks a field the store requires (``required=``) counts as *not* finished. It is
renamed to ``<file>.corrupt`` (kept for inspection, out of the way of the rerun) with a warning
naming it, so the job is redone. Temporary files older than :data:`STALE_SECONDS` (left by a
killed writer) are removed when the store is opened.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import tempfile
import time
import warnings
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

__all__ = ["ResultStore", "STALE_SECONDS"]

STALE_SECONDS = 600.0
"""Age after which a ``.tmp-*`` file is a killed writer's leftover, not a write in progress."""


class ResultStore:
    """Finished-job records under one directory, one ``<key>.json`` file each.

    Args:
        root: the directory (created if missing).
        required: fields every record must hold to count as finished.

    Example:
        >>> import tempfile
        >>> store = ResultStore(tempfile.mkdtemp())
        >>> store.put("yacht/split-0", {"rmse": 0.7})
        True
        >>> store.has("yacht/split-0"), store.get("yacht/split-0")["rmse"]
        (True, 0.7)
    """

    def __init__(self, root: str | os.PathLike[str], required: tuple[str, ...] = ()) -> None:
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        self.required = tuple(required)
        now = time.time()
        for tmp in self.root.glob(".tmp-*"):
            try:
                if now - tmp.stat().st_mtime > STALE_SECONDS:
                    tmp.unlink()
            except FileNotFoundError:  # another process finished or removed it
                pass

    def path(self, key: str) -> Path:
        """The file that holds (or will hold) the record of ``key``."""
        if not isinstance(key, str) or not key:
            raise ValueError(f"a job key must be a non-empty string, got {key!r}")
        readable = re.sub(r"[^A-Za-z0-9._=-]+", "_", key)[:120]
        digest = hashlib.sha1(key.encode()).hexdigest()[:10]
        return self.root / f"{readable}-{digest}.json"

    def has(self, key: str) -> bool:
        """Whether ``key`` has a finished, valid record (an invalid one is quarantined)."""
        return self._load(self.path(key), key) is not None

    def get(self, key: str) -> dict[str, Any]:
        """The record of ``key``; ``KeyError`` if the job has not finished."""
        record = self._load(self.path(key), key)
        if record is None:
            raise KeyError(f"no finished record for job {key!r} in {str(self.root)!r}")
        return record

    def _load(self, path: Path, key: str | None) -> dict[str, Any] | None:
        """The record in ``path``, or None if there is none; an invalid file is renamed to
        ``.corrupt`` with a warning naming it and the reason."""
        if not path.is_file():
            return None
        try:
            data = json.loads(path.read_text())
            reason = _invalid(data, key, self.required)
        except (OSError, ValueError) as err:
            reason = f"not readable JSON ({err})"
        if reason is None:
            return dict(data["record"])
        target = path.with_name(path.name + ".corrupt")
        os.replace(path, target)
        warnings.warn(f"result record {str(path)!r} is invalid ({reason}); moved to "
                      f"{target.name!r}, and its job will run again", UserWarning, stacklevel=3)
        return None

    def put(self, key: str, record: Mapping[str, Any], replace: bool = False) -> bool:
        """Record ``key`` once, atomically. Returns False (and writes nothing) if it exists,
        unless ``replace`` (for a record that is rewritten as a job progresses)."""
        path = self.path(key)
        if path.exists() and not replace:
            return False
        text = json.dumps({"key": key, "record": dict(record)}, indent=1, sort_keys=True)
        fd, tmp = tempfile.mkstemp(dir=self.root, prefix=".tmp-", suffix=".json")
        try:
            with os.fdopen(fd, "w") as handle:
                handle.write(text)
            os.replace(tmp, path)
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)
        return True

    def remove(self, key: str) -> None:
        """Delete the record of ``key``, if there is one."""
        self.path(key).unlink(missing_ok=True)

    def keys(self) -> list[str]:
        """Keys of every finished record, sorted."""
        return sorted(key for key, _ in self._items())

    def records(self) -> dict[str, dict[str, Any]]:
        """Every finished record, keyed by job key."""
        return dict(self._items())

    def __len__(self) -> int:
        return sum(1 for _ in self.root.glob("*.json"))

    def _items(self) -> Iterator[tuple[str, dict[str, Any]]]:
        for path in sorted(self.root.glob("*.json")):
            if path.name.startswith(".tmp-"):
                continue
            record = self._load(path, None)
            if record is not None:
                yield json.loads(path.read_text())["key"], record


def _invalid(data: Any, key: str | None, required: tuple[str, ...]) -> str | None:
    """Why ``data`` is not a valid record of ``key`` (any key if None), or None."""
    if not isinstance(data, dict) or not isinstance(data.get("record"), dict) \
            or not isinstance(data.get("key"), str):
        return "no 'key' and 'record'"
    if key is not None and data["key"] != key:
        return f"it holds job {data['key']!r}"
    missing = [f for f in required if f not in data["record"]]
    return f"missing {missing}" if missing else None
