"""The functional core: noise shapes, equivalence with torch's dropout, memory, bad input."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch.testing import assert_close

from dropprior.functional import draw_generator, multiplicative_noise, noise_shape
from dropprior.noise import (
    Bernoulli,
    Gaussian,
    HalfCauchy,
    InverseNakagami,
    example_laws,
    registered_laws,
)

LAWS = example_laws()


def test_law_table_covers_every_registered_law() -> None:
    assert set(LAWS) == set(registered_laws())


@pytest.mark.parametrize(
    ("shape", "structure", "granularity", "expected"),
    [
        ((8, 5), "unit", "example", (8, 5)),
        ((8, 5), "unit", "batch", (1, 5)),
        ((7, 8, 5), "unit", "sequence", (1, 8, 5)),
        ((8, 3, 4, 4), "channel", "example", (8, 3, 1, 1)),
        ((8, 3, 4, 4), "channel", "batch", (1, 3, 1, 1)),
        ((8, 3, 4), "layer", "example", (8, 1, 1)),
        ((8, 3, 4), "layer", "batch", (1, 1, 1)),
        ((7, 8, 5), "layer", "sequence", (1, 8, 1)),
    ],
)
def test_noise_shape_rules(shape, structure, granularity, expected) -> None:
    assert noise_shape(shape, structure, granularity) == expected


def test_sequence_with_batch_first() -> None:
    assert noise_shape((8, 7, 5), "unit", "sequence", time_dim=1) == (8, 1, 5)


def test_bernoulli_unit_equals_f_dropout_with_the_same_mask() -> None:
    torch.manual_seed(0)
    x = torch.randn(64, 32, dtype=torch.float64)
    reference = F.dropout(x, p=0.3, training=True)
    mask = reference != 0  # x has no zeros almost surely
    law = Bernoulli(0.7, inverted=True)
    ours = multiplicative_noise(x, law, "unit", sample=mask.double() / 0.7)
    assert_close(ours, reference)


def test_bernoulli_channel_equals_dropout2d_with_the_same_mask() -> None:
    torch.manual_seed(1)
    y = torch.randn(6, 5, 4, 4, dtype=torch.float64)
    reference = torch.nn.Dropout2d(p=0.4)(y)
    mask = (reference != 0)[:, :, :1, :1]
    # nn.Dropout2d zeroes whole channels: the mask is constant across space
    assert torch.equal((reference != 0), mask.expand_as(y))
    ours = multiplicative_noise(y, Bernoulli(0.6, inverted=True), "channel",
                                sample=mask.double() / 0.6)
    assert_close(ours, reference)


def _torchvision_stochastic_depth(x, p, mode, noise):
    """torchvision.ops.stochastic_depth (v0.15+), its documented code path given the Bernoulli
    draw ``noise`` of size [N] + [1]*(ndim-1) (mode="row") or [1]*ndim (mode="batch"):
    ``survival_rate = 1 - p; noise = bernoulli_(survival_rate); noise.div_(survival_rate);
    return input * noise``. torchvision is not installable next to this torch."""
    size = [x.shape[0]] + [1] * (x.ndim - 1) if mode == "row" else [1] * x.ndim
    assert list(noise.shape) == size
    survival_rate = 1.0 - p
    return x * (noise / survival_rate)


@pytest.mark.parametrize(("mode", "granularity"), [("row", "example"), ("batch", "batch")])
def test_layer_structure_equals_stochastic_depth(mode, granularity) -> None:
    g = torch.Generator().manual_seed(3)
    x = torch.randn(16, 4, 3)
    shape = noise_shape(tuple(x.shape), "layer", granularity)
    bern = (torch.rand(shape, generator=g) < 0.8).float()
    ours = multiplicative_noise(x, Bernoulli(0.8, inverted=True), "layer", granularity,
                                sample=bern / 0.8)
    assert_close(ours, _torchvision_stochastic_depth(x, 0.2, mode, bern))


def test_eval_mode_multiplies_by_the_mean(law_name) -> None:
    law = LAWS[law_name]
    x = torch.randn(5, 4, dtype=torch.float64)
    if law_name == "half_cauchy":
        with pytest.raises(ValueError, match="infinite.*mc\\(model\\)"):
            multiplicative_noise(x, law, training=False)
        return
    assert_close(multiplicative_noise(x, law, training=False), x * law.mean.double())


def test_generator_pins_the_draw(law_name) -> None:
    x = torch.randn(10, 6)
    law = LAWS[law_name]
    a = multiplicative_noise(x, law, generator=torch.Generator().manual_seed(5))
    b = multiplicative_noise(x, law, generator=torch.Generator().manual_seed(5))
    c = multiplicative_noise(x, law, generator=torch.Generator().manual_seed(6))
    assert torch.equal(a, b)
    assert not torch.equal(a, c)


def test_regenerated_gradient_is_the_forward_draw(law_name) -> None:
    """Backward regenerates ξ from the saved generator state: grad x = ξ must hold exactly."""
    x = torch.rand(40, 30, dtype=torch.float64) + 0.5
    x.requires_grad_(True)
    y = multiplicative_noise(x, LAWS[law_name], generator=torch.Generator().manual_seed(2))
    y.backward(torch.ones_like(y))
    assert_close(x.grad, y.detach() / x.detach())


def test_global_seed_pins_the_draw() -> None:
    x = torch.randn(10, 6)
    torch.manual_seed(11)
    a = multiplicative_noise(x, Gaussian(1.0, 0.5))
    torch.manual_seed(11)
    assert torch.equal(a, multiplicative_noise(x, Gaussian(1.0, 0.5)))


def _saved_bytes(fn, x):
    total = [0]

    def pack(t):
        if t is not x:  # the input itself is alive anyway
            total[0] += t.numel() * t.element_size()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        fn(x)
    return total[0]


@pytest.mark.parametrize("name", ["bernoulli", "gaussian", "inverse_nakagami"])
def test_activation_memory_at_most_one_byte_per_element(name) -> None:
    x = torch.randn(256, 128, requires_grad=True)
    saved = _saved_bytes(lambda t: multiplicative_noise(t, LAWS[name]), x)
    assert saved <= x.numel()


def test_learned_noise_parameters_get_gradients() -> None:
    std = torch.tensor(0.5, requires_grad=True)
    y = multiplicative_noise(torch.ones(50, 4), Gaussian(1.0, std))
    y.pow(2).sum().backward()
    assert std.grad is not None and std.grad.abs() > 0


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.bfloat16])
def test_dtypes(dtype, law_name) -> None:
    x = torch.randn(8, 4, dtype=dtype, requires_grad=True)
    y = multiplicative_noise(x, LAWS[law_name])
    y.sum().backward()
    assert y.dtype == dtype and x.grad is not None and x.grad.dtype == dtype


def test_replicas_draw_independent_reproducible_noise() -> None:
    """The data-parallel mechanism: replica r > 0 gets its own stream derived from the default
    generator (on CPU we exercise it by naming the replica)."""
    cpu = torch.device("cpu")
    torch.manual_seed(0)
    r0 = torch.rand(5, generator=draw_generator(cpu, replica=0))
    torch.manual_seed(0)
    r1 = torch.rand(5, generator=draw_generator(cpu, replica=1))
    torch.manual_seed(0)
    r1_again = torch.rand(5, generator=draw_generator(cpu, replica=1))
    torch.manual_seed(0)
    r2 = torch.rand(5, generator=draw_generator(cpu, replica=2))
    assert torch.equal(r1, r1_again)
    assert not torch.equal(r0, r1) and not torch.equal(r1, r2)


# ---- bad input ------------------------------------------------------------------------------

def test_unknown_structure_lists_the_valid_names() -> None:
    with pytest.raises(ValueError, match=r"'row'.*\['unit', 'channel', 'layer'\]"):
        multiplicative_noise(torch.ones(2, 3), Bernoulli(0.5), "row")


def test_unknown_granularity_lists_the_valid_names() -> None:
    with pytest.raises(ValueError, match=r"'minibatch'.*'example', 'batch', 'sequence'"):
        multiplicative_noise(torch.ones(2, 3), Bernoulli(0.5), "unit", "minibatch")


def test_wrong_rank_for_the_structure() -> None:
    with pytest.raises(ValueError, match="rank >= 2"):
        multiplicative_noise(torch.ones(3), Bernoulli(0.5), "channel")
    with pytest.raises(ValueError, match="rank >= 3"):
        multiplicative_noise(torch.ones(3, 2), Bernoulli(0.5), "unit", "sequence")


def test_sample_of_the_wrong_shape() -> None:
    with pytest.raises(ValueError, match=r"noise shape \(4, 1, 1\)"):
        multiplicative_noise(torch.ones(4, 3, 2), Bernoulli(0.5), "layer",
                             sample=torch.ones(4, 3, 1))


def test_non_law_noise_and_integer_input() -> None:
    with pytest.raises(TypeError, match="NoiseLaw"):
        multiplicative_noise(torch.ones(2, 2), 0.5)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="floating-point"):
        multiplicative_noise(torch.ones(2, 2, dtype=torch.long), Bernoulli(0.5))


def test_batched_law_is_refused() -> None:
    with pytest.raises(ValueError, match="scalar law"):
        multiplicative_noise(torch.ones(2, 2), Bernoulli(torch.tensor([0.5, 0.6])))


def test_generator_on_another_device_type() -> None:
    with pytest.raises(ValueError, match="generator lives on"):
        draw_generator(torch.device("cuda"), torch.Generator())


def test_half_cauchy_eval_error_points_to_mc() -> None:
    with pytest.raises(ValueError, match="Monte Carlo"):
        multiplicative_noise(torch.ones(2, 2), HalfCauchy(1.0), training=False)


def test_inverse_nakagami_finite_mean_in_eval() -> None:
    law = InverseNakagami(shape=3.0, spread=2.0)
    assert torch.isfinite(law.mean)


def test_exact_dropconnect_keeps_no_per_example_weights_for_backward() -> None:
    from dropprior.functional import dropconnect_linear

    x = torch.randn(64, 32)
    w = torch.randn(16, 32, requires_grad=True)
    saved = _saved_bytes(lambda t: dropconnect_linear(t, w, None, Gaussian(1.0, 0.5)), x)
    # x and W only (plus nothing of size N·out·in = 32768 floats)
    assert saved <= (x.numel() + w.numel()) * 4


def test_draw_noise_fused_is_the_kernels_draw_where_it_applies() -> None:
    """fused=True: the fused kernel's ξ in float32 on the CPU; the law's own sample in float64
    (no kernel plan); rsample, with gradients, where the law's parameters require grad."""
    from dropprior.functional import draw_noise, fused_plan, fused_sample

    cpu, law, shape = torch.device("cpu"), LAWS["rayleigh"], (4, 3, 5)
    out = torch.empty(shape)
    plan = fused_plan(law, out)
    assert plan is not None
    ours = draw_noise(law, shape, cpu, torch.float32, torch.Generator().manual_seed(1), fused=True)
    assert_close(ours, fused_sample(out, plan, torch.Generator().manual_seed(1)))
    assert not torch.equal(ours, draw_noise(law, shape, cpu, torch.float32,
                                            torch.Generator().manual_seed(1)))
    f64 = draw_noise(law, shape, cpu, torch.float64, torch.Generator().manual_seed(1), fused=True)
    assert_close(f64, law.to(dtype=torch.float64).sample(shape,
                                                         generator=torch.Generator().manual_seed(1)))
    mean = torch.tensor(1.0, requires_grad=True)
    learned = draw_noise(Gaussian(mean, 0.5), shape, cpu, torch.float32, fused=True)
    learned.sum().backward()
    assert mean.grad is not None and mean.grad.item() == pytest.approx(60.0)
    with pytest.raises(TypeError, match="fused must be True or False, got 'yes'"):
        draw_noise(law, shape, cpu, torch.float32, fused="yes")  # type: ignore[arg-type]
