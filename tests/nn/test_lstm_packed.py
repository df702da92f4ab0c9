"""NoisyLSTM on a PackedSequence: nn.LSTM's own packed call in eval mode, and in training mode
each sequence's own padded run under the same draws (values, final states and gradients)."""

from __future__ import annotations

import pytest
import torch
from torch import nn
from torch.nn.utils.rnn import PackedSequence, pack_padded_sequence, pad_packed_sequence
from torch.testing import assert_close

from dropprior.nn import NoisyLSTM
from dropprior.noise import Bernoulli, Gaussian, Rayleigh

f64 = torch.float64
LENGTHS = [3, 6, 1, 4, 6]  # unsorted, with a tie and a sequence of one step


def _batch(seed: int = 0) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(6, len(LENGTHS), 3, dtype=f64, generator=g)
    h0 = torch.randn(2, len(LENGTHS), 5, dtype=f64, generator=g)
    c0 = torch.randn(2, len(LENGTHS), 5, dtype=f64, generator=g)
    return x, h0, c0


def _pack(x: torch.Tensor, enforce_sorted: bool) -> PackedSequence:
    lengths = torch.tensor(LENGTHS)
    if enforce_sorted:  # pack_padded_sequence's sorted form: no sorted_indices
        order = lengths.argsort(descending=True, stable=True)
        return pack_padded_sequence(x[:, order], lengths[order])
    return pack_padded_sequence(x, lengths, enforce_sorted=False)


@pytest.mark.parametrize("gates", ["tied", "untied"])
@pytest.mark.parametrize("recurrent", [False, True])
def test_packed_eval_is_nn_lstms_packed_call(gates, recurrent) -> None:
    """ξ → E[ξ]: nn.LSTM on the packed data times E[ξ], outputs, states (in the batch's order,
    at each sequence's own last step) and the gradients of the parameters and of hx."""
    law = Rayleigh(0.5)
    lstm = NoisyLSTM(3, 5, 2, noise=law, gates=gates,
                     recurrent_noise=Gaussian(1.0, 0.3) if recurrent else None).double().eval()
    reference = nn.LSTM(3, 5, 2).double()
    reference.load_state_dict(lstm.state_dict())
    x, h0, c0 = _batch()
    packed = _pack(x, enforce_sorted=False)
    ours_hx = (h0.clone().requires_grad_(), c0.clone().requires_grad_())
    ref_hx = (h0.clone().requires_grad_(), c0.clone().requires_grad_())
    out, (h_n, c_n) = lstm(packed, ours_hx)
    mean = float(law.mean)
    scaled = PackedSequence(packed.data * mean, packed.batch_sizes, packed.sorted_indices,
                            packed.unsorted_indices)
    # E[ξ] on layer 1's input (the hidden units) folds into layer 1's W_ih
    with torch.no_grad():
        reference.weight_ih_l1.mul_(mean)
    ref_out, (ref_h, ref_c) = reference(scaled, ref_hx)
    assert isinstance(out, PackedSequence)
    assert torch.equal(out.batch_sizes, ref_out.batch_sizes)
    assert torch.equal(out.unsorted_indices, ref_out.unsorted_indices)
    assert_close(out.data, ref_out.data)
    assert_close(h_n, ref_h)
    assert_close(c_n, ref_c)
    weights = torch.randn(out.data.shape, dtype=f64)
    (out.data * weights).sum().add(h_n.sum() + 2 * c_n.sum()).backward()
    (ref_out.data * weights).sum().add(ref_h.sum() + 2 * ref_c.sum()).backward()
    assert_close(ours_hx[0].grad, ref_hx[0].grad)
    assert_close(ours_hx[1].grad, ref_hx[1].grad)
    assert_close(lstm.weight_hh_l0.grad, reference.weight_hh_l0.grad)
    assert_close(lstm.weight_ih_l0.grad, reference.weight_ih_l0.grad)  # both: δ (E[ξ] x)ᵀ
    # layer 1: ours W (E[ξ] h), the reference's weight E[ξ] W applied to h
    assert_close(lstm.weight_ih_l1.grad, reference.weight_ih_l1.grad * mean)
    assert_close(lstm.bias_ih_l1.grad, reference.bias_ih_l1.grad)


@pytest.mark.parametrize("gates", ["tied", "untied"])
@pytest.mark.parametrize("recurrent", [False, True])
@pytest.mark.parametrize("granularity", ["sequence", "batch"])
@pytest.mark.parametrize("enforce_sorted", [False, True])
def test_packed_training_is_each_sequences_own_run(gates, recurrent, granularity,
                                                   enforce_sorted) -> None:
    """Sequence i of the packed batch gets exactly what the padded batch cut to its length gives
    it under the same draws (noise per sequence, so its draw is the same in both): output steps,
    h_n, c_n, and the gradients of a loss summed over the sequences."""
    lstm = NoisyLSTM(3, 5, 2, noise=Gaussian(1.0, 0.4), gates=gates, granularity=granularity,
                     recurrent_noise=Gaussian(1.0, 0.3) if recurrent else None,
                     generator=torch.Generator().manual_seed(5)).double().train()
    x, h0, c0 = _batch(1)
    if enforce_sorted:
        order = torch.tensor(LENGTHS).argsort(descending=True, stable=True)
        x, h0, c0 = x[:, order], h0[:, order], c0[:, order]
        lengths = sorted(LENGTHS, reverse=True)
    else:
        lengths = LENGTHS
    packed = pack_padded_sequence(x, torch.tensor(lengths), enforce_sorted=enforce_sorted)
    assert (packed.sorted_indices is None) == enforce_sorted
    out, (h_n, c_n) = lstm(packed, (h0, c0))
    padded, _ = pad_packed_sequence(out)
    g = torch.Generator().manual_seed(6)
    w_out = torch.randn(padded.shape, dtype=f64, generator=g)
    w_h, w_c = torch.randn(h_n.shape, dtype=f64, generator=g), torch.randn(c_n.shape, dtype=f64,
                                                                           generator=g)
    loss = (padded * w_out).sum() + (h_n * w_h).sum() + (c_n * w_c).sum()
    grads = torch.autograd.grad(loss, list(lstm.parameters()))
    ref_loss = 0.0
    for i, length in enumerate(lengths):
        lstm.generator.manual_seed(5)  # the same draws as the packed call
        ref_out, (ref_h, ref_c) = lstm(x[:length], (h0, c0))
        assert_close(padded[:length, i], ref_out[:, i])
        assert_close(padded[length:, i], torch.zeros_like(padded[length:, i]))
        assert_close(h_n[:, i], ref_h[:, i])
        assert_close(c_n[:, i], ref_c[:, i])
        ref_loss = ref_loss + (ref_out[:, i] * w_out[:length, i]).sum() \
            + (ref_h[:, i] * w_h[:, i]).sum() + (ref_c[:, i] * w_c[:, i]).sum()
    ref_grads = torch.autograd.grad(ref_loss, list(lstm.parameters()))
    for ours, ref in zip(grads, ref_grads, strict=True):
        assert_close(ours, ref)


def test_packed_draws_are_per_sequence(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tied Bernoulli noise on a packed batch: the data handed to the fused kernel is each
    packed row times its own sequence's mask, one mask per sequence reused at every step, with
    values in {0, 1/π}."""
    import dropprior.nn.lstm as lstm_module
    from dropprior.functional import packed_owners

    lstm = NoisyLSTM(40, 1, noise=Bernoulli(0.7, inverted=True),
                     generator=torch.Generator().manual_seed(2)).double().train()
    seqs = [torch.ones(n, 40, dtype=f64) for n in (5, 2, 4)]
    packed = torch.nn.utils.rnn.pack_sequence(seqs, enforce_sorted=False)
    owners = packed_owners(packed.batch_sizes, packed.sorted_indices, packed.data.device)
    # step t holds the sequences still running at t, longest first
    expected = [j for t in range(5) for j in packed.sorted_indices.tolist() if len(seqs[j]) > t]
    assert owners.tolist() == expected
    seen = []
    kernel = lstm_module.lstm_layer
    monkeypatch.setattr(lstm_module, "lstm_layer",
                        lambda x, *args: seen.append(x) or kernel(x, *args))
    lstm(packed)
    noisy = seen[0]
    masks = []
    for j in range(3):
        rows = noisy[owners == j]
        assert rows.shape[0] == len(seqs[j])
        assert (rows == rows[0]).all()
        masks.append(rows[0])
    values = torch.stack(masks)
    assert set(values.unique().tolist()) <= {0.0, 1 / 0.7}
    assert not torch.equal(values[0], values[1])


def test_untied_fused_kernel_takes_packed_data() -> None:
    """The block-diagonal form through torch's packed kernel (the CUDA path) equals the packed
    per-step recurrence, values and final states."""
    from dropprior.functional import (
        gate_projections,
        packed_lstm_recurrence,
        packed_owners,
        untied_lstm_fused,
    )

    g = torch.Generator().manual_seed(8)
    w_ih, w_hh = torch.randn(20, 3, dtype=f64, generator=g), torch.randn(20, 5, dtype=f64,
                                                                       generator=g)
    b_ih, b_hh = torch.randn(20, dtype=f64, generator=g), torch.randn(20, dtype=f64, generator=g)
    x, h0, c0 = _batch(2)
    packed = _pack(x, enforce_sorted=False)
    xi = Gaussian(1.0, 0.4).to(dtype=f64).sample((4, len(LENGTHS), 3), generator=g)
    rows = xi[:, packed_owners(packed.batch_sizes, packed.sorted_indices, x.device)]
    state = (h0[0, packed.sorted_indices], c0[0, packed.sorted_indices])
    out, (h, c) = untied_lstm_fused(packed.data, w_ih, w_hh, b_ih, b_hh, state, rows,
                                    packed.batch_sizes)
    proj = gate_projections(packed.data.unsqueeze(0), w_ih, b_ih + b_hh, rows)[0]
    ref_out, (ref_h, ref_c) = packed_lstm_recurrence(proj, packed.batch_sizes, w_hh, state)
    assert_close(out, ref_out)
    assert_close(h, ref_h)
    assert_close(c, ref_c)


def test_a_model_written_for_packed_nn_lstm_converts() -> None:
    """apply_noise on a model that packs its padded batch for nn.LSTM: the converted model runs
    unchanged and, in eval mode with E[ξ] = 1, gives the original's logits."""
    import copy

    from dropprior import apply_noise

    class Classifier(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.lstm = nn.LSTM(3, 6, batch_first=True)
            self.head = nn.Linear(6, 2)

        def forward(self, x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
            packed = pack_padded_sequence(x, lengths, batch_first=True, enforce_sorted=False)
            _, (h_n, _) = self.lstm(packed)
            return self.head(h_n[-1])

    model = Classifier().double().eval()
    converted = copy.deepcopy(model)
    apply_noise(converted, Rayleigh.with_mean(1.0), layers=["lstm"], lstm_gates="untied",
                verbose=False)
    assert type(converted.lstm).__name__ == "NoisyLSTM"
    x, lengths = torch.randn(4, 6, 3, dtype=f64), torch.tensor([6, 2, 5, 1])
    assert_close(converted.eval()(x, lengths), model(x, lengths))
    converted.train()(x, lengths).sum().backward()
    assert converted.lstm.weight_ih_l0.grad is not None


def test_count_flops_counts_each_sequences_own_steps() -> None:
    from dropprior.pruning import count_flops

    class Packs(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.lstm = NoisyLSTM(3, 4, noise=Rayleigh.with_mean(1.0))

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            lengths = torch.tensor([2] + [x.shape[1]] * (x.shape[0] - 1))
            packed = pack_padded_sequence(x, lengths, batch_first=True, enforce_sorted=False)
            return self.lstm(packed)[1][0]

    # 2 examples: 2 + 5 steps of 2·(16·3 + 16·4) multiply-adds, per example
    assert count_flops(Packs(), torch.randn(2, 5, 3)) == 7 * 2 * (16 * 3 + 16 * 4) // 2
