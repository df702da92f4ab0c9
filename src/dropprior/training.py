r"""A small training loop for noisy networks: :func:`fit`. Not a framework.

Each step minimises the per-example MAP loss of :mod:`dropprior.objectives` on a minibatch B,

.. math:: \ell_B(W) = -\frac1{|B|}\sum_{n\in B}\hat{\mathcal L}_S(x_n,y_n)
          + \frac{1}{2N\sigma_0^2}\|W\|^2,

with :math:`\hat{\mathcal L}_S` the MC objective (eq. 3, ``objective="mc"``), the marginal-MAP
bound (eq. 10, ``objective="marginal"``) or the tail-adaptive objective (``"tail_adaptive"``)
over S noise draws and N the training-set size, so that
:math:`N\ell` is an unbiased estimate of the negative log joint. The prior is an explicit loss
term (not the optimizer's ``weight_decay``), so any optimizer gives the same objective.

Everything ``fit`` does is also available as plain functions — write your own loop (or Lightning
``training_step``) around :func:`dropprior.objectives.marginal_log_likelihood` if you need more.
"""

from __future__ import annotations

import copy
import math
import time
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn
from torch.utils.data import DataLoader
from tqdm.auto import tqdm

from dropprior._validation import (
    check_bool,
    check_choice,
    check_finite_data,
    check_int,
    check_number,
    check_prior_weight,
    check_seed,
    shape_or_type,
    type_name,
)
from dropprior.likelihoods import Likelihood
from dropprior.objectives import (
    OBJECTIVE_FUNCTIONS,
    check_samples,
    check_sigma0,
    marginal_log_likelihood,
    model_output,
    training_loss,
)
from dropprior.prediction import mc_mode

__all__ = ["cosine_lr", "fit", "History", "LR_SCHEDULES", "lr_schedule", "OBJECTIVES",
           "OPTIMIZERS"]

#: "mc": eq. 3, the mean log-likelihood over draws; "marginal": eq. 10, the log-mean-exp bound;
#: "tail_adaptive": the rank-weighted draws of the ICML 2019 follow-up.
OBJECTIVES = tuple(OBJECTIVE_FUNCTIONS)  # "mc", "marginal", "tail_adaptive"
#: "adam": torch.optim.Adam; "sgd": torch.optim.SGD with momentum 0.9.
OPTIMIZERS = ("adam", "sgd")
#: "raise": FloatingPointError on a non-finite loss; "stop": end training, flag it in History.
ON_NONFINITE = ("raise", "stop")


@dataclass
class History:
    """What :func:`fit` did, epoch by epoch.

    Attributes:
        train_loss: mean training loss per epoch (negative objective per example + prior / N).
        val_loss: validation loss per epoch, −(1/N_val) Σ log-mean-exp over ``val_samples``
            draws (the MC predictive log-density); empty without validation.
        best_epoch: the epoch (0-based) with the lowest validation loss, or None.
        epochs_run: epochs completed (including ones before a resume).
        stopped_early: whether early stopping ended training.
        diverged: whether a non-finite loss ended training (``on_nonfinite="stop"``).
        seconds: wall-clock time of this call.
    """

    train_loss: list[float] = field(default_factory=list)
    val_loss: list[float] = field(default_factory=list)
    best_epoch: int | None = None
    epochs_run: int = 0
    stopped_early: bool = False
    diverged: bool = False
    seconds: float = 0.0


def _split(x: Tensor, y: Tensor, validation: float | tuple[Tensor, Tensor] | None,
           generator: torch.Generator) -> tuple[Tensor, Tensor, Tensor | None, Tensor | None]:
    if validation is None:
        return x, y, None, None
    if isinstance(validation, tuple):
        if len(validation) != 2:
            raise ValueError(f"validation must be a fraction or a pair (x_val, y_val), got a "
                             f"tuple of {len(validation)}")
        return x, y, validation[0], validation[1]
    if isinstance(validation, bool) or not isinstance(validation, float) or not (
            0.0 < validation < 1.0):
        raise ValueError(
            f"validation must be a fraction in (0, 1), a pair (x_val, y_val) or None, got "
            f"{validation!r}"
        )
    n = x.shape[0]
    n_val = max(1, int(round(validation * n)))
    if n_val >= n:
        raise ValueError(f"validation={validation} leaves no training data for {n} examples")
    perm = torch.randperm(n, generator=generator)
    tr, va = perm[n_val:], perm[:n_val]
    return x[tr], y[tr], x[va], y[va]


def _make_optimizer(name: str | type[torch.optim.Optimizer], params: list[nn.Parameter],
                    lr: float, kwargs: dict[str, Any]) -> torch.optim.Optimizer:
    if isinstance(name, type):
        return name(params, lr=lr, **kwargs)  # type: ignore[call-arg]
    if name == "adam":
        return torch.optim.Adam(params, lr=lr, **kwargs)
    return torch.optim.SGD(params, lr=lr, **{"momentum": 0.9, **kwargs})


def _check_optimizer(optimizer: object, kwargs: object) -> dict[str, Any]:
    if isinstance(optimizer, type):
        if not issubclass(optimizer, torch.optim.Optimizer):
            raise TypeError(f"optimizer must be 'adam', 'sgd' or a torch.optim.Optimizer "
                            f"subclass, got the class {optimizer.__name__}")
    else:
        check_choice("optimizer", optimizer, OPTIMIZERS)
    if kwargs is None:
        return {}
    if not isinstance(kwargs, dict) or "lr" in kwargs:
        raise ValueError(f"optimizer_kwargs must be a dict of the optimizer's arguments other "
                         f"than lr (pass lr= itself), got {kwargs!r}")
    return kwargs


def _loader_size(loader: DataLoader, y: object, batch_size: object,
                 validation: object) -> int:
    if y is not None:
        raise ValueError("a DataLoader yields (x, y) batches itself: pass it alone, with y=None")
    if batch_size is not None:
        raise ValueError(f"batch_size={batch_size!r} belongs to the DataLoader; leave "
                         "batch_size=None")
    if validation is not None and not isinstance(validation, tuple):
        raise ValueError(f"with a DataLoader, validation must be an explicit (x_val, y_val), got "
                         f"{validation!r}")
    try:
        n = len(loader.dataset)  # type: ignore[arg-type]
    except TypeError:
        raise ValueError("fit needs len(loader.dataset), the number of training examples that "
                         "scales the prior; an iterable dataset without a length has none"
                         ) from None
    if n == 0:
        raise ValueError("the DataLoader's dataset holds no examples; fit needs at least one")
    return n


def _check_targets(model: nn.Module, likelihood: Likelihood, x: Tensor, y: Tensor,
                   rows: int) -> None:
    """``likelihood.check`` of every target in ``y`` against the model's output on the first
    ``rows`` inputs, repeated to the length of ``y`` (a stride-0 view): every row of a model's
    output has the same shape, so a full pass over ``x`` would check nothing more. An output
    whose leading size is not ``rows`` is checked against the first ``rows`` targets instead,
    so that its error names the shapes the model produced."""
    out = model_output(model, x[:rows])
    if out.dim() >= 1 and out.shape[0] == min(rows, x.shape[0]) and out.shape[0] > 0:
        likelihood.check(out[:1].expand(y.shape[0], *out.shape[1:]), y)
    else:
        likelihood.check(out, y[:rows])


def _pair(batch: object) -> tuple[Tensor, Tensor]:
    if not (isinstance(batch, (tuple, list)) and len(batch) == 2
            and all(isinstance(t, Tensor) for t in batch)):
        raise ValueError(f"each DataLoader batch must be a pair (x, y) of tensors, got "
                         f"{type_name(batch)}")
    return batch[0], batch[1]


def fit(model: nn.Module, likelihood: Likelihood, x: Tensor | DataLoader,
        y: Tensor | None = None, *,
        objective: str = "mc", samples: int = 1, sigma0: float = math.inf,
        optimizer: str | type[torch.optim.Optimizer] = "adam",
        optimizer_kwargs: dict[str, Any] | None = None, lr: float = 1e-3, epochs: int = 100,
        batch_size: int | None = None,
        validation: float | tuple[Tensor, Tensor] | None = None,
        patience: int | None = None, val_samples: int = 16, grad_clip: float | None = None,
        seed: int = 0, progress: bool = True, checkpoint: str | Path | None = None,
        resume: bool = False, on_nonfinite: str = "raise", restore_best: bool = True,
        vectorize: bool | None = None, prior_warmup: int = 0,
        prior_weight: float = 1.0,
        lr_lambda: Callable[[int], float] | None = None,
        batch_transform: Callable[[Tensor, torch.Generator], Tensor] | None = None) -> History:
    """Train ``model`` in place by minibatch MAP under the MC or marginal-MAP objective.

    Args:
        model: a stochastic model (its noisy layers draw in train mode).
        likelihood: a :class:`~dropprior.likelihoods.Likelihood`; its parameters (a learned
            noise std) are trained too.
        x, y: the training data (N examples along dim 0), or a ``DataLoader`` as ``x`` that
            yields (x, y) batches, with ``y=None``: it batches and shuffles, ``len(dataset)`` is
            N, ``validation`` must be an explicit pair, and a resumed checkpoint does not
            restore the loader's shuffling.
        objective: "mc" (eq. 3), "marginal" (eq. 10) or "tail_adaptive"
            (:func:`dropprior.objectives.tail_adaptive_log_likelihood`).
        samples: S ≥ 1 noise draws per example per step.
        sigma0: σ0 of the Gaussian prior N(0, σ0²) on all model parameters (∞: no prior); with
            learned scales (:mod:`dropprior.scales`) the prior of
            :func:`dropprior.objectives.prior_penalty`, which needs a finite σ0.
        optimizer: "adam", "sgd" (momentum 0.9) or a ``torch.optim.Optimizer`` subclass;
            ``lr`` its learning rate.
        optimizer_kwargs: the optimizer's other arguments (e.g. ``{"weight_decay": 0.0}``).
        epochs: passes over the training data.
        batch_size: minibatch size (None: full batch).
        validation: a fraction of (x, y) held out at random, or an explicit (x_val, y_val), or
            None. Needed for ``patience``.
        patience: an int >= 0: stop after this many epochs in a row without a better
            validation loss, and at the first such epoch for 0 (None: never); with
            ``restore_best`` the best epoch's weights are restored at the end.
        val_samples: noise draws for the validation loss.
        grad_clip: clip the gradient's global L2 norm to this value (None: no clipping).
        seed: seeds the noise draws (torch's global RNG, inside a fork: the caller's global
            RNG state is restored afterwards) and the shuffling / split generator.
        progress: show a tqdm progress bar.
        checkpoint: a file written after every epoch (model, likelihood, optimizer, RNG
            states, history; its folder is created if missing); with ``resume=True`` training
            continues from it if it exists.
            The states of generators passed to layers' ``generator=`` are saved and restored
            too (in the order the layers appear in ``model.modules()``).
        on_nonfinite: "raise" (FloatingPointError) or "stop" (end and set ``History.diverged``).
        vectorize: see :func:`dropprior.objectives.output_samples`.
        prior_warmup: during the first ``prior_warmup`` epochs the prior term is weighted by
            (epoch + 1) / (prior_warmup + 1), rising to 1 (a KL warm-up for variational
            models, Sønderby et al. 2016); 0: the full prior from the start.
        prior_weight: β > 0 multiplying the prior term throughout (after any warm-up): 1 is
            the posterior (for a variational model the ELBO); β < 1 tempers it (β-VI, a
            KL-down-weighted ELBO; Nalisnick et al. 2019 average the KL over the weights,
            β = N / #weights). A hyperparameter to choose on validation data.
        lr_lambda: the learning rate of epoch e (from 0) is ``lr * lr_lambda(e)``, as with
            ``torch.optim.lr_scheduler.LambdaLR`` stepped once per epoch; None: ``lr``
            throughout. A function of the epoch alone, so a resumed run follows it too (e.g.
            :func:`cosine_lr`).
        batch_transform: applied to every training minibatch's inputs before the loss, as
            ``batch_transform(x_batch, generator)`` (data augmentation, e.g.
            :func:`dropprior.data.random_shift`); ``generator`` is fit's seeded shuffling
            generator, kept in the checkpoint, so a resumed run draws as an uninterrupted one.
            Validation batches are not transformed.

    Returns:
        the :class:`History`.

    Side effects: none beyond the model's (and likelihood's) parameters. Every module's
    train/eval mode and torch's global RNG state are as they were before the call. Warns when a
    law without a mean meets ``objective="mc"``, and when the prior drove every weight to ~0.

    Shape:
        x: (N, ...); y: (N, ...).
    """
    check_choice("objective", objective, OBJECTIVES)
    opt_kwargs = _check_optimizer(optimizer, optimizer_kwargs)
    check_choice("on_nonfinite", on_nonfinite, ON_NONFINITE)
    check_samples(samples)
    check_samples(val_samples, "val_samples")
    check_sigma0(sigma0)
    check_int("epochs", epochs, 0)
    check_int("prior_warmup", prior_warmup, 0)
    prior_weight = check_prior_weight(prior_weight)
    if batch_size is not None and (isinstance(batch_size, bool) or not isinstance(batch_size, int)
                                   or batch_size < 1):
        raise ValueError(f"batch_size must be an int >= 1 or None, got {batch_size!r}")
    if patience is not None:
        check_int("patience", patience, 0)
        if validation is None:
            raise ValueError("patience (early stopping) needs validation data: pass "
                             "validation=0.2 or validation=(x_val, y_val)")
    check_seed(seed)
    for name, flag in (("progress", progress), ("resume", resume),
                       ("restore_best", restore_best)):
        check_bool(name, flag)
    if vectorize is not None:
        check_bool("vectorize", vectorize)
    if resume and checkpoint is None:
        raise ValueError("resume=True needs checkpoint=<path> (the file to resume from)")
    if grad_clip is not None:
        check_number("grad_clip", grad_clip, high=math.inf, high_open=False)
    check_number("lr", lr)
    if batch_transform is not None and not callable(batch_transform):
        raise TypeError(f"batch_transform must be a function (x, generator) -> x or None, got "
                        f"{type_name(batch_transform)}")
    if lr_lambda is not None and not callable(lr_lambda):
        raise TypeError(f"lr_lambda must be a function of the epoch or None, got "
                        f"{type_name(lr_lambda)}")
    if not isinstance(likelihood, Likelihood):
        raise TypeError("likelihood must be a dropprior Likelihood, got "
                        f"{type_name(likelihood)}")
    if isinstance(x, DataLoader):
        n_loader = _loader_size(x, y, batch_size, validation)
    else:
        n_loader = 0
        if not isinstance(x, Tensor) or not isinstance(y, Tensor) or x.dim() == 0 or \
                y.dim() == 0 or x.shape[0] != y.shape[0]:
            raise ValueError(f"x and y must be tensors with the same number of examples along "
                             f"dim 0 (or x a DataLoader of (x, y) batches and y=None), got x "
                             f"{shape_or_type(x)} and y {shape_or_type(y)}")
        if x.shape[0] == 0:
            raise ValueError(f"x and y hold no examples (x of shape {tuple(x.shape)}); fit "
                             "needs at least one")
        check_finite_data("x", x)
        check_finite_data("y", y)
    if isinstance(validation, tuple) and len(validation) == 2:
        for name, part in zip(("x_val", "y_val"), validation, strict=True):
            if isinstance(part, Tensor) and part.dim() > 0:
                check_finite_data(f"validation {name}", part)
    modes = {m: m.training for m in model.modules()}
    with torch.random.fork_rng(devices=[]):  # the caller's global RNG state is left as it was
        try:
            history = _fit(model, likelihood, x, y, objective, samples, sigma0,
                           (optimizer, opt_kwargs), lr, epochs, batch_size, validation, patience,
                           val_samples, grad_clip, seed, progress, checkpoint, resume,
                           on_nonfinite, restore_best, vectorize, n_loader, prior_warmup,
                           prior_weight, lr_lambda, batch_transform)
        finally:
            for m, training in modes.items():
                m.train(training)
    _warn_collapse(model)
    return history


def _warn_mc_without_mean(model: nn.Module, objective: str) -> None:
    """The MC objective averages log-likelihoods of draws; a law without a mean makes rare huge
    draws dominate and training fails quietly (to chance or a constant)."""
    from dropprior.nn import NoisyModule
    from dropprior.noise import NoiseLaw

    if objective != "mc":
        return
    for name, m in model.named_modules():
        if isinstance(m, NoisyModule):
            for law in [v for v in vars(m).values() if isinstance(v, NoiseLaw)]:
                if not bool(torch.isfinite(law.mean).all()):
                    warnings.warn(
                        f"layer {name or '<root>'!r} uses {law!r}, which has no mean (E[ξ] = ∞); "
                        "under objective='mc' rare huge draws dominate and training usually "
                        "fails. Use objective='marginal', or dropprior.Truncated(law, upper=...)",
                        UserWarning, stacklevel=4)
                    return


def _warn_collapse(model: nn.Module) -> None:
    """A prior strong enough to drive every weight to ~0 leaves a constant model: say so."""
    weights = [p.detach() for n, p in model.named_parameters() if "weight" in n or
               n.endswith("original")]
    if not weights:
        return
    largest = max(float(w.abs().max()) for w in weights if w.numel())
    if largest < 1e-8:
        warnings.warn(
            f"every weight of the model is below 1e-8 in magnitude (largest {largest:.3g}): the "
            "prior drove the network to a constant; use a larger sigma0 (a weaker prior)",
            UserWarning, stacklevel=3)


def _batches(loader: DataLoader | None, x: Tensor, y: Tensor, n: int, step: int,
             generator: torch.Generator,
             transform: Callable[[Tensor, torch.Generator], Tensor] | None = None
             ) -> Iterator[tuple[Tensor, Tensor]]:
    """One epoch's minibatches: the loader's, or a shuffled pass over (x, y); with
    ``transform`` their inputs transformed (``transform(x_batch, generator)``)."""
    if loader is not None:
        batches: Iterator[tuple[Tensor, Tensor]] = (_pair(batch) for batch in loader)
    else:
        perm = torch.randperm(n, generator=generator)
        batches = ((x[perm[i:i + step]], y[perm[i:i + step]]) for i in range(0, n, step))
    for xb, yb in batches:
        yield (xb if transform is None else _transformed(transform, xb, generator)), yb


def _transformed(transform: Callable[[Tensor, torch.Generator], Tensor], xb: Tensor,
                 generator: torch.Generator) -> Tensor:
    out = transform(xb, generator)
    if not isinstance(out, Tensor) or out.shape[0] != xb.shape[0]:
        got = shape_or_type(out)
        raise ValueError(f"batch_transform must return a tensor with the batch's "
                         f"{xb.shape[0]} examples along dim 0, got {got}")
    return out


def _fit(model: nn.Module, likelihood: Likelihood, x: Tensor | DataLoader, y: Tensor | None,
         objective: str, samples: int, sigma0: float,
         optimizer: tuple[str | type[torch.optim.Optimizer], dict[str, Any]], lr: float,
         epochs: int, batch_size: int | None, validation: float | tuple[Tensor, Tensor] | None,
         patience: int | None, val_samples: int, grad_clip: float | None, seed: int,
         progress: bool, checkpoint: str | Path | None, resume: bool, on_nonfinite: str,
         restore_best: bool, vectorize: bool | None, n_loader: int,
         prior_warmup: int, prior_weight: float,
         lr_lambda: Callable[[int], float] | None,
         batch_transform: Callable[[Tensor, torch.Generator], Tensor] | None) -> History:
    start = time.perf_counter()
    generator = torch.Generator().manual_seed(seed)
    loader = x if isinstance(x, DataLoader) else None
    if loader is not None:
        x_val, y_val = validation if isinstance(validation, tuple) else (None, None)
        n_train = n_loader
        x_tr, y_tr = _pair(next(iter(loader)))  # the first batch, for the shape check
    else:
        assert isinstance(x, Tensor) and isinstance(y, Tensor)
        x_tr, y_tr, x_val, y_val = _split(x, y, validation, generator)
        n_train = x_tr.shape[0]
    step_batch = n_train if batch_size is None else min(batch_size, n_train)
    params = list(model.parameters()) + list(likelihood.parameters())
    opt = _make_optimizer(optimizer[0], params, float(lr), optimizer[1])
    # Validate the shapes and targets once, with a clear message, before training. The pass
    # draws no noise from the layers' own generators: their states are put back afterwards.
    model.train()
    layer_states = [g.get_state() for g in _layer_generators(model)]
    with torch.no_grad():
        _check_targets(model, likelihood, x_tr, y_tr, step_batch)
    _set_layer_generator_states(model, layer_states)
    _warn_mc_without_mean(model, objective)

    state = _TrainState(History(), opt, generator)
    first_epoch = 0
    ckpt = Path(checkpoint) if checkpoint is not None else None
    if ckpt is not None:
        if ckpt.is_dir():
            raise ValueError(f"checkpoint={str(checkpoint)!r} is a folder; give a file name")
        try:
            ckpt.parent.mkdir(parents=True, exist_ok=True)
        except OSError as err:
            raise ValueError(f"checkpoint={str(checkpoint)!r}: its folder cannot be made "
                             f"({err.strerror or err})") from None
    if resume and ckpt is not None and ckpt.exists():
        first_epoch = state.load(ckpt, model, likelihood)
    else:
        torch.manual_seed(seed)

    history = state.history
    bar = tqdm(range(first_epoch, epochs), disable=not progress, desc="fit", leave=False)
    for epoch in bar:
        if lr_lambda is not None:
            _set_lr(opt, float(lr), lr_lambda, epoch)
        model.train()
        likelihood.train()
        mean_loss = _train_epoch(
            model, likelihood, _batches(loader, x_tr, y_tr, n_train, step_batch, generator,
                                        batch_transform),
            opt, params, (objective, samples, sigma0, n_train, vectorize,
                          prior_weight * min(1.0, (epoch + 1) / (prior_warmup + 1))),
            grad_clip, on_nonfinite, epoch)
        if mean_loss is None:
            history.diverged = True
            break
        history.train_loss.append(mean_loss)
        history.epochs_run = epoch + 1
        if x_val is not None and y_val is not None:
            val = _validation_loss(model, likelihood, x_val, y_val, val_samples, vectorize)
            state.record_validation(val, epoch, model, likelihood)
            bar.set_postfix(loss=f"{mean_loss:.4g}", val=f"{val:.4g}")
        else:
            bar.set_postfix(loss=f"{mean_loss:.4g}")
        if ckpt is not None:
            state.save(ckpt, model, likelihood)
        if patience is not None and state.bad_epochs >= max(patience, 1):
            history.stopped_early = True
            break
    bar.close()
    if restore_best and state.best_state is not None:
        model.load_state_dict(state.best_state["model"])
        likelihood.load_state_dict(state.best_state["likelihood"])
    history.seconds = time.perf_counter() - start
    return history


def cosine_lr(epochs: int) -> Callable[[int], float]:
    """The cosine schedule over ``epochs`` epochs as an ``lr_lambda`` of :func:`fit`: epoch e
    trains at lr · (1 + cos(π e / epochs)) / 2, from lr down towards 0 (Loshchilov & Hutter
    2017, without restarts; ``torch.optim.lr_scheduler.CosineAnnealingLR`` with ``T_max=epochs``
    and ``eta_min=0``). Past ``epochs`` the factor rises again along the same cosine (epoch
    2·epochs is back at lr), as ``CosineAnnealingLR``'s closed form does: train for at most
    ``epochs`` epochs under it."""
    check_int("epochs", epochs, 1)

    def factor(epoch: int) -> float:
        return 0.5 * (1.0 + math.cos(math.pi * epoch / epochs))

    return factor


LR_SCHEDULES = ("constant", "cosine")
"""The named learning-rate schedules of the experiments' settings (:func:`lr_schedule`)."""


def lr_schedule(name: str, epochs: int) -> Callable[[int], float] | None:
    """The ``lr_lambda`` of :func:`fit` for a schedule named in :data:`LR_SCHEDULES` over
    ``epochs`` epochs: None for ``"constant"``, :func:`cosine_lr` for ``"cosine"``."""
    check_choice("lr_schedule", name, LR_SCHEDULES)
    return cosine_lr(epochs) if name == "cosine" else None


def _set_lr(opt: torch.optim.Optimizer, lr: float, lr_lambda: Callable[[int], float],
            epoch: int) -> None:
    factor = lr_lambda(epoch)
    if isinstance(factor, bool) or not isinstance(factor, (int, float)) or \
            not math.isfinite(factor) or factor < 0:
        raise ValueError(f"lr_lambda({epoch}) must be a finite number >= 0, got {factor!r}")
    for group in opt.param_groups:
        group["lr"] = lr * float(factor)


def _train_epoch(model: nn.Module, likelihood: Likelihood,
                 batches: Iterator[tuple[Tensor, Tensor]], opt: torch.optim.Optimizer,
                 params: list[nn.Parameter],
                 loss_args: tuple[str, int, float, int, bool | None, float],
                 grad_clip: float | None, on_nonfinite: str, epoch: int) -> float | None:
    """One pass of optimizer steps over ``batches``: the epoch's mean loss per example, or None
    when a loss was non-finite and ``on_nonfinite="stop"`` (``"raise"`` raises)."""
    objective, samples, sigma0, n_train, vectorize, prior_weight = loss_args
    total, count = 0.0, 0
    for xb, yb in batches:
        loss = training_loss(model, xb, yb, likelihood, objective, samples, sigma0, n_train,
                             vectorize, prior_weight)
        if not bool(torch.isfinite(loss)):
            for name, part in (("x", xb), ("y", yb)):  # a DataLoader's data is not checked ahead
                if part.is_floating_point() and not bool(torch.isfinite(part).all()):
                    raise ValueError(
                        f"a training batch's {name} holds {int((~torch.isfinite(part)).sum())} "
                        f"non-finite value(s) (nan or ±inf) at epoch {epoch}; remove or impute "
                        "them first")
            if on_nonfinite == "raise":
                raise FloatingPointError(
                    f"non-finite training loss {float(loss.detach())} at epoch {epoch}; try "
                    "objective='marginal', grad_clip=..., a smaller lr, or "
                    "on_nonfinite='stop' to record it"
                )
            return None
        opt.zero_grad()
        loss.backward()
        if grad_clip is not None:
            nn.utils.clip_grad_norm_(params, grad_clip)
        opt.step()
        total += float(loss.detach()) * xb.shape[0]
        count += xb.shape[0]
    return total / count


@dataclass
class _TrainState:
    """What a checkpoint holds besides the weights: the history, the optimizer, the shuffling
    generator, and early stopping's best validation loss, best state and bad-epoch count."""

    history: History
    opt: torch.optim.Optimizer
    generator: torch.Generator
    best_val: float = math.inf
    best_state: dict[str, Any] | None = None
    bad_epochs: int = 0

    def record_validation(self, val: float, epoch: int, model: nn.Module,
                          likelihood: Likelihood) -> None:
        """Keep the best epoch's weights; count the epochs since it."""
        self.history.val_loss.append(val)
        if val < self.best_val:
            self.best_val, self.bad_epochs, self.history.best_epoch = val, 0, epoch
            self.best_state = {"model": copy.deepcopy(model.state_dict()),
                               "likelihood": copy.deepcopy(likelihood.state_dict())}
        else:
            self.bad_epochs += 1

    def save(self, path: Path, model: nn.Module, likelihood: Likelihood) -> None:
        """Write the checkpoint file (weights, optimizer, every RNG state, history)."""
        torch.save({"model": model.state_dict(), "likelihood": likelihood.state_dict(),
                    "optimizer": self.opt.state_dict(), "torch_rng": torch.get_rng_state(),
                    "shuffle_rng": self.generator.get_state(),
                    "layer_rng": [g.get_state() for g in _layer_generators(model)],
                    "history": self.history, "best_val": self.best_val,
                    "best_state": self.best_state, "bad": self.bad_epochs}, path)

    def load(self, path: Path, model: nn.Module, likelihood: Likelihood) -> int:
        """Restore everything :meth:`save` wrote; returns the first epoch still to run."""
        state = torch.load(path, weights_only=False)
        model.load_state_dict(state["model"])
        likelihood.load_state_dict(state["likelihood"])
        self.opt.load_state_dict(state["optimizer"])
        torch.set_rng_state(state["torch_rng"])
        self.generator.set_state(state["shuffle_rng"])
        _set_layer_generator_states(model, state.get("layer_rng", []))
        self.history = state["history"]
        self.best_val, self.best_state = state["best_val"], state["best_state"]
        self.bad_epochs = state["bad"]
        return self.history.epochs_run


def _layer_generators(model: nn.Module) -> list[torch.Generator]:
    """The distinct generators held by the model's modules (``generator=`` of noisy layers,
    ``generators=`` of stacked ones), in ``model.modules()`` order."""
    seen: dict[int, torch.Generator] = {}
    for module in model.modules():
        for gen in [getattr(module, "generator", None), *getattr(module, "generators", [])]:
            if isinstance(gen, torch.Generator) and id(gen) not in seen:
                seen[id(gen)] = gen
    return list(seen.values())


def _set_layer_generator_states(model: nn.Module, states: list[Tensor]) -> None:
    generators = _layer_generators(model)
    if len(states) != len(generators):
        raise ValueError(f"the checkpoint holds {len(states)} layer generator state(s) but the "
                         f"model has {len(generators)} layer generator(s); resume with the model "
                         "that wrote the checkpoint")
    for gen, st in zip(generators, states, strict=True):
        gen.set_state(st)


def _validation_loss(model: nn.Module, likelihood: Likelihood, x: Tensor, y: Tensor,
                     samples: int, vectorize: bool | None) -> float:
    """−(1/N) Σ_n log (1/S) Σ_s p(y_n | x_n, Ξ_s): the MC predictive negative log-density."""
    with torch.no_grad(), mc_mode(model):
        value = -marginal_log_likelihood(model, x, y, likelihood, samples, vectorize).mean()
    return float(value)
