r"""Spike-and-slab: the marginal prior of Bernoulli noise (dropout), paper Table 1 and eq. 7.

Generative definition: ξ ~ Bernoulli(π) on {0, c} (c = 1, or 1/π for inverted dropout),
z ~ N(0, σ0² I_D), w = ξ z. With slab scale σ = c σ0,

.. math:: p(w) = π\, N(w; 0, σ^2 I_D) + (1 − π)\, δ_0(w).

**The atom.** The law is not absolutely continuous: it puts mass 1 − π on the single point
w = 0 (the whole group at once). ``log_prob`` is its density with respect to the measure
λ^D + δ_0 (Lebesgue plus a unit point mass at 0), which is the only density such a law has:

* for w ≠ 0 (any coordinate non-zero): log π + log N(w; 0, σ² I_D), a log-*density*;
* for w = 0 exactly: log(1 − π), a log-*mass* (``atom_mass``, ``log_prob_atom()``).

``log_prob_slab(w)`` is the normalised slab density log N(w; 0, σ² I_D) everywhere, and ``cdf``
(D = 1) includes the jump of height 1 − π at 0: F(w) = (1 − π)·1[w ≥ 0] + π Φ(w/σ).
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from dropprior._validation import as_param, check_positive
from dropprior.noise import Bernoulli, NoiseLaw
from dropprior.priors._base import ScaleMixture
from dropprior.priors._registry import register_marginal

__all__ = ["SpikeAndSlab"]


class SpikeAndSlab(ScaleMixture):
    r"""π N(0, σ² I_D) + (1 − π) δ0, the prior that Bernoulli noise induces.

    Args:
        keep: π ∈ (0, 1], the keep probability (not torch's drop probability p = 1 − π).
        slab_scale: σ > 0, the slab's standard deviation.
        group_size: D, weights sharing one Bernoulli switch (ARD: a unit's outgoing weights).

    Shape:
        ``log_prob(w)``: ``w`` of shape ``(..., D)`` (``(...)`` for D = 1) → ``(...)``.

    Example:
        >>> prior = SpikeAndSlab(keep=0.8, slab_scale=1.0)
        >>> round(float(prior.cdf(torch.tensor(0.0))), 3)  # the jump: 0.2 + 0.8 * 0.5
        0.6
    """

    def __init__(self, keep: float | Tensor, slab_scale: float | Tensor = 1.0,
                 group_size: int = 1, validate_args: bool | None = None) -> None:
        slab_scale = check_positive("slab_scale", as_param(slab_scale))
        super().__init__(Bernoulli(keep), slab_scale, group_size)

    def _check_law(self) -> None:
        if not isinstance(self.law, Bernoulli):
            raise TypeError(f"SpikeAndSlab needs a Bernoulli law, got {self.law!r}")

    @property
    def keep(self) -> Tensor:
        """π, the slab's probability."""
        return self.law.keep  # type: ignore[attr-defined]

    @property
    def slab_scale(self) -> Tensor:
        """σ = c σ0 (c = 1/π for inverted Bernoulli noise)."""
        return self.sigma0 * self.law.scale  # type: ignore[attr-defined]

    @property
    def atom_mass(self) -> Tensor:
        """1 − π, the probability that the whole group is exactly 0."""
        return (1 - self.keep).expand(self.batch_shape)

    def log_prob_atom(self) -> Tensor:
        """log(1 − π), the log-mass of the atom at w = 0 (``-inf`` when π = 1)."""
        return torch.log1p(-self.keep).expand(self.batch_shape)

    def log_prob_slab(self, value: Tensor) -> Tensor:
        """log N(w; 0, σ² I_D), the normalised density of the continuous part, at every w."""
        value = self._validated(value)
        return self._log_slab(value).to(self._result_dtype(value))

    def _log_slab(self, value: Tensor) -> Tensor:
        v = value.to(torch.float64)
        sigma = self.slab_scale.to(torch.float64)
        if self.group_size > 1:
            sigma = sigma[..., None]  # batch dims sit before the group dimension
        z = torch.distributions.Normal(torch.zeros_like(sigma), sigma).log_prob(v)
        return z if self.group_size == 1 else z.sum(-1)

    def _log_prob(self, value: Tensor) -> Tensor:
        is_zero = value == 0 if self.group_size == 1 else (value == 0).all(-1)
        keep = self.keep.to(torch.float64)
        slab = torch.log(keep) + self._log_slab(value)
        atom = torch.log1p(-keep).expand(slab.shape)
        return torch.where(is_zero, atom, slab)

    def _cdf(self, value: Tensor) -> Tensor:
        v = value.to(torch.float64)
        keep = self.keep.to(torch.float64)
        sigma = self.slab_scale.to(torch.float64)
        phi = 0.5 * torch.erfc(-v / (sigma * math.sqrt(2)))
        return (1 - keep) * (v >= 0).to(v.dtype) + keep * phi


@register_marginal(Bernoulli)
def _bernoulli_marginal(law: NoiseLaw, sigma0: float | Tensor, group_size: int) -> ScaleMixture:
    return SpikeAndSlab.from_law(law, sigma0, group_size)
