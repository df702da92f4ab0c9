"""NoisyLinear against torch given the same draw: dropout then linear, exact DropConnect."""

from __future__ import annotations

import pytest
import scipy.stats
import torch
import torch.nn.functional as F
from _nn_laws import LAWS, assert_moments
from torch.testing import assert_close

from dropprior.functional import dropconnect_linear
from dropprior.nn import (
    NoisyLinear,
)
from dropprior.noise import Bernoulli, Gaussian

f64 = torch.float64


def gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


# ---- NoisyLinear ----------------------------------------------------------------------------

def test_linear_unit_is_dropout_then_linear() -> None:
    layer = NoisyLinear(6, 4, Bernoulli(0.7, inverted=True), generator=gen(1)).double()
    x = torch.randn(9, 6, dtype=f64)
    mask = torch.rand((9, 6), dtype=f64, generator=gen(1)) < 0.7  # the layer's draw, replayed
    assert_close(layer(x), F.linear(x * mask / 0.7, layer.weight, layer.bias))


@pytest.mark.parametrize("name", ["bernoulli", "gaussian", "inverse_nakagami"])
def test_exact_dropconnect_equals_explicit_per_example_weights(name) -> None:
    """Chunked forward and regenerated backward against autograd on explicit Ξ_n ⊙ W."""
    law = LAWS[name].to(dtype=f64)
    x = torch.randn(7, 5, dtype=f64, requires_grad=True)
    w = torch.randn(3, 5, dtype=f64, requires_grad=True)
    y = dropconnect_linear(x, w, None, law, generator=gen(2), max_elements=40)  # 3 chunks
    g = torch.randn(7, 3, dtype=f64)
    gx, gw = torch.autograd.grad(y, (x, w), g)
    replay = gen(2)  # chunks of 2 examples, drawn in order
    xi = torch.cat([law.sample((e - s, 3, 5), generator=replay)
                    for s, e in [(0, 2), (2, 4), (4, 6), (6, 7)]])
    ref = torch.einsum("ni,noi->no", x, xi * w)
    rx, rw = torch.autograd.grad(ref, (x, w), g)
    assert_close(y, ref)
    assert_close(gx, rx)
    assert_close(gw, rw)


@pytest.mark.parametrize("name", ["bernoulli", "rayleigh", "inverse_nakagami"])
def test_float32_dropconnect_draws_by_the_fused_kernel(name) -> None:
    """In float32 on the CPU each chunk's Ξ is the fused kernel's draw (one seed from the
    generator per chunk), replayed in backward: against autograd on explicit Ξ_n ⊙ W."""
    from dropprior.functional import fused_plan, fused_sample

    law = LAWS[name]
    x = torch.randn(7, 5, requires_grad=True)
    w = torch.randn(3, 5, requires_grad=True)
    y = dropconnect_linear(x, w, None, law, generator=gen(2), max_elements=40)  # 4 chunks
    g = torch.randn(7, 3)
    gx, gw = torch.autograd.grad(y, (x, w), g)
    replay = gen(2)
    chunks = [torch.empty(e - s, 3, 5) for s, e in [(0, 2), (2, 4), (4, 6), (6, 7)]]
    plan = fused_plan(law, chunks[0])
    assert plan is not None
    xi = torch.cat([fused_sample(c, plan, replay) for c in chunks])
    ref = torch.einsum("ni,noi->no", x, xi * w)
    rx, rw = torch.autograd.grad(ref, (x, w), g)
    assert_close(y, ref)
    assert_close(gx, rx)
    assert_close(gw, rw)
    # the draws follow the law: E[y] = E[ξ] x Wᵀ and Var[y] = Var[ξ] x² (W²)ᵀ within 6 s.e.
    xs = torch.randn(1, 5).expand(20000, 5)
    with torch.no_grad():
        ys = dropconnect_linear(xs, w, None, law, generator=gen(3)).double()
    mean = law.mean.double() * (xs[0] @ w.T).double()
    var = law.variance.double() * (xs[0] ** 2 @ (w**2).T).double()
    assert_moments(ys, mean, var)


def test_local_reparam_matches_exact_dropconnect_in_distribution() -> None:
    law = Gaussian(1.0, 0.6)
    exact = NoisyLinear(8, 3, law, "weight", generator=gen(3)).double()
    local = NoisyLinear(8, 3, law, "weight", local_reparam=True, generator=gen(4)).double()
    local.load_state_dict(exact.state_dict())
    x = torch.randn(1, 8, dtype=f64).expand(4000, 8)
    with torch.no_grad():
        a, b = exact(x), local(x)
        wrong = NoisyLinear(8, 3, Gaussian(1.0, 0.9), "weight", generator=gen(5)).double()
        wrong.load_state_dict(exact.state_dict())
        c = wrong(x)
    for o in range(3):
        assert scipy.stats.ks_2samp(a[:, o], b[:, o]).pvalue > 1e-3
        assert scipy.stats.ks_2samp(c[:, o], b[:, o]).pvalue < 1e-6  # the test has power


def test_linear_batch_dropconnect_shares_one_mask() -> None:
    layer = NoisyLinear(4, 2, Bernoulli(0.5), "weight", "batch", bias=False, generator=gen(6))
    x = torch.randn(1, 4).expand(5, 4)
    y = layer(x)
    assert_close(y, y[:1].expand_as(y))
