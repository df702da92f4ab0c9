r"""Convolutions whose weights carry per-example noise (structures ``"channel"`` and ``"weight"``).

The tied-channel prior (paper eq. 21–22) puts one ξ on every (input channel c, filter f) pair:

.. math:: a_{n,f} = \sum_c (X_{n,c} * W_{f,c})\, \xi_{n,c,f} = X_n * (W \odot \xi_n)_f,

i.e. a per-example weight W ⊙ ξ_n with ξ_n broadcast over the kernel's spatial axes. Per-example
weights are applied exactly by one grouped convolution: the batch is folded into the channel axis,
(1, N·C, *spatial), with N·F filters in N·groups groups. ``"weight"`` (DropConnect) is the same
construction with one ξ per kernel entry.
"""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor

__all__ = ["per_example_conv"]

_CONV = {1: F.conv1d, 2: F.conv2d, 3: F.conv3d}


def per_example_conv(x: Tensor, weight: Tensor, weight_noise: Tensor, bias: Tensor | None = None,
                     stride: int | tuple[int, ...] = 1, padding: int | tuple[int, ...] | str = 0,
                     dilation: int | tuple[int, ...] = 1, groups: int = 1) -> Tensor:
    r"""Convolve each example n with its own weight W ⊙ Ξ_n.

    Args:
        x: inputs, (N, C, *spatial).
        weight: W, (F, C / groups, *kernel).
        weight_noise: Ξ, (N, F, C / groups, *k) with k each 1 (channel noise) or the kernel size
            (weight noise), or without the leading N (one Ξ for the whole batch).
        bias: b, (F,), added after the noise (the prior is on the weights).
        stride, padding, dilation, groups: as in ``torch.nn.functional.conv{1,2,3}d``.

    Returns:
        a_n = X_n * (W ⊙ Ξ_n) + b.

    Shape:
        x: (N, C, *spatial); output: (N, F, *spatial_out).
    """
    conv = _CONV[weight.dim() - 2]
    if weight_noise.dim() == weight.dim():  # one draw for the batch
        return conv(x, weight * weight_noise, bias, stride, padding, dilation, groups)
    n = x.shape[0]
    per_example = (weight * weight_noise).reshape(n * weight.shape[0], *weight.shape[1:])
    folded = x.reshape(1, n * x.shape[1], *x.shape[2:])
    out = conv(folded, per_example, None, stride, padding, dilation, n * groups)
    out = out.reshape(n, weight.shape[0], *out.shape[2:])
    if bias is not None:
        out = out + bias.reshape(1, -1, *([1] * (out.dim() - 2)))
    return out
