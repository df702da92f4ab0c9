"""Residual (ADD, ARD+ADD) against explicit formulas given the same draw."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.testing import assert_close

from dropprior.nn import (
    Residual,
)
from dropprior.noise import Bernoulli, Gaussian, Rayleigh

f64 = torch.float64


def gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


# ---- residual -------------------------------------------------------------------------------

@pytest.mark.parametrize("granularity", ["example", "batch"])
def test_residual_add_is_stochastic_depth(granularity) -> None:
    lin = nn.Linear(5, 5, bias=False).double()
    block = Residual(nn.Sequential(lin, nn.ReLU()), depth_noise=Bernoulli(0.7, inverted=True),
                     granularity=granularity, generator=gen(10))
    h = torch.randn(8, 5, dtype=f64)
    rows = 8 if granularity == "example" else 1
    tau = (torch.rand((rows, 1), dtype=f64, generator=gen(10)) < 0.7) / 0.7
    out = block(h)
    # torchvision's StochasticDepth: input * noise, noise = bernoulli(survival) / survival,
    # applied to the block's output, then the skip connection
    assert_close(out, tau * F.relu(h @ lin.weight.T) + h)
    assert_close(out, F.relu(tau * (h @ lin.weight.T)) + h)


def test_residual_ard_add_multiplies_both_draws() -> None:
    lin = nn.Linear(4, 4, bias=False).double()
    block = Residual(lin, depth_noise=Gaussian(1.0, 0.3), unit_noise=Rayleigh(1.0),
                     generator=gen(11))
    h = torch.randn(6, 4, dtype=f64)
    replay = gen(11)
    xi = Rayleigh(1.0).to(dtype=f64).sample((6, 4), generator=replay)
    tau = Gaussian(1.0, 0.3).to(dtype=f64).sample((6, 1), generator=replay)
    assert_close(block(h), (tau * h * xi) @ lin.weight.T + h)
    assert block.group_norms().shape == (1,)
