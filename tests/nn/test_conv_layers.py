"""NoisyConv1d/2d against explicit loops and torch's Dropout2d given the same draw."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from _nn_laws import LAWS, assert_moments
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



@pytest.mark.parametrize("name", ["bernoulli", "rayleigh", "inverse_nakagami"])
def test_float32_conv_dropconnect_draws_by_the_fused_kernel(name) -> None:
    """In float32 on the CPU the per-example Ξ of structure "weight" is the fused kernel's draw
    (one seed from the layer's generator): values and gradients against autograd on explicit
    per-example convolutions with that Ξ, and the outputs' moments against the law's."""
    from dropprior.functional import fused_plan, fused_sample

    law = LAWS[name]
    conv = NoisyConv2d(2, 3, 3, law, "weight", generator=gen(4))
    x = torch.randn(5, 2, 6, 6, requires_grad=True)
    y = conv(x)
    g = torch.randn_like(y)
    gx, gw, gb = torch.autograd.grad(y, (x, conv.weight, conv.bias), g)
    xi = torch.empty(5, 3, 2, 3, 3)
    plan = fused_plan(law, xi)
    assert plan is not None
    fused_sample(xi, plan, gen(4))
    ref = torch.cat([F.conv2d(x[n:n + 1], conv.weight * xi[n], conv.bias) for n in range(5)])
    rx, rw, rb = torch.autograd.grad(ref, (x, conv.weight, conv.bias), g)
    for ours, theirs in ((y, ref), (gx, rx), (gw, rw), (gb, rb)):
        assert_close(ours, theirs, rtol=1e-5, atol=1e-5)
    # E[y] = E[ξ] conv(x, W) + b and Var[y] = Var[ξ] conv(x², W²), within 6 s.e.
    n = 20000
    xs = torch.randn(1, 2, 3, 3).expand(n, 2, 3, 3)
    with torch.no_grad():
        ys = conv(xs).double().reshape(n, -1)
        w = conv.weight.detach()
        mean = (law.mean * F.conv2d(xs[:1], w) + conv.bias.detach().reshape(1, 3, 1, 1))
        var = law.variance * F.conv2d(xs[:1] ** 2, w**2)
    assert_moments(ys, mean.double().reshape(-1), var.double().reshape(-1))

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
