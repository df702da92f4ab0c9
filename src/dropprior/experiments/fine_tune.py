"""The short fine-tune after pruning, shared by the MNIST experiments (``dropprior mnist`` and
``dropprior conv-resnet``): :func:`dropprior.fit` of the pruned point network on the training
images, categorical likelihood, at a constant or cosine learning rate, optionally stopped early on
a tenth of the training images held out."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor, nn

from dropprior._validation import check_choice, check_int
from dropprior.training import LR_SCHEDULES, lr_schedule

__all__ = ["check_fine_tune", "fine_tune"]


def check_fine_tune(epochs: int, lr: float, schedule: str, patience: int = 0) -> None:
    """Raise a ValueError naming the bad fine-tune setting: ``epochs`` and ``patience`` ints
    ≥ 0, ``lr`` ≥ 0 (0: the training's), ``schedule`` one of :data:`LR_SCHEDULES`, and a
    schedule other than constant or a patience only with ``epochs`` > 0."""
    check_int("fine_tune_epochs", epochs, 0)
    check_int("fine_tune_patience", patience, 0)
    if not lr >= 0:
        raise ValueError(f"fine_tune_lr must be >= 0 (0: lr), got {lr!r}")
    check_choice("fine_tune_schedule", schedule, LR_SCHEDULES)
    if schedule != "constant" and not epochs:
        raise ValueError(f"fine_tune_schedule={schedule!r} applies to a fine-tune: give "
                         "fine_tune_epochs > 0 as well")
    if patience and not epochs:
        raise ValueError("fine_tune_patience applies to a fine-tune: give fine_tune_epochs "
                         "> 0 as well")


def fine_tune(model: nn.Module, x: Tensor, y: Tensor, *, epochs: int, lr: float,
              schedule: str = "constant", patience: int = 0, sigma0: float = 1.0,
              batch_size: int = 100, seed: int = 0,
              batch_transform: Callable[[Tensor, torch.Generator], Tensor] | None = None
              ) -> dict[str, Any]:
    """Train ``model`` in place for ``epochs`` of :func:`dropprior.fit` (categorical likelihood,
    Adam at ``lr``, :func:`dropprior.training.lr_schedule`'s ``schedule`` over ``epochs``); with
    ``patience`` = k > 0 a tenth of (x, y) is held out and training stops after k epochs without
    a better loss on it, the best epoch's weights kept.

    Returns:
        the record's fine-tune metrics: with ``patience``, ``fine_tune_epochs_run``,
        ``fine_tune_best_epoch`` (0-based) and ``fine_tune_valid_loss`` (the best epoch's held-out
        loss); else none.
    """
    from dropprior import fit
    from dropprior.likelihoods import Categorical

    stopping: dict[str, Any] = {} if not patience else {"validation": 0.1, "patience": patience}
    history = fit(model, Categorical(), x, y, sigma0=sigma0, epochs=epochs, lr=lr,
                  batch_size=batch_size, seed=seed, progress=False,
                  lr_lambda=lr_schedule(schedule, epochs), batch_transform=batch_transform,
                  **stopping)
    if not patience:
        return {}
    return {"fine_tune_epochs_run": history.epochs_run,
            "fine_tune_best_epoch": history.best_epoch,
            "fine_tune_valid_loss": min(history.val_loss)}
