"""One instance of every registered noise law, for the generic layer contracts."""

from __future__ import annotations

from dropprior.noise import (
    Bernoulli,
    Beta,
    Gaussian,
    HalfCauchy,
    InverseNakagami,
    LogNormal,
    Rayleigh,
    Uniform,
)

LAWS = {
    "bernoulli": Bernoulli(0.7, inverted=True),
    "gaussian": Gaussian(1.0, 0.5),
    "rayleigh": Rayleigh(0.8),
    "inverse_nakagami": InverseNakagami(shape=3.0, spread=2.0),
    "half_cauchy": HalfCauchy(1.0),
    "beta": Beta(2.0, 3.0),
    "uniform": Uniform(0.5, 1.5),
    "log_normal": LogNormal(0.0, 0.3),
}
