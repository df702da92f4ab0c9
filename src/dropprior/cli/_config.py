"""Options declared once, set by flag or by a TOML config file, with every default in ``--help``.

A subcommand declares its options through :class:`Options`. Each option's argparse default is
``None`` so the command can tell "given on the command line" from "not given"; the resolved value
is, in order of precedence: the flag, the ``--config FILE`` entry, the declared default.

Config files are TOML (``tomllib``, Python ≥ 3.11; on 3.10 the ``tomli`` package if installed).
Keys are the long option names, with ``-`` or ``_``; an unknown key or a value of the wrong type
is a clear error (exit status 2).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dropprior.cli._common import CLIError

__all__ = ["Options", "resolve", "load_toml", "add_settings_options", "settings_from", "adopt",
           "apply_config", "recorded_command", "command_line"]


@dataclass(frozen=True)
class _Spec:
    default: Any
    kind: Callable[[Any], Any] | None
    choices: Sequence[Any] | None
    many: bool
    flag: bool


class Options:
    """The options of one subcommand; adds ``--config`` to ``parser``.

    Example:
        >>> parser = argparse.ArgumentParser()
        >>> opts = Options(parser)
        >>> opts.add("--epochs", default=10, kind=int, help="training epochs")
        >>> resolve(parser.parse_args(["--epochs", "3"]))["epochs"]
        3
    """

    def __init__(self, parser: argparse.ArgumentParser) -> None:
        self.parser = parser
        self.specs: dict[str, _Spec] = {}
        self.required: set[str] = set()
        parser.add_argument(
            "--config", type=Path, default=None, metavar="FILE",
            help="TOML file of settings: keys are the long option names (with - or _); "
            "flags given on the command line override it (default: none)",
        )
        parser.set_defaults(_options=self)

    def add(self, flag: str, *, default: Any, help: str, kind: Callable[[Any], Any] | None = None,
            choices: Sequence[Any] | None = None, many: bool = False, metavar: str | None = None,
            switch: bool = False, shown: str | None = None) -> None:
        """Declare option ``flag`` (``--name``).

        Args:
            default: the value when neither the flag nor the config file sets it.
            help: what it does; ``(default: ...)`` is appended.
            kind: converter for one value (``int``, ``float``, ``Path``, ...).
            choices: accepted values (checked for flags and config entries alike).
            many: takes one or more values (a list).
            switch: a boolean ``--name / --no-name`` switch.
            shown: how ``--help`` shows the default, when ``str(default)`` does not say it.
        """
        dest = flag.lstrip("-").replace("-", "_")
        self.specs[dest] = _Spec(default, kind, choices, many, switch)
        if shown is None:
            shown = (" ".join(map(str, default)) if isinstance(default, (list, tuple))
                     else '""' if default == "" else str(default))
        text = f"{help} (default: {shown})"
        if switch:
            self.parser.add_argument(flag, dest=dest, default=None, help=text,
                                     action=argparse.BooleanOptionalAction)
            return
        self.parser.add_argument(flag, dest=dest, default=None, help=text,
                                 type=kind,  # type: ignore[arg-type]
                                 choices=choices, nargs="+" if many else None, metavar=metavar)


def adopt(parser: argparse.ArgumentParser) -> Options:
    """Give a subcommand whose options were declared with plain ``add_argument`` the
    ``--config FILE`` of :class:`Options`: every option becomes a spec (its default, type,
    choices and arity), its argparse default becomes ``None`` so a given flag can be told from
    an absent one, and a required option may come from the file instead (checked by
    :func:`apply_config`). Call it after the last ``add_argument``."""
    opts = Options(parser)
    for action in parser._actions:
        if not action.option_strings or action.dest in ("help", "config"):
            continue
        switch = isinstance(action, (argparse._StoreTrueAction, argparse._StoreFalseAction,
                                     argparse.BooleanOptionalAction))
        choices = None if action.choices is None else list(action.choices)
        opts.specs[action.dest] = _Spec(action.default, action.type,  # type: ignore[arg-type]
                                        choices, action.nargs in ("+", "*"), switch)
        if action.required:
            opts.required.add(action.dest)
            action.required = False
        action.default = None
    return opts


def apply_config(args: argparse.Namespace) -> argparse.Namespace:
    """Resolve a parsed subcommand's options in place (flag, else ``--config`` entry, else
    default), so a command may read ``args.<name>`` as usual.

    Raises:
        CLIError: a required option given neither as a flag nor in the file.
    """
    options: Options | None = getattr(args, "_options", None)
    if options is None:
        return args
    vars(args).update(resolve(args))
    args._resolved = True
    for dest in sorted(getattr(options, "required", ())):
        if getattr(args, dest) is None:
            raise CLIError(f"--{dest.replace('_', '-')} is required (as a flag or a --config "
                           "entry)")
    return args


def resolve(args: argparse.Namespace) -> dict[str, Any]:
    """The settings of a parsed subcommand: flag, else ``--config`` entry, else default (read
    from ``args`` alone once :func:`apply_config` has resolved them, so the file is read once)."""
    options: Options = args._options
    if getattr(args, "_resolved", False):
        return {dest: getattr(args, dest) for dest in options.specs}
    from_file: dict[str, Any] = {}
    if args.config is not None:
        from_file = _check_file_keys(load_toml(args.config), options, args.config)
    settings: dict[str, Any] = {}
    for dest, spec in options.specs.items():
        value = getattr(args, dest, None)
        if value is None and dest in from_file:
            value = _convert(dest, from_file[dest], spec, args.config)
        settings[dest] = spec.default if value is None else value
    return settings


def load_toml(path: Path) -> dict[str, Any]:
    """Read a TOML file; a clear error if it is missing, malformed, or no TOML reader exists."""
    if sys.version_info >= (3, 11):
        import tomllib as reader
    else:  # pragma: no cover - exercised on Python 3.10 only
        try:
            import tomli as reader
        except ImportError:
            raise CLIError("--config needs Python >= 3.11 or the 'tomli' package "
                           "(pip install tomli)") from None
    path = Path(path)
    if not path.is_file():
        raise CLIError(f"config file {str(path)!r} does not exist")
    try:
        return dict(reader.loads(path.read_text()))
    except reader.TOMLDecodeError as err:
        raise CLIError(f"config file {str(path)!r} is not valid TOML: {err}") from None


def _check_file_keys(data: dict[str, Any], options: Options, path: Path) -> dict[str, Any]:
    out = {}
    for key, value in data.items():
        dest = key.replace("-", "_")
        if dest not in options.specs:
            accepted = sorted(name.replace("_", "-") for name in options.specs)
            raise CLIError(f"config file {str(path)!r}: unknown key {key!r}; "
                           f"accepted keys: {accepted}")
        out[dest] = value
    return out


def _convert(dest: str, value: Any, spec: _Spec, path: Path) -> Any:
    where = f"config file {str(path)!r}, key {dest.replace('_', '-')!r}"
    if spec.flag:
        if not isinstance(value, bool):
            raise CLIError(f"{where}: expected true or false, got {value!r}")
        return value
    if spec.many:
        values = value if isinstance(value, list) else [value]
        return [_one(where, v, spec) for v in values]
    if isinstance(value, list):
        raise CLIError(f"{where}: expected one value, got the list {value!r}")
    return _one(where, value, spec)


def _one(where: str, value: Any, spec: _Spec) -> Any:
    if spec.kind is not None:
        if spec.kind in (int, float) and (isinstance(value, bool)
                                          or not isinstance(value, (int, float))):
            raise CLIError(f"{where}: expected a number, got {value!r}")
        if spec.kind is int and isinstance(value, float) and not value.is_integer():
            raise CLIError(f"{where}: expected an integer, got {value!r}")
        try:
            value = spec.kind(value)
        except (TypeError, ValueError, argparse.ArgumentTypeError) as err:
            raise CLIError(f"{where}: {value!r} is not valid ({err})") from None
    if spec.choices is not None and value not in spec.choices:
        raise CLIError(f"{where}: {value!r} is not valid; expected one of {list(spec.choices)}")
    return value


def add_settings_options(opts: Options, settings_type: type, helps: Mapping[str, str],
                         choices: Mapping[str, Sequence[Any]]) -> None:
    """One option ``--field-name`` per field of the frozen dataclass ``settings_type``, with the
    field's default and type (``choices`` for enumerated fields; a bool field is a
    ``--name / --no-name`` switch)."""
    import dataclasses

    defaults = settings_type()
    for f in dataclasses.fields(settings_type):
        default = getattr(defaults, f.name)
        if isinstance(default, bool):
            opts.add("--" + f.name.replace("_", "-"), default=default, switch=True,
                     help=helps[f.name])
            continue
        opts.add("--" + f.name.replace("_", "-"), default=default,
                 kind=None if f.name in choices else type(default),
                 choices=choices.get(f.name), help=helps[f.name])


def settings_from(values: dict[str, Any], settings_type: type) -> Any:
    """The dataclass ``settings_type`` from resolved option values."""
    import dataclasses

    return settings_type(**{f.name: values[f.name] for f in dataclasses.fields(settings_type)})


def recorded_command(subparsers: Any, name: str, help: str, description: str,
                     settings_type: type, helps: Mapping[str, str],
                     choices: Mapping[str, Sequence[Any]], run: Callable[..., int],
                     data: str | None = None) -> argparse.ArgumentParser:
    """The parser of a command that runs one settings dataclass into a result record: its
    settings as options (with ``--config``), ``--data-dir`` when it reads the ``data`` folder,
    and ``--results``."""
    from dropprior.experiments.records import RESULTS_DIR

    parser = subparsers.add_parser(name, help=help, description=description)
    opts = Options(parser)
    if data is not None:
        opts.add("--data-dir", default=None, kind=Path, metavar="DIR",
                 help=f"data root holding {data}/ (or the {data}/ folder itself)",
                 shown="$DROPPRIOR_DATA_DIR")
    add_settings_options(opts, settings_type, helps, choices)
    parser.add_argument("--results", type=Path, default=RESULTS_DIR,
                        help=f"folder of result records (default: {RESULTS_DIR})")
    parser.set_defaults(func=run)
    return parser


def command_line() -> str:
    """The command as typed, for a record: ``dropprior`` and the quoted arguments."""
    import shlex

    return "dropprior " + " ".join(shlex.quote(a) for a in sys.argv[1:])
