"""StackedNoisyLinear: network g is exactly NoisyLinear with g's law and generator (the
reference is the library's own layer, given a generator in the same state), and each network's
noise follows its own law (scipy)."""

from __future__ import annotations

import pytest
import torch
from scipy import stats

from dropprior.functional import fused_plan, fused_sample, fused_sample_blocks
from dropprior.nn import NoisyLinear, StackedNoisyLinear, mc
from dropprior.noise import Bernoulli, Beta, Gaussian, InverseNakagami, Rayleigh

_SHARED = Bernoulli(0.7, inverted=True)
LAW_SETS = {
    "distinct": [Bernoulli(0.7, inverted=True), Rayleigh(0.8), InverseNakagami(2.3, 1.0)],
    "shared, apart": [_SHARED, Rayleigh(0.8), _SHARED],  # one fused call, not a run of rows
    "no kernel": [Rayleigh(0.8), Beta(0.3, 2.0), Rayleigh(0.8)],  # Beta(0.3, 2): general path
    # distinct objects with equal parameters: one fused call, rows 0 and 2
    "equal, apart": [Bernoulli(0.7, inverted=True), Rayleigh(0.8),
                     Bernoulli(0.7, inverted=True)],
}


def _stack(structure: str, dtype: torch.dtype, laws: list | None = None) -> StackedNoisyLinear:
    laws = LAW_SETS["distinct"] if laws is None else laws
    gens = [torch.Generator().manual_seed(10 + g) for g in range(3)]
    layer = StackedNoisyLinear(3, 5, 4, laws, structure, gens, dtype=dtype)
    with torch.no_grad():
        layer.weight.normal_(generator=torch.Generator().manual_seed(0))
        layer.bias.normal_(generator=torch.Generator().manual_seed(1))
    return layer


@pytest.mark.parametrize("structure", ["unit", "weight"])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("laws", list(LAW_SETS))
def test_each_network_is_its_noisy_linear(structure: str, dtype: torch.dtype, laws: str) -> None:
    x = torch.randn(3, 11, 5, dtype=dtype, generator=torch.Generator().manual_seed(2))
    layer = _stack(structure, dtype, LAW_SETS[laws])
    states = [g.get_state() for g in layer.generators]  # type: ignore[union-attr]
    out = layer(x)  # train mode: draws
    for g in range(3):
        single = NoisyLinear(5, 4, layer.laws[g], structure, dtype=dtype,
                             generator=torch.Generator().set_state(states[g]))
        with torch.no_grad():
            single.weight.copy_(layer.weight[g])
            single.bias.copy_(layer.bias[g])
        torch.testing.assert_close(out[g], single(x[g]), rtol=1e-6, atol=1e-6)
        single.eval()
        torch.testing.assert_close(layer.eval()(x)[g], single(x[g]), rtol=1e-6, atol=1e-6)
        layer.train()
    with mc(layer.eval()):  # mc() samples in eval mode
        assert not torch.allclose(layer(x), layer(x))


def test_each_network_draws_from_its_own_law() -> None:
    laws = [Bernoulli(0.7, inverted=True), Gaussian(1.0, 0.5), Rayleigh(0.8)]
    layer = StackedNoisyLinear(3, 40, 40, laws, generators=[
        torch.Generator().manual_seed(g) for g in range(3)], dtype=torch.float64)
    with torch.no_grad():
        layer.weight.copy_(torch.eye(40, dtype=torch.float64).expand(3, 40, 40))
    x = torch.ones(3, 2000, 40, dtype=torch.float64)
    xi = layer(x).detach()  # identity weights, zero bias: the noise itself
    kept = (xi[0] > 0).double().mean()
    assert abs(float(kept) - 0.7) < 0.005  # 80 000 draws: s.e. 0.0016
    assert torch.allclose(torch.unique(xi[0]), torch.tensor([0.0, 1 / 0.7], dtype=xi.dtype))
    assert stats.kstest(xi[1].flatten().numpy(), stats.norm(1.0, 0.5).cdf).pvalue > 1e-3
    assert stats.kstest(xi[2].flatten().numpy(), stats.rayleigh(scale=0.8).cdf).pvalue > 1e-3
    assert stats.kstest(xi[2].flatten().numpy(), stats.rayleigh(scale=0.9).cdf).pvalue < 1e-6


def test_bad_stacks_are_refused() -> None:
    law = Bernoulli(0.5)
    with pytest.raises(ValueError, match=r"laws must hold one law per network \(3\), got 2"):
        StackedNoisyLinear(3, 2, 2, [law, law])
    with pytest.raises(ValueError, match="n_networks must be a positive int, got 0"):
        StackedNoisyLinear(0, 2, 2, law)
    with pytest.raises(ValueError, match="structure"):
        StackedNoisyLinear(2, 2, 2, law, structure="channel")
    with pytest.raises(ValueError, match=r"generators must hold one generator per network"):
        StackedNoisyLinear(2, 2, 2, law, generators=[torch.Generator()])
    with pytest.raises(ValueError, match=r"expects input of shape \(2, B, 2\), got \(3, 4, 2\)"):
        StackedNoisyLinear(2, 2, 2, law)(torch.zeros(3, 4, 2))
    with pytest.raises(TypeError, match="laws\\[1\\] must be a dropprior.noise.NoiseLaw"):
        StackedNoisyLinear(2, 2, 2, [law, 0.5])  # type: ignore[list-item]


@pytest.mark.parametrize("law", [Bernoulli(0.9, inverted=True), Rayleigh(0.7),
                                 InverseNakagami(2.3, 1.0)])
def test_block_draws_are_each_generators_fused_draw(law) -> None:
    out = torch.empty(5, 33, 7)
    plan = fused_plan(law, out)
    assert plan is not None
    fused_sample_blocks(out, plan, [torch.Generator().manual_seed(g) for g in range(5)])
    for g in range(5):
        alone = fused_sample(torch.empty(33, 7), plan, torch.Generator().manual_seed(g))
        assert torch.equal(out[g], alone)
    with pytest.raises(ValueError, match="one block per generator"):
        fused_sample_blocks(out, plan, [torch.Generator()])


def test_laws_with_equal_parameters_share_one_kernel_call(monkeypatch) -> None:
    """A grid of 12 networks over 3 keep probabilities, each network its own law object: three
    block calls per draw (one per distinct law), and every network still equals its own
    NoisyLinear."""
    import dropprior.nn.stacked as stacked

    calls: list[int] = []
    real = stacked.fused_sample_blocks

    def counting(out, plan, gens):
        calls.append(len(gens))
        return real(out, plan, gens)

    monkeypatch.setattr(stacked, "fused_sample_blocks", counting)
    keeps = [0.9, 0.8, 0.7] * 4
    laws = [Bernoulli(k, inverted=True) for k in keeps]
    gens = [torch.Generator().manual_seed(50 + g) for g in range(12)]
    layer = StackedNoisyLinear(12, 5, 4, laws, "unit", gens)
    x = torch.randn(12, 9, 5, generator=torch.Generator().manual_seed(4))
    states = [g.get_state() for g in gens]
    out = layer(x)
    assert sorted(calls) == [4, 4, 4]
    for g in range(12):
        single = NoisyLinear(5, 4, laws[g], "unit", generator=torch.Generator().set_state(
            states[g]))
        with torch.no_grad():
            single.weight.copy_(layer.weight[g])
            single.bias.copy_(layer.bias[g])
        torch.testing.assert_close(out[g], single(x[g]), rtol=0, atol=0)


@pytest.mark.parametrize("max_elements", [1 << 22, 300, 7])  # 4, 2, 1 per call
def test_stacked_dropconnect_draws_what_dropconnect_linear_draws(max_elements: int) -> None:
    """The grouped draw (chunks of examples, networks split across kernel calls when a chunk's
    Ξ exceeds max_elements) against dropconnect_linear network by network, from generators in
    the same states: values and gradients; over the saved limit with a gradient, None."""
    from dropprior.functional import dropconnect_linear, stacked_dropconnect

    law = Bernoulli(0.7, inverted=True)
    x = torch.randn(4, 9, 5, generator=torch.Generator().manual_seed(3), requires_grad=True)
    w = torch.randn(4, 3, 5, generator=torch.Generator().manual_seed(4), requires_grad=True)
    plan = fused_plan(law, x)
    assert plan is not None
    gens = [torch.Generator().manual_seed(20 + g) for g in range(4)]
    states = [g.get_state() for g in gens]
    y = stacked_dropconnect(x, w, plan, gens, max_elements=max_elements)
    assert y is not None
    ref = torch.stack([dropconnect_linear(x[g], w[g], None, law, generator=torch.Generator()
                                          .set_state(states[g]), max_elements=max_elements)
                       for g in range(4)])
    torch.testing.assert_close(y, ref)
    grad = torch.randn(4, 9, 3)
    torch.testing.assert_close(torch.autograd.grad(y, (x, w), grad),
                               torch.autograd.grad(ref, (x, w), grad))
    assert stacked_dropconnect(x, w, plan, gens, saved_limit=4 * 9 * 15 - 1) is None
    with torch.no_grad():
        assert stacked_dropconnect(x, w, plan, gens, saved_limit=1) is not None


@pytest.mark.parametrize("laws", list(LAW_SETS))
def test_weight_structure_gradients_are_each_networks(laws: str) -> None:
    """DropConnect's grouped path: the gradients in the stacked weights and biases are those
    of each network's NoisyLinear given the same draw."""
    x = torch.randn(3, 11, 5, generator=torch.Generator().manual_seed(2))
    layer = _stack("weight", torch.float32, LAW_SETS[laws])
    states = [g.get_state() for g in layer.generators]  # type: ignore[union-attr]
    grad = torch.randn(3, 11, 4, generator=torch.Generator().manual_seed(5))
    gw, gb = torch.autograd.grad(layer(x), (layer.weight, layer.bias), grad)
    for g in range(3):
        single = NoisyLinear(5, 4, layer.laws[g], "weight",
                             generator=torch.Generator().set_state(states[g]))
        with torch.no_grad():
            single.weight.copy_(layer.weight[g])
            single.bias.copy_(layer.bias[g])
        sw, sb = torch.autograd.grad(single(x[g]), (single.weight, single.bias), grad[g])
        torch.testing.assert_close(gw[g], sw)
        torch.testing.assert_close(gb[g], sb)
