"""The ``dropprior`` command.

Each subcommand lives in its own module ``dropprior/cli/<name>.py`` (no leading underscore) that
defines ``register(subparsers) -> None``. ``register`` adds one parser with
``subparsers.add_parser(name, help=..., description=...)`` and sets ``func=run`` via
``set_defaults``; ``run(args) -> int`` does the work. Modules are discovered, so adding a command
is one file.

User errors raise :class:`CLIError` (or ``ValueError`` from argument checks, or ``OSError`` for
a path that cannot be read or written): ``main`` prints ``dropprior: error: <message>`` to stderr
and exits with status 2, without a traceback. The output folders (``--out``, ``--results``,
``--checkpoint-dir``) are checked before any work: a file in their place is an error.
"""

from __future__ import annotations

import argparse
import importlib
import pkgutil
import sys
from collections.abc import Sequence

from dropprior.cli._common import CLIError, check_output_paths
from dropprior.cli._config import apply_config

__all__ = ["main", "build_parser", "CLIError"]


def build_parser() -> argparse.ArgumentParser:
    """The argument parser with every discovered subcommand registered."""
    parser = argparse.ArgumentParser(
        prog="dropprior",
        description="Dropout as Gaussian scale-mixture priors: noise laws, structured layers, "
        "training, MCMC and the paper's analysis, from the command line.",
    )
    parser.add_argument("--version", action="version", version=_version())
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    import dropprior.cli as package

    for info in sorted(pkgutil.iter_modules(package.__path__), key=lambda m: m.name):
        if info.name.startswith("_"):
            continue
        module = importlib.import_module(f"dropprior.cli.{info.name}")
        module.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``dropprior`` console script; returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if getattr(args, "func", None) is None:
        parser.print_help()
        return 2
    try:
        args = apply_config(args)
        check_output_paths(args)
        return int(args.func(args) or 0)
    except (CLIError, OSError, ValueError) as err:
        print(f"dropprior: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("dropprior: interrupted", file=sys.stderr)
        return 130


def _version() -> str:
    from dropprior import __version__

    return f"dropprior {__version__}"


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
