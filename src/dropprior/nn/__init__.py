"""Thin layers over :mod:`dropprior.functional`: structured multiplicative noise for MLPs,
ResNets, CNNs, LSTMs and embeddings, the :func:`mc` context for Monte Carlo prediction, and
:func:`apply_noise` to convert a torch model."""

from dropprior.nn._convert import apply_noise
from dropprior.nn._module import (
    MultiplicativeNoise,
    NoisyModule,
    Stochastic,
    excluded_modules,
    has_noise,
    mc,
    sampling_mode,
)
from dropprior.nn._scope import SCOPES, SeededDraws, noise_scope, per_example_draws, seeded_draws
from dropprior.nn.conv import NoisyConv1d, NoisyConv2d, NoisyConvNd
from dropprior.nn.embedding import NoisyEmbedding
from dropprior.nn.linear import NoisyLinear
from dropprior.nn.lstm import LSTMOutput, NoisyLSTM
from dropprior.nn.residual import Residual
from dropprior.nn.stacked import StackedNoisyLinear

__all__ = [
    "Stochastic",
    "NoisyModule",
    "MultiplicativeNoise",
    "NoisyLinear",
    "StackedNoisyLinear",
    "NoisyConv1d",
    "NoisyConv2d",
    "Residual",
    "NoisyLSTM",
    "LSTMOutput",
    "NoisyEmbedding",
    "mc",
    "apply_noise",
    "noise_scope",
    "per_example_draws",
    "seeded_draws",
    "SeededDraws",
    "has_noise",
    "excluded_modules",
    "sampling_mode",
    "NoisyConvNd",
    "SCOPES",
]
