r"""The LSTM cell's elementwise steps as two compiled CPU kernels, for the hand-written recurrence.

Each time step of :class:`~dropprior.functional._bptt.RecurrenceBPTT` is one matrix product and
the cell's elementwise work. Written as torch operations that work is six calls forward and
seven backward, each on a (N, 4H) or (N, H) block so small that the per-call overhead, not the
arithmetic, sets its cost. Here it is one Numba kernel call per step each way:

* :func:`cell_forward` — i, f, o = σ(·), g = tanh(·) of the step's pre-activations,
  c_t = f ⊙ c_{t−1} + i ⊙ g, h_t = o ⊙ tanh c_t (gate order i, f, g, o, torch's);
* :func:`cell_backward` — given ∂h_t (from step t + 1, plus the output's gradient) and ∂c_t, the
  pre-activation gradients δ_t = (∂c ⊙ g ⊙ σ'(i), ∂c ⊙ c_{t−1} ⊙ σ'(f), ∂c ⊙ i ⊙ tanh'(g),
  ∂h ⊙ tanh c_t ⊙ σ'(o)), with ∂c = ∂c_t + ∂h ⊙ o ⊙ tanh'(c_t), and ∂c_{t−1} = ∂c ⊙ f.

σ and tanh are computed from the vectorisable float32 ``exp`` of the fused noise kernel
(:mod:`dropprior.functional._cpu_kernels`): σ(x) = 1 / (1 + e^{−x}); tanh as Cephes ``tanhf``
does it (an odd polynomial for |x| < 0.625, 1 − 2 / (e^{2|x|} + 1) above). Both are accurate to a
few float32 ulps and pass NaN through. The kernels are float32 only; they are compiled on first use
and cached on disk by Numba, as the noise kernels are.

``DROPPRIOR_LSTM_KERNELS=0`` in the environment switches them off (torch's operations are then
used, as they always are for other dtypes, other devices and under ``torch.compile``).
"""

# numba code: numpy scalar types where mypy expects Python floats
# mypy: disable-error-code="assignment,return-value,arg-type"
from __future__ import annotations

import os

import numpy as np
import torch
from torch import Tensor

from dropprior.functional._cpu_kernels import _exp, _f32, _jit

__all__ = ["usable", "cell_forward", "cell_backward"]

_ONE, _TWO = _f32(1.0), _f32(2.0)


def usable(*tensors: Tensor) -> bool:
    """Whether the cell kernels serve a recurrence on these tensors: float32 CPU tensors, eager
    mode, and not switched off by ``DROPPRIOR_LSTM_KERNELS=0``."""
    if os.environ.get("DROPPRIOR_LSTM_KERNELS", "1") == "0" or torch.compiler.is_compiling():
        return False
    return all(t.dtype == torch.float32 and t.device.type == "cpu" for t in tensors)


@_jit(inline=True)
def _sigmoid(x: float) -> float:
    """σ(x) = 1 / (1 + e^{−x}) in float32; NaN stays NaN."""
    s = _ONE / (_ONE + _exp(-x))
    return x if x != x else s


@_jit(inline=True)
def _tanh(x: float) -> float:
    """tanh x in float32 (Cephes tanhf, branch-free so that it vectorises); NaN stays NaN."""
    a = abs(x)
    large = _ONE - _TWO / (_exp(_TWO * a) + _ONE)
    z = a * a
    p = _f32(-5.70498872745e-3) * z + _f32(2.06390887954e-2)
    p = p * z - _f32(5.37397155531e-2)
    p = p * z + _f32(1.33314422036e-1)
    p = p * z - _f32(3.33332819422e-1)
    small = p * z * a + a
    r = large if a >= _f32(0.625) else small
    r = r if x >= _f32(0.0) else -r
    return x if x != x else r


@_jit(cache=True)
def cell_forward(t: int, gates: np.ndarray, acts: np.ndarray, cs: np.ndarray, tanh_c: np.ndarray,
                 hs: np.ndarray) -> None:
    """Step t forward. Reads ``gates`` (N, 4H), the pre-activations, and c_{t−1} = ``cs[t]``;
    writes the activations to ``acts[t]`` ((T, N, 4H)), c_t to ``cs[t + 1]``, tanh c_t to
    ``tanh_c[t]`` ((T, N, H)) and h_t to ``hs[t + 1]`` ((T + 1, N, H))."""
    n, four = gates.shape
    hidden = four // 4
    for b in range(n):
        pre, act = gates[b], acts[t, b]
        # one simple loop per function: LLVM vectorises these, not one loop doing all of it
        for j in range(2 * hidden):
            act[j] = _sigmoid(pre[j])
        for j in range(2 * hidden, 3 * hidden):
            act[j] = _tanh(pre[j])
        for j in range(3 * hidden, four):
            act[j] = _sigmoid(pre[j])
        c_prev, c_new, tc, h = cs[t, b], cs[t + 1, b], tanh_c[t, b], hs[t + 1, b]
        for j in range(hidden):
            c_new[j] = act[hidden + j] * c_prev[j] + act[j] * act[2 * hidden + j]
        for j in range(hidden):
            tc[j] = _tanh(c_new[j])
        for j in range(hidden):
            h[j] = act[3 * hidden + j] * tc[j]


@_jit(cache=True)
def cell_backward(t: int, dh: np.ndarray, dc: np.ndarray, d_out: np.ndarray, acts: np.ndarray,
                  cs: np.ndarray, tanh_c: np.ndarray, delta: np.ndarray) -> None:
    """Step t backward. ``dh`` (N, H): ∂h_t from step t + 1 (without the output's gradient
    ``d_out[t]``, which is added here; ``dh`` is not changed); ``dc`` (N, H): ∂c_t, replaced by
    ∂c_{t−1}. Writes δ_t to ``delta[t]`` ((T, N, 4H)). ``acts``, ``cs``, ``tanh_c`` as saved by
    :func:`cell_forward`."""
    n, hidden = dh.shape
    for b in range(n):
        dh_b, dc_b, do_b = dh[b], dc[b], d_out[t, b]
        act, c_prev, tc, d = acts[t, b], cs[t, b], tanh_c[t, b], delta[t, b]
        for j in range(hidden):
            dh_j = dh_b[j] + do_b[j]
            i, f = act[j], act[hidden + j]
            g, o = act[2 * hidden + j], act[3 * hidden + j]
            tc_j = tc[j]
            dc_j = dc_b[j] + dh_j * o * (_ONE - tc_j * tc_j)
            d[j] = dc_j * g * i * (_ONE - i)
            d[hidden + j] = dc_j * c_prev[j] * f * (_ONE - f)
            d[2 * hidden + j] = dc_j * i * (_ONE - g * g)
            d[3 * hidden + j] = dh_j * tc_j * o * (_ONE - o)
            dc_b[j] = dc_j * f
