r"""Mask scope of MC prediction: how far one noise draw reaches.

* ``"example"``: every input gets its own draw (each layer's own granularity; the default).
* ``"batch"``: one draw per forward pass, shared by every input of the batch.
* ``"function"``: one draw per *sampled function*. Sample s reuses the same ξ in every layer for
  every input, across batches, so the S samples are S fixed networks f_1, …, f_S. Each noisy
  layer draws once per pass (granularity "batch") from a generator seeded by (seed, s, layer),
  reseeded before every batch.

Only dropprior's own stochastic modules can change scope; torch's dropout modules (and
attention dropout) draw per element whatever is asked, and a Gaussian local-reparametrization
layer draws per example by construction. A scope other than "example" refuses them with an error
naming the module.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch
from torch import nn
from torch.nn.modules.dropout import _DropoutNd

from dropprior._validation import check_choice
from dropprior.nn._module import Stochastic

__all__ = ["SCOPES", "noise_scope", "seed_function"]

SCOPES = {
    "example": "each input its own draw (the layers' own granularity)",
    "batch": "one draw per forward pass, shared by the batch",
    "function": "one draw per sampled function: sample s has the same ξ for every input",
}


def _check_scopeable(model: nn.Module, scope: str) -> list[Stochastic]:
    layers = []
    for name, m in model.named_modules():
        where = name or "<root>"
        if isinstance(m, _DropoutNd) or (isinstance(m, nn.MultiheadAttention) and m.dropout > 0):
            raise ValueError(f"scope={scope!r} needs every noisy module to be a dropprior layer, "
                             f"but {where!r} is torch's {type(m).__name__}, which draws per "
                             "element; convert it with dropprior.nn.apply_noise or use "
                             "scope='example'")
        if getattr(m, "local_reparam", False):
            raise ValueError(f"scope={scope!r}: layer {where!r} uses local_reparam=True, which "
                             "draws per example by construction; use scope='example'")
        if isinstance(m, Stochastic):
            layers.append(m)
    return layers


@contextmanager
def noise_scope(model: nn.Module, scope: str) -> Iterator[list[Stochastic]]:
    """Set every stochastic module of ``model`` to draw at ``scope`` (module docstring) inside the
    context, and restore granularities and generators on exit. Yields the stochastic modules
    (for :func:`seed_function`).

    Raises:
        ValueError: an unknown scope, or, for "batch" / "function", a module that cannot change
            scope (torch dropout, attention dropout, local reparametrization).
    """
    check_choice("scope", scope, SCOPES)
    if scope == "example":
        yield [m for m in model.modules() if isinstance(m, Stochastic)]
        return
    layers = _check_scopeable(model, scope)
    saved = [(m, m.__dict__.get("granularity"), getattr(m, "generator", None)) for m in layers]
    try:
        for m in layers:
            m.granularity = "batch"
        yield layers
    finally:
        for m, granularity, generator in saved:
            if granularity is None:  # a class attribute: drop the instance's copy
                m.__dict__.pop("granularity", None)
            else:
                m.granularity = granularity
            setattr(m, "generator", generator)  # noqa: B010 (an attribute of every layer)


def seed_function(layers: list[Stochastic], seed: int, sample: int,
                  device: torch.device) -> None:
    """Give layer k a generator seeded by (seed, sample, k): sample s's draws, the same every
    time this is called with s."""
    for k, m in enumerate(layers):
        gen = torch.Generator(device=device)
        gen.manual_seed((seed * 0x9E37_79B1 + sample * 65_537 + k) % (1 << 63))
        setattr(m, "generator", gen)  # noqa: B010 (an attribute of every layer)
