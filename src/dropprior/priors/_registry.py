"""Pairs each noise law with its marginal prior, in the style of torch's ``register_kl``: the
registry lives with its consumer, the priors, so the laws import nothing from here.

Adding a law is one file (the law) plus one registration::

    @register_marginal(MyLaw)
    def _my_marginal(law, sigma0, group_size):
        return MyMarginal(...)

Lookup walks the law's MRO, so a registration for :class:`~dropprior.noise.NoiseLaw` itself serves
as the numerical-quadrature fallback for every law without a closed form.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from torch import Tensor
from torch.distributions import Distribution

from dropprior.noise import NoiseLaw

__all__ = ["register_marginal", "marginal_for"]

MarginalFactory = Callable[[NoiseLaw, "float | Tensor", int], Distribution]
_F = TypeVar("_F", bound=MarginalFactory)

_MARGINALS: dict[type, MarginalFactory] = {}


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
    for cls in type(law).__mro__:
        if cls in _MARGINALS:
            return _MARGINALS[cls](law, sigma0, group_size)
    raise NotImplementedError(
        f"no marginal prior is registered for {type(law).__name__}; "
        "register one with dropprior.priors.register_marginal"
    )
