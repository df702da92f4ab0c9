"""Which dtype autocast gives lower-precision ops on a device, across torch versions."""

from __future__ import annotations

import torch

__all__ = ["autocast_dtype"]


def autocast_dtype(device_type: str) -> torch.dtype | None:
    """autocast's dtype on ``device_type`` (``"cpu"``, ``"cuda"``, ...) where it is enabled,
    else None."""
    try:
        if not torch.is_autocast_enabled(device_type):
            return None
        return torch.get_autocast_dtype(device_type)
    except TypeError:  # torch < 2.4: no device argument
        if device_type == "cpu":
            on, get = torch.is_autocast_cpu_enabled(), torch.get_autocast_cpu_dtype
        else:
            on, get = torch.is_autocast_enabled(), torch.get_autocast_gpu_dtype
        return get() if on else None
