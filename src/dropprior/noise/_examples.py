"""One instance of every law of the registry, shared by the tests and the benchmarks."""

from __future__ import annotations

from dropprior.noise._base import NoiseLaw
from dropprior.noise.bernoulli import Bernoulli
from dropprior.noise.beta import Beta
from dropprior.noise.gaussian import Gaussian
from dropprior.noise.half_cauchy import HalfCauchy
from dropprior.noise.inverse_nakagami import InverseNakagami
from dropprior.noise.log_normal import LogNormal
from dropprior.noise.rayleigh import Rayleigh
from dropprior.noise.uniform import Uniform

__all__ = ["example_laws"]


def example_laws() -> dict[str, NoiseLaw]:
    """``{registry name: law}``, one law per registered name, at parameters that exercise each
    sampler's general path (a Bernoulli keep other than ½, an inverse-Nakagami and Beta whose
    gamma shapes are not ½), new instances on every call."""
    return {
        "bernoulli": Bernoulli(0.7, inverted=True),
        "gaussian": Gaussian(1.0, 0.5),
        "rayleigh": Rayleigh(0.8),
        "inverse_nakagami": InverseNakagami(shape=3.0, spread=2.0),
        "half_cauchy": HalfCauchy(1.0),
        "beta": Beta(2.0, 3.0),
        "uniform": Uniform(0.5, 1.5),
        "log_normal": LogNormal(0.0, 0.3),
    }
