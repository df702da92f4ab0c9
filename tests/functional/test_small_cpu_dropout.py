"""Per-element Bernoulli noise on a small CPU tensor from the default generator takes torch's own
dropout steps: the same numbers as ``F.dropout`` under the same seed, forward and backward.
Larger tensors and explicit generators keep the fused kernel's draw."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from dropprior.functional import multiplicative_noise
from dropprior.functional._fused import fused_multiply, fused_plan
from dropprior.functional._multiply import SMALL_CPU_DROPOUT
from dropprior.nn import NoisyLinear
from dropprior.noise import Bernoulli


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("shape", [(32, 8), (7,), (4, 3, 5), (64, 64)])
def test_inverted_bernoulli_is_torch_dropout_bit_for_bit(dtype, shape) -> None:
    x = torch.randn(*shape, dtype=dtype, requires_grad=True)
    upstream = torch.randn(*shape, dtype=dtype)
    torch.manual_seed(11)
    ours = multiplicative_noise(x, Bernoulli(0.75, inverted=True))  # exact in float32 and 64
    (g_ours,) = torch.autograd.grad(ours, x, upstream)
    torch.manual_seed(11)
    want = F.dropout(x, 0.25, training=True)
    (g_want,) = torch.autograd.grad(want, x, upstream)
    torch.testing.assert_close(ours, want, rtol=0, atol=0)
    torch.testing.assert_close(g_ours, g_want, rtol=0, atol=0)
    assert 0 < int((ours == 0).sum()) < x.numel()


def test_plain_bernoulli_is_dropout_times_keep() -> None:
    x = torch.randn(30, 20)
    torch.manual_seed(3)
    ours = multiplicative_noise(x, Bernoulli(0.6))
    torch.manual_seed(3)
    torch.testing.assert_close(ours, F.dropout(x, 0.4, training=True) * 0.6)


def test_noisy_linear_in_training_is_dropout_then_linear() -> None:
    layer = NoisyLinear(8, 5, Bernoulli(0.9, inverted=True)).train()
    x = torch.randn(32, 8)
    torch.manual_seed(5)
    ours = layer(x)
    torch.manual_seed(5)
    torch.testing.assert_close(ours, F.linear(F.dropout(x, 0.1, True), layer.weight, layer.bias),
                               rtol=0, atol=0)


def test_larger_tensors_and_explicit_generators_keep_the_kernel() -> None:
    law = Bernoulli(0.7, inverted=True)
    big = torch.ones(SMALL_CPU_DROPOUT + 1)
    saved: list[torch.Tensor] = []
    x = big.clone().requires_grad_()
    with torch.autograd.graph.saved_tensors_hooks(lambda t: saved.append(t) or t, lambda t: t):
        multiplicative_noise(x, law)
    assert [t.numel() * t.element_size() for t in saved] == [8]  # the kernel's seed
    small = torch.ones(40, 30)
    gen = torch.Generator().manual_seed(4)
    state = gen.get_state()
    ours = multiplicative_noise(small, law, generator=gen)
    gen.set_state(state)
    torch.testing.assert_close(ours, fused_multiply(small, fused_plan(law, small), gen),
                               rtol=0, atol=0)


def test_small_draws_follow_the_law() -> None:
    """Kept fraction within 4 binomial standard errors of π, and kept entries scaled by 1/π."""
    torch.manual_seed(0)
    xi = torch.cat([multiplicative_noise(torch.ones(50, 40), Bernoulli(0.3, inverted=True))
                    for _ in range(50)])
    kept = (xi != 0).double().mean().item()
    assert abs(kept - 0.3) < 4 * (0.3 * 0.7 / xi.numel()) ** 0.5
    torch.testing.assert_close(xi[xi != 0], torch.full_like(xi[xi != 0], 1 / 0.3))


def test_keep_one_returns_a_new_tensor_equal_to_x() -> None:
    """At π = 1 the small path still returns a fresh tensor (torch's dropout at p = 0 would
    return x itself), so writing into the output leaves x alone."""
    x = torch.randn(6, 4)
    out = multiplicative_noise(x, Bernoulli(1.0, inverted=True))
    torch.testing.assert_close(out, x, rtol=0, atol=0)
    out.zero_()
    assert bool((x != 0).all())


def test_bad_structure_on_the_small_path_is_still_rejected() -> None:
    with pytest.raises(ValueError, match="structure"):
        multiplicative_noise(torch.ones(3, 4), Bernoulli(0.5, inverted=True), "units")
    with pytest.raises(ValueError, match="rank >= 1"):
        multiplicative_noise(torch.tensor(1.0), Bernoulli(0.5, inverted=True), "unit")
