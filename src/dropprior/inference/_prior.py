"""A structured scale-mixture prior as Pyro sample sites, in either parametrization.

The same prior p(w) = ∫ N(w; 0, σ0² ξ²) p(ξ) dξ (paper eq. 5-6) has two MCMC forms:

* ``"ep"``, the expanded parametrization — non-centred:
  ξ ~ p(ξ), z ~ N(0, σ0²), w = ξ·z. This is the form dropout trains (noise on the inputs).
* ``"hp"``, the hierarchical parametrization — centred:
  ξ ~ p(ξ), w | ξ ~ N(0, σ0² ξ²).

``noise_shape`` is the structure: the shape of ξ, broadcast against the weight shape. For a weight
matrix of shape (in, out): ``(in, 1)`` is one scale per input unit (ARD, dropout), ``(in, out)`` one
per weight (DropConnect), ``()`` one per layer. It is the same shape rule the layers use for the
noise tensor.

Continuous laws are sampled by Pyro's HMC/NUTS on an unconstrained scale: Pyro maps each site
through ``torch.distributions.biject_to(law.support)`` and adds the log-Jacobian (e.g. ξ = exp(u),
log|dξ/du| = u, for laws on (0, ∞)). Discrete laws cannot be sampled with gradients and are refused
with a pointer to :func:`dropprior.inference.kuo_mallick`.
"""

from __future__ import annotations

from typing import Any

import pyro
import pyro.distributions as pdist
import torch
from pyro.distributions.torch_distribution import TorchDistribution
from torch import Tensor
from torch.distributions import Distribution, constraints

from dropprior._validation import check_choice, type_name

__all__ = ["PARAMETRIZATIONS", "LawSite", "check_continuous", "check_parametrization",
           "sample_scale_mixture"]

PARAMETRIZATIONS = ("ep", "hp")
"""``"ep"``: expanded, non-centred (w = ξ·z); ``"hp"``: hierarchical, centred (w ~ N(0, σ0²ξ²))."""


def check_parametrization(parametrization: str) -> str:
    """Return ``parametrization`` if it is ``"ep"`` or ``"hp"``; else a ValueError listing both."""
    if not isinstance(parametrization, str):
        raise TypeError(
            f"parametrization must be a string, one of {list(PARAMETRIZATIONS)}; "
            f"got {parametrization!r}"
        )
    return check_choice("parametrization", parametrization.lower(), PARAMETRIZATIONS)


def check_continuous(law: Distribution) -> Distribution:
    """Refuse laws that gradient-based samplers cannot handle, saying what to use instead."""
    if not isinstance(law, Distribution):
        raise TypeError(
            f"law must be a dropprior.noise law (a torch Distribution), got {type_name(law)}"
        )
    support = law.support
    discrete = bool(getattr(law, "is_discrete", False)) or (
        support is not None and support.is_discrete)
    if discrete:
        raise ValueError(
            f"{law!r} is a discrete noise law: HMC/NUTS need gradients with respect to ξ. "
            "For Bernoulli (dropout) noise use the Gibbs sampler "
            "dropprior.inference.kuo_mallick(X, y, keep=...), or pick a continuous law "
            "(e.g. dropprior.noise.match_dropout('gaussian', p))."
        )
    return law


class LawSite(TorchDistribution):
    """A noise law ξ as a Pyro distribution with ``batch_shape``; ``log_prob`` is the law's.

    Pyro needs its own distribution mixin (``__call__``, ``to_event``); this adapter gives it to any
    :class:`torch.distributions.Distribution` with scalar parameters, without copying its maths.

    Shape:
        sample: (*sample_shape, *batch_shape); log_prob: value (..., *batch_shape) → same.
    """

    arg_constraints: dict[str, constraints.Constraint] = {}
    has_rsample = False  # HMC differentiates log_prob on the unconstrained scale, not samples

    def __init__(self, law: Distribution, batch_shape: torch.Size | tuple[int, ...] = ()) -> None:
        self.law = law
        super().__init__(batch_shape=torch.Size(batch_shape), event_shape=torch.Size(),
                         validate_args=False)

    @property
    def support(self) -> Any:  # type: ignore[override]
        return self.law.support

    def expand(self, batch_shape: Any, _instance: Any = None) -> LawSite:
        return LawSite(self.law, torch.Size(batch_shape))

    def sample(self, sample_shape: torch.Size | list[int] | tuple[int, ...] = ()) -> Tensor:
        shape = torch.Size(sample_shape) + self.batch_shape
        with torch.no_grad():
            return self.law.sample(shape).reshape(shape)

    def log_prob(self, value: Tensor) -> Tensor:
        return self.law.log_prob(value)


def sample_scale_mixture(
    name: str,
    law: Distribution,
    sigma0: float,
    weight_shape: tuple[int, ...],
    noise_shape: tuple[int, ...],
    parametrization: str,
) -> Tensor:
    """Inside a Pyro model: draw weights w of ``weight_shape`` under the structured prior.

    Sites: ``{name}.xi`` (shape ``noise_shape``) and either ``{name}.z`` (EP) or ``{name}.w``
    (HP). In EP, w = ξ·z is also recorded as the deterministic site ``{name}.w``.

    Args:
        name: prefix of the site names.
        law: a continuous noise law p(ξ) with scalar parameters.
        sigma0: σ0 > 0, the scale of the Gaussian prior on z.
        weight_shape: shape of w.
        noise_shape: shape of ξ, broadcastable to ``weight_shape`` (the structure).
        parametrization: ``"ep"`` or ``"hp"``.

    Returns:
        w, shape ``weight_shape``.
    """
    parametrization = check_parametrization(parametrization)
    check_continuous(law)
    weight_shape = tuple(weight_shape)
    noise_shape = tuple(noise_shape)
    try:
        fits = torch.broadcast_shapes(noise_shape, weight_shape) == torch.Size(weight_shape)
    except RuntimeError:
        fits = False
    if not fits:
        raise ValueError(
            f"noise_shape {noise_shape} does not broadcast to weight_shape {weight_shape}"
        )
    xi = pyro.sample(f"{name}.xi", LawSite(law, noise_shape).to_event(len(noise_shape)))
    zero = torch.zeros((), dtype=torch.get_default_dtype())
    if parametrization == "ep":
        z = pyro.sample(
            f"{name}.z",
            pdist.Normal(zero, sigma0).expand(weight_shape).to_event(len(weight_shape)),
        )
        return pyro.deterministic(f"{name}.w", xi * z, event_dim=len(weight_shape))
    scale = (sigma0 * xi.abs()).expand(weight_shape)
    return pyro.sample(
        f"{name}.w",
        pdist.Normal(zero, scale, validate_args=False).to_event(len(weight_shape)),
    )
