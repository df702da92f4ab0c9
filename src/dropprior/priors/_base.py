r"""What every marginal prior of w = ξ·z shares.

A marginal is the law of a group w ∈ R^D of D = ``group_size`` weights that share one scale:

.. math:: ξ \sim p(ξ),\quad z \sim N(0, σ_0^2 I_D),\quad w = ξ z,\qquad
          p(w) = \int N(w; 0, σ_0^2 ξ^2 I_D)\, p(ξ)\, dξ.

It keeps the noise law and σ0 it came from (``law``, ``sigma0``, ``group_size``), samples
hierarchically (ξ, then z, with an optional ``generator``; ``rsample`` when the law has one), and
validates every ``w`` it is given: a tensor without nan whose trailing dimension is D when D > 1.
Subclasses implement ``_log_prob(w)`` (and ``_cdf(w)`` for D = 1) on validated float64 input.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor
from torch.distributions import Distribution, constraints

from dropprior._validation import as_param, check_positive
from dropprior.noise import NoiseLaw, SampleShape, sample_size
from dropprior.priors._quadrature import MixingDensity, log_gaussian_mixture

__all__ = ["ScaleMixture"]


class ScaleMixture(Distribution):
    """Abstract base of the marginal priors p(w) of w = ξ·z, z ~ N(0, σ0² I_D).

    Args:
        law: the noise law p(ξ).
        sigma0: σ0 > 0, the standard deviation of the EP weights z (float or tensor).
        group_size: D, the number of weights sharing one ξ (a positive int).

    Shape:
        ``batch_shape`` broadcasts the law's batch shape with ``sigma0``'s shape;
        ``event_shape`` is ``()`` for D = 1 and ``(D,)`` otherwise. ``log_prob(w)`` takes
        ``w`` of shape ``(..., D)`` (``(...)`` for D = 1) and returns shape ``(...)``.
    """

    arg_constraints: dict[str, constraints.Constraint] = {}

    def __init__(self, law: NoiseLaw, sigma0: float | Tensor = 1.0, group_size: int = 1,
                 validate_args: bool | None = None) -> None:
        if not isinstance(law, NoiseLaw):
            raise TypeError(f"law must be a dropprior.noise.NoiseLaw, got {law!r}")
        if not isinstance(group_size, int) or isinstance(group_size, bool) or group_size < 1:
            raise ValueError(f"group_size must be a positive int, got {group_size!r}")
        self.law = law
        self.sigma0 = check_positive("sigma0", as_param(sigma0))
        self.group_size = group_size
        batch_shape = torch.broadcast_shapes(law.batch_shape, self.sigma0.shape)
        event_shape = torch.Size() if group_size == 1 else torch.Size((group_size,))
        super().__init__(batch_shape, event_shape, validate_args=False)

    @classmethod
    def from_law(cls, law: NoiseLaw, sigma0: float | Tensor = 1.0,
                 group_size: int = 1) -> ScaleMixture:
        """The marginal of ``law`` at ``sigma0``: what ``law.marginal(sigma0, group_size)`` does."""
        obj = cls.__new__(cls)
        ScaleMixture.__init__(obj, law, sigma0, group_size)
        obj._check_law()
        return obj

    def _check_law(self) -> None:
        """Raise if ``self.law`` is not a law this marginal has a formula for."""

    @property
    def support(self) -> constraints.Constraint:  # type: ignore[override]
        return constraints.real if self.group_size == 1 else constraints.real_vector

    @property
    def has_rsample(self) -> bool:  # type: ignore[override]
        return bool(self.law.has_rsample)

    @property
    def variance(self) -> Tensor:
        """Var[w_j] = σ0² E[ξ²] per coordinate, ``inf`` where E[ξ²] is infinite."""
        var = self.sigma0.square() * self.law.second_moment
        var = var.expand(self.batch_shape)
        return var if self.group_size == 1 else var[..., None].expand(self._extended_shape())

    # ---- sampling -------------------------------------------------------------------------
    def _draw(self, sample_shape: SampleShape, generator: torch.Generator | None,
              reparametrized: bool) -> Tensor:
        shape = sample_size(sample_shape)
        law = self.law.expand(self.batch_shape) if self.law.batch_shape != self.batch_shape \
            else self.law
        if reparametrized:
            xi = law.rsample(shape, generator=generator)  # type: ignore[call-arg]
        else:
            xi = law.sample(shape, generator=generator)  # type: ignore[call-arg]
        z = torch.randn(self._extended_shape(shape), dtype=xi.dtype, device=xi.device,
                        generator=generator)
        sigma0 = self.sigma0.to(dtype=xi.dtype, device=xi.device)
        if self.group_size > 1:
            return (xi * sigma0)[..., None] * z
        return xi * sigma0 * z

    def sample(self, sample_shape: SampleShape = (),  # type: ignore[override]
               generator: torch.Generator | None = None) -> Tensor:
        """Hierarchical draws: ξ from the law, then w = ξ·z, z ~ N(0, σ0² I_D).

        Shape:
            output: ``sample_shape + batch_shape + event_shape``.
        """
        with torch.no_grad():
            return self._draw(sample_shape, generator, reparametrized=False)

    def rsample(self, sample_shape: SampleShape = (),  # type: ignore[override]
                generator: torch.Generator | None = None) -> Tensor:
        """Reparametrized hierarchical draws (laws with ``has_rsample`` only)."""
        if not self.law.has_rsample:
            raise NotImplementedError(
                f"{self.law!r} has no rsample; use sample() (no gradients through the draw)"
            )
        return self._draw(sample_shape, generator, reparametrized=True)

    # ---- densities ------------------------------------------------------------------------
    def _validated(self, value: Tensor) -> Tensor:
        if not isinstance(value, Tensor):
            raise TypeError(f"w must be a torch.Tensor, got {type(value).__name__}")
        if not value.is_floating_point():
            raise TypeError(f"w must be a floating-point tensor, got dtype {value.dtype}")
        if self.group_size > 1 and (value.dim() == 0 or value.shape[-1] != self.group_size):
            raise ValueError(
                f"w must have trailing dimension group_size={self.group_size}, "
                f"got shape {tuple(value.shape)}"
            )
        if bool(torch.isnan(value).any()):
            raise ValueError("w contains nan")
        outer = value.shape if self.group_size == 1 else value.shape[:-1]
        try:
            torch.broadcast_shapes(outer, self.batch_shape)
        except RuntimeError:
            raise ValueError(
                f"w of shape {tuple(value.shape)} does not broadcast with the prior's "
                f"batch_shape {tuple(self.batch_shape)} (event_shape "
                f"{tuple(self.event_shape)})"
            ) from None
        return value

    def _result_dtype(self, value: Tensor) -> torch.dtype:
        return torch.promote_types(value.dtype, self.sigma0.dtype)

    def _norm(self, value: Tensor) -> Tensor:
        """r = ‖w‖ over the group, float64, shape ``(...)``."""
        v = value.to(torch.float64)
        return v.abs() if self.group_size == 1 else torch.linalg.vector_norm(v, dim=-1)

    def log_prob(self, value: Tensor) -> Tensor:
        """log p(w) for w of shape ``(..., D)`` (``(...)`` when D = 1); returns shape ``(...)``;
        ``-inf`` where an entry of w is ±inf (no prior has mass at infinity)."""
        value = self._validated(value)
        entries = torch.isinf(value)
        finite = torch.where(entries, torch.zeros_like(value), value)  # the rules see finite w
        out = self._log_prob(finite).to(self._result_dtype(value))
        infinite = entries.any(dim=-1) if self.group_size > 1 else entries
        return torch.where(infinite, torch.full_like(out, -math.inf), out)

    def cdf(self, value: Tensor) -> Tensor:
        """P(w ≤ value) for a single weight (D = 1 only); 0 at -inf, 1 at +inf."""
        value = self._validated(value)
        if self.group_size != 1:
            raise ValueError(
                f"cdf is defined for group_size=1 only, this prior has group_size="
                f"{self.group_size}"
            )
        infinite = torch.isinf(value)
        out = self._cdf(torch.where(infinite, torch.zeros_like(value), value))
        out = out.to(self._result_dtype(value))
        return torch.where(infinite, (value > 0).to(out.dtype), out)

    def _log_prob(self, value: Tensor) -> Tensor:
        raise NotImplementedError

    def _cdf(self, value: Tensor) -> Tensor:
        raise NotImplementedError

    # ---- numerical quadrature over ξ (see dropprior.priors._quadrature) -------------------
    def _mixing(self) -> MixingDensity:
        cached = self.__dict__.get("_mixing_cache")
        if cached is None:
            cached = MixingDensity(self.law)
            self.__dict__["_mixing_cache"] = cached
        return cached

    def _quadrature_log_prob(self, value: Tensor) -> Tensor:
        log_sigma0 = torch.log(self.sigma0.to(torch.float64))
        return log_gaussian_mixture(self._mixing(), self._norm(value), log_sigma0,
                                    self.group_size, kind="density")

    def _quadrature_cdf(self, value: Tensor) -> Tensor:
        v = value.to(torch.float64)
        log_sigma0 = torch.log(self.sigma0.to(torch.float64))
        log_tail = log_gaussian_mixture(self._mixing(), v.abs(), log_sigma0, 1, kind="tail")
        v = v.expand(log_tail.shape)
        return torch.where(v < 0, torch.exp(log_tail), -torch.expm1(log_tail))

    # ---- helpers ---------------------------------------------------------------------------
    def expand(self, batch_shape: torch.Size | tuple[int, ...],  # type: ignore[override]
               _instance: object = None) -> ScaleMixture:
        batch_shape = torch.Size(batch_shape)
        return type(self).from_law(self.law.expand(batch_shape), self.sigma0.expand(batch_shape),
                                   self.group_size)

    def __repr__(self) -> str:
        sigma0 = f"{self.sigma0.item():.4g}" if self.sigma0.numel() == 1 else "tensor"
        return (f"{type(self).__name__}(law={self.law!r}, sigma0={sigma0}, "
                f"group_size={self.group_size})")
