"""Data augmentation for image minibatches, as :func:`dropprior.fit`'s ``batch_transform``."""

from __future__ import annotations

import torch
from torch import Tensor

from dropprior._validation import check_int, shape_or_type

__all__ = ["random_shift"]


def random_shift(x: Tensor, max_shift: int, generator: torch.Generator | None = None,
                 fill: float = 0.0) -> Tensor:
    """Each image translated by its own integer offset (dy, dx), each uniform on
    {−max_shift, …, max_shift}, the uncovered border set to ``fill``: ``x`` padded by
    ``max_shift`` and cropped back at a random position (the usual pad-and-crop augmentation).

    Args:
        x: a batch of images.
        max_shift: the largest offset in pixels, ≥ 0 (0: ``x`` itself).
        generator: the generator of the offsets (default: torch's global one).
        fill: the value of the uncovered border: the background (for standardised MNIST,
            −mean / std).

    Returns:
        The shifted batch, of x's shape, dtype and device.

    Shape:
        x: (N, C, H, W); output: as x.
    """
    check_int("max_shift", max_shift, 0)
    if not isinstance(x, Tensor) or x.dim() != 4:
        got = shape_or_type(x)
        raise ValueError(f"random_shift expects images of shape (N, C, H, W), got {got}")
    n, _, h, w = x.shape
    if max_shift >= min(h, w):
        raise ValueError(f"max_shift must be < the image's height and width ({h} × {w}), got "
                         f"{max_shift}: a larger shift can move the whole image out of view")
    if max_shift == 0 or n == 0:
        return x
    offsets = torch.randint(0, 2 * max_shift + 1, (2, n), generator=generator)
    padded = torch.nn.functional.pad(x, (max_shift,) * 4, value=float(fill))
    rows = (offsets[0][:, None] + torch.arange(h)).to(x.device)  # (N, H)
    cols = (offsets[1][:, None] + torch.arange(w)).to(x.device)  # (N, W)
    batch = torch.arange(n, device=x.device)[:, None, None, None]
    channel = torch.arange(x.shape[1], device=x.device)[None, :, None, None]
    return padded[batch, channel, rows[:, None, :, None], cols[:, None, None, :]]
