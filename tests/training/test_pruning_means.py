"""prune(mean_inputs=...): mean replacement. The reference is the unpruned model in eval mode
with forward pre-hooks that hold every removed input of each map at its mean over the data, the
means read from the unpruned model by hooks of the test's own."""

from __future__ import annotations

import pytest
import torch
from torch import nn
from torch.testing import assert_close

from dropprior.nn import NoisyConv2d, NoisyLinear
from dropprior.noise import Bernoulli, Rayleigh
from dropprior.pruning import prune


def _mean_inputs(model: nn.Module, positions: list[int], x: torch.Tensor,
                 per_channel: set[int]) -> dict[int, torch.Tensor]:
    seen: dict[int, torch.Tensor] = {}
    handles = [model[i].register_forward_pre_hook(
        lambda m, a, i=i: seen.__setitem__(i, a[0].detach().clone())) for i in positions]
    with torch.no_grad():
        model(x)
    for h in handles:
        h.remove()
    return {i: (h.mean(dim=(0, 2, 3)) if i in per_channel else h.mean(dim=0))
            for i, h in seen.items()}


def _hold_at_means(model: nn.Module, removed: dict[int, torch.Tensor],
                   means: dict[int, torch.Tensor]) -> list:
    def hook(i: int):
        def replace(m: nn.Module, args: tuple) -> tuple:
            h = args[0].clone()
            r = removed[i]
            if h.dim() == 4:
                h[:, r] = means[i][r][:, None, None]
            else:
                h[:, r] = means[i][r]
            return (h,)
        return replace
    return [model[i].register_forward_pre_hook(hook(i)) for i in removed]


def _with_and_without(model: nn.Module, handles: list, fresh: torch.Tensor
                      ) -> tuple[torch.Tensor, torch.Tensor]:
    """The model's output with the holding hooks on (the reference), then with them removed
    (the unpruned model itself)."""
    with torch.no_grad():
        reference = model(fresh)
        for h in handles:
            h.remove()
        return reference, model(fresh)


def _removed(width: int, kept: torch.Tensor) -> torch.Tensor:
    mask = torch.ones(width, dtype=torch.bool)
    mask[kept] = False
    return mask.nonzero().squeeze(1)


def test_mlp_mean_replacement_holds_removed_units_at_their_means() -> None:
    torch.manual_seed(0)
    model = nn.Sequential(NoisyLinear(6, 10, Bernoulli(0.7)), nn.ReLU(),  # E[ξ] = 0.7
                          NoisyLinear(10, 8, Rayleigh(1.0)), nn.ReLU(),
                          NoisyLinear(8, 2, Bernoulli(0.9, inverted=True))).double().eval()
    x = torch.randn(200, 6, dtype=torch.float64) + 2.0  # inputs with means far from zero
    res = prune(model, keep=0.5, mean_inputs=x)
    zeroed = prune(model, keep=0.5)
    means = _mean_inputs(model, [0, 2, 4], x, set())
    removed = {0: _removed(6, res.kept["0"]), 2: _removed(10, res.kept["2"]),
               4: _removed(8, res.kept["4"])}
    handles = _hold_at_means(model, removed, means)
    fresh = torch.randn(50, 6, dtype=torch.float64) + 2.0
    reference, full = _with_and_without(model, handles, fresh)
    with torch.no_grad():
        assert_close(res.model.eval()(fresh), reference, rtol=1e-10, atol=1e-10)
        # the means matter here: removal at zero is further from the unpruned model
        near = (res.model(fresh) - full).abs().mean()
        far = (zeroed.model.eval()(fresh) - full).abs().mean()
    assert near < far
    assert res.params_after == zeroed.params_after  # the same architecture, other biases


def test_conv_mean_replacement_through_pooling_and_flatten() -> None:
    torch.manual_seed(1)
    law = Bernoulli(0.8, inverted=True)
    model = nn.Sequential(NoisyConv2d(2, 6, 3, law, structure="filter"), nn.ReLU(),
                          nn.MaxPool2d(2),
                          NoisyConv2d(6, 4, 3, law, structure="filter"), nn.ReLU(),
                          nn.Flatten(), nn.Linear(4 * 2 * 2, 3)).double().eval()
    x = torch.randn(64, 2, 10, 10, dtype=torch.float64) + 1.0
    res = prune(model, keep=0.5, mean_inputs=x, example_input=x[:1])
    means = _mean_inputs(model, [3, 6], x, {3})
    removed = {3: _removed(6, res.kept["0"]),
               6: (_removed(4, res.kept["3"])[:, None] * 4 + torch.arange(4)).reshape(-1)}
    handles = _hold_at_means(model, removed, means)
    fresh = torch.randn(20, 2, 10, 10, dtype=torch.float64) + 1.0
    reference, _ = _with_and_without(model, handles, fresh)
    with torch.no_grad():
        assert_close(res.model.eval()(fresh), reference, rtol=1e-10, atol=1e-10)
        assert not torch.allclose(prune(model, keep=0.5, example_input=x[:1]).model(fresh),
                                  reference, atol=1e-3)


def test_mean_inputs_must_be_examples() -> None:
    model = nn.Sequential(NoisyLinear(3, 2, Bernoulli(0.5))).double()
    with pytest.raises(TypeError, match="mean_inputs must be a tensor of example inputs"):
        prune(model, keep=0.5, mean_inputs=[[1.0, 2.0, 3.0]])  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"of shape \(0, 3\)"):
        prune(model, keep=0.5, mean_inputs=torch.zeros(0, 3, dtype=torch.float64))


@pytest.mark.parametrize("threshold", [-1.0, float("nan"), float("inf"), True])
def test_numeric_threshold_must_be_a_finite_score(threshold) -> None:
    """Relevance scores are >= 0: a negative threshold would keep everything and a nan one
    nothing; both are refused with the value."""
    model = nn.Sequential(NoisyLinear(3, 2, Bernoulli(0.5))).double()
    with pytest.raises(ValueError, match=rf"finite relevance score >= 0 or 'auto', got "
                                         rf"{threshold!r}"):
        prune(model, threshold=threshold)


def test_sigma0_is_checked_even_where_unused() -> None:
    model = nn.Sequential(NoisyLinear(3, 2, Bernoulli(0.5))).double()
    with pytest.raises(ValueError, match=r"sigma0 must be a finite number > 0 .*, got -1"):
        prune(model, keep=0.5, sigma0=-1)


def _resnet() -> nn.Sequential:
    from dropprior.nn import Residual

    torch.manual_seed(3)
    law = Bernoulli(0.8, inverted=True)

    def block() -> Residual:
        return Residual(nn.Sequential(nn.Linear(6, 6), nn.ReLU(), nn.Linear(6, 6)),
                        depth_noise=law)

    return nn.Sequential(NoisyLinear(4, 6, law), nn.ReLU(), block(), block(), block(),
                         NoisyLinear(6, 1, law)).double().eval()


def _hold_blocks(model: nn.Module, removed: list[int], x: torch.Tensor) -> list:
    """Hooks that replace each removed block's output by its input plus the block's mean
    contribution, read from the unpruned model on ``x``."""
    contributions: dict[int, torch.Tensor] = {}
    seen = [model[i].register_forward_hook(
        lambda m, a, o, i=i: contributions.__setitem__(i, (o - a[0]).mean(0)))
        for i in removed]
    with torch.no_grad():
        model(x)
    for h in seen:
        h.remove()
    return [model[i].register_forward_hook(lambda m, a, o, i=i: a[0] + contributions[i])
            for i in removed]


def test_removed_blocks_are_held_at_their_mean_contribution() -> None:
    from dropprior.pruning import Offset

    model = _resnet()
    x = torch.randn(300, 4, dtype=torch.float64) + 1.0
    res = prune(model, keep=0.2, layers=["2", "3", "4"], mean_inputs=x)
    kept = res.kept["residual_blocks"].tolist()
    removed = [i for i in (2, 3, 4) if i not in kept]
    assert len(removed) == 2
    assert all(isinstance(res.model[i], Offset) for i in removed)
    handles = _hold_blocks(model, removed, x)
    fresh = torch.randn(40, 4, dtype=torch.float64) + 1.0
    reference, full = _with_and_without(model, handles, fresh)
    with torch.no_grad():
        assert_close(res.model.eval()(fresh), reference, rtol=1e-10, atol=1e-10)
        plain = prune(model, keep=0.2, layers=["2", "3", "4"])
        assert all(isinstance(plain.model[i], nn.Identity) for i in removed)
        assert (res.model(fresh) - full).abs().mean() < (plain.model(fresh) - full).abs().mean()


def test_units_read_through_removed_blocks_shrink_their_offsets() -> None:
    """Every block removed: the head's removed inputs take the producer's rows away, and the
    Offsets between them keep only the kept units; still the unpruned model with the removed
    blocks and units held at their means."""
    from dropprior import relevance

    model = _resnet()
    with torch.no_grad():
        for i in (2, 3, 4):  # the blocks score far below the head's units
            for k in (0, 2):
                model[i].block[k].weight.mul_(1e-2)
    scores = relevance(model)
    head = scores["5"].sort().values
    threshold = float((head[2] + head[3]) / 2)  # the head keeps its top 3 inputs
    assert max(float(scores[n].max()) for n in ("2", "3", "4")) < threshold
    x = torch.randn(300, 4, dtype=torch.float64) + 1.0
    res = prune(model, threshold=threshold, layers=["2", "3", "4", "5"], mean_inputs=x)
    assert res.model[0].weight.shape == (3, 4)  # the producer lost 3 rows
    assert all(res.model[i].offset.shape == (3,) for i in (2, 3, 4))
    removed_units = _removed(6, res.kept["5"])
    handles = _hold_blocks(model, [2, 3, 4], x)
    means = _mean_inputs(model, [5], x, set())  # read with the blocks held, as prune reads
    handles += _hold_at_means(model, {5: removed_units}, means)
    fresh = torch.randn(40, 4, dtype=torch.float64) + 1.0
    reference, _ = _with_and_without(model, handles, fresh)
    with torch.no_grad():
        assert_close(res.model.eval()(fresh), reference, rtol=1e-10, atol=1e-10)
