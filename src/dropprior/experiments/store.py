"""A result store that survives interruption: one JSON file per finished job.

Each job has a string key. :meth:`ResultStore.put` writes the job's record to a temporary file and
renames it into place (``os.replace`` is atomic on POSIX and Windows), so a run killed at any moment
leaves either the whole record or nothing. A record is written once: a second ``put`` for the same
key is refused, and a rerun of a grid asks :meth:`ResultStore.has` and skips what is finished.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import tempfile
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

__all__ = ["ResultStore"]


class ResultStore:
    """Finished-job records under one directory, one ``<key>.json`` file each.

    Args:
        root: the directory (created if missing).

    Example:
        >>> import tempfile
        >>> store = ResultStore(tempfile.mkdtemp())
        >>> store.put("yacht/split-0", {"rmse": 0.7})
        True
        >>> store.has("yacht/split-0"), store.get("yacht/split-0")["rmse"]
        (True, 0.7)
    """

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)

    def path(self, key: str) -> Path:
        """The file that holds (or will hold) the record of ``key``."""
        if not isinstance(key, str) or not key:
            raise ValueError(f"a job key must be a non-empty string, got {key!r}")
        readable = re.sub(r"[^A-Za-z0-9._=-]+", "_", key)[:120]
        digest = hashlib.sha1(key.encode()).hexdigest()[:10]
        return self.root / f"{readable}-{digest}.json"

    def has(self, key: str) -> bool:
        """Whether ``key`` has a finished record."""
        return self.path(key).is_file()

    def get(self, key: str) -> dict[str, Any]:
        """The record of ``key``; ``KeyError`` if the job has not finished."""
        path = self.path(key)
        if not path.is_file():
            raise KeyError(f"no finished record for job {key!r} in {str(self.root)!r}")
        record = json.loads(path.read_text())
        return dict(record["record"])

    def put(self, key: str, record: Mapping[str, Any]) -> bool:
        """Record ``key`` once, atomically. Returns False (and writes nothing) if it exists."""
        path = self.path(key)
        if path.exists():
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
            data = json.loads(path.read_text())
            yield data["key"], dict(data["record"])
