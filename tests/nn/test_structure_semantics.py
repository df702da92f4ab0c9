"""Structure semantics with biases (the paper subsumes biases into the weights).

* ADD: τ multiplies a residual block's whole output, so τ = 0 gives h exactly for any block and
  inverted-Bernoulli ADD is torchvision's ``stochastic_depth`` for biased blocks too;
* conv ``"filter"`` / ``"channel+filter"``: τ_f multiplies the filter's bias as well, so filter
  noise is ``nn.Dropout2d(conv(x))`` for the layer as built (default bias).
"""

from __future__ import annotations

import copy

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.testing import assert_close

from dropprior.nn import NoisyConv2d, Residual
from dropprior.noise import Bernoulli, Gaussian, Rayleigh
from dropprior.pruning import prune

f64 = torch.float64


def gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _biased_block(width: int) -> nn.Sequential:
    torch.manual_seed(width)
    block = nn.Sequential(nn.Linear(width, width), nn.ReLU(), nn.Linear(width, width)).double()
    with torch.no_grad():  # biases large enough that block(0) is far from 0
        for m in block:
            if isinstance(m, nn.Linear):
                m.bias.uniform_(0.5, 1.0)
    return block


def _stochastic_depth(x: torch.Tensor, survival: float, mode: str,
                      generator: torch.Generator) -> torch.Tensor:
    """torchvision.ops.stochastic_depth's documented computation (torchvision cannot be installed
    beside this torch): noise of shape [N] + [1]*(ndim-1) ("row") or [1]*ndim ("batch"),
    bernoulli(survival) / survival, times the input. The Bernoulli draw is dropprior's
    (``rand < keep``), replayed from the same generator."""
    shape = [x.shape[0]] + [1] * (x.ndim - 1) if mode == "row" else [1] * x.ndim
    noise = (torch.rand(shape, dtype=x.dtype, generator=generator) < survival).to(x.dtype)
    return x * noise / survival


@pytest.mark.parametrize(("granularity", "mode"), [("example", "row"), ("batch", "batch")])
def test_bernoulli_add_is_stochastic_depth_for_a_biased_block(granularity, mode) -> None:
    block = _biased_block(5)
    layer = Residual(block, depth_noise=Bernoulli(0.6, inverted=True), granularity=granularity,
                     generator=gen(3))
    h = torch.randn(16, 5, dtype=f64)
    expected = _stochastic_depth(block(h), 0.6, mode, gen(3)) + h
    assert_close(layer(h), expected)


def test_tau_zero_gives_the_input_exactly() -> None:
    block = _biased_block(4)
    layer = Residual(block, depth_noise=Bernoulli(0.5), generator=gen(4))  # τ ∈ {0, 1}
    h = torch.randn(64, 4, dtype=f64)
    out = layer(h)
    off = (torch.rand((64, 1), dtype=f64, generator=gen(4)) >= 0.5).reshape(-1)
    assert 10 < int(off.sum()) < 54
    assert torch.equal(out[off], h[off])  # bit for bit: the block adds nothing
    assert not torch.allclose(out[~off], h[~off])


def test_ard_add_scales_the_output_by_tau_and_the_input_by_xi() -> None:
    block = _biased_block(4)
    layer = Residual(block, depth_noise=Gaussian(1.0, 0.3), unit_noise=Rayleigh(1.0),
                     generator=gen(5))
    h = torch.randn(6, 4, dtype=f64)
    replay = gen(5)
    xi = Rayleigh(1.0).to(dtype=f64).sample((6, 4), generator=replay)
    tau = Gaussian(1.0, 0.3).to(dtype=f64).sample((6, 1), generator=replay)
    assert_close(layer(h), tau * block(h * xi) + h)


def test_eval_replaces_tau_by_its_mean() -> None:
    block = _biased_block(3)
    law = Rayleigh(0.7)
    layer = Residual(block, depth_noise=law).eval()
    h = torch.randn(5, 3, dtype=f64)
    assert_close(layer(h), float(law.mean) * block(h) + h)


def test_pruning_a_biased_add_block_equals_the_zeroed_model() -> None:
    torch.manual_seed(0)
    law = Bernoulli(0.8, inverted=True)
    model = nn.Sequential(nn.Linear(3, 4), nn.ReLU(),
                          Residual(_biased_block(4), depth_noise=law),
                          Residual(_biased_block(4), depth_noise=law),
                          nn.Linear(4, 1)).double()
    with torch.no_grad():
        model[3].block[0].weight.mul_(1e-3)  # the ADD group of block 3 is (nearly) empty
    result = prune(model, threshold=0.05, layers=["2", "3"])
    assert isinstance(result.model[3], nn.Identity)
    assert isinstance(result.model[2], Residual)
    zeroed = copy.deepcopy(model)
    zeroed[3].depth_noise = Gaussian(0.0, 1.0)  # E[τ] = 0: the eval model with τ_3 = 0
    x = torch.randn(20, 3, dtype=f64)
    model.eval(), zeroed.eval(), result.model.eval()
    assert torch.equal(result.model(x), zeroed(x))
    assert not torch.allclose(result.model(x), model(x))  # the block's biases did contribute


def test_filter_noise_is_dropout2d_of_the_biased_conv() -> None:
    conv = NoisyConv2d(3, 5, 3, Bernoulli(0.6, inverted=True), "filter",
                       generator=gen(9)).double()  # default bias=True
    with torch.no_grad():
        conv.bias.uniform_(0.5, 1.0)
    x = torch.randn(4, 3, 7, 7, dtype=f64)
    mask = (torch.rand((4, 5, 1, 1), dtype=f64, generator=gen(9)) < 0.6).to(f64)
    # nn.Dropout2d(conv(x)) with the same channel mask: whole channels zeroed, bias included
    expected = F.conv2d(x, conv.weight, conv.bias) * mask / 0.6
    out = conv(x)
    assert_close(out, expected)
    dropped = mask.reshape(4, 5) == 0
    assert torch.equal(out[dropped], torch.zeros_like(out[dropped]))


@pytest.mark.parametrize("granularity", ["example", "batch"])
def test_channel_plus_filter_scales_the_bias_by_tau(granularity) -> None:
    xi_law, tau_law = Rayleigh(0.8), Gaussian(1.0, 0.5)
    conv = NoisyConv2d(2, 3, 3, xi_law, "channel+filter", granularity=granularity,
                       filter_noise=tau_law, generator=gen(12)).double()
    x = torch.randn(4, 2, 5, 5, dtype=f64)
    lead = 4 if granularity == "example" else 1
    replay = gen(12)
    xi = xi_law.to(dtype=f64).sample((lead, 3, 2), generator=replay)
    tau = tau_law.to(dtype=f64).sample((lead, 3), generator=replay)
    # explicit loop: a_{n,f} = τ_{n,f} (Σ_c conv(X_{n,c}, W_{f,c}) ξ_{n,f,c} + b_f)
    rows = []
    for n in range(4):
        k = n if granularity == "example" else 0
        filters = [tau[k, f] * (sum(F.conv2d(x[n:n + 1, c:c + 1],
                                             conv.weight[f:f + 1, c:c + 1]) * xi[k, f, c]
                                    for c in range(2)) + conv.bias[f])
                   for f in range(3)]
        rows.append(torch.cat(filters, 1))
    assert_close(conv(x), torch.cat(rows))


def test_channel_plus_filter_eval_uses_both_means_around_the_bias() -> None:
    xi_law, tau_law = Gaussian(1.5, 0.2), Rayleigh(1.0)
    conv = NoisyConv2d(2, 3, 3, xi_law, "channel+filter", filter_noise=tau_law).double().eval()
    x = torch.randn(2, 2, 5, 5, dtype=f64)
    expected = float(tau_law.mean) * F.conv2d(x, conv.weight * 1.5, conv.bias)
    assert_close(conv(x), expected)
