"""Penn Treebank, word level (Mikolov's language-modelling version), read by path."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import Tensor

from dropprior.data.paths import resolve_data_dir

__all__ = ["PTB", "load_ptb", "batchify"]


@dataclass(frozen=True)
class PTB:
    """Token ids of the three splits, each sentence closed by ``<eos>``.

    Shape:
        train, valid, test: (T,) int64; ``vocab[i]`` is the word of id i.
    """

    train: Tensor
    valid: Tensor
    test: Tensor
    vocab: list[str]


def load_ptb(data_dir: str | os.PathLike[str] | None) -> PTB:
    """Read ``ptb.{train,valid,test}.txt``; the vocabulary is built from the training split."""
    root = resolve_data_dir(data_dir, "ptb")
    words = {s: _words(root / f"ptb.{s}.txt") for s in ("train", "valid", "test")}
    vocab = sorted(set(words["train"]))
    index = {w: i for i, w in enumerate(vocab)}
    ids = {}
    for split, seq in words.items():
        unknown = {w for w in seq if w not in index}
        if unknown:
            raise ValueError(f"PTB {split}: words not in the training vocabulary: "
                             f"{sorted(unknown)[:5]}")
        ids[split] = torch.tensor([index[w] for w in seq], dtype=torch.int64)
    return PTB(ids["train"], ids["valid"], ids["test"], vocab)


def batchify(tokens: Tensor, batch_size: int) -> Tensor:
    """Cut a token stream into ``batch_size`` contiguous columns, dropping the remainder.

    Shape:
        tokens: (T,) → (T // batch_size, batch_size).
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size!r}")
    n = tokens.numel() // batch_size
    return tokens[: n * batch_size].view(batch_size, n).t().contiguous()


def _words(path: Path) -> list[str]:
    if not path.is_file():
        raise FileNotFoundError(f"missing PTB file {str(path)!r}")
    out: list[str] = []
    with open(path, encoding="utf-8") as fh:
        for line in fh:
            out.extend(line.split())
            out.append("<eos>")
    if not any(w != "<eos>" for w in out):
        raise ValueError(f"PTB file {str(path)!r} holds no words")
    return out
