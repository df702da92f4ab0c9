r"""Deep ensembles beside MC dropout: M independently trained networks, read as M samples.

:func:`fit_ensemble` builds M models from any factory and trains each with :func:`dropprior.fit`
under its own seed (initialisation, shuffling and noise draws). :func:`predict_ensemble` treats
the members as draws of one predictive: each member contributes ``samples`` MC draws (one for a
deterministic member), and the M · samples outputs are summarised as :func:`dropprior.predict`
summarises its draws (the mean of the per-draw softmax; for regression the Gaussian mixture), so
every metric of :mod:`dropprior.metrics` applies unchanged.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch import Tensor, nn

from dropprior._validation import check_int, check_seed, offset_seed, type_name
from dropprior.likelihoods import Likelihood
from dropprior.prediction import (
    ClassificationPrediction,
    RegressionPrediction,
    predict,
    sample_outputs,
    summarise,
)

__all__ = ["fit_ensemble", "predict_ensemble"]


def fit_ensemble(factory: Callable[[], nn.Module], members: int, likelihood: Likelihood,
                 x: Tensor, y: Tensor | None = None, seed: int = 0,
                 **fit_kwargs: Any) -> list[nn.Module]:
    """Build ``members`` models with ``factory`` and train each with :func:`dropprior.fit`.

    Member m is built after ``torch.manual_seed(seed + m)`` and trained with ``seed=seed + m``
    (``seed + m`` wrapped modulo 2**64, as torch reads a seed), so the members differ in
    initialisation, shuffling and noise draws. A learned likelihood parameter is shared by the
    members as written (pass a fresh likelihood per member by training them yourself if that
    matters).

    Args:
        factory: a callable returning a new, untrained model.
        members: M ≥ 1.
        likelihood, x, y, fit_kwargs: as :func:`dropprior.fit` (``seed`` is set per member).

    Returns:
        the M trained models.
    """
    if isinstance(factory, nn.Module) or not callable(factory):
        raise TypeError(f"factory must be a callable that builds a new model (e.g. "
                        f"lambda: make_model()), got {type_name(factory)}")
    check_int("members", members, 1)
    from dropprior.training import fit

    check_seed(seed)
    models: list[nn.Module] = []
    owner: dict[int, int] = {}  # id of every member's trainable parameter -> its member
    with torch.random.fork_rng(devices=[]):
        for m in range(members):
            torch.manual_seed(offset_seed(seed, m))
            model = factory()
            if not isinstance(model, nn.Module):
                raise TypeError(f"factory() must return a torch.nn.Module, got "
                                f"{type_name(model)}")
            trainable = [p for p in model.parameters() if p.requires_grad]
            shared = [owner[id(p)] for p in trainable if id(p) in owner]
            if shared:  # a frozen shared backbone is fine; a trained one would be fit M times
                raise ValueError(f"factory() built member {m} with trainable parameters of "
                                 f"member {shared[0]} (the same model or layer again); it must "
                                 "build a new model on every call, e.g. lambda: make_model() "
                                 "(a shared part must be frozen: requires_grad=False)")
            owner.update({id(p): m for p in trainable})
            fit(model, likelihood, x, y, seed=offset_seed(seed, m), **fit_kwargs)
            models.append(model)
    return models


def predict_ensemble(models: Sequence[nn.Module], x: Tensor, likelihood: Likelihood | None,
                     samples: int = 1, batch_size: int | None = None
                     ) -> RegressionPrediction | ClassificationPrediction:
    """The members' predictive as one mixture over their M · ``samples`` draws (module
    docstring). A deterministic member is run once, whatever ``samples`` is, and weighted as
    ``samples`` identical draws, so every member has the same weight.

    Shape:
        x: (N, ...); the result's per-draw tensors: (M · samples, N, ...).
    """
    if not isinstance(models, Sequence) or not models:
        raise ValueError("predict_ensemble needs a non-empty sequence of models")
    outputs: list[Tensor] = []
    for model in models:
        pred = predict(model, x, samples=samples, likelihood=likelihood, batch_size=batch_size)
        draws = sample_outputs(pred)
        if draws.shape[0] == 1 and samples > 1:  # deterministic: one pass stands for S draws
            draws = draws.expand(samples, *draws.shape[1:])
        if outputs and draws.shape[1:] != outputs[0].shape[1:]:
            raise ValueError(f"ensemble members must predict alike: member 0 gives outputs of "
                             f"shape {tuple(outputs[0].shape[1:])} per draw, member "
                             f"{len(outputs)} {tuple(draws.shape[1:])}")
        outputs.append(draws)
    with torch.no_grad():
        return summarise(torch.cat(outputs), likelihood)
