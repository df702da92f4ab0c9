"""Noise laws by name: the registry the CLI and ``match_dropout`` read (the pairing of each law
with its marginal prior lives with the priors, in :mod:`dropprior.priors`)."""

from __future__ import annotations

from collections.abc import Callable

__all__ = ["registered_laws", "register_law", "law_by_name"]

_LAWS: dict[str, type] = {}



def register_law(name: str) -> Callable[[type], type]:
    """Class decorator: make a law constructible by name (CLI, ``match_dropout``)."""

    def decorator(cls: type) -> type:
        _LAWS[name] = cls
        return cls

    return decorator


def registered_laws() -> dict[str, type]:
    """Every registered noise law, keyed by its short name (e.g. ``"bernoulli"``)."""
    return dict(_LAWS)


def law_by_name(name: str) -> type:
    """The law class registered as ``name``; a clear error lists the valid names."""
    try:
        return _LAWS[name]
    except KeyError:
        raise ValueError(
            f"unknown noise law {name!r}; expected one of {sorted(_LAWS)}"
        ) from None
