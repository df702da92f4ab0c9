"""An MNIST MLP with unit-structured (ARD) noise of several laws: test error per law and the
pruning curve (test error against the fraction of hidden units kept).

Every law gets the same protocol, fixed in advance (:class:`MnistLawsSettings`): an MLP
784 → W → W → 10 (ReLU) whose three linear maps are unit-structured ``NoisyLinear`` layers
(noise on the inputs and on both hidden layers), the marginal-MAP objective with S draws, Adam,
minibatches, a fixed σ0, a gradient-norm clip; the epoch is chosen by early stopping (patience
2) on validation images carved from the 60 000 training images, never the test set. Test error
is measured by MC prediction, and by mean-scaling where E[ξ] exists. The pruning curve keeps
the top fraction of each hidden layer's units by relevance (``prune(..., layers=["2", "4"])``,
no retraining). One result record per law under ``results/mnist_laws/``, from which
``dropprior report`` builds ``docs/results/mnist_laws.md``.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from dropprior._validation import (
    check_choice,
    check_int,
    check_number,
    check_seed,
    offset_seed,
)
from dropprior.data.mnist import MNIST_TRAIN
from dropprior.noise import HalfCauchy, InverseNakagami, NoiseLaw, match_dropout
from dropprior.truncation import Truncated

__all__ = ["LAWS", "MnistLawsSettings", "law_pair", "run_mnist_laws", "errors_table",
           "settings_group", "size_table"]

LAWS = ("bernoulli", "gaussian", "half_cauchy", "half_cauchy_truncated_3",
        "inverse_nakagami_m0.75", "inverse_nakagami_m0.75_truncated_5")
"""The law families, in table order (see :func:`law_pair`)."""


def law_pair(name: str) -> tuple[NoiseLaw, NoiseLaw]:
    """(input-layer law, hidden-layer law) of family ``name``; dropout-matched where the family
    can be (p = 0.2 on the inputs, 0.5 on the hidden units).

    The half-Cauchy truncation point u = 3 was chosen among {3, 10} by the validation error of
    :mod:`dropprior.experiments.heavy_tails`' MNIST runs, never on test; inverse Nakagami was
    truncated at the one value tried there, u = 5. Truncation changes the prior (see
    :mod:`dropprior.truncation`): those rows are different laws.
    """
    check_choice("law", name, LAWS)
    if name in ("bernoulli", "gaussian"):
        return match_dropout(name, 0.2), match_dropout(name, 0.5)
    law: NoiseLaw = {
        "half_cauchy": lambda: HalfCauchy(1.0),
        "half_cauchy_truncated_3": lambda: Truncated(HalfCauchy(1.0), 3.0),
        "inverse_nakagami_m0.75": lambda: InverseNakagami(shape=0.75, spread=1.0),
        "inverse_nakagami_m0.75_truncated_5":
            lambda: Truncated(InverseNakagami(shape=0.75, spread=1.0), 5.0),
    }[name]()
    return law, law


@dataclass(frozen=True)
class MnistLawsSettings:
    """One law's run (module docstring): the family, hidden width, maximum epochs, minibatch,
    draws S per step, Adam's learning rate, σ0, the gradient-norm clip, the MC draws at test
    time, the validation images carved from the training set, the kept fractions of the pruning
    curve, and the seed (carving, initialisation, noise)."""

    law: str
    width: int = 256
    epochs: int = 6
    batch_size: int = 128
    samples: int = 2
    lr: float = 1e-3
    sigma0: float = 0.1
    grad_clip: float = 10.0
    test_samples: int = 20
    val_size: int = 5000
    keep: tuple[float, ...] = (1.0, 0.5, 0.25, 0.1, 0.05)
    seed: int = 0

    def __post_init__(self) -> None:
        check_choice("law", self.law, LAWS)
        for name in ("width", "epochs", "batch_size", "samples", "test_samples", "val_size"):
            check_int(name, getattr(self, name), 1)
        check_seed(self.seed, low=0)
        check_number("lr", self.lr)
        check_number("sigma0", self.sigma0)
        check_number("grad_clip", self.grad_clip)
        if self.val_size >= MNIST_TRAIN:
            raise ValueError(f"val_size must leave training images of MNIST's {MNIST_TRAIN}, "
                             f"got {self.val_size}")
        if isinstance(self.keep, str) or not self.keep:
            raise ValueError(f"keep must be a non-empty sequence of fractions, got {self.keep!r}")
        for k in self.keep:
            check_number("each keep fraction", k, 0.0, 1.0, high_open=False)
        object.__setattr__(self, "keep", tuple(float(k) for k in self.keep))


def _build(width: int, law_in: NoiseLaw, law_hidden: NoiseLaw) -> nn.Sequential:
    from dropprior.nn import NoisyLinear

    return nn.Sequential(NoisyLinear(784, width, law_in), nn.ReLU(),
                         NoisyLinear(width, width, law_hidden), nn.ReLU(),
                         NoisyLinear(width, 10, law_hidden))


def _error(model: nn.Module, x: torch.Tensor, y: torch.Tensor, samples: int,
           method: str = "mc") -> float:
    from dropprior.likelihoods import Categorical
    from dropprior.metrics import accuracy
    from dropprior.prediction import predict

    pred = predict(model, x, samples=samples, likelihood=Categorical(), method=method,
                   batch_size=2000)
    return 100.0 * (1.0 - float(accuracy(pred.probs, y)))  # type: ignore[union-attr]


def run_mnist_laws(s: MnistLawsSettings, train: tuple[torch.Tensor, torch.Tensor],
                   test: tuple[torch.Tensor, torch.Tensor]) -> dict[str, Any]:
    """Train law family ``s.law`` on ``train`` (MNIST's standardised training images and labels,
    of which ``s.val_size`` are carved off for early stopping) and score it on ``test``:
    test error (%) by MC prediction and by mean-scaling (None without a mean), the epochs run,
    the best epoch, and the pruning curve (parameters, FLOPs per example, MC test error)."""
    from dropprior.likelihoods import Categorical
    from dropprior.pruning import prune
    from dropprior.training import fit

    x, y = train
    x_test, y_test = test
    perm = torch.randperm(x.shape[0], generator=torch.Generator().manual_seed(s.seed))
    val, tr = perm[:s.val_size], perm[s.val_size:]
    law_in, law_hidden = law_pair(s.law)
    torch.manual_seed(s.seed)
    model = _build(s.width, law_in, law_hidden)
    start = time.perf_counter()
    history = fit(model, Categorical(), x[tr], y[tr], objective="marginal", samples=s.samples,
                  sigma0=s.sigma0, lr=s.lr, epochs=s.epochs, batch_size=s.batch_size,
                  validation=(x[val], y[val]), patience=2, val_samples=4,
                  grad_clip=s.grad_clip, seed=s.seed, progress=False, on_nonfinite="stop")
    seconds = time.perf_counter() - start
    torch.manual_seed(offset_seed(s.seed, 1))
    has_mean = bool(torch.isfinite(law_hidden.mean) & torch.isfinite(law_in.mean))
    metrics: dict[str, Any] = {
        "law_input": repr(law_in), "law_hidden": repr(law_hidden),
        "epochs_run": history.epochs_run, "best_epoch": history.best_epoch,
        "diverged": history.diverged, "train_seconds": round(seconds, 1),
        "test_error_mc": _error(model, x_test, y_test, s.test_samples),
        "test_error_mean_scaling": (_error(model, x_test, y_test, 1, "mean_scaling")
                                    if has_mean else None)}
    curve = []
    for keep in s.keep:
        res = prune(model, keep=keep, layers=["2", "4"])
        curve.append({"keep": keep, "params": res.params_after, "flops": res.flops_after,
                      "test_error_mc": _error(res.model, x_test, y_test, s.test_samples)})
    metrics["pruning"] = curve
    return metrics


def settings_group(record: Mapping[str, Any]) -> tuple[Any, ...]:
    """What a record's run shares with the others of its table: every setting but the law and
    the seed."""
    return tuple(sorted((k, str(v)) for k, v in record["config"].items()
                        if k not in ("law", "seed")))


def errors_table(records: Sequence[Mapping[str, Any]], reference: str = "bernoulli") -> str:
    """Test error (%) per law over the seeds recorded (mean ± standard error): MC,
    mean-scaling and the pruning curve, with the epochs run and the early-stopping epochs
    (1-based) per seed, the median training seconds, and the MC error's difference from
    ``reference``'s paired by seed, called lower or higher only where it exceeds its standard
    error. ``records`` share every setting but the law and the seed."""
    import numpy as np

    from dropprior.experiments.tables import (
        beats,
        format_seeds,
        markdown_table,
        minus,
        paired_mean_se,
    )
    from dropprior.experiments.tables import format_spread as _cell

    by_law: dict[str, dict[int, Mapping[str, Any]]] = {}
    for r in records:
        by_law.setdefault(r["config"]["law"], {})[r["config"]["seed"]] = r["metrics"]
    laws = sorted(by_law, key=lambda law: LAWS.index(law) if law in LAWS else len(LAWS))
    keep = [c["keep"] for c in next(iter(by_law[laws[0]].values()))["pruning"]] if laws else []
    ref = by_law.get(reference, {})
    table = []
    for law in laws:
        runs = [by_law[law][k] for k in sorted(by_law[law])]
        scaled = [m["test_error_mean_scaling"] for m in runs]
        best = ", ".join("—" if m["best_epoch"] is None else str(m["best_epoch"] + 1)
                         for m in runs)
        seeds = sorted(set(by_law[law]) & set(ref))
        if law == reference or len(seeds) < 2:
            versus = ""
        else:
            mean, se = paired_mean_se([by_law[law][k]["test_error_mc"] for k in seeds],
                                      [ref[k]["test_error_mc"] for k in seeds])
            word = ("lower" if beats(0.0, 0.0, mean, se) else
                    "higher" if beats(mean, se, 0.0, 0.0) else "level")
            versus = minus(f"{mean:+.2f} ± {se:.2f} ({word})")
        table.append([law, format_seeds(by_law[law]),
                      ", ".join(str(m["epochs_run"]) for m in runs), best,
                      "yes" if any(m["diverged"] for m in runs) else "no",
                      _cell([m["test_error_mc"] for m in runs]),
                      "n/a (no mean)" if None in scaled else _cell(scaled),
                      *(_cell([m["pruning"][i]["test_error_mc"] for m in runs])
                        for i in range(len(keep))),
                      f"{float(np.median([m['train_seconds'] for m in runs])):.0f}", versus])
    return markdown_table(["law", "seeds", "epochs run", "best epoch", "diverged", "MC",
                           "mean-scaling", *(f"keep {k:g}" for k in keep),
                           "training seconds (median)", f"MC − {reference} (paired)"], table)


def size_table(record: Mapping[str, Any]) -> str:
    """Parameters and FLOPs per example at each kept fraction (the same for every law)."""
    from dropprior.experiments.tables import markdown_table

    curve = record["metrics"]["pruning"]
    return markdown_table(["keep", *(f"{c['keep']:g}" for c in curve)],
                          [["parameters", *(f"{c['params']:,}".replace(",", " ")
                                            for c in curve)],
                           ["FLOPs per example", *(f"{c['flops']:,}".replace(",", " ")
                                                   for c in curve)]])
