"""The contract every noise law of the dropout family satisfies.

A noise law is the distribution p(ξ) of a multiplicative scale ξ ≥ 0 (or ξ ∈ R for Gaussian noise).
Multiplying a network's inputs to a weight group by ξ is the expanded parametrization (EP) of the
Gaussian scale-mixture prior w = ξ·z, z ~ N(0, σ0²) (paper Section 3, Table 1).

Every law is a :class:`torch.distributions.Distribution` and adds:

* exact moments ``mean``, ``variance``, ``second_moment`` (E[ξ²]), ``inverse_square_mean``
  (E[ξ⁻²]) and ``inverse_square_variance`` (Var[ξ⁻²]), as tensors, ``inf`` where the moment does
  not exist, never ``nan``;
* ``sample`` / ``rsample`` that take an optional ``torch.Generator``;
* ``variance_prior()``: the distribution of ξ²;
* ``marginal(sigma0, group_size=1)``: the marginal prior on w = ξ·z, looked up in the registry;
* ``to(device, dtype)``: the same law with its parameters moved, for layers.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor
from torch.distributions import Distribution, PowerTransform

from dropprior._validation import as_param, check_float_dtype, check_generator

__all__ = ["NoiseLaw"]

SampleShape = torch.Size | Sequence[int] | int


def sample_size(sample_shape: SampleShape) -> torch.Size:
    """``sample_shape`` as a ``torch.Size`` (an int ``n`` means ``(n,)``); a TypeError for
    anything but ints, a ValueError for a negative size."""
    if isinstance(sample_shape, bool):
        raise TypeError(f"sample_shape must be a tuple of ints or an int, got {sample_shape!r}")
    if isinstance(sample_shape, int):
        size = torch.Size((sample_shape,))
    else:
        try:
            size = torch.Size(sample_shape)
        except TypeError:
            raise TypeError(f"sample_shape must be a torch.Size, a tuple of ints or an int, got "
                            f"{sample_shape!r}") from None
    if any(n < 0 for n in size):
        raise ValueError(f"sample_shape must hold sizes >= 0, got {sample_shape!r}")
    return size


def broadcast_params(*values: float | Tensor) -> tuple[Tensor, ...]:
    """Law parameters as floating tensors of one promoted dtype, broadcast to one shape."""
    tensors = [as_param(v) for v in values]
    dtype = tensors[0].dtype
    for t in tensors[1:]:
        dtype = torch.promote_types(dtype, t.dtype)
    try:
        return tuple(torch.broadcast_tensors(*(t.to(dtype) for t in tensors)))
    except RuntimeError:
        shapes = ", ".join(str(tuple(t.shape)) for t in tensors)
        raise ValueError(f"the law's parameters must broadcast to one shape, got shapes {shapes}"
                         ) from None


def inf_like(t: Tensor) -> Tensor:
    """A tensor of ``+inf`` with the shape, dtype and device of ``t``."""
    return torch.full_like(t, float("inf"))


def _checking_generator(fn: Any) -> Any:
    @functools.wraps(fn)
    def wrapper(self: Any, sample_shape: Any = (), generator: Any = None, *args: Any,
                **kwargs: Any) -> Any:
        check_generator(generator)
        sample_size(sample_shape)  # a clear error for a bad shape, before the law's own code
        return fn(self, sample_shape, generator, *args, **kwargs)

    wrapper._checks_generator = True  # type: ignore[attr-defined]
    return wrapper


class NoiseLaw(Distribution):
    """Abstract base of every multiplicative-noise law ξ.

    Subclasses declare ``arg_constraints`` (whose keys are also the constructor's keyword
    arguments and tensor attributes), ``support`` and ``has_rsample``, and implement the five
    moment properties, ``sample``/``rsample`` with a ``generator`` argument, and
    ``variance_prior``.
    """

    # Whether the law is discrete (Bernoulli): MCMC samplers that need gradients refuse these.
    is_discrete: bool = False

    def __init_subclass__(cls, **kwargs: Any) -> None:
        """Every law's ``sample`` and ``rsample`` check their ``generator`` first, so a wrong one
        is named here rather than in a dump of ``torch.rand``'s signatures."""
        super().__init_subclass__(**kwargs)
        for name in ("sample", "rsample"):
            fn = cls.__dict__.get(name)
            if fn is not None and not getattr(fn, "_checks_generator", False):
                setattr(cls, name, _checking_generator(fn))

    # ---- exact moments -------------------------------------------------------------------
    @property
    def mean(self) -> Tensor:  # E[ξ]
        raise NotImplementedError

    @property
    def variance(self) -> Tensor:  # Var[ξ]
        raise NotImplementedError

    @property
    def second_moment(self) -> Tensor:
        """E[ξ²], ``inf`` where it does not exist."""
        raise NotImplementedError

    @property
    def inverse_square_mean(self) -> Tensor:
        """E[ξ⁻²], ``inf`` where it does not exist (any law with mass or density at 0)."""
        raise NotImplementedError

    @property
    def inverse_square_variance(self) -> Tensor:
        """Var[ξ⁻²], ``inf`` where it does not exist."""
        raise NotImplementedError

    # ---- densities -----------------------------------------------------------------------
    def _torch_law(self) -> Distribution:
        """The same law composed from ``torch.distributions`` (used for ``log_prob``)."""
        raise NotImplementedError

    def _as_value(self, value: Tensor | float) -> Tensor:
        """``value`` as a tensor of the parameters' dtype and device."""
        ref = self._param_like()
        return torch.as_tensor(value, dtype=ref.dtype, device=ref.device)

    def _cdf_value(self, value: Tensor | float) -> Tensor:
        """``value`` as a tensor of the parameters' dtype and device, for ``cdf``; a ValueError
        if it holds nan (P(ξ ≤ nan) is no probability). :meth:`log_prob` reads nan as outside
        the support instead (``-inf``), so that a sampler's trajectory that produced one is
        rejected, not crashed."""
        value = self._as_value(value)
        if bool(torch.isnan(value).any()):
            raise ValueError(f"the value holds {int(torch.isnan(value).sum())} nan(s); "
                             f"{type(self).__name__}.cdf takes real numbers (±inf included)")
        return value

    def _icdf_value(self, value: Tensor | float) -> Tensor:
        """``value`` as a tensor of the parameters' dtype and device, for ``icdf``; a ValueError
        naming the first entry that is no probability (nan, or outside [0, 1])."""
        value = self._as_value(value)
        bad = ~((value >= 0) & (value <= 1))  # nan compares False: bad
        if bool(bad.any()):
            first = float(value[bad].flatten()[0])
            raise ValueError(f"{type(self).__name__}.icdf takes probabilities in [0, 1]; got "
                             f"{first:.6g} ({int(bad.sum())} of {value.numel()} value(s) outside)")
        return value

    def icdf(self, value: Tensor) -> Tensor:
        """The quantile function F⁻¹(q) = inf{x : F(x) ≥ q} for q in [0, 1]: the support's
        lower end at q = 0, its upper end (``inf`` for an unbounded law) at q = 1."""
        raise NotImplementedError(f"{type(self).__name__} has no icdf")

    def log_prob(self, value: Tensor) -> Tensor:
        """log p(ξ) from the torch composition; ``-inf`` outside the support and at nan (never
        nan)."""
        value = self._as_value(value)
        support = self.support
        assert support is not None  # every NoiseLaw declares its support
        inside = support.check(value) & torch.isfinite(value)  # no density at ±inf either
        lp = self._torch_law().log_prob(torch.where(inside, value, self._inside_point()))
        return torch.where(inside, lp, torch.full_like(lp, -float("inf")))

    def _inside_point(self) -> Tensor:
        """A point inside the support, substituted for outside values before ``log_prob`` so
        that neither the value nor its gradient becomes nan there."""
        raise NotImplementedError

    def _param_like(self) -> Tensor:
        """The first parameter: sets the dtype and device of draws and moments."""
        return next(iter(self.params().values()))

    def _power(self, exponent: float) -> PowerTransform:
        """``PowerTransform(exponent)`` with the exponent on the parameters' dtype and device."""
        return PowerTransform(self._param_like().new_tensor(exponent))

    def _empty(self, sample_shape: SampleShape) -> Tensor:
        """A fresh uninitialised tensor of the extended sample shape, dtype and device."""
        ref = self._param_like()
        shape = self._extended_shape(sample_size(sample_shape))
        return torch.empty(shape, dtype=ref.dtype, device=ref.device)

    # ---- replayable draws (used by the noise layers' backward) ---------------------------
    def sample_with_record(self, sample_shape: SampleShape = (),
                           generator: torch.Generator | None = None
                           ) -> tuple[Tensor, tuple[Tensor, ...]]:
        """A draw of ``sample(sample_shape, generator)`` and its *record*: the tensors that,
        with the generator state from before the draw, let :meth:`replay` rebuild it exactly.

        The default record is empty (``replay`` draws again). Laws whose sampler rejects
        proposals (the gamma-based laws) record the few entries a replay of the proposals alone
        would get wrong, so that backward redraws only the proposals."""
        return self.sample(sample_shape, generator), ()  # type: ignore[call-arg, arg-type]

    def replay(self, sample_shape: SampleShape, generator: torch.Generator | None,
               record: tuple[Tensor, ...]) -> Tensor:
        """The draw :meth:`sample_with_record` made, again, from ``generator`` in the state it
        had before that draw and that draw's ``record``."""
        return self.sample(sample_shape, generator)  # type: ignore[call-arg, arg-type]

    # ---- derived distributions -----------------------------------------------------------
    def variance_prior(self) -> Distribution:
        """The distribution of ξ², the prior on the Gaussian's variance scale."""
        raise NotImplementedError

    def marginal(self, sigma0: float | Tensor = 1.0, group_size: int = 1) -> Distribution:
        """The marginal prior of w = ξ·z, z ~ N(0, σ0² I_D), for a group of ``group_size`` = D
        weights sharing one ξ: :func:`dropprior.priors.marginal_for` (the registry lives with the
        priors; this convenience imports them when called)."""
        from dropprior.priors import marginal_for

        return marginal_for(self, sigma0, group_size)

    # ---- parameters ----------------------------------------------------------------------
    def params(self) -> dict[str, Tensor]:
        """The law's parameters, keyed as the constructor's keyword arguments."""
        return {name: getattr(self, name) for name in self.arg_constraints}

    def to(self, device: torch.device | str | None = None,
           dtype: torch.dtype | None = None) -> NoiseLaw:
        """The same law with every parameter moved to ``device`` / ``dtype`` (a floating-point
        dtype: an integer one would round the parameters)."""
        check_float_dtype(dtype)
        moved = {k: v.to(device=device, dtype=dtype) for k, v in self.params().items()}
        return type(self)(**moved, validate_args=False)  # type: ignore[arg-type]

    def expand(self, batch_shape: Any, _instance: Any = None) -> NoiseLaw:
        batch_shape = torch.Size(batch_shape)
        expanded = {k: v.expand(batch_shape) for k, v in self.params().items()}
        return type(self)(**expanded, validate_args=False)  # type: ignore[arg-type]

    def __repr__(self) -> str:
        def fmt(v: Tensor) -> str:
            return f"{v.item():.4g}" if v.numel() == 1 else f"tensor(shape={tuple(v.shape)})"

        args = ", ".join(f"{k}={fmt(v)}" for k, v in self.params().items())
        return f"{type(self).__name__}({args})"
