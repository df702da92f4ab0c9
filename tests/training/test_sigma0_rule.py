"""One rule for ``sigma0`` (the weight prior's scale) wherever it is taken: a number > 0; finite
where a density of it is needed (learned scales, the HP gap, pruning), ``math.inf`` (no prior)
allowed in the training objectives. Non-numbers raise a TypeError, the rest a ValueError; both
quote the value."""

from __future__ import annotations

import math
from collections.abc import Callable

import pytest
import torch
from torch import nn

from dropprior import scales
from dropprior.analysis import hp_gap_from_norms
from dropprior.nn import NoisyLinear
from dropprior.noise import Bernoulli
from dropprior.objectives import ep_weight_penalty, prior_penalty
from dropprior.pruning import prune


def _learned() -> nn.Module:
    model = nn.Sequential(NoisyLinear(3, 2, Bernoulli(0.5))).double()
    scales.variational(model, "log_uniform")
    return model


CALLERS: dict[str, tuple[Callable[[object], object], bool]] = {
    # name: (call with sigma0, whether math.inf is accepted)
    "ep_weight_penalty": (lambda s: ep_weight_penalty([torch.ones(2)], s), True),
    "prior_penalty": (lambda s: prior_penalty(_learned(), s), False),
    "hp_gap_from_norms": (lambda s: hp_gap_from_norms(torch.ones(2), 2, Bernoulli(0.5),
                                                      sigma0=s, samples=10), False),
    "prune": (lambda s: prune(nn.Sequential(NoisyLinear(3, 2, Bernoulli(0.5))), keep=0.5,
                              sigma0=s), False),
}


@pytest.mark.parametrize("name", sorted(CALLERS))
@pytest.mark.parametrize("bad", ["1.0", True, None])
def test_non_numbers_are_type_errors(name: str, bad: object) -> None:
    call, _ = CALLERS[name]
    with pytest.raises(TypeError, match=rf"sigma0 must be a number > 0.*, got {bad!r}"):
        call(bad)


@pytest.mark.parametrize("name", sorted(CALLERS))
@pytest.mark.parametrize("bad", [0, -1.0, math.nan, -math.inf])
def test_non_positive_values_are_value_errors(name: str, bad: float) -> None:
    call, _ = CALLERS[name]
    with pytest.raises(ValueError, match=rf"sigma0 must be .*> 0.*, got {bad!r}"):
        call(bad)


@pytest.mark.parametrize("name", sorted(CALLERS))
def test_infinity_is_no_prior_only_in_the_objectives(name: str) -> None:
    call, accepts_inf = CALLERS[name]
    if accepts_inf:
        assert float(call(math.inf)) == 0.0
    else:
        with pytest.raises(ValueError, match="sigma0 must be a finite number > 0.*, got inf"):
            call(math.inf)


@pytest.mark.parametrize("name", sorted(CALLERS))
def test_a_valid_sigma0_passes(name: str) -> None:
    call, _ = CALLERS[name]
    call(1.5)  # an int-valued or float number > 0 raises nothing
    call(2)
