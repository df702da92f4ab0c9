"""Penn Treebank word-level language model: gate noise (tied, untied) vs Zaremba and Gal dropout.

Model: embedding → LSTM (``layers`` × ``hidden``) → linear softmax over the 10 000 words, trained
by truncated backpropagation through time (``bptt`` steps, state carried across batches) with SGD
and gradient-norm clipping, as Zaremba et al. (2014), with their loss scale
(:func:`sequence_loss`: summed over the time steps, averaged over the batch). Variants:

* ``zaremba``: torch ``nn.Dropout`` on the non-recurrent connections, a fresh mask at every time
  step (per-step dropout);
* ``gal``: one mask per sequence on the inputs *and* the recurrent state
  (:class:`dropprior.nn.NoisyLSTM` with ``gates="tied"``, ``recurrent_noise``; Gal & Ghahramani);
* ``tied``: the law on the input rows, one draw per sequence shared by all four gates;
* ``untied``: one draw per sequence and per gate.

Evaluation uses E[ξ] (mean-scaling, the standard "approximate" evaluation); perplexity is
exp(mean negative log-likelihood per token) on the validation and test splits.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn

from dropprior._validation import check_choice

__all__ = ["PTB_VARIANTS", "PTBSettings", "PTB_SIZES", "LanguageModel", "run_ptb_variant",
           "sequence_loss", "learning_rate"]

PTB_VARIANTS = ("zaremba", "gal", "tied", "untied")


@dataclass(frozen=True)
class PTBSettings:
    """Model size and schedule; :data:`PTB_SIZES` holds the presets."""

    hidden: int = 128
    layers: int = 1
    bptt: int = 20
    batch_size: int = 32
    epochs: int = 1
    train_tokens: int = 0  # 0: the whole training split
    lr: float = 1.0
    lr_decay: float = 0.5
    decay_after: int = 0  # 0: decay when validation stops improving; k: Zaremba's fixed schedule
    init_scale: float = 0.0  # 0: torch's default init; s: every parameter uniform on (−s, s)
    clip: float = 5.0
    dropout: float = 0.3
    law: str = "bernoulli"
    seed: int = 0


#: ``small`` is one epoch over the whole training split (929 589 tokens, 1 452 steps of 32 × 20
#: tokens) with a 1 × 128 LSTM (docs/results.md has the timings). ``medium`` is Zaremba's 2 × 650
#: network with dropout 0.5 for 39 epochs on the whole training split, with their initialisation
#: (uniform on ±0.05) and learning-rate schedule (1 for 6 epochs, then divided by 1.2 every epoch).
PTB_SIZES = {
    "small": PTBSettings(),
    "medium": PTBSettings(hidden=650, layers=2, bptt=35, batch_size=20, epochs=39,
                          train_tokens=0, dropout=0.5, lr_decay=1 / 1.2, decay_after=6,
                          init_scale=0.05),
}


class LanguageModel(nn.Module):
    """Embedding, LSTM, output layer. Shape: tokens (T, N) → logits (T, N, V)."""

    def __init__(self, variant: str, vocab: int, s: PTBSettings) -> None:
        super().__init__()
        from dropprior.experiments.laws import dropout_law
        from dropprior.nn import NoisyLSTM

        self.variant = check_choice("variant", variant, PTB_VARIANTS)
        self.embed = nn.Embedding(vocab, s.hidden)
        self.drop = nn.Dropout(s.dropout if variant == "zaremba" else 0.0)
        if variant == "zaremba":
            self.rnn: nn.Module = nn.LSTM(s.hidden, s.hidden, s.layers,
                                          dropout=s.dropout if s.layers > 1 else 0.0)
        else:
            law = dropout_law(s.law, s.dropout)
            self.rnn = NoisyLSTM(s.hidden, s.hidden, s.layers, noise=law,
                                 gates="untied" if variant == "untied" else "tied",
                                 recurrent_noise=law if variant == "gal" else None)
        self.out = nn.Linear(s.hidden, vocab)
        nn.init.uniform_(self.embed.weight, -0.1, 0.1)
        if s.init_scale > 0:
            for p in self.parameters():
                nn.init.uniform_(p, -s.init_scale, s.init_scale)

    def forward(self, tokens: Tensor, state: Any = None) -> tuple[Tensor, Any]:
        x = self.drop(self.embed(tokens))
        from dropprior.nn import NoisyLSTM

        if isinstance(self.rnn, NoisyLSTM):
            h, state = self.rnn.forward_with_state(x, state)
        else:
            h, state = self.rnn(x, state)
        return self.out(self.drop(h)), state


def learning_rate(s: PTBSettings, epoch: int) -> float:
    """Zaremba et al.'s schedule for epoch ``epoch`` (0-based): ``lr`` for the first
    ``decay_after`` epochs, then multiplied by ``lr_decay`` once per epoch."""
    return s.lr * s.lr_decay ** max(epoch + 1 - s.decay_after, 0)


def sequence_loss(logits: Tensor, targets: Tensor) -> Tensor:
    """Zaremba et al.'s training loss: the negative log-likelihood summed over the ``bptt`` time
    steps, averaged over the batch (their ``reduce_sum(loss) / batch_size``). The learning rate
    1 and clip 5 of the paper belong to this scale; a per-token mean would make every step
    ``bptt`` times smaller.

    Shape:
        logits: (T, N, V); targets: (T, N); returns a scalar.
    """
    nll = nn.functional.cross_entropy(logits.flatten(0, 1), targets.flatten(), reduction="sum")
    return nll / targets.shape[1]


@torch.no_grad()
def perplexity(model: LanguageModel, data: Tensor, bptt: int) -> float:
    """exp(mean NLL per token) with mean-scaling noise (eval mode). Shape: data (T, N)."""
    model.eval()
    total, count, state = 0.0, 0, None
    for i in range(0, data.shape[0] - 1, bptt):
        x, y = data[i:i + bptt], data[i + 1:i + 1 + bptt]
        x = x[: y.shape[0]]
        logits, state = model(x, state)
        total += float(nn.functional.cross_entropy(logits.flatten(0, 1), y.flatten(),
                                                   reduction="sum"))
        count += y.numel()
    return math.exp(total / count)


def run_ptb_variant(params: dict[str, Any]) -> dict[str, Any]:
    """Train one variant and return its validation / test perplexity (a runner job function).

    Args:
        params: ``{"data_dir", "variant", "settings": {PTBSettings fields}}``.
    """
    from dropprior.data import load_ptb
    from dropprior.data.ptb import batchify

    s = PTBSettings(**params["settings"])
    corpus = load_ptb(params["data_dir"])
    torch.manual_seed(s.seed)
    train_tokens = corpus.train if s.train_tokens == 0 else corpus.train[: s.train_tokens]
    train = batchify(train_tokens, s.batch_size)
    valid, test = batchify(corpus.valid, 10), batchify(corpus.test, 10)
    model = LanguageModel(params["variant"], len(corpus.vocab), s)
    optimizer = torch.optim.SGD(model.parameters(), lr=s.lr)
    start = time.perf_counter()
    history = []
    best = math.inf
    for epoch in range(s.epochs):
        if s.decay_after:
            for group in optimizer.param_groups:
                group["lr"] = learning_rate(s, epoch)
        model.train()
        state = None
        for i in range(0, train.shape[0] - 1, s.bptt):
            x, y = train[i:i + s.bptt], train[i + 1:i + 1 + s.bptt]
            x = x[: y.shape[0]]
            if state is not None:
                state = tuple(t.detach() for t in state)
            logits, state = model(x, state)
            loss = sequence_loss(logits, y)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            nn.utils.clip_grad_norm_(model.parameters(), s.clip)
            optimizer.step()
        val = perplexity(model, valid, s.bptt)
        history.append(val)
        if val >= best and not s.decay_after:
            for group in optimizer.param_groups:
                group["lr"] *= s.lr_decay
        best = min(best, val)
    return {"valid_ppl": history[-1], "test_ppl": perplexity(model, test, s.bptt),
            "valid_history": history, "seconds": time.perf_counter() - start}
