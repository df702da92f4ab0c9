r"""The noise law as the hyperprior: p(ξ²) of Table 1's laws read as a prior on a group's scale.

=======================  ==========================  =========================
noise law                variance prior p(ξ²)         hyperprior
=======================  ==========================  =========================
InverseNakagami(m, Ω)    InverseGamma(m, m/Ω)         :class:`InverseGammaScale` (Student-t)
HalfCauchy(s)            ξ ~ half-Cauchy(s)           :class:`HalfCauchyScale` (horseshoe)
Rayleigh(s)              Gamma(1, 1/(2s²))            :class:`GammaScale` (Laplace)
Gaussian(0, s)           Gamma(½, 1/(2s²))            :class:`GammaScale` (variance-gamma)
=======================  ==========================  =========================

Laws without a continuous variance prior on (0, ∞) that reads as a scale hyperprior (Bernoulli's
two-point law, Gaussian dropout with mean ≠ 0, Beta, Uniform, log-normal) raise; pass a
hyperprior by name or instance instead. Pairings go through a registry keyed by law type, as
``torch.distributions.kl`` does.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from dropprior.hyperpriors._base import ScaleHyperprior
from dropprior.hyperpriors.gamma import GammaScale
from dropprior.hyperpriors.half_cauchy import HalfCauchyScale
from dropprior.hyperpriors.inverse_gamma import InverseGammaScale
from dropprior.hyperpriors.log_uniform import LogUniformScale
from dropprior.noise import Gaussian, HalfCauchy, InverseNakagami, NoiseLaw, Rayleigh

__all__ = ["HYPERPRIORS", "hyperprior_from_noise", "register_hyperprior", "resolve_hyperprior"]

HYPERPRIORS: dict[str, str] = {
    "auto": "the variance prior of each layer's noise law (inverse Nakagami → inverse-gamma, "
            "half-Cauchy → half-Cauchy, Rayleigh/Gaussian(0, s) → gamma)",
    "inverse_gamma": "inverse-gamma(3, 3) on s², the follow-up's default",
    "half_cauchy": "half-Cauchy(1) on s, the horseshoe's",
    "log_uniform": "p(s) ∝ 1/s, improper (inverse-gamma's a = b = 0 limit)",
}

_FROM_LAW: dict[type, Callable[[Any], ScaleHyperprior]] = {}


def register_hyperprior(law_type: type) -> Callable[[Callable[[Any], ScaleHyperprior]],
                                                     Callable[[Any], ScaleHyperprior]]:
    """Decorator: register the hyperprior that a noise law's variance prior reads as."""

    def decorate(fn: Callable[[Any], ScaleHyperprior]) -> Callable[[Any], ScaleHyperprior]:
        _FROM_LAW[law_type] = fn
        return fn

    return decorate


@register_hyperprior(InverseNakagami)
def _inverse_nakagami(law: InverseNakagami) -> ScaleHyperprior:
    return InverseGammaScale(float(law.shape), float(law.shape / law.spread))


@register_hyperprior(HalfCauchy)
def _half_cauchy(law: HalfCauchy) -> ScaleHyperprior:
    return HalfCauchyScale(float(law.scale))


@register_hyperprior(Rayleigh)
def _rayleigh(law: Rayleigh) -> ScaleHyperprior:
    return GammaScale(1.0, 1.0 / (2 * float(law.scale) ** 2))


@register_hyperprior(Gaussian)
def _gaussian(law: Gaussian) -> ScaleHyperprior:
    if float(law.loc) != 0.0:
        raise ValueError(f"{law!r} has mean {float(law.loc):g} ≠ 0: its ξ² is a scaled non-central "
                         "χ², which has no closed-form scale update; pass hyperprior= by name "
                         f"({[k for k in HYPERPRIORS if k != 'auto']}) or instance")
    return GammaScale(0.5, 1.0 / (2 * float(law.std) ** 2))


def hyperprior_from_noise(law: NoiseLaw) -> ScaleHyperprior:
    """The hyperprior that ``law``'s variance prior p(ξ²) is (module table).

    Raises:
        ValueError: the law has no registered reading; the message lists those that do.
    """
    if law.batch_shape != ():
        raise ValueError(f"hyperprior_from_noise needs a scalar law, got batch_shape "
                         f"{tuple(law.batch_shape)}")
    for cls in type(law).__mro__:
        if cls in _FROM_LAW:
            return _FROM_LAW[cls](law)
    known = ", ".join(sorted(c.__name__ for c in _FROM_LAW))
    raise ValueError(f"{law!r} has no variance prior that reads as a scale hyperprior (laws that "
                     f"do: {known}); pass hyperprior= by name "
                     f"({[k for k in HYPERPRIORS if k != 'auto']}) or as a ScaleHyperprior")


def resolve_hyperprior(spec: str | ScaleHyperprior, law: NoiseLaw | None) -> ScaleHyperprior:
    """A hyperprior from a name of :data:`HYPERPRIORS`, an instance, or ``"auto"`` (from ``law``).

    Raises:
        ValueError: an unknown name, or ``"auto"`` for a law with no reading (or no law).
    """
    if isinstance(spec, ScaleHyperprior):
        return spec
    if not isinstance(spec, str) or spec not in HYPERPRIORS:
        raise ValueError(f"hyperprior={spec!r} is not valid; expected one of {list(HYPERPRIORS)} "
                         "or a dropprior.hyperpriors.ScaleHyperprior")
    if spec == "inverse_gamma":
        return InverseGammaScale(3.0, 3.0)
    if spec == "half_cauchy":
        return HalfCauchyScale(1.0)
    if spec == "log_uniform":
        return LogUniformScale()
    if law is None:
        raise ValueError("hyperprior='auto' reads the hyperprior from the layer's noise law, but "
                         "this group has none; pass hyperprior= by name or instance")
    return hyperprior_from_noise(law)
