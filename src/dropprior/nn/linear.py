r"""A fully connected layer with structured multiplicative noise (paper eq. 5–8).

* ``structure="unit"`` (ARD, dropout): one ξ per input unit, y = (h ⊙ ξ) Wᵀ + b — every
  outgoing weight of input unit i shares ξ_i, i.e. w_{o,i} ~ N(0, σ0² ξ_i²).
* ``structure="weight"`` (DropConnect): one ξ per weight, y = h (Ξ ⊙ W)ᵀ + b.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from dropprior._validation import check_bool, check_choice, check_generator
from dropprior.functional import (
    dropconnect_linear,
    local_reparam_linear,
    multiplicative_noise,
    noise_mean,
)
from dropprior.nn._init import reset_like_torch
from dropprior.nn._module import NoisyModule, check_law
from dropprior.noise import NoiseLaw

__all__ = ["NoisyLinear"]

LINEAR_STRUCTURES = {
    "unit": "one ξ per input unit, shared by its outgoing weights (ARD; dropout)",
    "weight": "one ξ per weight (DropConnect)",
}


class NoisyLinear(NoisyModule):
    r"""``nn.Linear`` with multiplicative noise of a structure.

    .. math::
        \text{unit: } y = (h \odot \xi) W^\top + b, \qquad
        \text{weight: } y = h (\Xi \odot W)^\top + b.

    Per-example DropConnect (``structure="weight"``, ``granularity="example"``) is exact for every
    law: each example gets its own Ξ (computed in chunks, regenerated in backward). With Gaussian
    noise, ``local_reparam=True`` draws each output from its exact Gaussian instead
    (Kingma et al., 2015): the same output distribution for one layer, at the cost of two matrix
    products.

    Args:
        in_features, out_features: as ``nn.Linear``.
        noise: the law of ξ.
        structure: ``"unit"`` or ``"weight"``.
        granularity: ``"example"``, ``"batch"`` (and ``"sequence"`` for ``"unit"``).
        bias: whether to learn an additive bias (it carries no noise).
        local_reparam: Gaussian DropConnect by the local reparametrization.
        generator: the generator of the draws.

    Shape:
        input: (*, in_features); output: (*, out_features).

    Example:
        >>> from dropprior.noise import Bernoulli
        >>> layer = NoisyLinear(10, 5, Bernoulli(0.8, inverted=True))
        >>> layer(torch.randn(3, 10)).shape
        torch.Size([3, 5])
    """

    def __init__(self, in_features: int, out_features: int, noise: NoiseLaw,
                 structure: str = "unit", granularity: str = "example", bias: bool = True,
                 local_reparam: bool = False, generator: torch.Generator | None = None,
                 device: torch.device | str | None = None,
                 dtype: torch.dtype | None = None) -> None:
        super().__init__()
        for name, value in (("in_features", in_features), ("out_features", out_features)):
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"{name} must be a positive int, got {value!r}")
        self.in_features, self.out_features = in_features, out_features
        check_bool("bias", bias)
        check_bool("local_reparam", local_reparam)
        self.noise = check_law("noise", noise)  # type: ignore[assignment]
        self.structure = check_choice("structure", structure, LINEAR_STRUCTURES)
        allowed = ["example", "batch", "sequence"] if structure == "unit" else ["example",
                                                                               "batch"]
        self.granularity = check_choice("granularity", granularity, allowed)
        if local_reparam:
            from dropprior.noise import Gaussian

            if structure != "weight" or granularity != "example":
                raise ValueError(
                    "local_reparam=True applies to structure='weight' with "
                    f"granularity='example', got structure={structure!r}, "
                    f"granularity={granularity!r}"
                )
            if not isinstance(noise, Gaussian):
                raise ValueError(
                    f"local_reparam=True is exact only for Gaussian noise, got {noise!r}"
                )
        self.local_reparam = check_bool("local_reparam", local_reparam)
        self.generator = check_generator(generator)
        self.weight = nn.Parameter(torch.empty(out_features, in_features, device=device,
                                               dtype=dtype))
        self.bias = nn.Parameter(torch.empty(out_features, device=device, dtype=dtype)) \
            if bias else None
        reset_like_torch(self.weight, self.bias)

    def forward(self, x: Tensor) -> Tensor:
        if x.dim() < 1 or x.shape[-1] != self.in_features:
            raise ValueError(
                f"NoisyLinear expects input of shape (*, {self.in_features}), "
                f"got {tuple(x.shape)}"
            )
        amp = self._compute_dtype(x, self._raw("weight"))
        if self.structure == "unit":
            # the input's noise is drawn before a variational weight's sample (the draw order
            # that seeded runs reproduce)
            h = multiplicative_noise(x, self.noise, "unit", self.granularity,
                                     generator=self.generator, training=self.sampling)
            return F.linear(h, self.weight, self.bias)
        if not self.sampling:
            mean = noise_mean(self.noise, x.dtype, x.device)
            return F.linear(x, self.weight * mean, self.bias)
        if amp is None:
            return self._dropconnect(x, self.weight, self.bias)
        # Under autocast: the per-example products in autocast's dtype, as F.linear's; the casts
        # are differentiable, so the parameters keep their dtype and gradients.
        with torch.autocast(x.device.type, enabled=False):
            return self._dropconnect(x.to(amp), self.weight.to(amp),
                                     None if self.bias is None else self.bias.to(amp))

    def _dropconnect(self, x: Tensor, weight: Tensor, bias: Tensor | None) -> Tensor:
        if self.local_reparam:
            return local_reparam_linear(x, weight, bias, self.noise, self.generator)
        return dropconnect_linear(x, weight, bias, self.noise, self.granularity, self.generator)

    def group_norms(self) -> Tensor:
        """unit: ‖W_{:,i}‖ per input unit, shape (in_features,); weight: |W|, (out, in)."""
        w = self.weight.detach()
        return w.norm(dim=0) if self.structure == "unit" else w.abs()

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}, " \
               f"bias={self.bias is not None}, " + super().extra_repr() + \
               (", local_reparam=True" if self.local_reparam else "")
