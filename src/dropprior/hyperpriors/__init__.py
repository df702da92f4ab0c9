"""Hyperpriors on a weight group's scale: the noise law's variance prior read as a prior on a
learned scale (DESIGN §4). Each has a log density on the scale s and on v = s², and the closed-form
scale update used by variational inference. See ``docs/scales.md``.
"""

from dropprior.hyperpriors._base import ScaleHyperprior, group_objective
from dropprior.hyperpriors._registry import (
    HYPERPRIORS,
    hyperprior_from_noise,
    register_hyperprior,
    resolve_hyperprior,
)
from dropprior.hyperpriors.gamma import GammaScale
from dropprior.hyperpriors.half_cauchy import HalfCauchyScale
from dropprior.hyperpriors.inverse_gamma import InverseGammaScale
from dropprior.hyperpriors.log_uniform import LogUniformScale

__all__ = [
    "ScaleHyperprior",
    "InverseGammaScale",
    "GammaScale",
    "HalfCauchyScale",
    "LogUniformScale",
    "HYPERPRIORS",
    "hyperprior_from_noise",
    "register_hyperprior",
    "resolve_hyperprior",
    "group_objective",
]
