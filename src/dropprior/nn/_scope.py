r"""Mask scope of MC prediction: how far one noise draw reaches.

* ``"example"``: every input gets its own draw (each layer's own granularity; the default).
  Under :func:`dropprior.predict` without a seed, a variational linear map trained by the local
  reparametrization draws per example too (:func:`per_example_draws`).
* ``"batch"``: one draw per forward pass, shared by every input of the batch.
* ``"function"``: one draw per *sampled function*. Sample s reuses the same ξ in every layer for
  every input, across batches, so the S samples are S fixed networks f_1, …, f_S. Each noisy
  layer draws once per pass (granularity "batch") from a generator seeded by (seed, s, layer),
  the same for every batch (:func:`seeded_draws` with ``per_batch=False``).

Only dropprior's own stochastic modules can change scope; torch's dropout modules (and
attention dropout) draw per element whatever is asked, and a Gaussian local-reparametrization
layer draws per example by construction. A scope other than "example" refuses them with an error
naming the module.

Seeded draws (:func:`seeded_draws`) give every MC sample s its own generators, seeded by (seed,
batch, s, module), so the draws do not depend on how the S samples are split into passes:
vectorised, looped or chunked under any memory budget, the numbers are the same.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterator
from contextlib import contextmanager
from functools import partial
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn
from torch.nn.modules.dropout import _DropoutNd

from dropprior._validation import check_choice
from dropprior.nn._module import Stochastic

__all__ = ["SCOPES", "SeededDraws", "noise_scope", "per_example_draws", "seeded_draws"]

SCOPES = {
    "example": "each input its own draw (the layers' own granularity)",
    "batch": "one draw per forward pass, shared by the batch",
    "function": "one draw per sampled function: sample s has the same ξ for every input",
}


def _check_scopeable(model: nn.Module, what: str, fix: str, allow_local_reparam: bool = False,
                     kept: Collection[nn.Module] = ()) -> list[Stochastic]:
    """Every stochastic module of ``model`` less ``kept``; an error naming the first module
    (not kept) whose draws ``what`` cannot control (torch's dropout, attention dropout, local
    reparametrization)."""
    layers = []
    for name, m in model.named_modules():
        if m in kept:
            continue
        where = name or "<root>"
        if isinstance(m, _DropoutNd) or (isinstance(m, nn.MultiheadAttention) and m.dropout > 0):
            raise ValueError(f"{what} needs every noisy module to be a dropprior layer, but "
                             f"{where!r} is torch's {type(m).__name__}, which draws per element "
                             "from the global generator; convert it with "
                             f"dropprior.nn.apply_noise or {fix}")
        if getattr(m, "local_reparam", False) and not allow_local_reparam:
            raise ValueError(f"{what}: layer {where!r} uses local_reparam=True, which draws per "
                             f"example by construction; {fix}")
        if isinstance(m, Stochastic):
            layers.append(m)
    return layers


@contextmanager
def noise_scope(model: nn.Module, scope: str,
                kept: Collection[nn.Module] = ()) -> Iterator[list[Stochastic]]:
    """Set every stochastic module of ``model`` (less the modules ``kept``, which are left as
    they are) to draw at ``scope`` (module docstring) inside the context, and restore
    granularities and generators on exit. Yields the stochastic modules (for
    :func:`seed_function`).

    Raises:
        ValueError: an unknown scope, or, for "batch" / "function", a module that cannot change
            scope (torch dropout, attention dropout, local reparametrization).
    """
    check_choice("scope", scope, SCOPES)
    if scope == "example":
        yield [m for m in model.modules() if isinstance(m, Stochastic) and m not in kept]
        return
    layers = _check_scopeable(model, f"scope={scope!r}", "use scope='example'", kept=kept)
    generators = [getattr(m, "generator", None) for m in layers]
    try:
        with _granularity(layers, "batch"):
            yield layers
    finally:
        for m, generator in zip(layers, generators, strict=True):
            setattr(m, "generator", generator)  # noqa: B010 (an attribute of every layer)


@contextmanager
def _granularity(layers: list[Stochastic], value: str) -> Iterator[None]:
    """Every layer's ``granularity`` set to ``value`` inside the context, and put back on exit
    (an instance copy of a class attribute is dropped again)."""
    saved = [m.__dict__.get("granularity") for m in layers]
    try:
        for m in layers:
            m.granularity = value
        yield
    finally:
        for m, granularity in zip(layers, saved, strict=True):
            if granularity is None:  # a class attribute: drop the instance's copy
                m.__dict__.pop("granularity", None)
            else:
                m.granularity = granularity


@contextmanager
def per_example_draws(model: nn.Module) -> Iterator[list[Stochastic]]:
    """Inside the context, every variational tensor of a linear map trained by the local
    reparametrization (``trains_by_local_reparam``, set by
    ``dropprior.scales.variational(local_reparam=True)``) draws per example while sampling: the
    map's output for each input from its exact Gaussian law under q (the law one weight draw
    gives that input), independently across inputs, instead of one weight draw per pass. Its
    ``granularity`` reads ``"example"``, so MC passes over it can be vectorised. Yields the
    tensors switched; restores their granularity on exit.
    """
    switched = [m for m in model.modules()
                if isinstance(m, Stochastic) and getattr(m, "trains_by_local_reparam", False)]
    with _granularity(switched, "example"):
        yield switched


class SeededDraws:
    """Per-copy generators of seeded MC prediction (made by :func:`seeded_draws`).

    The draws of copy s (MC sample s) in stochastic module k come from a generator seeded by
    (seed, batch, s, k), or by (seed, s, k) where every batch repeats the same functions. A pass
    that runs several copies at once (the batch repeated along dim 0) runs each such module once
    per copy on the copy's rows, with the copy's generator, so the numbers are the same whether
    the copies are vectorised, looped, or chunked at any size.
    """

    def __init__(self, layers: list[Stochastic], seed: int, per_batch: bool) -> None:
        self.layers = layers
        self.seed = seed % (1 << 64)
        self.per_batch = per_batch
        self.samples: list[int] = [0]
        self._batch = 0
        self._current: int | None = None
        self._generators: dict[tuple[int, int], torch.Generator] = {}

    def start_batch(self, batch: int) -> None:
        """Begin batch ``batch``: fresh generators (the same ones again if not per batch)."""
        self._batch = batch
        self._generators.clear()

    def start_pass(self, first: int, count: int) -> None:
        """The next forward pass runs copies first, …, first + count − 1, in that order along
        dim 0."""
        self.samples = list(range(first, first + count))

    def generator(self, sample: int, layer: int, device: torch.device) -> torch.Generator:
        """Copy ``sample``'s generator in module ``layer`` (one stream per batch)."""
        key = (sample, layer)
        if key not in self._generators:
            words = [self.seed, sample, layer] + ([self._batch] if self.per_batch else [])
            state = np.random.SeedSequence(words).generate_state(1, dtype=np.uint64)[0]
            self._generators[key] = torch.Generator(device=device).manual_seed(
                int(state) >> 1)
        return self._generators[key]

    def _forward(self, module: Stochastic, layer: int, original: Callable[..., Any],
                 *args: Any, **kwargs: Any) -> Any:
        x = args[0] if args else next(iter(kwargs.values()), None)
        device = x.device if isinstance(x, Tensor) else torch.device("cpu")
        if self._current is not None or len(self.samples) == 1:
            sample = self.samples[0] if self._current is None else self._current
            setattr(module, "generator", self.generator(sample, layer, device))  # noqa: B010
            return original(*args, **kwargs)
        copies = len(self.samples)
        if getattr(module, "granularity", None) != "example" or not args \
                or not isinstance(x, Tensor) or x.dim() == 0 or x.shape[0] % copies:
            raise ValueError(
                f"seeded prediction runs {copies} copies in one pass, and module {layer} "
                f"({type(module).__name__}) cannot split them: it needs granularity 'example' "
                "and an input tensor whose dim 0 holds the copies; pass vectorize=False")
        outputs = []
        for sample, rows in zip(self.samples, x.split(x.shape[0] // copies), strict=True):
            self._current = sample
            try:
                setattr(module, "generator",  # noqa: B010 (an attribute of every layer)
                        self.generator(sample, layer, device))
                out = original(rows, *args[1:], **kwargs)
            finally:
                self._current = None
            if not isinstance(out, Tensor):
                raise ValueError(f"seeded prediction splits module {layer} "
                                 f"({type(module).__name__}) by copies, but it returned "
                                 f"{type(out).__name__}, not a tensor; pass vectorize=False")
            outputs.append(out)
        return torch.cat(outputs)


@contextmanager
def seeded_draws(model: nn.Module, seed: int, per_batch: bool = True,
                 kept: Collection[nn.Module] = ()) -> Iterator[SeededDraws]:
    """Inside the context every stochastic module of ``model`` draws copy s's noise from a
    generator of its own, seeded by (seed, batch, s, module) (:class:`SeededDraws`); generators
    and forwards are restored on exit. Callers announce each batch and pass
    (:meth:`SeededDraws.start_batch`, :meth:`SeededDraws.start_pass`);
    :func:`dropprior.objectives.output_samples` does so when given the handle.

    Args:
        model: the model; its noise must come from dropprior's own modules.
        seed: any int.
        per_batch: False: every batch gets the same generators (scope "function").
        kept: modules left as they are (those :func:`dropprior.predict`'s ``exclude`` holds).

    Raises:
        TypeError: ``seed`` is not an int.
        ValueError: a torch dropout module (its draws come from the global generator).
    """
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise TypeError(f"seed must be an int, got {type(seed).__name__}")
    layers = _check_scopeable(model, "seeded prediction (seed=...)", "leave seed=None",
                              allow_local_reparam=True, kept=kept)
    draws = SeededDraws(layers, seed, per_batch)
    saved = [(m, getattr(m, "generator", None), m.__dict__.get("forward")) for m in layers]
    try:
        for k, m in enumerate(layers):
            m.forward = partial(draws._forward, m, k, m.forward)  # type: ignore[method-assign]
        yield draws
    finally:
        for m, generator, forward in saved:
            if forward is None:  # the class's forward again
                m.__dict__.pop("forward", None)
            else:  # a forward the caller had set on the instance
                m.forward = forward  # type: ignore[method-assign]
            setattr(m, "generator", generator)  # noqa: B010 (an attribute of every layer)
