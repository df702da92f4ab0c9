r"""G noisy linear maps side by side: a grid dimension for hyperparameter grids and splits.

:class:`StackedNoisyLinear` holds G independent :class:`~dropprior.nn.NoisyLinear` maps of one
shape, each with its own noise law and generator, as stacked (G, out, in) parameters. Network g
computes exactly what ``NoisyLinear(in, out, laws[g], structure, generator=generators[g])``
computes on its slice of the input (the same noise: the fused kernel's draw from the same seed
of g's generator, or the same functional call), while the G matrix products run as one batched
product. A grid of G = (dropout rate × precision × split)
networks then trains in the time of a few.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

from dropprior._validation import check_choice, check_generator
from dropprior.functional import (
    FusedPlan,
    draw_generator,
    dropconnect_linear,
    fused_plan,
    fused_sample_blocks,
    multiplicative_noise,
    noise_mean,
    stacked_dropconnect,
)
from dropprior.nn._module import Stochastic, check_law
from dropprior.nn.linear import LINEAR_STRUCTURES
from dropprior.noise import NoiseLaw

__all__ = ["StackedNoisyLinear"]


class StackedNoisyLinear(Stochastic):
    r"""G linear maps with multiplicative noise, stacked along a leading grid dimension.

    .. math::
        \text{unit: } y_g = (h_g \odot \xi_g) W_g^\top + b_g, \qquad
        \text{weight: } y_g = h_g (\Xi_g \odot W_g)^\top + b_g,

    with ξ_g drawn from ``laws[g]`` by ``generators[g]`` per example, as
    :class:`~dropprior.nn.NoisyLinear` draws it (in eval mode ξ_g → E[ξ_g]).

    Args:
        n_networks: G ≥ 1.
        in_features, out_features: as ``nn.Linear``.
        laws: one law for every network, or one law for all.
        structure: ``"unit"`` (dropout, ARD) or ``"weight"`` (DropConnect).
        generators: one generator per network (None: the device's default generator for all).
        dtype: the parameters' dtype. They start at zero: initialise them before training.

    Shape:
        input: (G, B, in_features); output: (G, B, out_features).
    """

    granularity = "example"

    def __init__(self, n_networks: int, in_features: int, out_features: int,
                 laws: NoiseLaw | Sequence[NoiseLaw], structure: str = "unit",
                 generators: Sequence[torch.Generator] | None = None,
                 dtype: torch.dtype | None = None) -> None:
        super().__init__()
        for name, value in (("n_networks", n_networks), ("in_features", in_features),
                            ("out_features", out_features)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive int, got {value!r}")
        self.structure = check_choice("structure", structure, LINEAR_STRUCTURES)
        laws = [laws] * n_networks if isinstance(laws, NoiseLaw) else list(laws)
        if len(laws) != n_networks:
            raise ValueError(f"laws must hold one law per network ({n_networks}), got "
                             f"{len(laws)}")
        self.laws: list[NoiseLaw] = [check_law(f"laws[{g}]", law)  # type: ignore[misc]
                                     for g, law in enumerate(laws)]
        if generators is not None and len(generators) != n_networks:
            raise ValueError(f"generators must hold one generator per network ({n_networks}), "
                             f"got {len(generators)}")
        self.generators: list[torch.Generator | None] = (
            [check_generator(g, f"generators[{k}]") for k, g in enumerate(generators)]
            if generators is not None else [None] * n_networks)
        self.in_features, self.out_features = in_features, out_features
        self.weight = nn.Parameter(torch.zeros(n_networks, out_features, in_features,
                                               dtype=dtype))
        self.bias = nn.Parameter(torch.zeros(n_networks, out_features, dtype=dtype))

    @property
    def n_networks(self) -> int:
        return int(self.weight.shape[0])

    def forward(self, x: Tensor) -> Tensor:
        g_count = self.n_networks
        if x.dim() != 3 or x.shape[0] != g_count or x.shape[2] != self.in_features:
            raise ValueError(f"StackedNoisyLinear expects input of shape ({g_count}, B, "
                             f"{self.in_features}), got {tuple(x.shape)}")
        if self.structure == "unit":
            h = self._unit_noise(x) if self.sampling else torch.stack([
                multiplicative_noise(x[g], law, "unit", "example", training=False)
                for g, law in enumerate(self.laws)])
            return torch.baddbmm(self.bias.unsqueeze(1), h, self.weight.transpose(1, 2))
        if not self.sampling:
            means = torch.stack([noise_mean(law, x.dtype, x.device) for law in self.laws])
            return torch.baddbmm(self.bias.unsqueeze(1), x,
                                 (self.weight * means.reshape(-1, 1, 1)).transpose(1, 2))
        return self._dropconnect(x)

    def _dropconnect(self, x: Tensor) -> Tensor:
        """Per-example DropConnect with network g's Ξ drawn as ``dropconnect_linear(x[g], ...,
        laws[g], generator=generators[g])`` draws it. Where that is the fused kernel's draw, the
        networks the kernel sees alike are drawn and multiplied together
        (:func:`~dropprior.functional.stacked_dropconnect`); elsewhere network by network."""
        out = x.new_empty(self.n_networks, x.shape[1], self.out_features)
        done: set[int] = set()
        for plan, members, gens in self._fused_groups(x):
            first, last = members[0], members[-1]
            run = slice(first, last + 1) if last - first + 1 == len(members) else members
            y = stacked_dropconnect(x[run], self.weight[run], plan, gens)
            if y is not None:
                out[run] = y
                done.update(members)
        for g, (law, gen) in enumerate(zip(self.laws, self.generators, strict=True)):
            if g not in done:
                out[g] = dropconnect_linear(x[g], self.weight[g], None, law, "example", gen)
        return out + self.bias.unsqueeze(1)

    def _fused_groups(self, x: Tensor
                      ) -> list[tuple[FusedPlan, list[int], list[torch.Generator | None]]]:
        """(plan, networks, their generators) for each set of networks whose laws the fused
        kernel draws alike for noise like x (the same law object, or equal parameters); networks
        whose laws it does not draw, or whose parameters are learned, are in none."""
        by_plan: dict[FusedPlan, list[int]] = {}
        if not torch.compiler.is_compiling():
            for members in self._law_groups():
                law = self.laws[members[0]]
                if any(p.requires_grad for p in law.params().values()):
                    continue
                plan = fused_plan(law, x)
                if plan is not None:
                    by_plan.setdefault(plan, []).extend(members)
        groups = []
        for plan, members in by_plan.items():
            members = sorted(members)
            gens = [g if g is not None and g.device.type == x.device.type
                    else draw_generator(x.device, g)
                    for g in (self.generators[k] for k in members)]
            groups.append((plan, members, gens))
        return groups

    def _unit_noise(self, x: Tensor) -> Tensor:
        """x ⊙ ξ with network g's ξ drawn as ``multiplicative_noise(x[g], laws[g],
        generator=generators[g])`` draws it. Where that is the fused kernel's draw, the networks
        whose laws the kernel sees alike (one :class:`~dropprior.functional.FusedPlan`: the same
        law object, or equal parameters) are drawn by one call
        (:func:`~dropprior.functional.fused_sample_blocks`, each from its own generator's seed);
        elsewhere network by network."""
        groups = self._fused_groups(x)  # laws the kernel draws alike: one call
        xi = torch.empty(x.shape, dtype=x.dtype, device=x.device) if groups else None
        for plan, members, gens in groups:
            assert xi is not None
            first, last = members[0], members[-1]
            if last - first + 1 == len(members):  # a run of networks: drawn in place
                fused_sample_blocks(xi[first:last + 1], plan, gens)
            else:
                block = torch.empty((len(members), *x.shape[1:]), dtype=x.dtype, device=x.device)
                xi[members] = fused_sample_blocks(block, plan, gens)
        fused = {g for _, members, _ in groups for g in members}
        if xi is not None and len(fused) == len(self.laws):
            return x * xi
        return torch.stack([
            x[g] * xi[g] if g in fused else  # type: ignore[index]
            multiplicative_noise(x[g], law, "unit", "example", generator=gen)
            for g, (law, gen) in enumerate(zip(self.laws, self.generators, strict=True))])

    def _law_groups(self) -> list[list[int]]:
        """The networks that share a law object, in order of first appearance (cached until
        ``laws`` changes)."""
        key = tuple(map(id, self.laws))
        if getattr(self, "_groups_key", None) != key:
            groups: dict[int, list[int]] = {}
            for g, law in enumerate(self.laws):
                groups.setdefault(id(law), []).append(g)
            self._groups_key, self._groups = key, list(groups.values())
        return self._groups

    def squared_norms(self) -> Tensor:
        """‖W_g‖² + ‖b_g‖² per network. Shape: (G,)."""
        return self.weight.pow(2).sum(dim=(1, 2)) + self.bias.pow(2).sum(dim=1)

    def network(self, g: int) -> nn.Module:
        """Network g as a :class:`~dropprior.nn.NoisyLinear` with copies of its parameters,
        its law and its generator (the same object: drawing from one advances the other)."""
        from dropprior.nn.linear import NoisyLinear

        layer = NoisyLinear(self.in_features, self.out_features, self.laws[g], self.structure,
                            generator=self.generators[g], dtype=self.weight.dtype)
        with torch.no_grad():
            layer.weight.copy_(self.weight[g])
            layer.bias.copy_(self.bias[g])  # type: ignore[union-attr]
        return layer

    def extra_repr(self) -> str:
        return (f"n_networks={self.n_networks}, in_features={self.in_features}, "
                f"out_features={self.out_features}, structure={self.structure!r}")
