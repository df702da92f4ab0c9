"""Replayable gamma draws (``dropprior.noise._gamma``): the replay rebuilds the draw bit for bit
from the generator state and the patch, the patch stays under one byte per element, and the
draws (including the 8-bit acceptance test and its tie-break) follow scipy's Gamma law."""

from __future__ import annotations

import pytest
import torch
from scipy import stats

from dropprior.functional import multiplicative_noise
from dropprior.noise import Beta, InverseNakagami
from dropprior.noise._gamma import draw_gammas, replay_gammas

ALPHA = 1e-3


def _draw_and_replay(alphas: list[torch.Tensor], shape: tuple[int, ...], seed: int):
    gen = torch.Generator().manual_seed(seed)
    state = gen.get_state()
    drawn, patch = draw_gammas(alphas, torch.Size(shape), gen)
    gen.set_state(state)
    return drawn, replay_gammas(alphas, torch.Size(shape), gen, patch), patch


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("shape", [0.3, 1.0, 2.0, 7.5])
def test_replay_is_bit_identical(shape: float, dtype: torch.dtype) -> None:
    (g,), (again,), _ = _draw_and_replay([torch.tensor(shape, dtype=dtype)], (300, 700), 0)
    assert again.dtype == dtype and torch.equal(g, again)


def test_replay_with_per_entry_concentrations_and_two_requests() -> None:
    a = torch.tensor([0.4, 1.0, 3.0])
    b = torch.tensor(2.0)
    (g1, g2), (r1, r2), patch = _draw_and_replay([a, b], (40_000, 3), 1)
    assert torch.equal(g1, r1) and torch.equal(g2, r2)
    assert len(patch) == 4


@pytest.mark.parametrize("shape", [1.0, 2.0])
def test_patch_is_the_rejected_share_and_under_one_byte_per_element(shape: float) -> None:
    """Marsaglia–Tsang rejects ~4.9% of first proposals at α = 1 and ~1.8% at α = 2: the patch
    holds those entries only (8 bytes each)."""
    n = 400_000
    (_,), (_,), (index, value) = _draw_and_replay([torch.tensor(shape)], (n,), 2)
    share = index.numel() / n
    expected = {1.0: 0.049, 2.0: 0.018}[shape]
    assert abs(share - expected) < 0.005
    assert index.dtype == torch.int32 and value.numel() == index.numel()
    assert (index.numel() * 4 + value.numel() * 4) / n < 1.0


@pytest.mark.parametrize("shape", [0.5, 1.0, 2.0, 5.0])
def test_draws_fit_scipy_gamma_and_reject_a_two_percent_scale_error(shape: float) -> None:
    """10⁶ draws: a KS test that accepts Gamma(α) and rejects the same draws scaled by 1.02 (a
    wrong acceptance rule, e.g. ties always accepted, would bias the law at this size)."""
    (g,), patch = draw_gammas([torch.tensor(shape, dtype=torch.float64)],
                              torch.Size((1_000_000,)), torch.Generator().manual_seed(3))
    x = g.numpy()
    ref = stats.gamma(shape).cdf
    assert stats.kstest(x, ref).pvalue > ALPHA
    assert stats.kstest(x * 1.02, ref).pvalue < ALPHA


@pytest.mark.parametrize("law", [InverseNakagami(shape=2.0, spread=1.0),
                                 InverseNakagami(shape=0.7, spread=1.5), Beta(2.0, 3.0),
                                 Beta(0.5, 2.0)], ids=repr)
def test_law_replay_equals_its_recorded_draw(law) -> None:
    gen = torch.Generator().manual_seed(4)
    state = gen.get_state()
    xi, record = law.sample_with_record((500, 64), gen)
    gen.set_state(state)
    assert torch.equal(law.replay((500, 64), gen, record), xi)
    gen.set_state(state)
    assert torch.equal(law.sample((500, 64), gen), xi)


def test_layer_backward_uses_the_forward_draw_and_saves_under_one_byte() -> None:
    """d(x·ξ)/dx = ξ: the gradient of the sum equals y/x entrywise, and what autograd keeps
    (saved_tensors_hooks) is the patch only."""
    x = torch.rand(256, 512, dtype=torch.float64).add_(0.5).requires_grad_()
    law = InverseNakagami(shape=1.0, spread=1.0)
    saved = 0

    def pack(t: torch.Tensor) -> torch.Tensor:
        nonlocal saved
        saved += t.numel() * t.element_size()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        y = multiplicative_noise(x, law, generator=torch.Generator().manual_seed(5))
    y.sum().backward()
    torch.testing.assert_close(x.grad, (y / x).detach(), rtol=1e-12, atol=0)
    assert 0 < saved / x.numel() < 1.0


def test_empty_draws_and_their_replay() -> None:
    """A zero-size batch draws nothing, replays nothing and passes gradients of size zero."""
    (g,), (again,), patch = _draw_and_replay([torch.tensor(2.0)], (0, 5), 6)
    assert g.shape == again.shape == (0, 5) and patch[0].numel() == 0
    assert Beta(2.0, 2.0).sample((0,)).shape == (0,)
    x = torch.ones(0, 4, requires_grad=True)
    multiplicative_noise(x, InverseNakagami(shape=2.0, spread=1.0)).sum().backward()
    assert x.grad is not None and x.grad.shape == (0, 4)
