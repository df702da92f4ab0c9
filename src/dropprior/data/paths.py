"""Where the benchmark data lives: ``--data-dir`` or ``$DROPPRIOR_DATA_DIR``."""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["DATA_DIR_ENV", "resolve_data_dir"]

DATA_DIR_ENV = "DROPPRIOR_DATA_DIR"


def resolve_data_dir(path: str | os.PathLike[str] | None = None, subdir: str | None = None) -> Path:
    """The data directory ``path`` (or ``$DROPPRIOR_DATA_DIR``), optionally its ``subdir``.

    Raises:
        FileNotFoundError: naming the directory that was looked for and how to set it.
        TypeError: ``path`` is not a str or path.
    """
    chosen = path if path is not None else os.environ.get(DATA_DIR_ENV)
    if chosen is None:
        raise FileNotFoundError(
            f"no data directory given: pass --data-dir DIR or set ${DATA_DIR_ENV}"
        )
    if not isinstance(chosen, (str, os.PathLike)):
        raise TypeError(f"the data directory must be a path (str or os.PathLike), got {chosen!r}")
    root = Path(chosen)
    if root.exists() and not root.is_dir():
        raise FileNotFoundError(f"data directory {str(root)!r} is a file; give the folder "
                                "holding uci/, mnist/ and ptb/ (or one of them)")
    if not root.is_dir():
        raise FileNotFoundError(f"data directory {str(root)!r} does not exist")
    if subdir is None:
        return root
    # Accept either the data root (holding uci/, mnist/, ptb/) or the subdirectory itself.
    if (root / subdir).is_dir():
        return root / subdir
    if root.name == subdir:
        return root
    raise FileNotFoundError(f"{str(root)!r} has no {subdir!r} subdirectory")
