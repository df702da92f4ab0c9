r"""LSTMs with ARD priors on the input rows (paper Section 5.2, eq. 16–20).

* ``gates="tied"`` (eq. 17–18): one ξ_d per input dimension, shared by the four gates and reused
  at every time step: gates = [x_t Ξ, h_{t-1}] M. The noise multiplies the input sequence once, so
  torch's fused LSTM kernel runs unchanged.
* ``gates="untied"`` (eq. 19–20): one ξ_{g,d} per gate and input dimension, reused at every step:
  gate g = σ(x_t Ξ_g W_g + h_{t-1} U_g). The input projections of all time steps are computed at
  once; the recurrence is a loop over time with a hand-written backward
  (:mod:`dropprior.functional._bptt`).

Noise is drawn once per sequence (``granularity="sequence"``) or once per minibatch
(``"batch"``). The recurrent weights U carry no noise unless ``recurrent_noise`` is given (one
ξ^h per hidden unit and sequence, on h_{t-1}; this needs the per-step loop) or
``recurrent_weight_noise`` (DropConnect on U: one ξ per entry of U, drawn once per forward call
and shared by every sequence and step, AWD-LSTM's WeightDrop for Bernoulli noise; U ⊙ Ξ^U then
enters whichever computation runs, the fused kernel included).

A ``PackedSequence`` runs as ``nn.LSTM`` runs it: each sequence's draw multiplies its own packed
rows; the fused kernel takes the packed data directly, and the per-step loop runs once per stretch
of steps with the same number of sequences still running, so that each sequence's final state is
its own last step's.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import Tensor, nn
from torch.nn.utils.rnn import PackedSequence

from dropprior._autocast import autocast_dtype
from dropprior._validation import check_bool, check_choice, check_generator, type_name
from dropprior.functional import (
    draw_generator,
    draw_noise,
    gate_projections,
    lstm_layer,
    lstm_recurrence,
    multiplicative_noise,
    noise_mean,
    packed_lstm_recurrence,
    packed_owners,
    untied_lstm_fused,
)
from dropprior.nn._module import NoisyModule, check_law
from dropprior.noise import NoiseLaw

__all__ = ["LSTMOutput", "NoisyLSTM"]

GATES = {
    "tied": "one ξ per input dimension shared by all four gates (eq. 17-18)",
    "untied": "one ξ per input dimension and gate (eq. 19-20)",
}


class _Packing(NamedTuple):
    """What the layers need of a PackedSequence besides its data."""

    batch_sizes: Tensor  # (T,), on the CPU
    owners: Tensor  # (R,): each packed row's batch index (packed_owners)
    order: Tensor | None  # sorted position → batch index (the sequence's sorted_indices)


def _refuse_lstm_options(dropout: float, bidirectional: bool, proj_size: int) -> None:
    """A ValueError for an ``nn.LSTM`` option NoisyLSTM does not have, set off its default."""
    if isinstance(dropout, bool) or not isinstance(dropout, (int, float)) or dropout != 0:
        raise ValueError(
            f"NoisyLSTM takes no dropout={dropout!r}: the noise on each layer's inputs is the "
            f"between-layer dropout (and more); pass noise=Bernoulli(1 - p, inverted=True) for "
            f"nn.LSTM's dropout=p (dropout=0 is accepted and does nothing)")
    if bidirectional is not False:
        raise ValueError(f"NoisyLSTM is unidirectional, got bidirectional={bidirectional!r}; "
                         f"run a second NoisyLSTM over the reversed sequence for the other "
                         f"direction")
    if isinstance(proj_size, bool) or proj_size != 0:
        raise ValueError(f"NoisyLSTM has no projection, got proj_size={proj_size!r} (0 is "
                         f"accepted)")


class NoisyLSTM(NoisyModule):
    r"""A multi-layer LSTM (torch's gate order i, f, g, o) with noise on each layer's input rows.

    Args:
        input_size, hidden_size, num_layers, bias: as ``nn.LSTM``.
        noise: the law of ξ on each layer's inputs.
        gates: ``"tied"`` or ``"untied"``.
        batch_first: inputs are (N, T, D) instead of (T, N, D).
        recurrent_noise: the law of ξ^h on h_{t-1} (rows of U), or None (no noise on U).
        recurrent_weight_noise: the law of each entry of Ξ^U in U ⊙ Ξ^U (DropConnect on the
            recurrent weights, one draw per forward call and layer, whatever ``granularity``;
            ``Bernoulli(1 - p, inverted=True)`` is AWD-LSTM's WeightDrop at rate p), or None.
            In eval mode U is scaled by E[ξ].
        granularity: ``"sequence"`` (one draw per sequence) or ``"batch"``.
        generator: the generator of the draws.
        dropout, bidirectional, proj_size: ``nn.LSTM``'s, accepted at its defaults only (0,
            False, 0), so that code written for ``nn.LSTM`` runs; other values raise a
            ValueError saying what to use instead.

    The parameters have ``nn.LSTM``'s names, shapes and initialisation (``weight_ih_l0``,
    ``weight_hh_l0``, ``bias_ih_l0``, ``bias_hh_l0``, ...), so state dicts load in both
    directions; they are held directly (not in an ``nn.LSTM`` submodule, which ``torch.compile``
    refuses to trace). ``forward`` returns ``(output, (h_n, c_n))`` as ``nn.LSTM`` does, so a
    model written for ``nn.LSTM`` (or converted by ``apply_noise``) runs unchanged.

    Shape:
        input: (T, N, input_size) or (N, T, input_size) if ``batch_first``;
        output: (T, N, hidden_size) or (N, T, hidden_size); h_n, c_n and the optional
        ``hx = (h_0, c_0)``: (num_layers, N, hidden_size). Unbatched, as ``nn.LSTM``: input
        (T, input_size), output (T, hidden_size), states (num_layers, hidden_size). A
        ``PackedSequence`` in gives a ``PackedSequence`` out (``batch_first`` does not apply),
        with h_n, c_n at each sequence's own last step, in the batch's order.

    Example:
        >>> from dropprior.noise import Bernoulli
        >>> lstm = NoisyLSTM(10, 20, noise=Bernoulli(0.8, inverted=True), gates="untied")
        >>> out, (h_n, c_n) = lstm(torch.randn(7, 3, 10))
        >>> out.shape, h_n.shape
        (torch.Size([7, 3, 20]), torch.Size([1, 3, 20]))
    """

    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1,
                 noise: NoiseLaw | None = None, gates: str = "tied", batch_first: bool = False,
                 recurrent_noise: NoiseLaw | None = None, granularity: str = "sequence",
                 bias: bool = True, generator: torch.Generator | None = None,
                 device: torch.device | str | None = None,
                 dtype: torch.dtype | None = None, *, dropout: float = 0.0,
                 bidirectional: bool = False, proj_size: int = 0,
                 recurrent_weight_noise: NoiseLaw | None = None) -> None:
        super().__init__()
        _refuse_lstm_options(dropout, bidirectional, proj_size)
        for name, value in (("input_size", input_size), ("hidden_size", hidden_size),
                            ("num_layers", num_layers)):
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"{name} must be a positive int, got {value!r}")
        self.noise = check_law("noise", noise)  # type: ignore[assignment]
        self.gates = check_choice("gates", gates, GATES)
        self.structure = gates
        self.granularity = check_choice("granularity", granularity, ["sequence", "batch"])
        self.recurrent_noise = check_law("recurrent_noise", recurrent_noise, required=False)
        self.recurrent_weight_noise = check_law("recurrent_weight_noise", recurrent_weight_noise,
                                                required=False)
        self.batch_first = check_bool("batch_first", batch_first)
        check_bool("bias", bias)
        self.generator = check_generator(generator)
        reference = nn.LSTM(input_size, hidden_size, num_layers, bias=bias, device=device,
                            dtype=dtype)
        for name, param in reference.named_parameters():  # torch's names and initialisation
            self.register_parameter(name, param)
        self.input_size, self.hidden_size, self.num_layers = input_size, hidden_size, num_layers
        self.bias = bool(bias)

    def _weights(self, layer: int) -> list[Tensor]:
        names = ["weight_ih", "weight_hh"] + (["bias_ih", "bias_hh"] if self.bias else [])
        return [getattr(self, f"{name}_l{layer}") for name in names]

    def forward(self, x: Tensor | PackedSequence, hx: tuple[Tensor, Tensor] | None = None
                ) -> tuple[Tensor | PackedSequence, tuple[Tensor, Tensor]]:
        """The output sequence and the final state (h_n, c_n), each (num_layers, N, H), as
        ``nn.LSTM`` returns them."""
        if isinstance(x, PackedSequence):
            return self._packed(x, hx)
        layout = "(N, T, D)" if self.batch_first else "(T, N, D)"
        if not isinstance(x, Tensor):
            raise TypeError(f"NoisyLSTM takes a tensor of shape {layout} or a PackedSequence, "
                            f"got {type_name(x)}")
        if x.dim() == 2 and x.shape[-1] == self.input_size:
            return self._unbatched(x, hx)
        if x.dim() != 3 or x.shape[-1] != self.input_size:
            raise ValueError(
                f"NoisyLSTM expects input of shape {layout}, or (T, D) unbatched, with "
                f"D = {self.input_size}, got {tuple(x.shape)}"
            )
        seq = x.transpose(0, 1) if self.batch_first else x
        if seq.shape[0] == 0:
            raise ValueError(f"NoisyLSTM needs a sequence of at least one step, got input of "
                             f"shape {tuple(x.shape)} (layout {layout})")
        if hx is not None:
            self._check_state(hx, (self.num_layers, seq.shape[1], self.hidden_size),
                              "(num_layers, batch, hidden_size)")
        out, state = self._cast_and_run(seq, hx, None)
        return (out.transpose(0, 1) if self.batch_first else out), state

    def _packed(self, x: PackedSequence, hx: tuple[Tensor, Tensor] | None
                ) -> tuple[PackedSequence, tuple[Tensor, Tensor]]:
        """``nn.LSTM``'s PackedSequence call: hx and the returned states in the batch's order,
        the layers in the packed (sorted) order."""
        data = x.data
        if data.dim() != 2 or data.shape[-1] != self.input_size:
            raise ValueError(f"NoisyLSTM expects a PackedSequence of {self.input_size} features "
                             f"(data of shape (R, {self.input_size})), got data of shape "
                             f"{tuple(data.shape)}")
        n = int(x.batch_sizes[0])
        if hx is not None:
            self._check_state(hx, (self.num_layers, n, self.hidden_size),
                              "(num_layers, batch, hidden_size)")
            if x.sorted_indices is not None:
                hx = (hx[0].index_select(1, x.sorted_indices),
                      hx[1].index_select(1, x.sorted_indices))
        packing = _Packing(x.batch_sizes, packed_owners(x.batch_sizes, x.sorted_indices,
                                                        data.device), x.sorted_indices)
        out, (h_n, c_n) = self._cast_and_run(data, hx, packing)
        if x.unsorted_indices is not None:
            h_n, c_n = h_n.index_select(1, x.unsorted_indices), c_n.index_select(1,
                                                                              x.unsorted_indices)
        return PackedSequence(out, x.batch_sizes, x.sorted_indices, x.unsorted_indices), (h_n, c_n)

    def _cast_and_run(self, seq: Tensor, hx: tuple[Tensor, Tensor] | None,
                      packing: _Packing | None) -> tuple[Tensor, tuple[Tensor, Tensor]]:
        """:meth:`_run` in autocast's dtype under autocast, else after checking the dtypes."""
        amp = autocast_dtype(seq.device.type)
        if amp is not None:
            # Under autocast: the whole LSTM in autocast's dtype, as nn.LSTM is (the hand-written
            # untied recurrence writes into buffers, which autocast does not cast); the casts are
            # differentiable, so the parameters keep their own dtype and gradients.
            with torch.autocast(seq.device.type, enabled=False):
                state = None if hx is None else (hx[0].to(amp), hx[1].to(amp))
                return self._run(seq.to(amp), state, amp, packing)
        if seq.dtype != self.weight_ih_l0.dtype:
            raise TypeError(f"NoisyLSTM's parameters are {self.weight_ih_l0.dtype} but the input "
                            f"is {seq.dtype}; convert one of them (e.g. module.to(x.dtype))")
        for name, h in zip(("h_0", "c_0"), hx or (), strict=False):
            if h.dtype != seq.dtype:
                raise TypeError(f"hx: {name} is {h.dtype} but the input is {seq.dtype}")
        return self._run(seq, hx, None, packing)

    def _unbatched(self, x: Tensor, hx: tuple[Tensor, Tensor] | None
                   ) -> tuple[Tensor, tuple[Tensor, Tensor]]:
        """nn.LSTM's unbatched call: x (T, D) and hx (num_layers, H) each, run as a batch of one
        (the batch dimension then removed again)."""
        if hx is not None:
            self._check_state(hx, (self.num_layers, self.hidden_size),
                              "(num_layers, hidden_size) for unbatched input (T, D)")
            hx = (hx[0].unsqueeze(1), hx[1].unsqueeze(1))
        batch = 0 if self.batch_first else 1
        out, (h_n, c_n) = self.forward(x.unsqueeze(batch), hx)
        assert isinstance(out, Tensor)
        return out.squeeze(batch), (h_n.squeeze(1), c_n.squeeze(1))

    def _run(self, seq: Tensor, hx: tuple[Tensor, Tensor] | None, dtype: torch.dtype | None,
             packing: _Packing | None) -> tuple[Tensor, tuple[Tensor, Tensor]]:
        """All layers on ``seq``: (T, N, D), or packed data (R, D) with ``packing``; ``dtype``:
        cast the parameters to it (autocast)."""
        if hx is None:
            n = seq.shape[1] if packing is None else int(packing.batch_sizes[0])
            zeros = seq.new_zeros(self.num_layers, n, self.hidden_size)
            hx = (zeros, zeros)
        h_n, c_n = [], []
        for layer in range(self.num_layers):
            state = (hx[0][layer], hx[1][layer])
            seq, (h, c) = self._layer(seq, layer, state, dtype, packing)
            h_n.append(h)
            c_n.append(c)
        return seq, (torch.stack(h_n), torch.stack(c_n))

    @staticmethod
    def _check_state(hx: object, expected: tuple[int, ...], dims: str) -> None:
        """A TypeError unless ``hx`` is two tensors (h_0, c_0), a ValueError naming ``dims``
        unless each has shape ``expected``."""
        if not (isinstance(hx, tuple | list) and len(hx) == 2
                and all(isinstance(h, Tensor) for h in hx)):
            raise TypeError(f"hx must be a tuple (h_0, c_0) of two tensors of shape {expected}, "
                            f"got {type(hx).__name__}")
        for name, h in zip(("h_0", "c_0"), hx, strict=True):
            if tuple(h.shape) != expected:
                raise ValueError(f"hx: {name} must have shape {dims} = {expected}, got "
                                 f"{tuple(h.shape)}")

    def _layer(self, seq: Tensor, layer: int, state: tuple[Tensor, Tensor],
               dtype: torch.dtype | None = None, packing: _Packing | None = None
               ) -> tuple[Tensor, tuple[Tensor, Tensor]]:
        weights = self._weights(layer)
        if dtype is not None:
            weights = [w.to(dtype) for w in weights]
        if self.recurrent_weight_noise is not None:  # DropConnect on U: U ⊙ Ξ^U, or U E[ξ]
            weights[1] = weights[1] * (
                draw_noise(self.recurrent_weight_noise, tuple(weights[1].shape), seq.device,
                           seq.dtype, self._draw_generator(seq.device), fused=True)
                if self.sampling else
                noise_mean(self.recurrent_weight_noise, seq.dtype, seq.device))
        w_ih, w_hh = weights[0], weights[1]
        b_ih, b_hh = (weights[2], weights[3]) if self.bias else (None, None)
        untied = self.gates == "untied" and self.sampling
        recurrent = self.recurrent_noise is not None and self.sampling
        n, d = state[0].shape[0], seq.shape[-1]
        rows = n if self.granularity == "sequence" else 1
        if not untied and not recurrent:
            # Tied noise (or eval mode): noise on the input sequence, torch's fused kernel.
            if packing is None:
                seq = multiplicative_noise(seq, self.noise, "unit", self.granularity,
                                           generator=self.generator, training=self.sampling)
            elif self.sampling:  # each sequence's draw on its own packed rows
                xi = draw_noise(self.noise, (rows, d), seq.device, seq.dtype,
                                self._draw_generator(seq.device))
                seq = seq * (xi if rows == 1 else xi[packing.owners])
            else:
                seq = seq * noise_mean(self.noise, seq.dtype, seq.device)
            if self.recurrent_noise is not None:  # eval mode: ξ^h → E[ξ^h], i.e. U E[ξ^h]
                weights = [w_ih, w_hh * noise_mean(self.recurrent_noise, seq.dtype, seq.device),
                           *weights[2:]]
            return lstm_layer(seq, state, weights, self.training,
                              None if packing is None else packing.batch_sizes)
        gen = self._draw_generator(seq.device)
        if untied:
            gate_noise = draw_noise(self.noise, (4, rows, d), seq.device, seq.dtype, gen)
        else:
            gate_noise = draw_noise(self.noise, (1, rows, d), seq.device, seq.dtype, gen)
        if packing is not None and rows > 1:  # each packed row takes its sequence's draw
            gate_noise = gate_noise[:, packing.owners]
        if untied and not recurrent and seq.is_cuda and not torch.compiler.is_compiling():
            # launch-bound per-step loop on a GPU: the block-diagonal form through cuDNN
            return untied_lstm_fused(seq, w_ih, w_hh, b_ih, b_hh, state,
                                     gate_noise.expand(4, -1, d),
                                     None if packing is None else packing.batch_sizes)
        # b_ih + b_hh enter once, inside the projections' product (exact: both are added to
        # every step's pre-activation)
        bias = None if b_ih is None or b_hh is None else b_ih + b_hh
        # untied: (4, rows, D), one product per gate; tied: (1, rows, D), one for all four.
        # Packed data (R, D) is one step of R rows, each with its own draw.
        proj = gate_projections(seq if packing is None else seq.unsqueeze(0), w_ih, bias,
                                gate_noise)
        rec = None
        if recurrent:
            assert self.recurrent_noise is not None
            rec = draw_noise(self.recurrent_noise, (rows, self.hidden_size), seq.device,
                             seq.dtype, gen)
        if packing is None:
            return lstm_recurrence(proj, w_hh, None, state, rec)
        if rec is not None and rows > 1 and packing.order is not None:
            rec = rec[packing.order]  # the recurrence runs in sorted order
        return packed_lstm_recurrence(proj[0], packing.batch_sizes, w_hh, state, rec)

    def _draw_generator(self, device: torch.device) -> torch.Generator | None:
        """The generator of this layer's own draws (none while torch.compile traces the default
        one)."""
        if torch.compiler.is_compiling() and self.generator is None:
            return None
        return draw_generator(device, self.generator)

    def extra_repr(self) -> str:
        """nn.LSTM's sizes, then the noise settings; the recurrent laws only where set."""
        sizes = f"{self.input_size}, {self.hidden_size}" + (
            f", num_layers={self.num_layers}" if self.num_layers > 1 else "")
        extra = "".join(f", {name}={getattr(self, name)!r}"
                        for name in ("recurrent_noise", "recurrent_weight_noise")
                        if getattr(self, name) is not None)
        return f"{sizes}, {super().extra_repr()}{extra}"

    def group_norms(self, layer: int = 0) -> Tensor:
        """Norms of layer ``layer``'s input rows: tied → ‖W_{:,d}‖ over all four gates, shape
        (input_size,) (layer 0) or (hidden_size,); untied → per gate, (4, input_size)."""
        w = getattr(self, f"weight_ih_l{layer}").detach()
        if self.gates == "tied":
            return w.norm(dim=0)
        return w.view(4, self.hidden_size, -1).norm(dim=1)


class LSTMOutput(nn.Module):
    """The output sequence of an LSTM's ``(output, (h_n, c_n))``, dropping the final state: put
    it after a :class:`NoisyLSTM` (or ``nn.LSTM``) inside an ``nn.Sequential``, where the next
    module takes a tensor (and where :func:`dropprior.prune` can cut the LSTM's inputs).

    Shape:
        input: ``(output, (h_n, c_n))``; output: ``output`` (a tensor, or a ``PackedSequence``
        for packed input).

    Example:
        >>> from dropprior.noise import Bernoulli
        >>> lstm = NoisyLSTM(8, 16, noise=Bernoulli(0.8, inverted=True), batch_first=True)
        >>> model = nn.Sequential(nn.Embedding(50, 8), lstm, LSTMOutput(), nn.Linear(16, 50))
        >>> model(torch.randint(0, 50, (4, 7))).shape
        torch.Size([4, 7, 50])
    """

    def forward(self, result: tuple[Tensor | PackedSequence, tuple[Tensor, Tensor]]
                ) -> Tensor | PackedSequence:
        if not (isinstance(result, tuple) and len(result) == 2
                and isinstance(result[0], Tensor | PackedSequence)):
            raise TypeError(f"LSTMOutput takes an LSTM's (output, (h_n, c_n)), got "
                            f"{type_name(result)}; place it right after the LSTM")
        return result[0]
