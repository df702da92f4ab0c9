"""Pieces shared by the subcommands: the user-error type and common options."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

__all__ = ["CLIError", "add_data_dir_option", "resolve_data_dir", "DATA_DIR_ENV"]

DATA_DIR_ENV = "DROPPRIOR_DATA_DIR"


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


def resolve_data_dir(path: Path | str | None) -> Path:
    """The data directory from ``--data-dir`` or ``$DROPPRIOR_DATA_DIR``; a clear error if absent."""
    chosen = path if path is not None else os.environ.get(DATA_DIR_ENV)
    if chosen is None:
        raise CLIError(f"no data directory: pass --data-dir DIR or set ${DATA_DIR_ENV}")
    chosen = Path(chosen)
    if not chosen.is_dir():
        raise CLIError(f"data directory {str(chosen)!r} does not exist")
    return chosen
