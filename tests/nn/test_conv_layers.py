"""NoisyConv1d/2d against explicit loops and torch's Dropout2d given the same draw."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch.testing import assert_close

from dropprior.nn import (
    NoisyConv1d,
    NoisyConv2d,
)
from dropprior.noise import Bernoulli, Gaussian, Rayleigh

f64 = torch.float64


def gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


# ---- convolutions ---------------------------------------------------------------------------

def _pair_reference(x, weight, scales):
    """a_{n,f} = Σ_c conv(X_{n,c}, W_{f,c}) s_{n,f,c}: a loop over (example, filter, channel)."""
    n, c = x.shape[:2]
    out = []
    for i in range(n):
        filters = []
        for f in range(weight.shape[0]):
            acc = sum(F.conv2d(x[i:i + 1, ch:ch + 1], weight[f:f + 1, ch:ch + 1] * scales[i, f, ch])
                      for ch in range(c))
            filters.append(acc)
        out.append(torch.cat(filters, 1))
    return torch.cat(out)


@pytest.mark.parametrize("structure", ["channel", "channel+filter", "weight"])
def test_conv_pair_and_weight_noise_equal_an_explicit_loop(structure) -> None:
    law = Rayleigh(0.8)
    conv = NoisyConv2d(3, 4, 3, law, structure, bias=False, generator=gen(8)).double()
    x = torch.randn(2, 3, 6, 6, dtype=f64)
    replay, law64 = gen(8), law.to(dtype=f64)
    kernel = (3, 3) if structure == "weight" else (1, 1)
    scales = law64.sample((2, 4, 3, *kernel), generator=replay)
    if structure == "channel+filter":
        scales = scales * law64.sample((2, 4, 1, 1, 1), generator=replay)
    assert_close(conv(x), _pair_reference(x, conv.weight, scales))


def test_conv_filter_is_dropout2d_on_the_output() -> None:
    conv = NoisyConv2d(3, 5, 3, Bernoulli(0.6, inverted=True), "filter", bias=False,
                       generator=gen(9)).double()
    x = torch.randn(4, 3, 7, 7, dtype=f64)
    y = conv(x)
    mask = torch.rand((4, 5, 1, 1), dtype=f64, generator=gen(9)) < 0.6
    # nn.Dropout2d's semantics: whole output channels zeroed, survivors scaled by 1/(1-p)
    assert_close(y, F.conv2d(x, conv.weight) * mask / 0.6)


def test_conv1d_channel_runs_and_eval_uses_the_mean() -> None:
    conv = NoisyConv1d(2, 3, 3, Gaussian(1.0, 0.3), "channel", padding=1)
    x = torch.randn(4, 2, 10)
    assert conv(x).shape == (4, 3, 10)
    conv.eval()
    assert_close(conv(x), F.conv1d(x, conv.weight, conv.bias, padding=1))
