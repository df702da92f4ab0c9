"""Which generator a draw uses, and how a replica of a data-parallel model gets its own stream.

With ``generator=None`` a draw uses the device's default generator, so ``torch.manual_seed``
pins it. ``torch.manual_seed`` seeds every CUDA device with the *same* seed, so two
``DataParallel`` replicas (or two DDP ranks) of a model would draw identical noise for
equally-sized chunks. :func:`draw_generator` therefore gives replica r > 0 a generator seeded by
one draw from the default generator mixed with r: reproducible under ``torch.manual_seed``,
independent across replicas.
"""

from __future__ import annotations

import torch
import torch.distributed as dist

__all__ = ["draw_generator", "replica_index"]

# A large odd constant (2^64 / golden ratio) that spreads replica indices over the seed space.
_GOLDEN = 0x9E3779B97F4A7C15
_SEED_MASK = (1 << 63) - 1


def replica_index(device: torch.device) -> int:
    """The replica this process/device plays in data parallelism: rank · 2¹⁶ + CUDA index."""
    rank = dist.get_rank() if dist.is_available() and dist.is_initialized() else 0
    local = device.index or 0 if device.type == "cuda" else 0
    return rank * (1 << 16) + local


def _default_generator(device: torch.device) -> torch.Generator | None:
    if device.type == "cpu":
        return torch.default_generator
    if device.type == "cuda":
        index = device.index if device.index is not None else torch.cuda.current_device()
        return torch.cuda.default_generators[index]
    return None


def draw_generator(device: torch.device, generator: torch.Generator | None = None,
                   replica: int | None = None) -> torch.Generator | None:
    """The generator a draw on ``device`` uses.

    Args:
        device: where the noise is drawn.
        generator: an explicit generator; returned as is after checking its device.
        replica: the data-parallel replica index (default :func:`replica_index`); replica 0 uses
            the device's default generator itself.

    Returns:
        A generator, or None for a device type without an accessible default generator.
    """
    if generator is not None:
        if generator.device.type != device.type:
            raise ValueError(
                f"the generator lives on {generator.device} but the noise is drawn on {device}; "
                "pass a generator on the input's device, or generator=None (the default "
                "generator, which also gives each data-parallel replica its own stream)"
            )
        return generator
    base = _default_generator(device)
    if base is None:
        return None
    replica = replica_index(device) if replica is None else replica
    if replica == 0:
        return base
    draw = int(torch.randint(0, 1 << 62, (1,), generator=base, device=base.device).item())
    derived = torch.Generator(base.device)
    derived.manual_seed((draw ^ (replica * _GOLDEN)) & _SEED_MASK)
    return derived
