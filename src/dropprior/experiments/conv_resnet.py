r"""MNIST residual CNN: plain, stochastic depth, and ADD / ARD+ADD with learned scales, pruned.

Network (``blocks`` = K, ``channels`` = C): conv 3×3 1 → C (ReLU), max-pool 2 (14 × 14), K
residual blocks at 14 × 14,

.. math:: h \mapsto h + \tau_k\, f_k(h \odot \xi_k), \qquad
          f_k = \text{conv}_{3×3} \circ \text{ReLU} \circ \text{conv}_{3×3} \ (C → C),

then max-pool 2 (7 × 7), flatten and a linear map C·49 → 10. Variants:

* ``plain``: no noise (τ = ξ = 1); MAP with the Gaussian prior N(0, σ0²) on every weight;
* ``stochastic_depth``: τ_k ~ Bernoulli(1 − p), inverted, one per example (Huang et al. 2016;
  torchvision's ``StochasticDepth(p, "row")``), the same prior;
* ``add``: one learned scale per block (automatic depth determination, paper Section 5.1),
  mean-field Gaussian VI with closed-form scales under ``hyperprior``
  (:func:`dropprior.scales.variational`);
* ``ard+add``: the same, with one more learned scale per input channel of every block.

The test error is the point network's: eval mode (mean-scaling) for ``plain`` and
``stochastic_depth``, the posterior means for the VI variants. The VI variants are pruned by the
fit's own decisions (``prune(threshold="auto")`` with :func:`dropprior.scales.kept_groups`'s
evidence rule on the training images, or ``rule="joint"``): a block the fit switched off is
removed (``nn.Identity``; with ``mean_replacement`` an :class:`~dropprior.pruning.Offset` holding
its mean contribution over the training images), and in a kept ARD+ADD block its switched-off
input channels, optionally followed by a short fine-tune of the pruned point network
(``fine_tune_epochs``). Reported: test error (and, with held-out ``validation`` images,
validation error) before and after pruning (and after the fine-tune), the blocks kept,
parameters and FLOPs (:func:`dropprior.pruning.count_flops`) before and after, and training
images per second.
"""

from __future__ import annotations

import copy
import dataclasses
import functools
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

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
from dropprior.training import LR_SCHEDULES, lr_schedule

__all__ = ["CONV_RESNET_VARIANTS", "ConvResnetSettings", "build_conv_resnet", "run_conv_resnet",
           "run_and_record"]

CONV_RESNET_VARIANTS = ("plain", "stochastic_depth", "add", "ard+add")
_LEARNED = ("add", "ard+add")


@dataclass(frozen=True)
class ConvResnetSettings:
    """One run (module docstring). ``drop`` is stochastic depth's p; ``rule`` the pruning
    rule of the VI variants (``"evidence"`` or ``"joint"``); ``lr_schedule`` ``"constant"`` or
    ``"cosine"`` (:func:`dropprior.cosine_lr` over ``epochs``); ``validation`` training images
    held out to choose settings on: the last ``validation`` of the seeded permutation of the
    60 000, disjoint from the ``train_size`` training images (its first); ``augment`` the
    largest random shift in pixels of every training image (:func:`dropprior.data.random_shift`,
    the border at the background; 0: none)."""

    variant: str = "add"
    blocks: int = 8
    channels: int = 16
    epochs: int = 30
    batch_size: int = 128
    lr: float = 1e-3
    sigma0: float = 1.0
    drop: float = 0.1
    hyperprior: str = "log_uniform"
    init_std: float = 0.01
    prior_weight: float = 1.0
    rule: str = "evidence"
    mean_replacement: bool = False
    train_size: int = 60_000
    seed: int = 0
    lr_schedule: str = added_setting("constant")
    validation: int = added_setting(0)
    augment: int = added_setting(0)
    fine_tune_epochs: int = added_setting(0)
    fine_tune_lr: float = added_setting(0.0)
    fine_tune_schedule: str = added_setting("constant")

    def __post_init__(self) -> None:
        from dropprior.hyperpriors import HYPERPRIORS

        check_choice("variant", self.variant, CONV_RESNET_VARIANTS)
        check_int("blocks", self.blocks, 0)
        check_seed(self.seed, low=0)
        if self.variant != "plain" and self.blocks < 1:
            raise ValueError(f"variant={self.variant!r} puts its noise or scales on the residual "
                             f"blocks and needs blocks >= 1, got {self.blocks}")
        for name in ("channels", "epochs", "batch_size", "train_size"):
            check_int(name, getattr(self, name), 1)
        check_choice("hyperprior", self.hyperprior, [k for k in HYPERPRIORS if k != "auto"])
        check_choice("rule", self.rule, ["evidence", "joint"])
        check_choice("lr_schedule", self.lr_schedule, LR_SCHEDULES)
        check_int("validation", self.validation, 0)
        check_int("augment", self.augment, 0)
        check_held_out(self.train_size, self.validation)
        check_prior_weight(self.prior_weight)
        for name in ("lr", "sigma0", "init_std"):
            check_number(name, getattr(self, name))
        check_number("drop", self.drop, 0.0, 1.0, low_open=False)
        check_fine_tune(self.fine_tune_epochs, self.fine_tune_lr, self.fine_tune_schedule)
        if self.fine_tune_epochs and self.variant not in _LEARNED:
            raise ValueError(f"fine_tune_epochs applies to the pruned variants {_LEARNED}; "
                             f"variant={self.variant!r} is not pruned")

    def training(self) -> ConvResnetSettings:
        """These settings with every ``fine_tune_*`` field at its default: what the training
        (and its checkpoint) depends on."""
        defaults: dict[str, Any] = {f.name: f.default for f in dataclasses.fields(self)
                                    if f.name.startswith("fine_tune_")}
        return dataclasses.replace(self, **defaults)


def build_conv_resnet(variant: str, blocks: int = 8, channels: int = 16,
                      drop: float = 0.1) -> nn.Sequential:
    """The network of the module docstring. For ``add`` / ``ard+add`` the blocks carry
    Bernoulli(1 − ``drop``) depth (and channel) noise, which marks their groups for
    :func:`dropprior.scales.variational` (it switches the noise off).

    Shape:
        input: (N, 1, 28, 28); output: (N, 10) logits.
    """
    from dropprior.nn import Residual
    from dropprior.noise import Bernoulli

    check_choice("variant", variant, CONV_RESNET_VARIANTS)
    check_int("blocks", blocks, 0)
    check_int("channels", channels, 1)
    c = channels
    keep = Bernoulli(1.0 - drop, inverted=True) if variant != "plain" else Bernoulli(1.0)
    layers: list[nn.Module] = [nn.Conv2d(1, c, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2)]
    for _ in range(blocks):
        branch = nn.Sequential(nn.Conv2d(c, c, 3, padding=1), nn.ReLU(),
                               nn.Conv2d(c, c, 3, padding=1))
        unit = keep if variant == "ard+add" else None
        layers.append(Residual(branch, depth_noise=keep, unit_noise=unit,
                               unit_structure="channel"))
    layers += [nn.MaxPool2d(2), nn.Flatten(), nn.Linear(c * 49, 10)]
    return nn.Sequential(*layers)


def _block_names(model: nn.Sequential) -> list[str]:
    from dropprior.nn import Residual

    return [name for name, m in model.named_children() if isinstance(m, Residual)]


def run_conv_resnet(s: ConvResnetSettings, data_dir: str | Path | None,
                    checkpoint: str | Path | None = None,
                    report: Callable[[dict[str, Any]], None] | None = None) -> dict[str, Any]:
    """Train (one epoch at a time through ``checkpoint``, calling ``report`` with the epochs
    done after each), evaluate, prune the VI variants, and return a result record's metrics.

    A run stopped between epochs resumes from ``checkpoint`` (:func:`dropprior.fit`'s) and ends
    as an uninterrupted one; without a checkpoint file a temporary one is used.
    """
    from dropprior import fit, prune, scales
    from dropprior.data import random_shift
    from dropprior.data.mnist import MNIST_MEAN, MNIST_STD, load_mnist
    from dropprior.likelihoods import Categorical
    from dropprior.pruning import Offset

    x, y = load_mnist(data_dir, "train")
    x_test, y_test = load_mnist(data_dir, "test")
    pick = torch.randperm(x.shape[0], generator=torch.Generator().manual_seed(s.seed))
    x = ((x - MNIST_MEAN) / MNIST_STD).reshape(-1, 1, 28, 28)
    x_test = ((x_test - MNIST_MEAN) / MNIST_STD).reshape(-1, 1, 28, 28)
    held = pick[x.shape[0] - s.validation:] if s.validation else pick[:0]
    x_val, y_val = x[held], y[held]
    x, y = x[pick[:s.train_size]], y[pick[:s.train_size]]
    background = -MNIST_MEAN / MNIST_STD

    def shift(xb: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        return random_shift(xb, s.augment, generator, fill=background)

    torch.manual_seed(s.seed)
    model = build_conv_resnet(s.variant, s.blocks, s.channels, s.drop)
    if s.variant in _LEARNED:
        scales.attach_scales(model, "vi", s.hyperprior, s.init_std)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "fit.pt" if checkpoint is None else Path(checkpoint)
        path.parent.mkdir(parents=True, exist_ok=True)
        resumed = torch.load(path, weights_only=False)["history"].epochs_run \
            if path.exists() else 0
        train = functools.partial(
            fit, model, Categorical(), x, y, sigma0=s.sigma0, lr=s.lr, batch_size=s.batch_size,
            seed=s.seed, progress=False, checkpoint=path, resume=True,
            prior_weight=s.prior_weight, lr_lambda=lr_schedule(s.lr_schedule, s.epochs),
            batch_transform=shift if s.augment else None)
        seconds = 0.0
        history = None
        for epoch in range(resumed + 1, s.epochs + 1):
            began = time.perf_counter()
            history = train(epochs=epoch)
            seconds += time.perf_counter() - began
            if report is not None:
                report({"epochs_run": history.epochs_run,
                        "train_images_per_second": (epoch - resumed) * x.shape[0] / seconds})
        if history is None:  # every epoch was in the checkpoint already
            history = train(epochs=s.epochs)
    point = scales.collapse(copy.deepcopy(model)) if s.variant in _LEARNED else model
    metrics: dict[str, Any] = {"epochs_run": history.epochs_run,
                               "test_error": point_error(point, x_test, y_test),
                               "train_seconds": round(seconds, 1)}
    if s.epochs > resumed:
        metrics["train_images_per_second"] = (s.epochs - resumed) * x.shape[0] / seconds
    if resumed:
        metrics["epochs_resumed"] = resumed
    if s.validation:
        metrics["valid_error"] = point_error(point, x_val, y_val)
    if s.variant not in _LEARNED:
        return metrics
    names = _block_names(model)
    decisions = scales.kept_groups(model, (Categorical(), x, y), s.sigma0,
                                   prior_weight=s.prior_weight, joint=s.rule == "joint",
                                   mean_replacement=s.mean_replacement)
    result = prune(model, threshold="auto", layers=names, example_input=x_test[:1],
                   decisions=decisions, mean_inputs=x if s.mean_replacement else None)
    kept = [n for n in names if not isinstance(getattr(result.model, n), nn.Identity | Offset)]
    metrics.update({
        "test_error_pruned": point_error(result.model, x_test, y_test),
        **({"valid_error_pruned": point_error(result.model, x_val, y_val)}
           if s.validation else {}),
        "blocks_kept": len(kept), "blocks": s.blocks, "kept_blocks": kept,
        "params_before": result.params_before, "params_after": result.params_after,
        "flops_before": result.flops_before, "flops_after": result.flops_after,
    })
    if s.fine_tune_epochs:
        fine_tune(result.model, x, y, epochs=s.fine_tune_epochs, lr=s.fine_tune_lr or s.lr,
                  schedule=s.fine_tune_schedule, sigma0=s.sigma0, batch_size=s.batch_size,
                  seed=s.seed, batch_transform=shift if s.augment else None)
        metrics["test_error_fine_tuned"] = point_error(result.model, x_test, y_test)
        if s.validation:
            metrics["valid_error_fine_tuned"] = point_error(result.model, x_val, y_val)
    return metrics


def run_and_record(s: ConvResnetSettings, command: str, data_dir: str | Path | None,
                   root: str | Path | None = None,
                   checkpoint_dir: str | Path | None = None) -> tuple[dict[str, Any], bool]:
    """The run's record from ``results/conv_resnet/`` if it is there, else run it and write it;
    its partial record (epochs done) is rewritten after every epoch. With ``checkpoint_dir``
    the training state is kept there (one file per settings) and a rerun resumes from it.
    Returns (record, whether it was run now)."""
    from dropprior.experiments.records import checkpoint_file, run_recorded

    checkpoint = checkpoint_file("conv_resnet", s.training(), checkpoint_dir, root)
    return run_recorded("conv_resnet", s, command,
                        lambda report: run_conv_resnet(s, data_dir, checkpoint, report),
                        root, progress=True)
