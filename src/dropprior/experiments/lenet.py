r"""LeNets on MNIST with learned group scales: how small does the prior make them?

Architectures (``arch``):

* ``"lenet-300-100"``: 784 → 300 → 100 → 10 (ReLU), every linear map a unit-structured (ARD)
  :class:`~dropprior.nn.NoisyLinear`, so each input pixel and each hidden unit is a group;
* ``"lenet-5-caffe"``: conv 20 (5×5) → max-pool 2 → conv 50 (5×5) → max-pool 2 → fc 800 → 500
  (ReLU) → 10, as Caffe's LeNet; the convolutions are filter-structured
  :class:`~dropprior.nn.NoisyConv2d` (a filter and its bias are a group), the fc layers ARD.

Inference: ``"vi"`` (:func:`dropprior.scales.variational`; ``local_reparam`` draws the fc
layers' outputs by the local reparametrization in training) or ``"map"``
(:func:`dropprior.scales.learn_scales`), trained with :func:`dropprior.fit` (categorical
likelihood), at learning rate ``lr``: constant, or with ``lr_schedule="cosine"``
:func:`dropprior.cosine_lr` over ``epochs``. The test error is the point network's (VI:
posterior means; MAP: w = s·z with the noise at its mean). Pruning is
``prune(threshold="auto")``: the groups the fit switched off, by ``rule`` (:data:`RULES`,
:func:`dropprior.scales.kept_groups`); with ``max_kept`` (a size budget, :func:`budget`) a
layer keeps at most that many of the groups the fit kept, those with the highest learned scales
(``prune(max_kept=)``); optionally followed by
``fine_tune_epochs`` of :func:`dropprior.fit` on the pruned point network (learning rate
``fine_tune_lr``, 0: ``lr``, constant or, with ``fine_tune_schedule="cosine"``,
:func:`dropprior.cosine_lr` over ``fine_tune_epochs``; with ``fine_tune_patience`` = k > 0 a
tenth of the training images is held out and the fine-tune stops after k epochs without a better
loss on them, keeping the best epoch's weights and reporting that loss, by which fine-tune
settings are chosen; a MAP network's noise stays on in the fine-tune unless
``fine_tune_noise`` is False, which sets every noise law to Bernoulli(1), no noise; VI trains
without noise). With
``mean_replacement`` a removed unit or channel is held at its mean over the training images
(``prune(mean_inputs=...)``) instead of at zero.
LeNet-300-100 prunes input pixels and both hidden layers' units. LeNet-5-Caffe prunes both
convolutions' filters (with them the fc layer's matching input features) and the fc layer's
units; the ``kept`` architecture is conv1 filters - conv2 filters - fc1 inputs - fc1 units.
FLOPs are :func:`dropprior.pruning.count_flops`'s: 2 × the multiply–accumulates of the linear and
convolutional maps per image.
"""

from __future__ import annotations

import copy
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from dropprior._validation import (
    check_choice,
    check_int,
    check_number,
    check_prior_weight,
    check_seed,
)
from dropprior.data.mnist import check_held_out
from dropprior.experiments.evaluate import point_error
from dropprior.experiments.fine_tune import check_fine_tune, fine_tune
from dropprior.experiments.records import added_setting
from dropprior.noise import NoiseLaw
from dropprior.training import LR_SCHEDULES, lr_schedule

__all__ = ["ARCHS", "PRUNED", "RULES", "LenetSettings", "budget", "build_lenet", "lenet_300_100",
           "run_lenet", "run_and_record"]

RULES = {
    "auto": "VI: the evidence rule (a group pays for its KL); MAP: the scales' collapse",
    "evidence": "VI: the evidence rule on the training images",
    "snr": "VI: the posterior signal-to-noise ratio (no data)",
    "joint": "VI: the evidence rule deciding the switched-off groups as a set",
    "evidence-means": "VI: the evidence rule with each switched-off group held at its mean over "
                      "the training images, and pruned so (mean replacement)",
}

ARCHS = {
    "lenet-300-100": "784-300-100-10 MLP, ARD on every layer's inputs",
    "lenet-5-caffe": "conv 20 - pool - conv 50 - pool - fc 500 - 10, filter and ARD groups",
}


@dataclass(frozen=True)
class LenetSettings:
    """One LeNet run (module docstring)."""

    arch: str = "lenet-300-100"
    inference: str = "vi"
    hyperprior: str = "log_uniform"
    epochs: int = 100
    batch_size: int = 100
    lr: float = 1e-3
    sigma0: float = 1.0
    init_std: float = 0.01
    keep: float = 0.9
    train_size: int = 60_000
    seed: int = 0
    rule: str = "auto"
    fine_tune_epochs: int = 0
    fine_tune_lr: float = 0.0
    fine_tune_patience: int = 0
    prior_warmup: int = 0
    local_reparam: bool = False
    prior_weight: float = 1.0
    mean_replacement: bool = False
    fine_tune_schedule: str = added_setting("constant")
    validation: int = added_setting(0)
    lr_schedule: str = added_setting("constant")
    fine_tune_noise: bool = added_setting(True)
    max_kept: str = added_setting("")

    def __post_init__(self) -> None:
        from dropprior.hyperpriors import HYPERPRIORS
        from dropprior.scales import INFERENCE

        check_choice("arch", self.arch, ARCHS)
        check_choice("inference", self.inference, INFERENCE)
        check_choice("hyperprior", self.hyperprior, [k for k in HYPERPRIORS if k != "auto"])
        for name in ("epochs", "batch_size", "train_size"):
            check_int(name, getattr(self, name), 1)
        check_int("validation", self.validation, 0)
        check_seed(self.seed, low=0)
        check_held_out(self.train_size, self.validation)
        check_fine_tune(self.fine_tune_epochs, self.fine_tune_lr, self.fine_tune_schedule,
                        self.fine_tune_patience)
        check_choice("lr_schedule", self.lr_schedule, LR_SCHEDULES)
        if not self.fine_tune_noise and not self.fine_tune_epochs:
            raise ValueError("fine_tune_noise=False applies to a fine-tune: give "
                             "fine_tune_epochs > 0 as well")
        if not self.fine_tune_noise and self.inference != "map":
            raise ValueError(f"fine_tune_noise=False applies to inference='map'; "
                             f"inference={self.inference!r} trains without noise")
        check_int("prior_warmup", self.prior_warmup, 0)
        check_choice("rule", self.rule, RULES)
        check_prior_weight(self.prior_weight)
        for name in ("lr", "sigma0", "init_std"):
            check_number(name, getattr(self, name))
        check_number("keep", self.keep, 0.0, 1.0, high_open=False)
        budget(self.arch, self.max_kept)
        if self.inference == "map" and self.local_reparam:
            raise ValueError("local_reparam=True applies to variational weights "
                             "(inference='vi'); type-II MAP has none")
        if self.inference == "map" and self.rule != "auto":
            raise ValueError(f"rule={self.rule!r} decides variational groups; type-II MAP "
                             "(inference='map') is decided by its scales: pass rule='auto'")


PRUNED = {"lenet-300-100": {"0": 784, "2": 300, "4": 100},
          "lenet-5-caffe": {"0": 20, "2": 50, "7": 500}}
"""The pruned layers of each network (names in the Sequential) and their number of groups:
LeNet-300-100's input pixels and hidden units, LeNet-5-Caffe's conv filters and fc units."""


def budget(arch: str, max_kept: str) -> dict[str, int]:
    """``prune(max_kept=)`` of the comma-separated counts ``max_kept``, one per pruned layer of
    ``arch`` (:data:`PRUNED`, in order); ``""``: no cap.

    Raises:
        ValueError: not one integer in [1, the layer's groups] per pruned layer.
    """
    if max_kept == "":
        return {}
    sizes = PRUNED[arch]
    parts = max_kept.split(",")
    counts = [int(p) for p in parts if p.strip().isdigit()]
    if len(counts) != len(parts) or len(counts) != len(sizes) or not all(
            1 <= n <= size for n, size in zip(counts, sizes.values(), strict=True)):
        raise ValueError(f"max_kept must be {len(sizes)} comma-separated counts for {arch}'s "
                         f"pruned layers, each between 1 and its groups "
                         f"({','.join(map(str, sizes.values()))}), got {max_kept!r}")
    return dict(zip(sizes, counts, strict=True))


def lenet_300_100(law: NoiseLaw | None) -> nn.Sequential:
    """784 → 300 → 100 → 10 (ReLU): unit-structured (ARD) ``NoisyLinear`` layers with ``law``
    on every layer's inputs, or plain ``nn.Linear`` layers for ``law=None``.

    Shape:
        input: (N, 784); output: (N, 10).
    """
    from dropprior.nn import NoisyLinear

    def linear(a: int, b: int) -> nn.Module:
        return nn.Linear(a, b) if law is None else NoisyLinear(a, b, law)

    return nn.Sequential(linear(784, 300), nn.ReLU(), linear(300, 100), nn.ReLU(),
                         linear(100, 10))


def build_lenet(arch: str, keep: float = 0.9) -> nn.Sequential:
    """The network of ``arch`` with Bernoulli(keep, inverted) noise on every group.

    Shape:
        input: (N, 784) for LeNet-300-100, (N, 1, 28, 28) for LeNet-5-Caffe; output: (N, 10).
    """
    from dropprior.nn import NoisyConv2d, NoisyLinear
    from dropprior.noise import Bernoulli

    check_choice("arch", arch, ARCHS)
    law = Bernoulli(keep, inverted=True)
    if arch == "lenet-300-100":
        return lenet_300_100(law)
    return nn.Sequential(NoisyConv2d(1, 20, 5, law, "filter"), nn.MaxPool2d(2),
                         NoisyConv2d(20, 50, 5, law, "filter"), nn.MaxPool2d(2), nn.Flatten(),
                         NoisyLinear(800, 500, law), nn.ReLU(), NoisyLinear(500, 10, law))


def _images(x: Tensor, arch: str) -> Tensor:
    from dropprior.data.mnist import MNIST_MEAN, MNIST_STD

    x = (x - MNIST_MEAN) / MNIST_STD
    return x if arch == "lenet-300-100" else x.reshape(-1, 1, 28, 28)


def _architecture(arch: str, kept: dict[str, Tensor]) -> str:
    if arch == "lenet-300-100":
        sizes = [len(kept.get("0", range(784))), len(kept.get("2", range(300))),
                 len(kept.get("4", range(100)))]
    else:
        f1, f2 = len(kept.get("0", range(20))), len(kept.get("2", range(50)))
        sizes = [f1, f2, 16 * f2, len(kept.get("7", range(500)))]
    return "-".join(map(str, sizes))


def run_lenet(s: LenetSettings, data_dir: str | Path | None,
              checkpoint: str | Path | None = None) -> dict[str, Any]:
    """Train, prune by the fit's decisions, and return the metrics of a result record."""
    from dropprior import fit, prune, scales
    from dropprior.data.mnist import load_mnist
    from dropprior.likelihoods import Categorical

    x, y = load_mnist(data_dir, "train")
    x_test, y_test = load_mnist(data_dir, "test")
    order = torch.randperm(x.shape[0], generator=torch.Generator().manual_seed(s.seed))
    pick = order[:s.train_size]
    held = order[x.shape[0] - s.validation:] if s.validation else order[:0]  # disjoint from pick
    x_val, y_val = _images(x[held], s.arch), y[held]
    x, y = _images(x[pick], s.arch), y[pick]
    x_test = _images(x_test, s.arch)
    torch.manual_seed(s.seed)
    model = build_lenet(s.arch, s.keep)
    scales.attach_scales(model, s.inference, s.hyperprior, s.init_std, s.local_reparam)
    start = time.perf_counter()
    resumed = 0
    if checkpoint is not None and Path(checkpoint).exists():
        resumed = torch.load(checkpoint, weights_only=False)["history"].epochs_run
    history = fit(model, Categorical(), x, y, sigma0=s.sigma0, epochs=s.epochs, lr=s.lr,
                  batch_size=s.batch_size, seed=s.seed, progress=False, checkpoint=checkpoint,
                  resume=checkpoint is not None, prior_warmup=s.prior_warmup,
                  prior_weight=s.prior_weight, lr_lambda=lr_schedule(s.lr_schedule, s.epochs))
    seconds = time.perf_counter() - start
    point = scales.collapse(copy.deepcopy(model))  # the point network (test and validation)
    error = point_error(point, x_test, y_test)
    example = x_test[:1]
    layers = list(PRUNED[s.arch])
    metrics: dict[str, Any] = {"epochs_run": history.epochs_run, "test_error": error,
                               "train_seconds": round(seconds, 1)}
    if s.validation:
        metrics["valid_error"] = point_error(point, x_val, y_val)
    if resumed:  # epochs trained by an earlier process (and possibly an earlier commit)
        metrics["epochs_resumed"] = resumed
    data = (Categorical(), x, y) if s.inference == "vi" and s.rule != "snr" else None
    means = s.rule == "evidence-means"
    decisions = scales.kept_groups(model, data, s.sigma0, prior_weight=s.prior_weight,
                                   joint=s.rule == "joint", mean_replacement=means)
    try:
        result = prune(model, threshold="auto", layers=layers, example_input=example,
                       decisions=decisions, max_kept=budget(s.arch, s.max_kept),
                       mean_inputs=x if s.mean_replacement or means else None)
    except ValueError as err:  # the fit switched a whole layer off: nothing left to run
        metrics["prune_error"] = str(err)
        return metrics
    if s.validation:
        metrics["valid_error_pruned"] = point_error(result.model, x_val, y_val)
    metrics.update({
        "test_error_pruned": point_error(result.model, x_test, y_test),
        "kept_architecture": _architecture(s.arch, result.kept),
        "params_before": result.params_before, "params_after": result.params_after,
        "flops_before": result.flops_before, "flops_after": result.flops_after,
    })
    if s.fine_tune_epochs:
        if not s.fine_tune_noise:
            scales.noise_off(result.model)
        tuned = fine_tune(result.model, x, y, epochs=s.fine_tune_epochs,
                          lr=s.fine_tune_lr or s.lr, schedule=s.fine_tune_schedule,
                          patience=s.fine_tune_patience, sigma0=s.sigma0,
                          batch_size=s.batch_size, seed=s.seed)
        metrics["test_error_fine_tuned"] = point_error(result.model, x_test, y_test)
        if s.validation:
            metrics["valid_error_fine_tuned"] = point_error(result.model, x_val, y_val)
        metrics.update(tuned)
    return metrics


def record_key(s: LenetSettings) -> str:
    """The job key of a run: its settings, field by field."""
    from dropprior.experiments.records import settings_key

    return settings_key("lenet", s)


def run_and_record(s: LenetSettings, command: str, data_dir: str | Path | None,
                   root: str | Path | None = None,
                   checkpoint: str | Path | None = None) -> tuple[dict[str, Any], bool]:
    """The run's result record from ``results/lenet/`` if it is there, else run and write it.
    Returns (record, whether it was run now)."""
    from dropprior.experiments.records import run_recorded

    return run_recorded("lenet", s, command, lambda: run_lenet(s, data_dir, checkpoint), root)
