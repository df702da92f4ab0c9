r"""Residual blocks with automatic depth determination (paper Section 5.1, eq. 13–15).

ADD puts one scale τ_l on every weight of block l, biases included (the paper subsumes biases
into the weights), w ~ N(0, σ0² τ_l²). In EP form τ multiplies the block's output:

.. math:: h_l = \tau_l\, f_l(h_{l-1}) + h_{l-1}  \quad\text{(ADD)},\qquad
          h_l = \tau_l\, f_l(h_{l-1} \Xi_l) + h_{l-1} \quad\text{(ARD+ADD)}.

For a positively homogeneous block with its biases scaled too (ReLU, τ ≥ 0) this is the paper's
eq. 14–15, f(τ h W) = τ f(h W). Two consequences hold for *any* block, biased or not:

* τ_l = 0 gives h_l = h_{l−1} exactly, so a block the prior switched off contributes nothing and
  pruning it (replacing it by ``nn.Identity``) is the zeroed model;
* with inverted Bernoulli τ this is ``torchvision.ops.stochastic_depth(f(h), p, mode) + h``
  (Huang et al., 2016), ``mode="row"`` for ``granularity="example"`` and ``"batch"`` for
  ``"batch"``.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from dropprior._validation import check_choice, check_generator
from dropprior.functional import multiplicative_noise
from dropprior.nn._module import NoisyModule, check_law
from dropprior.noise import NoiseLaw

__all__ = ["Residual"]


class Residual(NoisyModule):
    r"""h ↦ τ · block(h ⊙ ξ) + h, τ one per example (or batch), ξ one per input unit.

    τ (ADD) scales the block's whole output, biases included, so τ = 0 switches the block off
    exactly; ξ (ARD) scales the block's input units, the rows of its first linear map. In eval
    mode each is replaced by its mean.

    Args:
        block: the residual branch f(· W); its output must have the input's shape.
        depth_noise: the law of τ (ADD), or None.
        unit_noise: the law of ξ (ARD), or None.
        granularity: ``"example"`` (stochastic depth's ``mode="row"``) or ``"batch"``
            (``mode="batch"``).
        unit_structure: the ARD rule on the input: ``"unit"`` (last axis) or ``"channel"``
            (axis 1, for convolutional blocks).
        generator: the generator of the draws.

    Attributes:
        structure: ``"layer"`` (ADD), ``"unit"`` (ARD) or ``"unit+layer"`` (both).

    Shape:
        input: (N, *); output: as input.

    Example:
        >>> from dropprior.noise import Bernoulli
        >>> block = nn.Sequential(nn.Linear(8, 8, bias=False), nn.ReLU())
        >>> Residual(block, depth_noise=Bernoulli(0.8, inverted=True))(torch.randn(4, 8)).shape
        torch.Size([4, 8])
    """

    def __init__(self, block: nn.Module, depth_noise: NoiseLaw | None = None,
                 unit_noise: NoiseLaw | None = None, granularity: str = "example",
                 unit_structure: str = "unit", generator: torch.Generator | None = None) -> None:
        super().__init__()
        if not isinstance(block, nn.Module):
            raise TypeError(f"block must be a torch.nn.Module, got {type(block).__name__}")
        if depth_noise is None and unit_noise is None:
            raise ValueError("Residual needs depth_noise (ADD), unit_noise (ARD), or both")
        self.block = block
        self.depth_noise = check_law("depth_noise", depth_noise, required=False)
        self.unit_noise = check_law("unit_noise", unit_noise, required=False)
        self.granularity = check_choice("granularity", granularity, ["example", "batch"])
        self.unit_structure = check_choice("unit_structure", unit_structure, ["unit", "channel"])
        self.structure = {(True, False): "layer", (False, True): "unit",
                          (True, True): "unit+layer"}[(depth_noise is not None,
                                                       unit_noise is not None)]
        self.noise = depth_noise if depth_noise is not None else unit_noise  # type: ignore
        self.generator = check_generator(generator)

    def forward(self, h: Tensor) -> Tensor:
        z = h
        if self.unit_noise is not None:
            z = multiplicative_noise(z, self.unit_noise, self.unit_structure, self.granularity,
                                     generator=self.generator, training=self.sampling)
        out = self.block(z)
        if out.shape != h.shape:
            raise ValueError(
                f"the residual block must preserve its input's shape {tuple(h.shape)}, "
                f"got {tuple(out.shape)}"
            )
        if self.depth_noise is not None:
            out = multiplicative_noise(out, self.depth_noise, "layer", self.granularity,
                                       generator=self.generator, training=self.sampling)
        return out + h

    def first_weight(self) -> Tensor:
        """The weight of the block's first linear map (the first submodule holding a weight of
        rank >= 2: Linear, Conv, NoisyLinear, NoisyConv)."""
        for module in self.block.modules():
            weight = getattr(module, "weight", None)
            if isinstance(weight, Tensor) and weight.dim() >= 2:
                return weight
        raise ValueError("the residual block holds no linear map (no weight of rank >= 2)")

    def group_norms(self) -> Tensor:
        """``"layer"`` / ``"unit+layer"``: the norm of the first linear map's whole weight, shape
        (1,) (the τ group); ``"unit"``: its per-input-unit norms, (in_features,) (per input
        channel for conv blocks)."""
        w = self.first_weight().detach()
        if self.structure == "unit":
            return w.transpose(0, 1).flatten(1).norm(dim=1)
        return w.norm().reshape(1)
