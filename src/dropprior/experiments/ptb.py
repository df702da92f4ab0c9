"""Penn Treebank word-level language model: gate noise (tied, untied) vs Zaremba and Gal dropout.

Model: embedding → LSTM (``layers`` × ``hidden``) → linear softmax over the 10 000 words, trained
by truncated backpropagation through time (``bptt`` steps, state carried across batches) with SGD
and gradient-norm clipping, as Zaremba et al. (2014), with their loss scale
(:func:`sequence_loss`: summed over the time steps, averaged over the batch). Variants:

* ``none``: no noise (Zaremba et al.'s unregularised baseline);
* ``zaremba``: torch ``nn.Dropout`` on the non-recurrent connections (the embedding's output, the
  input of every further layer, the last layer's output), a fresh mask at every time step
  (per-step dropout);
* ``gal``: one mask per sequence on the inputs *and* the recurrent state
  (:class:`dropprior.nn.NoisyLSTM` with ``gates="tied"``, ``recurrent_noise``; Gal & Ghahramani);
* ``tied``: the law on the input rows, one draw per sequence shared by all four gates;
* ``untied``: one draw per sequence and per gate.

With ``output_noise`` the ``gal``, ``tied`` and ``untied`` variants also multiply the last LSTM
layer's output by the law, one draw per sequence and unit (Gal & Ghahramani's model drops it;
``zaremba`` drops it at every step either way). With ``recurrent_noise`` the ``untied`` variant
also multiplies h_{t-1} by the law, one draw per sequence and hidden unit shared by the four
gates, as ``gal`` does (Gal & Ghahramani's "untied" LSTM, whose input noise is per gate).
With ``weight_noise`` the ``gal``, ``tied`` and ``untied`` variants also put the law on every
entry of each layer's recurrent weights U, one draw per batch (DropConnect on U:
``NoisyLSTM(recurrent_weight_noise=...)``, AWD-LSTM's WeightDrop for Bernoulli noise); ``tied``
with it is AWD-LSTM's pair of variational input dropout and WeightDrop, at one rate p.
With ``embedding_dropout`` = p_e > 0 the ``gal``, ``tied`` and ``untied`` variants also put the
law, set from rate p_e, on the embedding, one draw per word type and sequence
(:class:`dropprior.nn.NoisyEmbedding`: Gal & Ghahramani's embedding dropout). With
``mc_mean_embedding`` the MC passes hold that embedding at E[ξ] and draw the rest of the noise
(Gal & Ghahramani's MC test turns the embedding dropout off).

Evaluation uses E[ξ] (mean-scaling, the standard "approximate" evaluation); perplexity is
exp(mean negative log-likelihood per token) on the validation and test splits. With
``mc_samples`` = S > 0 the MC-averaged perplexity (Gal & Ghahramani's "MC dropout") is reported
too: S passes over the split, each with its own noise draws and carried state, the probability
of every target token averaged over the S passes before the log (:func:`mc_perplexity`).
Training speed is recorded as training tokens per second (evaluation excluded).
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from dropprior._validation import check_bool, check_choice, check_int, check_number, check_seed
from dropprior.experiments.records import added_setting, key_fields

__all__ = ["PTB_VARIANTS", "SEQUENCE_NOISE", "EVALUATION_SETTINGS", "PTBSettings", "PTB_SIZES",
           "LanguageModel", "run_ptb_variant", "sequence_loss", "learning_rate", "perplexity",
           "mc_perplexity", "run_and_record"]

PTB_VARIANTS = ("none", "zaremba", "gal", "tied", "untied")
EVALUATION_SETTINGS = ("mc_samples", "mc_mean_embedding")
"""The settings that change only the evaluation after the last epoch: a checkpoint names its
training without them, so a finished run started again with another value (more MC passes)
re-evaluates the trained model instead of training it again."""
SEQUENCE_NOISE = ("gal", "tied", "untied")
"""The variants whose noise is drawn once per sequence (they take ``output_noise``)."""


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
    mc_samples: int = 0  # S > 0: also the MC-averaged perplexity over S passes
    variant: str = "tied"
    device: str = "cpu"
    output_noise: bool = added_setting(False)
    recurrent_noise: bool = added_setting(False)
    weight_noise: bool = added_setting(False)
    embedding_dropout: float = added_setting(0.0)  # p_e > 0: noise per word type and sequence
    mc_mean_embedding: bool = added_setting(False)  # MC passes: the embedding at E[ξ]

    def __post_init__(self) -> None:
        check_choice("variant", self.variant, PTB_VARIANTS)
        check_bool("output_noise", self.output_noise)
        check_bool("recurrent_noise", self.recurrent_noise)
        check_bool("weight_noise", self.weight_noise)
        if self.weight_noise and self.variant not in SEQUENCE_NOISE:
            raise ValueError(f"weight_noise=True applies to the {', '.join(SEQUENCE_NOISE)} "
                             f"variants, got variant={self.variant!r} (their LSTM is dropprior's "
                             "NoisyLSTM; 'zaremba' and 'none' run torch's nn.LSTM)")
        check_number("embedding_dropout", self.embedding_dropout, 0.0, 1.0, low_open=False)
        if self.embedding_dropout and self.variant not in SEQUENCE_NOISE:
            raise ValueError(f"embedding_dropout > 0 applies to the {', '.join(SEQUENCE_NOISE)} "
                             f"variants, got variant={self.variant!r} (their noise is drawn per "
                             "sequence; 'zaremba' and 'none' keep torch's embedding)")
        check_bool("mc_mean_embedding", self.mc_mean_embedding)
        if self.mc_mean_embedding and not self.embedding_dropout:
            raise ValueError("mc_mean_embedding=True holds the embedding's noise at its mean in "
                             "the MC passes; it needs embedding_dropout > 0, got "
                             f"embedding_dropout={self.embedding_dropout!r}")
        if self.recurrent_noise and self.variant != "untied":
            raise ValueError(f"recurrent_noise=True applies to the untied variant, got "
                             f"variant={self.variant!r} ('gal' has it already, and tied noise "
                             "with it is 'gal'; 'zaremba' and 'none' keep the state noiseless)")
        if self.output_noise and self.variant not in SEQUENCE_NOISE:
            raise ValueError(f"output_noise=True applies to the {', '.join(SEQUENCE_NOISE)} "
                             f"variants, got variant={self.variant!r} ('zaremba' drops the "
                             "output already; 'none' has no noise)")
        try:
            torch.device(self.device)
        except (RuntimeError, TypeError):
            raise ValueError(f"device={self.device!r} is not a torch device; accepted: 'cpu', "
                             "'cuda', 'cuda:N'") from None
        for name in ("hidden", "layers", "bptt", "batch_size", "epochs"):
            check_int(name, getattr(self, name), 1)
        check_seed(self.seed, low=0)
        for name in ("train_tokens", "decay_after", "mc_samples"):
            check_int(name, getattr(self, name), 0)
        check_number("lr", self.lr)
        check_number("lr_decay", self.lr_decay, 0.0, 1.0, high_open=False)
        check_number("init_scale", self.init_scale, low_open=False)
        check_number("clip", self.clip)
        check_number("dropout", self.dropout, 0.0, 1.0)


#: ``small`` is one epoch over the whole training split (929 589 tokens, 1 452 steps of 32 × 20
#: tokens) with a 1 × 128 LSTM. ``zaremba-small`` is Zaremba et al.'s small network: 2 × 200,
#: bptt 20, batch 20, 13 epochs, every parameter uniform on ±0.1, learning rate 1 for 4 epochs
#: then halved every epoch; their small model has no dropout (the ``none`` variant), and the
#: noisy variants use p = 0.2 here. ``medium`` is Zaremba's 2 × 650 network with dropout 0.5
#: for 39 epochs on the whole training split, with their initialisation (uniform on ±0.05) and
#: learning-rate schedule (1 for 6 epochs, then divided by 1.2 every epoch); both Zaremba sizes
#: also report the perplexity MC-averaged over S = 10 passes.
PTB_SIZES = {
    "small": PTBSettings(),
    "zaremba-small": PTBSettings(hidden=200, layers=2, bptt=20, batch_size=20, epochs=13,
                                 dropout=0.2, lr_decay=0.5, decay_after=4, init_scale=0.1,
                                 mc_samples=10),
    "medium": PTBSettings(hidden=650, layers=2, bptt=35, batch_size=20, epochs=39,
                          train_tokens=0, dropout=0.5, lr_decay=1 / 1.2, decay_after=6,
                          init_scale=0.05, mc_samples=10),
}


class _DroppedLSTM(nn.Module):
    """``layers`` one-layer ``nn.LSTM``s with an ``nn.Dropout`` on the input of each layer after
    the first: ``nn.LSTM(dropout=p)``'s structure, with dropout modules that :func:`dropprior.mc`
    reaches. State as ``nn.LSTM``'s: (h, c), each (layers, N, H)."""

    def __init__(self, hidden: int, layers: int, dropout: float) -> None:
        super().__init__()
        self.cells = nn.ModuleList(nn.LSTM(hidden, hidden) for _ in range(layers))
        self.drop = nn.Dropout(dropout)

    def forward(self, x: Tensor, state: Any = None) -> tuple[Tensor, tuple[Tensor, Tensor]]:
        hs, cs = [], []
        for k, cell in enumerate(self.cells):
            if k:
                x = self.drop(x)
            x, (h, c) = cell(x, None if state is None else (state[0][k:k + 1],
                                                            state[1][k:k + 1]))
            hs.append(h)
            cs.append(c)
        return x, (torch.cat(hs), torch.cat(cs))


class LanguageModel(nn.Module):
    """Embedding, LSTM, output layer. Shape: tokens (T, N) → logits (T, N, V)."""

    def __init__(self, variant: str, vocab: int, s: PTBSettings) -> None:
        super().__init__()
        from dropprior.experiments.laws import dropout_law
        from dropprior.nn import NoisyLSTM

        self.variant = check_choice("variant", variant, PTB_VARIANTS)
        self.embed: nn.Module = nn.Embedding(vocab, s.hidden)
        if s.embedding_dropout and variant in SEQUENCE_NOISE:
            from dropprior.nn import NoisyEmbedding

            self.embed = NoisyEmbedding(vocab, s.hidden, dropout_law(s.law, s.embedding_dropout))
        p = s.dropout if variant == "zaremba" else 0.0
        self.drop = nn.Dropout(p)
        if variant in ("none", "zaremba"):
            self.rnn: nn.Module = _DroppedLSTM(s.hidden, s.layers, p)
        else:
            law = dropout_law(s.law, s.dropout)
            self.rnn = NoisyLSTM(s.hidden, s.hidden, s.layers, noise=law,
                                 gates="untied" if variant == "untied" else "tied",
                                 recurrent_noise=law if variant == "gal" or s.recurrent_noise
                                 else None,
                                 recurrent_weight_noise=law if s.weight_noise else None)
        self.out_noise: nn.Module = nn.Identity()
        if s.output_noise and variant in SEQUENCE_NOISE:
            from dropprior.nn import MultiplicativeNoise

            self.out_noise = MultiplicativeNoise(dropout_law(s.law, s.dropout), "unit",
                                                 "sequence")
        self.out = nn.Linear(s.hidden, vocab)
        nn.init.uniform_(self.embed.weight, -0.1, 0.1)
        if s.init_scale > 0:
            for p_ in self.parameters():
                nn.init.uniform_(p_, -s.init_scale, s.init_scale)

    def forward(self, tokens: Tensor, state: Any = None) -> tuple[Tensor, Any]:
        h, state = self.rnn(self.drop(self.embed(tokens)), state)
        return self.out(self.drop(self.out_noise(h))), state


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


@torch.no_grad()
def mc_perplexity(model: LanguageModel, data: Tensor, bptt: int, samples: int,
                  mean_embedding: bool = False) -> float:
    """exp(−mean over tokens of log((1/S) Σ_s p_s(target))): S passes over ``data`` inside
    :func:`dropprior.mc` (each pass its own noise draws, its state carried from chunk to chunk),
    the probabilities of the target tokens averaged before the log; with ``mean_embedding`` the
    embedding's noise stays at E[ξ] (``mc(model, exclude=["embed"])``). Shape: data (T, N)."""
    from dropprior.nn import mc

    check_int("samples", samples, 1)
    check_bool("mean_embedding", mean_embedding)
    model.eval()
    targets = data[1:]
    prob = torch.zeros(targets.shape, dtype=torch.float64, device=data.device)
    with mc(model, exclude=["embed"] if mean_embedding else ()):
        for _ in range(samples):
            state = None
            for i in range(0, data.shape[0] - 1, bptt):
                x, y = data[i:i + bptt], data[i + 1:i + 1 + bptt]
                logits, state = model(x[: y.shape[0]], state)
                log_p = torch.log_softmax(logits.double(), dim=-1)
                prob[i:i + y.shape[0]] += log_p.gather(-1, y.unsqueeze(-1)).squeeze(-1).exp()
    return math.exp(-float(torch.log(prob / samples).mean()))


def run_ptb_variant(params: dict[str, Any], checkpoint: str | Path | None = None,
                    on_epoch: Callable[[dict[str, Any]], None] | None = None) -> dict[str, Any]:
    """Train one variant and return its perplexities, speed and history (a runner job function).

    Args:
        params: ``{"data_dir", "variant", "settings": {PTBSettings fields}}``.
        checkpoint: a file that holds the training state after every epoch (model, optimizer,
            torch's random state, history and timings); if it exists, training resumes from it,
            and the result equals an uninterrupted run's. A checkpoint of other training settings
            is refused; one that differs only in :data:`EVALUATION_SETTINGS` is used (a finished
            one is evaluated again, under these settings).
        on_epoch: called after every epoch with ``{"epochs_run", "valid_history",
            "train_tokens_per_second"}`` (what a partial record holds).

    Returns:
        ``valid_ppl``, ``test_ppl`` (mean-scaling), with ``mc_samples`` > 0 ``valid_ppl_mc``
        and ``test_ppl_mc``, ``valid_history`` (per epoch), ``epochs_run``,
        ``train_tokens_per_second`` and ``seconds`` (this process's, resumed epochs excluded),
        and ``resumed_epochs`` when it resumed.
    """
    from dropprior.data import load_ptb
    from dropprior.data.ptb import batchify

    s = PTBSettings(**{**params["settings"], "variant": params["variant"]})
    device = torch.device(s.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device={s.device!r}: CUDA is not available on this machine; use "
                         "device='cpu'")
    corpus = load_ptb(params["data_dir"])
    torch.manual_seed(s.seed)
    train_tokens = corpus.train if s.train_tokens == 0 else corpus.train[: s.train_tokens]
    train = batchify(train_tokens, s.batch_size).to(device)
    valid, test = batchify(corpus.valid, 10).to(device), batchify(corpus.test, 10).to(device)
    model = LanguageModel(s.variant, len(corpus.vocab), s).to(device)
    optimizer = torch.optim.SGD(model.parameters(), lr=s.lr)
    start = time.perf_counter()
    training = 0.0
    tokens = 0
    history: list[float] = []
    best = math.inf
    settings = key_fields(s)  # as a checkpoint from before an added setting holds them
    resumed = 0
    if checkpoint is not None and Path(checkpoint).exists():
        saved = torch.load(checkpoint, map_location=device, weights_only=False)
        changed = sorted(k for k in settings.keys() | saved["settings"].keys()
                         if k not in EVALUATION_SETTINGS
                         and saved["settings"].get(k) != settings.get(k))
        if changed:
            raise ValueError(f"checkpoint {str(checkpoint)!r} belongs to other settings "
                             f"(they differ in {', '.join(changed)}); remove it or use "
                             "another checkpoint file")
        model.load_state_dict(saved["model"])
        optimizer.load_state_dict(saved["optimizer"])
        torch.set_rng_state(saved["rng"])
        if device.type == "cuda":
            torch.cuda.set_rng_state(saved["cuda_rng"], device)
        history, tokens, training, best = (saved["history"], saved["tokens"],
                                           saved["training"], saved["best"])
        resumed = len(history)
    for epoch in range(resumed, s.epochs):
        if s.decay_after:
            for group in optimizer.param_groups:
                group["lr"] = learning_rate(s, epoch)
        model.train()
        state = None
        began = time.perf_counter()
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
            tokens += y.numel()
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        training += time.perf_counter() - began
        val = perplexity(model, valid, s.bptt)
        history.append(val)
        if val >= best and not s.decay_after:
            for group in optimizer.param_groups:
                group["lr"] *= s.lr_decay
        best = min(best, val)
        if checkpoint is not None:
            _save_checkpoint(checkpoint, {
                "settings": settings, "model": model.state_dict(),
                "optimizer": optimizer.state_dict(), "rng": torch.get_rng_state(),
                "cuda_rng": torch.cuda.get_rng_state(device) if device.type == "cuda" else None,
                "history": history, "tokens": tokens, "training": training, "best": best})
        if on_epoch is not None:
            on_epoch({"epochs_run": len(history), "valid_history": list(history),
                      "train_tokens_per_second": tokens / training})
    out: dict[str, Any] = {"valid_ppl": history[-1], "test_ppl": perplexity(model, test, s.bptt),
                           "valid_history": history, "epochs_run": len(history),
                           "train_tokens_per_second": tokens / training}
    if s.mc_samples and s.variant != "none":
        out["valid_ppl_mc"] = mc_perplexity(model, valid, s.bptt, s.mc_samples,
                                            s.mc_mean_embedding)
        out["test_ppl_mc"] = mc_perplexity(model, test, s.bptt, s.mc_samples,
                                           s.mc_mean_embedding)
    out["seconds"] = time.perf_counter() - start
    if resumed:
        out["resumed_epochs"] = resumed
    return out


def _save_checkpoint(path: str | Path, state: dict[str, Any]) -> None:
    """``torch.save`` to ``path`` atomically (a temporary file, then a rename)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    torch.save(state, tmp)
    os.replace(tmp, path)


def run_and_record(s: PTBSettings, command: str, data_dir: str | Path,
                   root: str | Path | None = None,
                   checkpoint_dir: str | Path | None = None) -> tuple[dict[str, Any], bool]:
    """The record of variant ``s.variant`` under ``s`` from ``results/ptb/`` if it is there,
    else train it and write the record. Returns (record, whether it was run now).

    After every epoch the run's partial record (its epochs and validation history) is
    rewritten, so a stopped run stays in the results as partial. With ``checkpoint_dir`` the
    training state is kept there too, one file per settings, and a rerun resumes from it.
    """
    from dropprior.experiments.records import checkpoint_file, run_recorded

    # named by the training settings alone (EVALUATION_SETTINGS at their defaults)
    training = replace(s, **{k: getattr(PTBSettings, k) for k in EVALUATION_SETTINGS})
    checkpoint = checkpoint_file("ptb", training, checkpoint_dir, root)
    return run_recorded("ptb", s, command,
                        lambda report: run_ptb_variant(
                            {"data_dir": str(data_dir), "variant": s.variant,
                             "settings": asdict(s)}, checkpoint, report),
                        root, progress=True)
