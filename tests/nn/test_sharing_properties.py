"""Property-based checks (hypothesis) of which entries share a draw, for random shapes, every
structure and granularity: the ratio y / x of ``multiplicative_noise`` is constant exactly along
the axes the structure's noise shape sets to 1, and varies along the others."""

from __future__ import annotations

import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from dropprior.functional import multiplicative_noise, noise_shape
from dropprior.noise import Gaussian

LAW = Gaussian(1.0, 1.0)  # continuous: two independent draws are never equal


@st.composite
def cases(draw):
    structure = draw(st.sampled_from(["unit", "channel", "layer"]))
    granularity = draw(st.sampled_from(
        ["example", "batch"] + (["sequence"] if structure != "channel" else [])))
    low_rank = 3 if granularity == "sequence" else (2 if structure == "channel" else 1)
    rank = draw(st.integers(low_rank, 4))
    shape = tuple(draw(st.lists(st.integers(2, 4), min_size=rank, max_size=rank)))
    time_dim = draw(st.sampled_from([0, 1])) if granularity == "sequence" else 0
    return shape, structure, granularity, time_dim


@settings(max_examples=60, deadline=None, derandomize=True)
@given(cases())
def test_ratio_is_constant_exactly_along_the_shared_axes(case) -> None:
    shape, structure, granularity, time_dim = case
    x = torch.rand(shape, dtype=torch.float64) + 0.5  # nonzero, so y / x recovers ξ
    gen = torch.Generator().manual_seed(0)
    y = multiplicative_noise(x, LAW, structure, granularity, generator=gen, time_dim=time_dim)
    xi = y / x
    rule = noise_shape(shape, structure, granularity, time_dim)
    for axis, size in enumerate(rule):
        first = xi.narrow(axis, 0, 1)
        shared = torch.allclose(xi, first.expand_as(xi), rtol=1e-12, atol=0)
        # an axis of size 1 in the rule shares one draw; any other axis must vary along it
        assert shared == (size == 1), (axis, rule, shape, structure, granularity)
