"""The PTB language-model job: Zaremba et al.'s loss scale, and a short end-to-end run on a tiny
corpus in the PTB layout that must learn its repeating pattern."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch

from dropprior.experiments.ptb import (
    PTB_SIZES,
    PTB_VARIANTS,
    LanguageModel,
    learning_rate,
    run_ptb_variant,
    sequence_loss,
)


def test_sequence_loss_sums_over_time_and_averages_over_the_batch() -> None:
    gen = torch.Generator().manual_seed(0)
    logits = torch.randn(5, 3, 7, generator=gen)
    targets = torch.randint(0, 7, (5, 3), generator=gen)
    log_p = torch.log_softmax(logits, dim=-1)
    per_sequence = [-sum(float(log_p[t, n, targets[t, n]]) for t in range(5)) for n in range(3)]
    assert float(sequence_loss(logits, targets)) == pytest.approx(sum(per_sequence) / 3, rel=1e-6)


def _write_corpus(root: Path) -> None:
    folder = root / "ptb"
    folder.mkdir()
    line = "the cat sat on the mat and the dog ran to the park <eos>"
    (folder / "ptb.train.txt").write_text((line + "\n") * 200)
    (folder / "ptb.valid.txt").write_text((line + "\n") * 20)
    (folder / "ptb.test.txt").write_text((line + "\n") * 20)


@pytest.mark.parametrize("variant", PTB_VARIANTS)
def test_a_short_run_learns_a_repeating_corpus(variant: str, tmp_path: Path) -> None:
    """11 words; a model that learnt nothing has perplexity ~11, the pattern allows ~1.3 (after
    "the" four words are possible)."""
    _write_corpus(tmp_path)
    settings = {"hidden": 16, "layers": 1, "bptt": 10, "batch_size": 4, "epochs": 3,
                "dropout": 0.1, "seed": 0}
    out = run_ptb_variant({"data_dir": str(tmp_path / "ptb"), "variant": variant,
                           "settings": settings})
    assert math.isfinite(out["test_ppl"]) and out["test_ppl"] < 3.0
    assert len(out["valid_history"]) == 3


def test_medium_preset_follows_zarembas_schedule_and_init() -> None:
    """Zaremba et al.'s medium model: lr 1 for epochs 1–6, then divided by 1.2 each epoch, and
    every parameter uniform on ±0.05."""
    medium = PTB_SIZES["medium"]
    assert [learning_rate(medium, e) for e in range(6)] == [1.0] * 6
    assert learning_rate(medium, 6) == pytest.approx(1 / 1.2)
    assert learning_rate(medium, 38) == pytest.approx(1.2 ** -33)
    model = LanguageModel("untied", 50, medium)
    for name, p in model.named_parameters():
        assert float(p.detach().abs().max()) <= 0.05 + 1e-7, name  # float32(0.05) rounds up
        assert float(p.detach().abs().max()) > 0.045, name  # filled, not left at a smaller default
