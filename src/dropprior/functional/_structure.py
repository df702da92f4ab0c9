"""Structures as noise shapes: which entries of a tensor share one draw of ξ.

A structure is a *shape rule*, as in torchvision's ``stochastic_depth`` (``mode="row"`` is noise
of shape ``[N] + [1] * (ndim - 1)``, ``mode="batch"`` is ``[1] * ndim``). The noise tensor has the
rule's shape and is broadcast against the activations; every layer in :mod:`dropprior.nn` uses
this one rule instead of a class per structure.

Structures (on the activation that enters a weight group, paper Fig. 2):

* ``"unit"`` — ARD / dropout: one ξ per feature of the last axis, x of shape (*, D).
* ``"channel"`` — one ξ per channel of axis 1, shared across the spatial axes, x of shape
  (N, C, *spatial): SpatialDropout / ``nn.Dropout2d``; on a conv *output* this is the
  "filter" structure of eq. 23.
* ``"layer"`` — ADD / stochastic depth: one τ per example (or per batch) for the whole tensor.

Granularities (how often a fresh draw is made):

* ``"example"`` — every example (every row of the leading axes) gets its own draw, as dropout does.
* ``"batch"`` — one draw shared by the whole minibatch.
* ``"sequence"`` — x is (T, N, *) (or (N, T, *) with ``time_dim=1``): one draw per sequence,
  reused at every time step (variational RNN dropout).
"""

from __future__ import annotations

from dropprior._validation import check_choice

__all__ = ["STRUCTURES", "GRANULARITIES", "noise_shape"]

STRUCTURES: dict[str, str] = {
    "unit": "one ξ per feature of the last axis (ARD, dropout); x of shape (*, D)",
    "channel": "one ξ per channel of axis 1, shared across space (SpatialDropout); x (N, C, *)",
    "layer": "one τ for the whole tensor of an example (ADD, stochastic depth); x (N, *)",
}

GRANULARITIES: dict[str, str] = {
    "example": "a fresh draw for every example (every row of the leading axes)",
    "batch": "one draw shared by the whole minibatch",
    "sequence": "one draw per sequence, reused at every time step; x is (T, N, *) or (N, T, *)",
}

_MIN_RANK = {"unit": 1, "channel": 2, "layer": 1}


def noise_shape(shape: tuple[int, ...], structure: str, granularity: str = "example",
                time_dim: int = 0) -> tuple[int, ...]:
    """The shape of the noise tensor that multiplies an activation of shape ``shape``.

    Args:
        shape: the activation's shape.
        structure: one of :data:`STRUCTURES`.
        granularity: one of :data:`GRANULARITIES`.
        time_dim: the time axis for ``granularity="sequence"`` (0: (T, N, *), 1: (N, T, *)).

    Returns:
        A shape of the same rank as ``shape`` with 1 on every axis that shares a draw.

    Shape:
        ``unit``: example → (*, D); batch → (1, ..., 1, D); sequence → (1, N, ..., D).
        ``channel``: example → (N, C, 1, ...); batch → (1, C, 1, ...).
        ``layer``: example → (N, 1, ...); batch → (1, ..., 1); sequence → (1, N, 1, ...).

    Example:
        >>> noise_shape((8, 3, 5, 5), "channel")
        (8, 3, 1, 1)
    """
    check_choice("structure", structure, STRUCTURES)
    check_choice("granularity", granularity, GRANULARITIES)
    check_choice("time_dim", time_dim, (0, 1))
    ndim = len(shape)
    if ndim < _MIN_RANK[structure]:
        raise ValueError(
            f"structure={structure!r} needs an input of rank >= {_MIN_RANK[structure]} "
            f"({STRUCTURES[structure]}), got shape {tuple(shape)}"
        )
    if granularity == "sequence":
        if ndim < 3:
            raise ValueError(
                f"granularity='sequence' needs an input of rank >= 3, (T, N, *) or (N, T, *), "
                f"got shape {tuple(shape)}"
            )
        if structure == "channel":
            raise ValueError(
                "granularity='sequence' applies to structures 'unit' and 'layer', "
                "not 'channel' (a channel's spatial axes already share its draw)"
            )
    out = [1] * ndim
    if structure == "unit":
        if granularity == "batch":
            out[-1] = shape[-1]
        else:
            out = list(shape)
            if granularity == "sequence":
                out[time_dim] = 1
    elif structure == "channel":
        out[1] = shape[1]
        if granularity == "example":
            out[0] = shape[0]
    else:  # layer
        if granularity == "example":
            out[0] = shape[0]
        elif granularity == "sequence":
            out[1 - time_dim] = shape[1 - time_dim]
    return tuple(out)
