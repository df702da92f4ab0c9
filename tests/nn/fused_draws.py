"""Draws of the fused CUDA noise kernel, run under Triton's CPU interpreter (or on CUDA).

Run as ``TRITON_INTERPRET=1 python tests/nn/fused_draws.py OUT.npz [device]`` by
test_fused_noise.py: for every case of :data:`CASES` it saves ξ (the forward output for x = 1),
the gradient for an upstream gradient of 1, the output and gradient for a random x with the same
seed, a second draw with the same seed and one with a fresh seed, and a bfloat16 draw.
"""

from __future__ import annotations

import sys

import numpy as np
import torch
from scipy import stats

from dropprior.functional._fused import fused_multiply, fused_plan
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

N = 16 * 1024 + 77  # ξ for the goodness-of-fit tests: 16 programs of 1024, and a ragged tail
M = 2 * 1024 + 77  # the replay, seeding and dtype checks
CASES = {
    "bernoulli": Bernoulli(0.7, inverted=True),
    "bernoulli_plain": Bernoulli(0.3),
    "gaussian": Gaussian(1.0, 0.5),
    "uniform": Uniform(0.5, 1.5),
    "log_normal": LogNormal(0.1, 0.4),
    "rayleigh": Rayleigh(0.8),
    "half_cauchy": HalfCauchy(1.3),
    "inverse_nakagami": InverseNakagami(2.0, 1.5),  # m = 2: a sum of two exponentials
    "inverse_nakagami_half": InverseNakagami(1.5, 1.0),  # one exponential and half a χ²₁
    "inverse_nakagami_long": InverseNakagami(5.5, 1.0),  # five exponentials (two logs), half
    "inverse_nakagami_chi2": InverseNakagami(0.5, 2.0),  # half a χ²₁ alone
    "inverse_nakagami_rejection": InverseNakagami(2.3, 1.0),  # Marsaglia–Tsang
    "inverse_nakagami_boost": InverseNakagami(0.6, 1.0),  # Marsaglia–Tsang with the boost
    "beta": Beta(2.0, 3.0),
    "beta_two_two": Beta(2.0, 2.0),  # the inverse CDF, one word per element
    "beta_mixed": Beta(2.5, 1.7),  # one sum, one rejection
    "beta_arcsine": Beta(0.5, 0.5),
}


def reference(law: object) -> stats.rv_continuous:
    """scipy's law of ξ (of 1/ξ² for inverse Nakagami: Gamma(m, rate m/Ω))."""
    if isinstance(law, Gaussian):
        return stats.norm(float(law.loc), float(law.std))
    if isinstance(law, Uniform):
        return stats.uniform(float(law.low), float(law.high - law.low))
    if isinstance(law, LogNormal):
        return stats.lognorm(float(law.scale), scale=float(np.exp(float(law.loc))))
    if isinstance(law, Rayleigh):
        return stats.rayleigh(scale=float(law.scale))
    if isinstance(law, HalfCauchy):
        return stats.halfcauchy(scale=float(law.scale))
    if isinstance(law, InverseNakagami):
        m, spread = float(law.shape), float(law.spread)
        return stats.gamma(m, scale=spread / m)
    if isinstance(law, Beta):
        return stats.beta(float(law.concentration1), float(law.concentration0))
    raise AssertionError(law)


def statistic(name: str, xi: np.ndarray) -> np.ndarray:
    return 1.0 / xi.astype(np.float64) ** 2 if name.startswith("inverse_nakagami") else xi



def draws(device: str) -> dict[str, np.ndarray]:
    out: dict[str, np.ndarray] = {}
    for name, law in CASES.items():
        gen = torch.Generator(device).manual_seed(1234)
        state = gen.get_state()
        ones = torch.ones(N, device=device, requires_grad=True)
        xi = fused_multiply(ones, fused_plan(law, ones), gen)
        xi.backward(torch.ones_like(xi))
        x = torch.randn(M, device=device, dtype=torch.float64).float().requires_grad_()
        upstream = torch.randn(M, device=device)
        gen.set_state(state)  # the seed of the ξ above
        y = fused_multiply(x, fused_plan(law, x), gen)
        y.backward(upstream)
        gen.set_state(state)
        again = fused_multiply(x.detach(), fused_plan(law, x), gen)
        fresh = fused_multiply(x.detach(), fused_plan(law, x), gen)
        gen.set_state(state)
        half = torch.ones(M, device=device, dtype=torch.bfloat16)
        half_xi = fused_multiply(half, fused_plan(law, half), gen)
        arrays = {"xi": xi, "xi_grad": ones.grad, "x": x, "y": y, "upstream": upstream,
                  "x_grad": x.grad, "again": again, "fresh": fresh,
                  "bf16": half_xi.float()}
        for key, value in arrays.items():
            out[f"{name}/{key}"] = value.detach().cpu().numpy()
    return out


if __name__ == "__main__":
    with np.errstate(all="ignore"):
        np.savez(sys.argv[1], **draws(sys.argv[2] if len(sys.argv) > 2 else "cpu"))
