"""Pairs each noise law with its marginal prior, in the style of torch's ``register_kl``.

Adding a law is one file (the law) plus one registration::

    @register_marginal(MyLaw)
    def _my_marginal(law, sigma0, group_size):
        return MyMarginal(...)

Lookup walks the law's MRO, so a registration for :class:`NoiseLaw` itself serves as the
numerical-quadrature fallback for every law without a closed form.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, TypeVar

from torch import Tensor
from torch.distributions import Distribution

if TYPE_CHECKING:
    from dropprior.noise._base import NoiseLaw

__all__ = ["register_marginal", "marginal_for", "registered_laws", "register_law",
           "law_by_name"]

MarginalFactory = Callable[["NoiseLaw", "float | Tensor", int], Distribution]
_F = TypeVar("_F", bound=MarginalFactory)

_MARGINALS: dict[type, MarginalFactory] = {}
_LAWS: dict[str, type] = {}


def register_marginal(law_type: type) -> Callable[[_F], _F]:
    """Decorator: register ``factory(law, sigma0, group_size) -> Distribution`` for ``law_type``."""

    def decorator(factory: _F) -> _F:
        _MARGINALS[law_type] = factory
        return factory

    return decorator


def marginal_for(law: NoiseLaw, sigma0: float | Tensor, group_size: int) -> Distribution:
    """The registered marginal prior of w = ξ·z for ``law`` (most specific registration wins)."""
    if not isinstance(group_size, int) or isinstance(group_size, bool) or group_size < 1:
        raise ValueError(f"group_size must be a positive int, got {group_size!r}")
    import dropprior.priors  # noqa: F401  (its modules hold the registrations)

    for cls in type(law).__mro__:
        if cls in _MARGINALS:
            return _MARGINALS[cls](law, sigma0, group_size)
    raise NotImplementedError(
        f"no marginal prior is registered for {type(law).__name__}; "
        "register one with dropprior.noise.register_marginal"
    )


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
