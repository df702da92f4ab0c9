r"""An LSTM layer whose input rows carry per-gate noise (untied structure, paper eq. 19–20).

Untied noise gives every gate g ∈ (i, f, g, o) (torch's gate order) its own diagonal Ξ_g, drawn
once per sequence:

.. math:: \text{gates}_t = x_t \Xi_g W_g^\top + b_{ih} + h_{t-1} U^\top + b_{hh}.

Because Ξ_g does not depend on t, the input projections of *all* time steps are computed at once
(one batched matrix product over the four gates); only the recurrence h_{t-1} → h_t is a loop over
time, which is unavoidable once the input projection differs per example and gate. Its backward
is hand-written (:mod:`dropprior.functional._bptt`): the gradient of U is one matrix product over
all steps, as in torch's fused LSTM, instead of one per step. Optional recurrent noise ξ^h
multiplies h_{t-1} (rows of U), also once per sequence. For float32 CPU tensors the recurrence's
products, forward and backward, go through oneDNN (:mod:`dropprior.functional._onednn`), the
library of torch's own fused LSTM, instead of torch's BLAS; so do the input projections
(:class:`GateProjection`) from ``_ONEDNN_MIN_MACS`` multiply-adds per gate group on, below which
one batched torch product is the faster.

On CUDA that per-step loop is bound by kernel launches, so :func:`untied_lstm_fused` runs the same
layer through torch's fused (cuDNN) LSTM instead: the input widened to 4·D features, gate g's
block being x ⊙ ξ_g, and W_ih made block-diagonal. It is exact and costs four times the input-side
FLOPs, which on a GPU is cheaper than the loop (docs/layers/benchmarks.md); on a CPU it is not.
"""

from __future__ import annotations

import contextlib
import warnings
from typing import Any

import torch
from torch import Tensor
from torch.autograd.function import once_differentiable

from dropprior.functional import _onednn as onednn
from dropprior.functional._bptt import RecurrenceBPTT

__all__ = ["GateProjection", "gate_projections", "lstm_layer", "lstm_recurrence",
           "packed_lstm_recurrence", "packed_owners", "untied_lstm_fused"]


# Multiply-adds per noise group (T·N·D·rows) from which the G products go through oneDNN
# (GateProjection) rather than one batched torch product: below it the batched product is the
# faster on this project's CPUs, above it oneDNN (benchmarks/bench_gate_projection.py).
_ONEDNN_MIN_MACS = 48 * 2**20


def gate_projections(x: Tensor, weight_ih: Tensor, bias_ih: Tensor | None,
                     gate_noise: Tensor) -> Tensor:
    r"""Input projections x_t Ξ_g W_gᵀ + b_ih for every time step at once.

    Args:
        x: inputs, (T, N, D).
        weight_ih: W_ih, (4H, D), torch's gate order.
        bias_ih: b_ih, (4H,) or None.
        gate_noise: Ξ, (G, N, D) or (G, 1, D) with G = 4 (untied: one draw per gate, example and
            input dimension, one product per gate) or G = 1 (tied: one draw shared by the four
            gates, one product for all of them).

    Shape:
        output: (T, N, 4H).
    """
    groups = gate_noise.shape[0]
    if groups not in (1, 4):
        raise ValueError(f"gate_noise must have 4 (untied) or 1 (tied) rows in its first "
                         f"dimension, got shape {tuple(gate_noise.shape)}")
    t, n, d = x.shape
    rows = weight_ih.shape[0] // groups
    if t * n * d * rows >= _ONEDNN_MIN_MACS and onednn.usable(x, weight_ih, gate_noise):
        return GateProjection.apply(x, weight_ih, bias_ih, gate_noise)
    return batched_gate_projections(x, weight_ih, bias_ih, gate_noise)


def batched_gate_projections(x: Tensor, weight_ih: Tensor, bias_ih: Tensor | None,
                             gate_noise: Tensor) -> Tensor:
    """:func:`gate_projections` as one batched torch product over the G noise groups (autograd
    backward), whatever the size and device; shapes as there."""
    t, n, d = x.shape
    groups = gate_noise.shape[0]
    rows = weight_ih.shape[0] // groups
    scaled = _gate_inputs(x, gate_noise)  # (G, T·N, D)
    weight = weight_ih.view(groups, rows, d).transpose(1, 2)
    if bias_ih is None:
        proj = torch.bmm(scaled, weight)
    else:  # the bias inside the product: no separate pass over the (T, N, 4H) result
        proj = torch.baddbmm(bias_ih.view(groups, 1, rows), scaled, weight)
    return proj.view(groups, t, n, rows).permute(1, 2, 0, 3).reshape(t, n, groups * rows)


def _gate_inputs(x: Tensor, gate_noise: Tensor) -> Tensor:
    """x ⊙ ξ_g for the G noise groups, the time steps and examples flattened. Shape: x (T, N, D);
    gate_noise (G, N, D) or (G, 1, D); output (G, T·N, D)."""
    t, n, d = x.shape
    return (x.unsqueeze(0) * gate_noise.unsqueeze(1)).reshape(gate_noise.shape[0], t * n, d)


class GateProjection(torch.autograd.Function):
    """:func:`gate_projections` with its G products (and those of its backward) through
    oneDNN: ``apply(x, weight_ih, bias_ih, gate_noise)``, float32 CPU tensors.

    Backward, with δ_g the gradient of group g's block of rows (a gate, or all four when G = 1)
    and S_g = x ⊙ ξ_g: ∂W_g = Σ δ_gᵀ S_g, ∂b = Σ δ, ∂x = Σ_g (δ_g W_g) ⊙ ξ_g and
    ∂ξ_g = Σ_t (δ_g W_g) ⊙ x (summed over examples too when ξ is shared by them).
    """

    @staticmethod
    def forward(ctx: Any, x: Tensor, weight_ih: Tensor, bias_ih: Tensor | None,
                gate_noise: Tensor) -> Tensor:
        t, n, d = x.shape
        groups = gate_noise.shape[0]
        rows = weight_ih.shape[0] // groups
        scaled = _gate_inputs(x, gate_noise)
        weights = weight_ih.view(groups, rows, d)
        biases = [None] * groups if bias_ih is None else bias_ih.view(groups, rows).unbind(0)
        blocks = [onednn.linear(scaled[g], weights[g], biases[g]) for g in range(groups)]
        out = blocks[0] if groups == 1 else torch.cat(blocks, dim=1)  # (T·N, 4H)
        ctx.save_for_backward(x, weight_ih, gate_noise, scaled)
        ctx.has_bias = bias_ih is not None
        return out.view(t, n, groups * rows)

    @staticmethod
    @once_differentiable
    def backward(ctx: Any, d_out: Tensor) -> tuple[Tensor | None, ...]:
        x, weight_ih, gate_noise, scaled = ctx.saved_tensors
        t, n, d = x.shape
        groups = gate_noise.shape[0]
        rows = weight_ih.shape[0] // groups
        grads = d_out.reshape(t * n, groups, rows)
        weights = weight_ih.view(groups, rows, d)
        needs = ctx.needs_input_grad
        d_weight = d_bias = d_x = d_noise = None
        if needs[1]:
            d_weight = _stacked([onednn.linear(grads[:, g].t(), scaled[g].t())
                                 for g in range(groups)]).view(groups * rows, d)
        if ctx.has_bias and needs[2]:
            d_bias = grads.sum(0).reshape(groups * rows)
        if needs[0] or needs[3]:
            back = _stacked([onednn.linear(grads[:, g], weights[g].t())
                             for g in range(groups)]).view(groups, t, n, d)  # δ_g W_g
            if needs[0]:
                d_x = back[0] * gate_noise[0] if groups == 1 else \
                    (back * gate_noise.unsqueeze(1)).sum(0)
            if needs[3]:
                d_noise = (back * x).sum(1)
                if gate_noise.shape[1] == 1:
                    d_noise = d_noise.sum(1, keepdim=True)
        return d_x, d_weight, d_bias, d_noise


def _stacked(blocks: list[Tensor]) -> Tensor:
    """The blocks stacked along a new first dimension; a single block as a view, not a copy."""
    return blocks[0].unsqueeze(0) if len(blocks) == 1 else torch.stack(blocks)


def lstm_recurrence(proj: Tensor, weight_hh: Tensor, bias_hh: Tensor | None,
                    hx: tuple[Tensor, Tensor], recurrent_noise: Tensor | None = None
                    ) -> tuple[Tensor, tuple[Tensor, Tensor]]:
    r"""Run the LSTM recurrence on precomputed input projections.

    c_t = f ⊙ c_{t-1} + i ⊙ g, h_t = o ⊙ tanh(c_t), with
    gates_t = proj_t + (h_{t-1} ⊙ ξ^h) Uᵀ + b_hh.

    Args:
        proj: input projections, (T, N, 4H).
        weight_hh: U, (4H, H).
        bias_hh: (4H,) or None.
        hx: (h_0, c_0), each (N, H).
        recurrent_noise: ξ^h, (N, H) or (1, H), or None.

    Returns:
        (h_1..h_T stacked, (T, N, H); the final state (h_T, c_T)).
    """
    h, c = hx
    learned = recurrent_noise is not None and recurrent_noise.requires_grad
    if not torch.compiler.is_compiling() and not learned:
        out, h, c = RecurrenceBPTT.apply(proj, weight_hh, bias_hh, h, c, recurrent_noise)
        return out, (h, c)
    # Under torch.compile, or with a learned ξ^h: autograd through the per-step cell.
    empty = proj.new_zeros(proj.shape[1], 0)
    no_input = proj.new_zeros(proj.shape[2], 0)
    outputs = []
    for step_proj in proj.unbind(0):
        h_in = h if recurrent_noise is None else h * recurrent_noise
        # lstm_cell(input, hx, w_ih, w_hh, b_ih, b_hh): a zero-width input turns its input
        # linear map into "+ b_ih", so the precomputed projection enters as that bias.
        h, c = torch.lstm_cell(empty, (h_in, c), no_input, weight_hh, step_proj, bias_hh)
        outputs.append(h)
    return torch.stack(outputs), (h, c)


def untied_lstm_fused(x: Tensor, weight_ih: Tensor, weight_hh: Tensor, bias_ih: Tensor | None,
                      bias_hh: Tensor | None, hx: tuple[Tensor, Tensor], gate_noise: Tensor,
                      batch_sizes: Tensor | None = None) -> tuple[Tensor, tuple[Tensor, Tensor]]:
    r"""One untied-noise LSTM layer through torch's fused LSTM kernel.

    .. math:: \tilde x_t = [x_t \Xi_i, x_t \Xi_f, x_t \Xi_g, x_t \Xi_o],\qquad
        \tilde W = \operatorname{blockdiag}(W_i, W_f, W_g, W_o),

    so that :math:`\tilde x_t \tilde W^\top = [x_t \Xi_g W_g^\top]_g`: the same gates as
    :func:`gate_projections` followed by :func:`lstm_recurrence` (without recurrent noise).

    Args:
        x: inputs, (T, N, D), or a packed sequence's data (R, D) with ``batch_sizes``.
        weight_ih: W_ih, (4H, D), torch's gate order; weight_hh: U, (4H, H).
        bias_ih, bias_hh: (4H,) each, or both None.
        hx: (h_0, c_0), each (N, H).
        gate_noise: Ξ, (4, N, D) or (4, 1, D); for packed data (4, R, D), one row per packed
            row (:func:`packed_owners`), or (4, 1, D).
        batch_sizes: the packed sequence's batch sizes, or None for padded x.

    Returns:
        (h_1..h_T stacked, (T, N, H), or the packed output (R, H); the final state (h_T, c_T),
        each sequence's own last step for packed data).
    """
    d = x.shape[-1]
    hidden = weight_hh.shape[1]
    wide = (x.unsqueeze(-2) * gate_noise.movedim(0, -2)).flatten(-2)  # (..., 4·D)
    weights = [torch.block_diag(*weight_ih.view(4, hidden, d).unbind(0)), weight_hh]
    if bias_ih is not None and bias_hh is not None:
        weights += [bias_ih, bias_hh]
    return lstm_layer(wide, hx, weights, torch.is_grad_enabled(), batch_sizes)


def lstm_layer(x: Tensor, hx: tuple[Tensor, Tensor], weights: list[Tensor], train: bool,
               batch_sizes: Tensor | None = None) -> tuple[Tensor, tuple[Tensor, Tensor]]:
    """One LSTM layer through torch's fused kernel (``torch.lstm``, what ``nn.LSTM`` calls).

    ``weights`` are [W_ih, W_hh] or [W_ih, W_hh, b_ih, b_hh]. They are separate tensors, not
    ``nn.LSTM``'s one flattened buffer, so on CUDA cuDNN copies them into its layout at every call
    and warns about it each time; the warning is silenced here in eager mode (the copy's cost is
    on docs/layers/benchmarks.md). With ``batch_sizes``, x is a packed sequence's data (the
    kernel's packed form, as ``nn.LSTM`` calls it for a ``PackedSequence``).

    Shape:
        x: (T, N, D), or packed (R, D); hx: (h_0, c_0), each (N, H) (sorted order for packed
        data); output: (T, N, H) or (R, H), and (h_T, c_T), each sequence's own last step.
    """
    h, c = hx
    quiet = x.is_cuda and not torch.compiler.is_compiling()  # dynamo cannot trace warnings filters
    with warnings.catch_warnings() if quiet else contextlib.nullcontext():
        if quiet:
            warnings.filterwarnings("ignore", message="RNN module weights are not part of single")
        if batch_sizes is None:
            out, h_n, c_n = torch.lstm(x, (h[None], c[None]), weights, len(weights) == 4, 1,
                                       0.0, train, False, False)
        else:
            out, h_n, c_n = torch.lstm(x, batch_sizes, (h[None], c[None]), weights,
                                       len(weights) == 4, 1, 0.0, train, False)
    return out, (h_n[0], c_n[0])


def packed_owners(batch_sizes: Tensor, sorted_indices: Tensor | None, device: torch.device
                  ) -> Tensor:
    """For each row of a packed sequence's data, the batch index (the order of the padded batch
    it was packed from) of the sequence it belongs to.

    Packed data holds step 0 of every sequence, then step 1 of those at least two steps long,
    and so on, each step's rows in sorted (longest first) order: row r of step t is the
    ``r``-th longest sequence, batch index ``sorted_indices[r]``.

    Shape:
        batch_sizes: (T,) (on the CPU, as in a ``PackedSequence``); output: (R,), R the sum of
        ``batch_sizes``.
    """
    sizes = batch_sizes.to(device)
    starts = torch.cumsum(sizes, 0) - sizes
    rank = torch.arange(int(sizes.sum()), device=device) - starts.repeat_interleave(sizes)
    return rank if sorted_indices is None else sorted_indices.to(device)[rank]


def packed_lstm_recurrence(proj: Tensor, batch_sizes: Tensor, weight_hh: Tensor,
                           hx: tuple[Tensor, Tensor], recurrent_noise: Tensor | None = None
                           ) -> tuple[Tensor, tuple[Tensor, Tensor]]:
    r""":func:`lstm_recurrence` on a packed sequence: one call per run of steps with the same
    number of sequences still running, each carrying on from the state the last one left.

    A sequence that ends keeps its state from then on, so the final state is each sequence's own
    last step (as ``nn.LSTM`` returns it for a ``PackedSequence``), not one computed through
    padding.

    Args:
        proj: input projections of the packed rows (with both biases), (R, 4H).
        batch_sizes: the packed sequence's batch sizes, (T,).
        weight_hh: U, (4H, H).
        hx: (h_0, c_0), each (N, H), in sorted order.
        recurrent_noise: ξ^h, (N, H) in sorted order or (1, H), or None.

    Returns:
        (the packed output, (R, H); the final state (h, c), each (N, H), in sorted order).
    """
    sizes = batch_sizes.tolist()
    h, c = hx
    outputs = []
    start = step = 0
    while step < len(sizes):
        rows = sizes[step]
        end = step
        while end < len(sizes) and sizes[end] == rows:
            end += 1
        chunk = proj[start:start + (end - step) * rows].view(end - step, rows, -1)
        noise = recurrent_noise if recurrent_noise is None or recurrent_noise.shape[0] == 1 \
            else recurrent_noise[:rows]
        out, (h_run, c_run) = lstm_recurrence(chunk, weight_hh, None, (h[:rows], c[:rows]), noise)
        outputs.append(out.reshape(-1, out.shape[-1]))
        h = h_run if rows == h.shape[0] else torch.cat([h_run, h[rows:]])
        c = c_run if rows == c.shape[0] else torch.cat([c_run, c[rows:]])
        start += (end - step) * rows
        step = end
    return torch.cat(outputs) if len(outputs) > 1 else outputs[0], (h, c)
