"""Run a grid of independent jobs, locally in parallel or on a cluster, into a :class:`ResultStore`.

A job is a key and a JSON-serialisable parameter dict; the work is a module-level function
``fn(params) -> dict`` (picklable, so it can run in another process or on another machine). Every
job draws its randomness from a seed in its own ``params``, never from process state, so the
results do not depend on which worker ran it or in what order: parallel equals serial.

Backends (``backend=``):

* ``"local"``: ``workers=1`` runs in this process; ``workers>1`` uses
  :class:`concurrent.futures.ProcessPoolExecutor` with one torch thread per process. Where the
  platform has it (Linux, macOS) the workers are forked from a ``forkserver`` that has imported
  the job function's module once, so starting a worker costs no second ``import torch``;
  elsewhere they are spawned.
* ``"dask"``: a ``dask.distributed.Client`` (``address=`` a scheduler, or a local cluster);
  needs the optional extra ``pip install "dropprior[dask]"``.
* ``"ray"``: ``ray.remote`` tasks (``address=`` a Ray cluster, or a local one);
  needs ``pip install "dropprior[ray]"``.

Each finished job is written to the store as soon as it finishes, so an interrupted grid keeps
everything finished so far; rerunning the same grid skips those jobs.
"""

from __future__ import annotations

import concurrent.futures as cf
import importlib
import multiprocessing
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from tqdm.auto import tqdm

from dropprior._validation import check_choice
from dropprior.experiments.rundir import now
from dropprior.experiments.store import ResultStore

__all__ = ["Job", "run_jobs", "BACKENDS"]

#: The execution engines :func:`run_jobs` accepts.
BACKENDS = ("local", "dask", "ray")

JobFn = Callable[[dict[str, Any]], dict[str, Any]]


@dataclass(frozen=True)
class Job:
    """One unit of work: a unique ``key`` and the ``params`` handed to the job function."""

    key: str
    params: Mapping[str, Any] = field(default_factory=dict)


def run_jobs(fn: JobFn, jobs: Sequence[Job], store: ResultStore, *, workers: int = 1,
             backend: str = "local", address: str | None = None, progress: bool = True,
             desc: str = "jobs") -> list[dict[str, Any]]:
    """Run every job of ``jobs`` not yet in ``store``; return all their records, in job order.

    Args:
        fn: module-level function ``params -> result dict`` (JSON-serialisable values).
        jobs: the grid; keys must be unique.
        store: where finished jobs are recorded (once each).
        workers: processes for the local backend (1 = run here, serially).
        backend: one of :data:`BACKENDS`.
        address: scheduler address for ``dask`` / ``ray`` (None: start a local one).
        progress: show a tqdm progress bar (on stderr).
        desc: label of the progress bar.

    Returns:
        For each job, its record ``{"key", "params", "result", "seconds", "finished_at"}``.

    Raises:
        ValueError: duplicate keys, ``workers < 1`` or an unknown backend.
        ImportError: the ``dask`` / ``ray`` backend without the package, naming the pip extra.
    """
    check_choice("backend", backend, BACKENDS)
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        raise ValueError(f"workers={workers!r} is not valid; expected an integer >= 1")
    keys = [job.key for job in jobs]
    if len(set(keys)) != len(keys):
        duplicates = sorted({k for k in keys if keys.count(k) > 1})
        raise ValueError(f"job keys must be unique; repeated: {duplicates[:5]}")
    todo = [job for job in jobs if not store.has(job.key)]
    bar = tqdm(total=len(jobs), initial=len(jobs) - len(todo), desc=desc, disable=not progress,
               unit="job", dynamic_ncols=True)
    try:
        for job, record in _execute(fn, todo, workers, backend, address):
            store.put(job.key, record)
            bar.update(1)
    finally:
        bar.close()
    return [store.get(key) for key in keys]


def _timed(fn: JobFn, params: dict[str, Any]) -> dict[str, Any]:
    """Run ``fn`` and wrap its result in a record (runs inside the worker)."""
    import torch

    torch.set_num_threads(1)
    start = time.perf_counter()
    result = fn(dict(params))
    return {
        "params": dict(params),
        "result": result,
        "seconds": time.perf_counter() - start,
        "finished_at": now(),
    }


def _execute(fn: JobFn, jobs: Sequence[Job], workers: int, backend: str,
             address: str | None) -> Iterable[tuple[Job, dict[str, Any]]]:
    if not jobs:
        return
    if backend == "dask":
        yield from _execute_dask(fn, jobs, address)
    elif backend == "ray":
        yield from _execute_ray(fn, jobs, address)
    elif workers == 1:
        for job in jobs:
            yield job, _timed(fn, dict(job.params))
    else:
        yield from _execute_processes(fn, jobs, workers)


def _execute_processes(fn: JobFn, jobs: Sequence[Job],
                       workers: int) -> Iterable[tuple[Job, dict[str, Any]]]:
    context = _worker_context(fn)
    with cf.ProcessPoolExecutor(max_workers=min(workers, len(jobs)), mp_context=context) as pool:
        futures = {pool.submit(_timed, fn, dict(job.params)): job for job in jobs}
        try:
            for future in cf.as_completed(futures):
                yield futures[future], future.result()
        finally:
            for future in futures:
                future.cancel()


def _worker_context(fn: JobFn) -> Any:
    """A ``forkserver`` context preloading ``fn``'s module (and torch), else ``spawn``.

    Both start workers without copying this process's state, so a job sees only its ``params``.
    """
    if "forkserver" not in multiprocessing.get_all_start_methods():
        return multiprocessing.get_context("spawn")
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(["torch", fn.__module__])
    return context


def _require(module: str, extra: str) -> Any:
    try:
        return importlib.import_module(module)
    except ImportError:
        raise ImportError(
            f"backend {extra!r} needs the {module.split('.')[0]!r} package, which is not "
            f'installed; install it with: pip install "dropprior[{extra}]"'
        ) from None


def _execute_dask(fn: JobFn, jobs: Sequence[Job],
                  address: str | None) -> Iterable[tuple[Job, dict[str, Any]]]:
    distributed = _require("dask.distributed", "dask")
    client = distributed.Client(address) if address else distributed.Client(processes=True)
    try:
        futures = {client.submit(_timed, fn, dict(job.params), key=f"dropprior-{job.key}",
                                 pure=False): job for job in jobs}
        for future in distributed.as_completed(list(futures)):
            yield futures[future], future.result()
    finally:
        client.close()


def _execute_ray(fn: JobFn, jobs: Sequence[Job],
                 address: str | None) -> Iterable[tuple[Job, dict[str, Any]]]:
    ray = _require("ray", "ray")
    started = not ray.is_initialized()
    if started:  # no dashboard: it is an extra service, slow to start, not needed here
        ray.init(address=address, include_dashboard=False)
    try:
        remote = ray.remote(_timed)
        pending = {remote.remote(fn, dict(job.params)): job for job in jobs}
        while pending:
            done, _ = ray.wait(list(pending), num_returns=1)
            for ref in done:
                yield pending.pop(ref), ray.get(ref)
    finally:
        if started:
            ray.shutdown()
