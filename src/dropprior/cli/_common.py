"""Pieces shared by the subcommands: the user-error type and common options."""

from __future__ import annotations

import argparse
from pathlib import Path

from dropprior.data import paths as data_paths
from dropprior.data.paths import DATA_DIR_ENV

__all__ = ["CLIError", "add_data_dir_option", "resolve_data_dir", "DATA_DIR_ENV"]


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
