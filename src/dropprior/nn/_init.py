"""torch's default initialisation of a weight and bias (as ``nn.Linear`` / ``nn.Conv*d``)."""

from __future__ import annotations

import math

from torch import Tensor, nn


def reset_like_torch(weight: Tensor, bias: Tensor | None) -> None:
    """Kaiming-uniform weight (a = √5) and U(−1/√fan_in, 1/√fan_in) bias, as torch's layers."""
    nn.init.kaiming_uniform_(weight, a=math.sqrt(5))
    if bias is not None:
        fan_in = weight[0].numel()
        bound = 1 / math.sqrt(fan_in) if fan_in > 0 else 0.0
        nn.init.uniform_(bias, -bound, bound)
