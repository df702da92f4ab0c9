r"""Float32 CPU matrix products through oneDNN, for the hand-written LSTM recurrence.

torch's ``mm`` / ``addmm`` / ``bmm`` on the CPU call its BLAS (MKL in the official wheels), which
on some CPUs (AMD's among them) does not use its widest vector kernels; ``nn.LSTM``'s fused
kernel calls oneDNN instead. The untied LSTM's recurrence and projections are hand-written
(:mod:`dropprior.functional._bptt`, :mod:`dropprior.functional._lstm`), so they route their
float32 CPU products through oneDNN's linear primitive too: torch's
``torch.ops.mkldnn._linear_pointwise`` (y = x Wᵀ, with a fused ``+ other`` in its ``binary``
form) and ``_reorder_linear_weight`` (W packed once into oneDNN's blocked layout, for the
35-odd per-step products that reuse it).

These are torch's internal inference ops (the ones Inductor emits), not public API:
:func:`enabled` tries them once on a tiny input, and every caller falls back to ``torch.mm``
where they are missing, fail, or the tensors are not float32 on the CPU, and under
``torch.compile``. ``DROPPRIOR_ONEDNN=0`` in the environment switches them off.
"""

from __future__ import annotations

import functools
import os

import torch
from torch import Tensor

__all__ = ["enabled", "usable", "linear", "pack", "linear_packed"]


@functools.cache
def _works() -> bool:
    """Whether torch's oneDNN linear ops exist here and give x Wᵀ on a tiny input."""
    if os.environ.get("DROPPRIOR_ONEDNN", "1") == "0":
        return False
    try:
        ops = torch.ops.mkldnn
        if not torch.backends.mkldnn.is_available():
            return False
        x = torch.arange(6, dtype=torch.float32).view(2, 3)
        w = torch.arange(12, dtype=torch.float32).view(4, 3) / 7
        y = ops._linear_pointwise(x, w, None, "none", [], "")
        packed = ops._reorder_linear_weight(w, 2)
        z = ops._linear_pointwise.binary(x, y, packed, None, "add")
    except (AttributeError, RuntimeError, NotImplementedError):
        return False
    expected = x @ w.t()
    return bool(torch.allclose(y, expected, atol=1e-4)
                and torch.allclose(z, 2 * expected, atol=1e-4))


def enabled() -> bool:
    """Whether the oneDNN products are in use (available, and not switched off)."""
    return _works()


def usable(*tensors: Tensor) -> bool:
    """Whether products of these tensors go through oneDNN: float32 CPU tensors, eager mode,
    and :func:`enabled`."""
    if torch.compiler.is_compiling():
        return False
    if not all(t.dtype == torch.float32 and t.device.type == "cpu" for t in tensors):
        return False
    return enabled()


def _matrix_layout(t: Tensor) -> Tensor:
    """``t`` itself where it is a row- or column-major matrix (a transpose, or rows or columns
    of a wider one, as BLAS takes them: oneDNN reads such strides without a copy), else a
    contiguous copy."""
    rows, cols = t.shape
    row_stride, col_stride = t.stride()
    if (col_stride == 1 and row_stride >= max(cols, 1)) or \
            (row_stride == 1 and col_stride >= max(rows, 1)):
        return t
    return t.contiguous()


def linear(x: Tensor, weight: Tensor, bias: Tensor | None = None) -> Tensor:
    """x Wᵀ (+ b) for a dense ``weight`` (oneDNN packs it per call). Shape: x (M, K);
    weight (N, K); bias (N,); output (M, N). x and W may be transposes or row / column slices
    of wider matrices (read in place); any other layout is copied first."""
    return torch.ops.mkldnn._linear_pointwise(_matrix_layout(x), _matrix_layout(weight),
                                             None if bias is None else bias.contiguous(),
                                             "none", [], "")


def pack(weight: Tensor, rows: int) -> Tensor:
    """``weight`` (N, K) packed into oneDNN's layout for products with ``rows``-row inputs
    (:func:`linear_packed`); a copy, so the result does not follow later in-place changes."""
    return torch.ops.mkldnn._reorder_linear_weight(weight.detach().contiguous(), rows)


def linear_packed(x: Tensor, packed: Tensor, add: Tensor | None = None) -> Tensor:
    """x Wᵀ (+ ``add``) for W packed by :func:`pack`. Shape: x (M, K); add (M, N); output
    (M, N)."""
    if add is None:
        return torch.ops.mkldnn._linear_pointwise(x, packed, None, "none", [], "")
    return torch.ops.mkldnn._linear_pointwise.binary(x, add, packed, None, "add")
