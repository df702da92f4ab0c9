"""dropprior: dropout and its relatives as Gaussian scale-mixture priors on the weights.

The public surface, re-exported here:

* noise laws (:mod:`dropprior.noise`) and their marginal priors (:mod:`dropprior.priors`);
* structured noise layers (:mod:`dropprior.nn`) over one pure function
  (:mod:`dropprior.functional`), with :func:`mc` for Monte Carlo prediction at eval time and
  :func:`apply_noise` to convert a torch model;
* likelihoods, the MC, marginal-MAP and tail-adaptive objectives, :func:`fit`, :func:`predict`,
  metrics, :func:`relevance` and :func:`prune`; deep ensembles, a post-hoc last-layer
  Laplace posterior (:func:`fit_last_layer_laplace`) and temperature scaling
  (:func:`fit_temperature`) as baselines;
* learned group scales (:mod:`dropprior.scales`) under scale hyperpriors
  (:mod:`dropprior.hyperpriors`): type-II MAP (:func:`learn_scales`) and VI with closed-form
  scales (:func:`variational`);
* MCMC under the same priors (:mod:`dropprior.inference`), the Jensen-gap analysis
  (:mod:`dropprior.analysis`), data readers (:mod:`dropprior.data`) and the benchmark runner
  (:mod:`dropprior.experiments`). These three load on first access, so that ``import dropprior``
  does not import Pyro.
"""

from __future__ import annotations

import importlib
from typing import Any

from dropprior import (
    functional,
    hyperpriors,
    likelihoods,
    metrics,
    nn,
    noise,
    objectives,
    priors,
    scales,
)
from dropprior._relevance import norm_relevance, relevance
from dropprior.ensemble import fit_ensemble, predict_ensemble
from dropprior.hyperpriors import (
    GammaScale,
    HalfCauchyScale,
    InverseGammaScale,
    LogUniformScale,
    ScaleHyperprior,
)
from dropprior.last_layer_laplace import KroneckerFactors, LastLayerLaplace, fit_last_layer_laplace
from dropprior.nn import (
    LSTMOutput,
    MultiplicativeNoise,
    NoisyConv1d,
    NoisyConv2d,
    NoisyEmbedding,
    NoisyLinear,
    NoisyLSTM,
    NoisyModule,
    Residual,
    StackedNoisyLinear,
    apply_noise,
    mc,
)
from dropprior.noise import (
    Bernoulli,
    Beta,
    Gaussian,
    HalfCauchy,
    InverseNakagami,
    LogNormal,
    NoiseLaw,
    Rayleigh,
    Uniform,
    law_by_name,
    match_dropout,
    register_law,
    registered_laws,
)
from dropprior.prediction import predict
from dropprior.priors import (
    Horseshoe,
    Laplace,
    QuadratureMarginal,
    ScaleMixture,
    SpikeAndSlab,
    StudentT,
    VarianceGamma,
    register_marginal,
)
from dropprior.pruning import PruneResult, prune
from dropprior.scales import group_snr, learn_scales, learned_scales, variational
from dropprior.temperature import TemperatureScaled, fit_temperature
from dropprior.training import History, cosine_lr, fit
from dropprior.truncation import Truncated

__version__ = "0.1.0"

_LAZY = ("analysis", "data", "experiments", "inference", "plotting")


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return importlib.import_module(f"dropprior.{name}")
    raise AttributeError(f"module 'dropprior' has no attribute {name!r}")


def __dir__() -> list[str]:
    """The public names (:data:`__all__`), the lazily loaded subpackages among them, so that
    ``dir(dropprior)`` and tab completion list them and not the helpers of this module."""
    return sorted(__all__)


__all__ = [
    "__version__",
    # subpackages
    "noise", "priors", "functional", "nn", "likelihoods", "objectives", "metrics",
    "hyperpriors", "scales",
    "analysis", "data", "experiments", "inference", "plotting",
    # noise laws
    "NoiseLaw", "Bernoulli", "Gaussian", "Rayleigh", "InverseNakagami", "HalfCauchy", "Beta",
    "Uniform", "LogNormal", "Truncated", "match_dropout", "register_law", "register_marginal",
    "registered_laws", "law_by_name",
    # marginal priors
    "ScaleMixture", "SpikeAndSlab", "VarianceGamma", "Laplace", "StudentT", "Horseshoe",
    "QuadratureMarginal",
    # layers
    "NoisyModule", "MultiplicativeNoise", "NoisyLinear", "StackedNoisyLinear", "NoisyConv1d",
    "NoisyConv2d",
    "Residual", "NoisyLSTM", "LSTMOutput", "NoisyEmbedding", "mc", "apply_noise",
    # training and prediction
    "fit", "cosine_lr", "History", "predict", "relevance", "norm_relevance", "prune", "PruneResult",
    "fit_ensemble", "predict_ensemble", "fit_last_layer_laplace", "LastLayerLaplace",
    "KroneckerFactors", "fit_temperature", "TemperatureScaled",
    # learned group scales
    "ScaleHyperprior", "InverseGammaScale", "GammaScale", "HalfCauchyScale", "LogUniformScale",
    "learn_scales", "variational", "learned_scales", "group_snr",
]
