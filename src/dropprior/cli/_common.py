"""Pieces shared by the subcommands: the user-error type and common options."""

from __future__ import annotations

import argparse
import os
import tempfile
from pathlib import Path

from dropprior.data import paths as data_paths
from dropprior.data.paths import DATA_DIR_ENV

__all__ = ["CLIError", "add_data_dir_option", "resolve_data_dir", "DATA_DIR_ENV",
           "check_output_paths"]

#: Options that name an output folder (created if missing).
OUTPUT_DIRS = ("out", "results", "checkpoint_dir")


class CLIError(Exception):
    """A user error: printed as one line, exit status 2, no traceback."""


def add_data_dir_option(parser: argparse.ArgumentParser) -> None:
    """Add ``--data-dir`` (default: the ``DROPPRIOR_DATA_DIR`` environment variable)."""
    parser.add_argument(
        "--data-dir",
        type=Path,
        default=None,
        help=f"directory holding uci/, mnist/ and ptb/ (default: ${DATA_DIR_ENV})",
    )


def resolve_data_dir(path: Path | str | None, subdir: str | None = None) -> Path:
    """The data directory from ``--data-dir`` or ``$DROPPRIOR_DATA_DIR``; a CLIError if absent."""
    try:
        return data_paths.resolve_data_dir(path, subdir)
    except FileNotFoundError as err:
        raise CLIError(str(err)) from None


def _check_output_path(flag: str, path: Path, what: str) -> None:
    """A CLIError unless ``path`` can be a ``what`` ("directory" or "file"): no file stands in
    the way of a folder it needs."""
    if what == "directory" and path.exists() and not path.is_dir():
        raise CLIError(f"{flag} {str(path)!r} is a file; give a directory (created if missing)")
    if what == "file" and path.is_dir():
        raise CLIError(f"{flag} {str(path)!r} is a directory; give a file name")
    start = path if what == "directory" else path.parent
    for parent in (start, *start.parents):
        if parent.exists():
            if not parent.is_dir():
                raise CLIError(f"{flag} {str(path)!r}: {str(parent)!r} is a file, so no folder "
                               "can be made below it")
            _check_writable(flag, path, parent)
            return


def _check_writable(flag: str, path: Path, folder: Path) -> None:
    """A CLIError unless a folder can be made in ``folder``, the nearest existing folder of
    ``path``: one is made there and removed (permission bits alone do not tell, e.g. for root
    or on /proc)."""
    try:
        os.rmdir(tempfile.mkdtemp(prefix=".dropprior-probe-", dir=folder))
    except OSError as err:
        raise CLIError(f"{flag} {str(path)!r}: nothing can be written in {str(folder)!r} "
                       f"({err.strerror or err}); give a writable place") from None


def check_output_paths(args: argparse.Namespace) -> None:
    """Check, before any work, that a command can write where it will: no file stands in the
    way of the folders of :data:`OUTPUT_DIRS` (or of ``--out`` as a file, where the command
    sets ``out_is_file``), and a folder can be made in their nearest existing folder. A
    CLIError names the option and the path."""
    for dest in OUTPUT_DIRS:
        path = getattr(args, dest, None)
        if isinstance(path, Path):
            is_file = dest == "out" and getattr(args, "out_is_file", False)
            _check_output_path("--" + dest.replace("_", "-"), path,
                               "file" if is_file else "directory")
