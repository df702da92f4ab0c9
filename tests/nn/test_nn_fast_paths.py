"""The speed paths of the layers keep their behaviour: the hand-written local-reparametrization
backward against autograd of the plain formula, the regenerated draw against ``law.sample``, and
``torch.compile`` (fullgraph) for every law, including the gamma-based ones whose eager sampler
has a data-dependent rejection loop."""

from __future__ import annotations

import pytest
import torch
from _nn_laws import LAWS
from torch.testing import assert_close

from dropprior.functional import local_reparam_linear, multiplicative_noise
from dropprior.nn import NoisyLinear
from dropprior.noise import Beta, Gaussian

f64 = torch.float64


def gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _plain_local_reparam(x, weight, bias, mean, std, eps):
    """μ x Wᵀ + b + s √(x² (W²)ᵀ) ε with autograd through every op (the reference)."""
    var = torch.nn.functional.linear(x.square(), weight.square())
    return mean * (x @ weight.T) + bias + std * var.sqrt() * eps


@pytest.mark.parametrize(("mean", "std"), [(1.0, 0.5), (-0.4, 2.0)])
def test_local_reparam_forward_and_backward_match_autograd_of_the_formula(mean, std) -> None:
    x = torch.randn(7, 5, dtype=f64, generator=gen(1)).requires_grad_(True)
    weight = torch.randn(3, 5, dtype=f64, generator=gen(2)).requires_grad_(True)
    bias = torch.randn(3, dtype=f64, generator=gen(3)).requires_grad_(True)
    law = Gaussian(torch.tensor(mean, dtype=f64), torch.tensor(std, dtype=f64))
    y = local_reparam_linear(x, weight, bias, law, generator=gen(4))
    eps = torch.randn(7, 3, dtype=f64, generator=gen(4))
    ref = _plain_local_reparam(x, weight, bias, mean, std, eps)
    assert_close(y, ref)
    upstream = torch.randn(7, 3, dtype=f64, generator=gen(5))
    got = torch.autograd.grad(y, (x, weight, bias), upstream)
    want = torch.autograd.grad(ref, (x, weight, bias), upstream)
    for g, w in zip(got, want, strict=True):
        assert_close(g, w)


def test_local_reparam_gradcheck_and_leading_dims() -> None:
    x = torch.randn(2, 4, 5, dtype=f64, generator=gen(6)).requires_grad_(True)
    weight = torch.randn(3, 5, dtype=f64, generator=gen(7)).requires_grad_(True)
    law = Gaussian(torch.tensor(0.8, dtype=f64), torch.tensor(0.3, dtype=f64))

    def f(x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        return local_reparam_linear(x, w, None, law, generator=gen(8))

    assert f(x, weight).shape == (2, 4, 3)
    assert torch.autograd.gradcheck(f, (x, weight))


def test_local_reparam_with_learned_noise_uses_autograd() -> None:
    """Noise parameters that require grad get gradients (the plain differentiable path)."""
    std = torch.tensor(0.5, dtype=f64, requires_grad=True)
    law = Gaussian(torch.tensor(1.0, dtype=f64), std)
    x = torch.randn(6, 4, dtype=f64, generator=gen(9))
    weight = torch.randn(2, 4, dtype=f64, generator=gen(10))
    y = local_reparam_linear(x, weight, None, law, generator=gen(11))
    (grad,) = torch.autograd.grad(y.sum(), std)
    eps = torch.randn(6, 2, dtype=f64, generator=gen(11))
    want = (torch.nn.functional.linear(x.square(), weight.square()).sqrt() * eps).sum()
    assert_close(grad, want)


@pytest.mark.parametrize("law_name", sorted(set(LAWS) - {"bernoulli"}))  # bernoulli: bool mask
def test_regenerated_draw_equals_law_sample_in_forward_and_backward(law_name: str) -> None:
    """x ⊙ ξ and its input gradient use exactly ``law.sample(shape, generator)`` on the general
    path (noise of another shape than x's: per-batch draws here; x-shaped float32 noise takes the
    fused kernel)."""
    law = LAWS[law_name]
    x = torch.randn(6, 5, generator=gen(12)).requires_grad_(True)
    y = multiplicative_noise(x, law, "unit", granularity="batch", generator=gen(13))
    xi = law.sample((1, 5), generator=gen(13))
    assert_close(y, x.detach() * xi, rtol=0, atol=0)
    upstream = torch.randn(6, 5, generator=gen(14))
    (grad,) = torch.autograd.grad(y, x, upstream)
    assert_close(grad, upstream * xi, rtol=0, atol=0)


def test_torch_compile_fullgraph_for_every_law(law_name: str) -> None:
    """fullgraph=True raises on any graph break: every sampler must trace (the gamma laws fall
    back to torch's ``_standard_gamma`` under the compiler, with no data-dependent branch)."""
    model = NoisyLinear(4, 3, LAWS[law_name])
    compiled = torch.compile(model, fullgraph=True, backend="eager")
    x = torch.randn(5, 4, requires_grad=True)
    y = compiled(x)
    y.sum().backward()
    assert y.shape == (5, 3)
    assert x.grad is not None and bool(torch.isfinite(x.grad).all())


def test_torch_compile_beta_with_small_concentration() -> None:
    """Beta with a concentration < 1 (the log-space boost) also traces without graph breaks."""
    law = Beta(0.5, 2.0)
    compiled = torch.compile(lambda t: multiplicative_noise(t, law, "unit"), fullgraph=True,
                             backend="eager")
    y = compiled(torch.ones(64, 8))
    assert bool(((y >= 0) & (y <= 1)).all())
