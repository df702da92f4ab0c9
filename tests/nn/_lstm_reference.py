"""The LSTM reference loop the layer tests compare against."""

from __future__ import annotations

import torch


def _reference_lstm(x, params, gate_noise, rec_noise=None):
    """Per-step loop, torch's gate order (i, f, g, o); gate_noise (4, N, D) reused every step."""
    w_ih, w_hh, b_ih, b_hh = params
    hidden = w_hh.shape[1]
    h = x.new_zeros(x.shape[1], hidden)
    c = x.new_zeros(x.shape[1], hidden)
    outs = []
    for t in range(x.shape[0]):
        hh = h if rec_noise is None else h * rec_noise
        pre = [(x[t] * gate_noise[k]) @ w_ih[k * hidden:(k + 1) * hidden].T
               + b_ih[k * hidden:(k + 1) * hidden]
               + hh @ w_hh[k * hidden:(k + 1) * hidden].T + b_hh[k * hidden:(k + 1) * hidden]
               for k in range(4)]
        i, f, g, o = torch.sigmoid(pre[0]), torch.sigmoid(pre[1]), torch.tanh(pre[2]), \
            torch.sigmoid(pre[3])
        c = f * c + i * g
        h = o * torch.tanh(c)
        outs.append(h)
    return torch.stack(outs)


def _params(lstm, layer):
    return [getattr(lstm, f"{n}_l{layer}") for n in
            ("weight_ih", "weight_hh", "bias_ih", "bias_hh")]
