"""Noise laws of the dropout family, each a ``torch.distributions.Distribution`` with exact moments.

Laws (registered names in brackets): :class:`Bernoulli` ("bernoulli"), :class:`Gaussian`
("gaussian"), :class:`Rayleigh` ("rayleigh"), :class:`InverseNakagami` ("inverse_nakagami"),
:class:`HalfCauchy` ("half_cauchy"), :class:`Beta` ("beta"), :class:`Uniform` ("uniform"),
:class:`LogNormal` ("log_normal"). :func:`match_dropout` sets a law's parameters from a dropout
rate. See ``docs/noise.md``.
"""

from dropprior.noise._base import NoiseLaw, SampleShape, sample_size
from dropprior.noise._examples import example_laws
from dropprior.noise._registry import (
    law_by_name,
    register_law,
    registered_laws,
)
from dropprior.noise.bernoulli import Bernoulli
from dropprior.noise.beta import Beta
from dropprior.noise.gaussian import Gaussian
from dropprior.noise.half_cauchy import HalfCauchy
from dropprior.noise.inverse_nakagami import InverseNakagami
from dropprior.noise.log_normal import LogNormal
from dropprior.noise.matching import inverse_nakagami_shape_for, match_dropout
from dropprior.noise.rayleigh import Rayleigh
from dropprior.noise.scaled_bernoulli import ScaledBernoulli
from dropprior.noise.squared import ScaledNoncentralChi2, Squared
from dropprior.noise.uniform import Uniform

__all__ = [
    "NoiseLaw",
    "SampleShape",
    "sample_size",
    "Bernoulli",
    "Gaussian",
    "Rayleigh",
    "InverseNakagami",
    "HalfCauchy",
    "Beta",
    "Uniform",
    "LogNormal",
    "ScaledBernoulli",
    "Squared",
    "ScaledNoncentralChi2",
    "match_dropout",
    "inverse_nakagami_shape_for",
    "register_law",
    "registered_laws",
    "law_by_name",
    "example_laws",
]
