r"""The LSTM recurrence on precomputed input projections, with a hand-written backward (BPTT).

Why not autograd through a loop of ``torch.lstm_cell``: autograd then forms the gradient of the
recurrent weight U once per time step, ∂U_t = δ_tᵀ h_{t−1} (a (4H × N)·(N × H) product with
N = batch, 35 of them for T = 35) and accumulates the 35 results. Here backward keeps the
pre-activation gradients δ_t of every step and forms

.. math:: \partial U = \sum_t \delta_t^\top \tilde h_{t-1} = \Delta^\top \tilde H,
          \qquad \partial b_{hh} = \textstyle\sum_{t,n} \delta_{t,n}

with one matrix product over all steps, as torch's own fused LSTM does (h̃ = h ⊙ ξ^h with
recurrent noise, h otherwise). The per-step work left in the loop is δ_t and δ_t U, the
gradient that flows to h_{t−1}.

Float32 products on the CPU go through oneDNN (:mod:`dropprior.functional._onednn`) where the
per-step product is large enough to repay packing U into oneDNN's layout once per call (U for
forward, Uᵀ for backward; from ``_PACK_MIN_MACS`` multiply-adds N·4H·H per step on), and so does
the gradient of U from ``_ONEDNN_GRAD_MIN_ELEMENTS`` elements of U on; smaller products go
through torch.addmm / torch.mm, the faster there. On float32 CPU tensors each step's
elementwise cell work, forward and backward, is one compiled kernel call
(:mod:`dropprior.functional._lstm_kernels`); elsewhere it is torch operations.

Gate order is torch's (i, f, g, o): c_t = f ⊙ c_{t−1} + i ⊙ g, h_t = o ⊙ tanh c_t.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor
from torch.autograd.function import once_differentiable

from dropprior.functional import _lstm_kernels as kernels
from dropprior.functional import _onednn as onednn

__all__ = ["RecurrenceBPTT"]

# Multiply-adds of one step's product h_{t−1} Uᵀ (N·4H·H) from which U is packed for oneDNN once
# per call: below it packing costs more than it saves over the per-step products and torch's
# addmm / mm are the faster on this project's CPUs, above it the packed products
# (benchmarks/bench_recurrence_products.py; docs/layers/benchmarks.md).
_PACK_MIN_MACS = 6 * 2**20

# Elements of U (4H·H) from which the gradient of U, Δᵀ H̃ with Δ (T·N, 4H), goes through oneDNN:
# below it torch.mm is the faster on this project's CPUs (about H < 512), above it oneDNN
# (the same benchmark).
_ONEDNN_GRAD_MIN_ELEMENTS = 2**20


def _packs(fast: bool, weight_hh: Tensor, rows: int) -> bool:
    """Whether the per-step products take U packed for oneDNN: oneDNN in use (``fast``) and
    rows·4H·H ≥ ``_PACK_MIN_MACS``."""
    return fast and rows * weight_hh.numel() >= _PACK_MIN_MACS


def _grad_through_onednn(fast: bool, weight_hh: Tensor) -> bool:
    """Whether the gradient of U goes through oneDNN: oneDNN in use (``fast``) and
    4H·H ≥ ``_ONEDNN_GRAD_MIN_ELEMENTS``."""
    return fast and weight_hh.numel() >= _ONEDNN_GRAD_MIN_ELEMENTS


class RecurrenceBPTT(torch.autograd.Function):
    """``apply(proj, weight_hh, bias_hh, h0, c0, recurrent_noise)`` → (h_1..h_T, h_T, c_T).

    ``proj`` (T, N, 4H) holds the input projections (with b_ih); ``bias_hh`` (4H,) or None;
    ``h0``, ``c0`` (N, H); ``recurrent_noise`` (N, H), (1, H) or None, a constant (no gradient).
    Saves the gate activations (T, N, 4H) and the states (T + 1, N, H), as autograd would.
    """

    @staticmethod
    def forward(ctx: Any, proj: Tensor, weight_hh: Tensor, bias_hh: Tensor | None, h0: Tensor,
                c0: Tensor, recurrent_noise: Tensor | None) -> tuple[Tensor, Tensor, Tensor]:
        steps = proj.shape[0]
        pre = proj if bias_hh is None else proj + bias_hh
        acts = torch.empty_like(pre)  # σ(i), σ(f), tanh(g), σ(o) of every step
        hs = proj.new_empty(steps + 1, *h0.shape)
        cs = proj.new_empty(steps + 1, *c0.shape)
        tanh_c = proj.new_empty(steps, *c0.shape)
        hs[0], cs[0] = h0, c0
        fast = onednn.usable(proj, weight_hh, h0)
        ctx.packs = _packs(fast, weight_hh, h0.shape[0])
        packed = onednn.pack(weight_hh, h0.shape[0]) if ctx.packs else None
        cell = kernels.usable(proj, weight_hh, h0, c0)
        steps_of = _forward_steps_kernel if cell else _forward_steps
        steps_of(pre, weight_hh, packed, recurrent_noise, acts, hs, cs, tanh_c)
        ctx.save_for_backward(weight_hh, acts, hs, cs, tanh_c, recurrent_noise)
        ctx.has_bias = bias_hh is not None
        ctx.fast, ctx.cell = fast, cell
        return hs[1:].clone(), hs[steps].clone(), cs[steps].clone()

    @staticmethod
    @once_differentiable
    def backward(ctx: Any, d_out: Tensor, d_hn: Tensor, d_cn: Tensor
                 ) -> tuple[Tensor | None, ...]:
        weight_hh, acts, hs, cs, tanh_c, noise = ctx.saved_tensors
        steps, n, hidden = tanh_c.shape
        packed = onednn.pack(weight_hh.t(), n) if ctx.packs else None  # δ_t U = δ_t (Uᵀ)ᵀ
        if ctx.cell:
            delta, dh, dc = _backward_steps_kernel(weight_hh, packed, acts, cs, tanh_c, noise,
                                                   d_out, d_hn, d_cn)
        else:
            delta, dh, dc = _backward_steps(weight_hh, packed, acts, cs, tanh_c, noise,
                                            d_out, d_hn, d_cn)
        needs = ctx.needs_input_grad
        d_weight = d_bias = None
        if needs[1]:
            h_in = hs[:-1] if noise is None else hs[:-1] * noise
            flat_delta, flat_h = delta.reshape(-1, 4 * hidden), h_in.reshape(-1, hidden)
            d_weight = onednn.linear(flat_delta.t(), flat_h.t()) \
                if _grad_through_onednn(ctx.fast, weight_hh) else flat_delta.t() @ flat_h
        if ctx.has_bias and needs[2]:
            d_bias = delta.sum((0, 1))
        return (delta if needs[0] else None, d_weight, d_bias, dh if needs[3] else None,
                dc if needs[4] else None, None)


def _product(h_prev: Tensor, weight_hh: Tensor, packed: Tensor | None, pre_t: Tensor,
             out: Tensor) -> Tensor:
    """A step's pre-activations pre_t + h_{t−1} Uᵀ: oneDNN with U packed once ("+ pre_t" fused
    into the product) where ``packed`` is given, else torch.addmm into ``out``."""
    if packed is not None:
        return onednn.linear_packed(h_prev, packed, pre_t)
    return torch.addmm(pre_t, h_prev, weight_hh.t(), out=out)


def _back_product(delta_t: Tensor, weight_hh: Tensor, packed: Tensor | None,
                  noise: Tensor | None, out: Tensor) -> Tensor:
    """The gradient that flows to h_{t−1}: (δ_t U) ⊙ ξ^h, the product through oneDNN with Uᵀ
    packed once where ``packed`` is given, else torch.mm into ``out``."""
    dh = onednn.linear_packed(delta_t, packed) if packed is not None else \
        torch.mm(delta_t, weight_hh, out=out)
    return dh if noise is None else dh.mul_(noise)


def _forward_steps_kernel(pre: Tensor, weight_hh: Tensor, packed: Tensor | None,
                          noise: Tensor | None, acts: Tensor, hs: Tensor, cs: Tensor,
                          tanh_c: Tensor) -> None:
    """The forward loop with each step's elementwise work in one kernel call
    (:func:`~dropprior.functional._lstm_kernels.cell_forward`), filling acts, hs, cs, tanh_c."""
    arrays = tuple(v.numpy() for v in (acts, cs, tanh_c, hs))
    h_l, pre_l = hs.unbind(0), pre.unbind(0)
    gates, h_in = torch.empty_like(pre_l[0]), torch.empty_like(h_l[0])
    for t in range(len(pre_l)):
        h_prev = h_l[t] if noise is None else torch.mul(h_l[t], noise, out=h_in)
        gates = _product(h_prev, weight_hh, packed, pre_l[t], gates)
        kernels.cell_forward(t, gates.numpy(), *arrays)


def _forward_steps(pre: Tensor, weight_hh: Tensor, packed: Tensor | None, noise: Tensor | None,
                   acts: Tensor, hs: Tensor, cs: Tensor, tanh_c: Tensor) -> None:
    """The forward loop in torch operations, filling acts, hs, cs, tanh_c."""
    hidden = weight_hh.shape[1]
    g_slice = slice(2 * hidden, 3 * hidden)
    # Every per-step view is made once here: the loop is then 7 ops per step, with no
    # indexing and no allocation (35 short steps are dominated by per-call overhead).
    gates, h_in = pre.new_empty(pre.shape[1:]), torch.empty_like(hs[0])
    h_l, c_l, tc_l, pre_l, a_l = (v.unbind(0) for v in (hs, cs, tanh_c, pre, acts))
    ag_l = acts[:, :, g_slice].unbind(0)
    i_l, f_l, g_l, o_l = (v.unbind(0) for v in acts.view(*pre.shape[:2], 4, hidden).unbind(2))
    for t in range(len(pre_l)):
        h_prev = h_l[t] if noise is None else torch.mul(h_l[t], noise, out=h_in)
        gates = _product(h_prev, weight_hh, packed, pre_l[t], gates)
        torch.sigmoid(gates, out=a_l[t])
        torch.tanh(gates[:, g_slice], out=ag_l[t])
        torch.mul(f_l[t], c_l[t], out=c_l[t + 1]).addcmul_(i_l[t], g_l[t])
        torch.mul(o_l[t], torch.tanh(c_l[t + 1], out=tc_l[t]), out=h_l[t + 1])


def _backward_steps_kernel(weight_hh: Tensor, packed: Tensor | None, acts: Tensor, cs: Tensor,
                           tanh_c: Tensor, noise: Tensor | None, d_out: Tensor, d_hn: Tensor,
                           d_cn: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """The backward loop with each step's elementwise work in one kernel call
    (:func:`~dropprior.functional._lstm_kernels.cell_backward`): (δ, ∂h_0, ∂c_0)."""
    delta = torch.empty_like(acts)
    dh = d_hn.clone(memory_format=torch.contiguous_format)
    dc = d_cn.clone(memory_format=torch.contiguous_format)
    arrays = tuple(v.numpy() for v in (d_out.contiguous(), acts, cs, tanh_c, delta))
    dc_array, delta_l = dc.numpy(), delta.unbind(0)
    for t in reversed(range(tanh_c.shape[0])):
        kernels.cell_backward(t, dh.numpy(), dc_array, *arrays)
        dh = _back_product(delta_l[t], weight_hh, packed, noise, dh)
    return delta, dh, dc


def _backward_steps(weight_hh: Tensor, packed: Tensor | None, acts: Tensor, cs: Tensor,
                    tanh_c: Tensor, noise: Tensor | None, d_out: Tensor, d_hn: Tensor,
                    d_cn: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """The backward loop in torch operations: (δ, ∂h_0, ∂c_0)."""
    steps, n, hidden = tanh_c.shape
    a = acts.view(steps, n, 4, hidden)
    i, f, g, o = a.unbind(2)
    # δ_t = (dc_t, dc_t, dc_t, dh_t) ⊙ coef_t, coef = (g σ'(i), c_{t−1} σ'(f), i tanh'(g),
    # tanh(c_t) σ'(o)): every factor that does not depend on the incoming gradient, at once
    coef = torch.empty_like(a)
    torch.mul(i * (1 - i), g, out=coef[:, :, 0])
    torch.mul(f * (1 - f), cs[:-1], out=coef[:, :, 1])
    torch.mul(1 - g * g, i, out=coef[:, :, 2])
    torch.mul(o * (1 - o), tanh_c, out=coef[:, :, 3])
    o_dtanh = o * (1 - tanh_c * tanh_c)  # ∂h_t/∂c_t
    delta = torch.empty_like(acts)  # pre-activation gradients δ_t
    dh, dc = d_hn.clone(), d_cn.clone()
    dc_3 = dc.unsqueeze(1)
    # per-step views made once (see forward)
    delta_4 = delta.view(steps, n, 4, hidden)
    d_front, d_back = delta_4[:, :, :3].unbind(0), delta_4[:, :, 3].unbind(0)
    c_front, c_back = coef[:, :, :3].unbind(0), coef[:, :, 3].unbind(0)
    delta_l, f_l, od_l, dout_l = (v.unbind(0) for v in (delta, f, o_dtanh, d_out))
    for t in reversed(range(steps)):
        dh.add_(dout_l[t])
        dc.addcmul_(dh, od_l[t])
        torch.mul(c_front[t], dc_3, out=d_front[t])
        torch.mul(c_back[t], dh, out=d_back[t])
        dc.mul_(f_l[t])
        dh = _back_product(delta_l[t], weight_hh, packed, noise, dh)
    return delta, dh, dc
