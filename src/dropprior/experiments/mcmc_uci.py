"""MAP training against NUTS and SGLD under the same prior on UCI splits (``dropprior mcmc``).

For one train/test split (targets and inputs standardised on the training part), each method
of :data:`METHODS` fits one hidden layer of ``hidden`` units and returns test RMSE and test
log-likelihood in original units:

* ``mc-map``: MAP of the EP weights under the MC objective (eq. 3) with the given law;
* ``marginal-map``: MAP under the marginal-MAP bound (eq. 10), same law;
* ``mc-dropout``: the same MC objective with Bernoulli noise of keep 1 − p (MC dropout);
* ``nuts-ep`` / ``nuts-hp``: NUTS on the network posterior with prior ξ ~ law in the EP and HP
  forms (noise precision inferred with a Gamma prior), with the sampling efficiency (min bulk
  ESS per gradient evaluation, divergences, max R-hat over the latent sites) and the R-hat and
  bulk ESS of the training log-likelihood and the noise precision, which the hidden units'
  permutation symmetry leaves identifiable;
* ``sgld-ep``: minibatch SGLD on the same EP posterior.

:func:`run_mcmc_job` runs every split of one data set and law for the resumable runner
(``scripts/nuts_uci.py``).
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from dropprior._validation import (
    check_choice,
    check_int,
    check_number,
    check_seed,
    offset_seed,
)

__all__ = ["METHODS", "McmcSettings", "run_method", "method_rows", "summarise_methods",
           "run_mcmc_job", "record_mcmc_run", "mcmc_table"]

METHODS = ("mc-dropout", "mc-map", "marginal-map", "nuts-ep", "nuts-hp", "sgld-ep")

#: The prior each noise law of the benchmark gives the weights (its table's "prior" column).
PRIORS = {"gaussian": "variance-gamma (Gaussian noise)",
          "inverse_nakagami": "Student-t (inverse-Nakagami noise)",
          "log_normal": "log-normal scale mixture (log-normal noise)"}


@dataclass(frozen=True)
class McmcSettings:
    """Every hyperparameter of the comparison, fixed before any test split is read."""

    hidden: int = 50
    p: float = 0.05
    sigma0: float = 1.0
    epochs: int = 400
    samples: int = 10
    warmup: int = 200
    num_samples: int = 200
    chains: int = 2
    max_tree_depth: int = 7
    sgld_step_size: float = 3e-5
    sgld_warmup: int = 20_000
    sgld_samples: int = 200
    sgld_thin: int = 50
    sgld_batch: int = 32

    def __post_init__(self) -> None:
        for name in ("hidden", "epochs", "samples", "num_samples", "chains", "max_tree_depth",
                     "sgld_samples", "sgld_thin", "sgld_batch"):
            check_int(name, getattr(self, name), 1)
        check_int("warmup", self.warmup, 0)
        check_int("sgld_warmup", self.sgld_warmup, 0)
        check_number("p", self.p, 0.0, 1.0)
        check_number("sigma0", self.sigma0)
        check_number("sgld_step_size", self.sgld_step_size)


def run_method(method: str, X: Any, y: Any, train: Any, test: Any, law: Any,
               settings: McmcSettings, seed: int) -> dict[str, float]:
    """One method (:data:`METHODS`) on one split: its test scores (module docstring)."""
    check_choice("method", method, METHODS)
    Xtr, ytr, Xte, yte, ym, ys = _standardise(X, y, train, test)
    if method.startswith("nuts"):
        return _nuts(Xtr, ytr, Xte, yte, ym, ys, law, settings, seed, method[-2:])
    if method == "sgld-ep":
        return _sgld(Xtr, ytr, Xte, yte, ym, ys, law, settings, seed)
    return _map(Xtr, ytr, Xte, yte, ym, ys, law, settings, seed, method)


def summarise_methods(rows: Sequence[dict[str, Any]],
                      methods: Sequence[str]) -> dict[str, dict[str, float]]:
    """Mean and standard error over splits of RMSE and test LL, per method."""
    from dropprior.experiments.tables import mean_se

    out = {}
    for m in methods:
        r = [row for row in rows if row["method"] == m]
        entry: dict[str, float] = {}
        for key in ("rmse", "test_ll"):
            entry[key], entry[f"{key}_se"] = mean_se([row[key] for row in r])
        out[m] = entry
    return out


def method_rows(ds: Any, law: Any, methods: Sequence[str], settings: McmcSettings, seed: int,
                splits: Sequence[int]) -> Iterator[dict[str, Any]]:
    """Each method's scores on each split of ``ds`` listed in ``splits`` (split k seeded
    ``seed + k`` modulo 2**64, whichever others run with it), as rows with ``split``,
    ``method`` and ``seconds`` added, one at a time."""
    import time

    check_seed(seed, low=0)
    for k in splits:
        train, test = ds.splits[k]
        for method in methods:
            start = time.perf_counter()
            scores: dict[str, Any] = dict(run_method(method, ds.X, ds.y, train, test, law,
                                                     settings, seed=offset_seed(seed, k)))
            scores.update(split=k, method=method, seconds=time.perf_counter() - start)
            yield scores


def run_mcmc_job(params: dict[str, Any]) -> dict[str, Any]:
    """The runner's job: ``params`` holds ``data_dir``, ``dataset``, ``law``, ``methods``,
    ``splits`` (None for all, an int N for the first N, or a list of split indices), ``seed``
    and the :class:`McmcSettings` fields.
    Returns ``{"rows": one per split and method, "summary": summarise_methods(...)}``."""
    from dropprior.data import load_uci
    from dropprior.noise import match_dropout

    settings = McmcSettings(**{k: params[k] for k in asdict(McmcSettings())})
    ds = load_uci(params["data_dir"], params["dataset"])
    chosen = params["splits"]
    if chosen is None or isinstance(chosen, int):
        splits = list(range(len(ds.splits) if chosen is None else min(chosen, len(ds.splits))))
    else:
        splits = [int(k) for k in chosen]
        bad = [k for k in splits if not 0 <= k < len(ds.splits)]
        if bad:
            raise ValueError(f"splits {bad} are not among {params['dataset']}'s "
                             f"{len(ds.splits)} splits (0 to {len(ds.splits) - 1})")
    law = match_dropout(params["law"], settings.p, dtype=torch.float64)
    rows = list(method_rows(ds, law, params["methods"], settings, int(params["seed"]), splits))
    return {"rows": rows, "summary": summarise_methods(rows, params["methods"])}


def record_mcmc_run(out: str | Path, params: dict[str, Any], rows: Sequence[dict[str, Any]],
                    seconds: float, started: tuple[str | None, str], *,
                    argv: Sequence[str] | None = None) -> Path:
    """Write one finished ``dropprior mcmc`` run as a run directory ``out``: ``run.json`` and
    ``config.toml`` (the command line, ``params``, versions, the commit and time the run
    *started* from, ``started`` = (commit, ISO time), taken before it ran) and one job record in
    ``out/jobs`` in :func:`run_mcmc_job`'s form (``params``, ``result``, ``seconds``), which
    :func:`mcmc_table` reads. ``params`` holds ``dataset``, ``law``, ``methods``, ``splits``,
    ``seed`` and the :class:`McmcSettings` fields. Returns the job record's file."""
    from dropprior.experiments.rundir import RunDirectory
    from dropprior.experiments.store import ResultStore

    rundir = RunDirectory(out, "mcmc", params, int(params["seed"]), argv=argv, started=started)
    store = ResultStore(Path(out) / "jobs", required=("params", "result"))
    key = (f"{params['dataset']}/{params['law']}/{'+'.join(params['methods'])}/"
           f"splits={params['splits']}")
    store.put(key, {"params": dict(params), "seconds": round(float(seconds), 2),
                    "result": {"rows": list(rows),
                               "summary": summarise_methods(rows, params["methods"])}},
              replace=True)
    rundir.finish(seconds)
    return store.path(key)


def mcmc_table(records: Sequence[dict[str, Any]], full_splits: int | None = 20) -> str:
    """The Markdown table of :func:`run_mcmc_job` records: one row per (data set, method,
    prior) over the splits found, each split counted once (from the first record that has it),
    and the data set's published anchors beneath its rows.

    Each row: the number of splits and whether that is all ``full_splits`` ("complete") or
    fewer ("partial"; with ``full_splits`` None, the count alone), test RMSE and test LL as
    mean ± standard error over those splits (the value alone for one split); for NUTS the
    medians over splits of the max R-hat over latent sites, of the R-hat of the training
    log-likelihood and of the noise precision, and the divergences summed over splits; the
    median seconds per split.
    """
    from dropprior.experiments.anchors import UCI_PUBLISHED
    from dropprior.experiments.tables import format_mean_se
    from dropprior.experiments.uci_cost import FULL_SPLITS as UCI_SPLITS

    groups: dict[tuple[str, str, str], dict[int, dict[str, Any]]] = {}
    for record in records:
        params = record["params"]
        for row in record["result"]["rows"]:
            prior = (f"Bernoulli, p = {params['p']:g}" if row["method"] == "mc-dropout"
                     else PRIORS.get(params["law"], params["law"]))
            groups.setdefault((params["dataset"], row["method"], prior), {}).setdefault(
                row["split"], row)
    lines = ["| dataset | method | prior | splits | RMSE | test LL | max R-hat (latents) | "
             "R-hat train LL | R-hat λ | divergences | s/split |\n",
             "|---|---|---|---|---|---|---|---|---|---|---|\n"]
    for dataset in sorted({key[0] for key in groups}):
        for (name, method, prior), by_split in sorted(groups.items()):
            if name != dataset:
                continue
            rows = [by_split[k] for k in sorted(by_split)]
            nuts = method.startswith("nuts")

            def median(key: str, rows: list[dict[str, Any]] = rows, nuts: bool = nuts) -> str:
                values = [r[key] for r in rows if key in r]
                return f"{float(np.median(values)):.2f}" if nuts and values else ""

            rmse = _cell([r["rmse"] for r in rows])
            ll = _cell([r["test_ll"] for r in rows])
            status = ("" if full_splits is None else " (complete)"
                      if len(rows) >= full_splits else " (partial)")
            divergences = str(sum(int(r["divergences"]) for r in rows)) if nuts else ""
            lines.append(
                f"| {dataset} | {method} | {prior} | {len(rows)}{status} | "
                f"{rmse} | {ll} | {median('max_rhat')} | "
                f"{median('rhat_train_ll')} | {median('rhat_precision')} | {divergences} | "
                f"{float(np.median([r['seconds'] for r in rows])):.0f} |\n")
        for source, (rmse_pub, ll_pub) in UCI_PUBLISHED.get(dataset, {}).items():
            lines.append(f"| {dataset} | *{source}* (published) | | {UCI_SPLITS} | "
                         f"{format_mean_se(*rmse_pub)} | {format_mean_se(*ll_pub)} "
                         "| | | | | |\n")
    return "".join(lines)


def _cell(values: Sequence[float]) -> str:
    """``mean±se`` over several values; one value alone, without a standard error."""
    from dropprior.experiments.tables import format_mean_se, mean_se

    if len(values) == 1:
        return format_mean_se(values[0], 0.0).split("±")[0]
    return format_mean_se(*mean_se(values))


def _standardise(X: Any, y: Any, train: Any, test: Any
                 ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, float, float]:
    from dropprior.experiments.uci import standardise

    x_train, x_test, _, _ = standardise(X[train], X[test])
    y_train, ym, ys = standardise(y[train])

    def t(a: Any) -> torch.Tensor:
        return torch.as_tensor(a, dtype=torch.float64)

    return t(x_train), t(y_train), t(x_test), t(y[test]), float(ym), float(ys)


def _map(Xtr: Any, ytr: Any, Xte: Any, yte: Any, ym: float, ys: float, law: Any,
         s: McmcSettings, seed: int, method: str) -> dict[str, float]:
    from dropprior import metrics
    from dropprior.likelihoods import Gaussian
    from dropprior.nn import NoisyLinear
    from dropprior.noise import Bernoulli
    from dropprior.prediction import RegressionPrediction, predict
    from dropprior.training import fit

    noise = Bernoulli(1 - s.p, inverted=True) if method == "mc-dropout" else law
    torch.manual_seed(seed)
    model = torch.nn.Sequential(
        NoisyLinear(Xtr.shape[1], s.hidden, noise), torch.nn.ReLU(),
        NoisyLinear(s.hidden, 1, noise)).double()
    lik = Gaussian(noise_std=0.5, learn=True).double()
    fit(model, lik, Xtr, ytr[:, None], objective="marginal" if method == "marginal-map" else "mc",
        samples=s.samples, sigma0=s.sigma0, lr=1e-2, epochs=s.epochs,
        batch_size=min(128, Xtr.shape[0]), seed=seed, progress=False)
    with torch.no_grad():
        pred = predict(model, Xte, samples=200, likelihood=lik)
        assert isinstance(pred, RegressionPrediction)
        mean = pred.mean[:, 0] * ys + ym
        rmse = float(metrics.rmse(mean, yte))
        z = (yte - ym) / ys
        ll = float(pred.log_density(z[:, None]).mean()) - math.log(ys)
    return {"rmse": rmse, "test_ll": ll}


def _posterior(Xtr: Any, ytr: Any, law: Any, s: McmcSettings, parametrization: str) -> Any:
    """The posterior both samplers target: one hidden layer, unit (ARD) noise."""
    from dropprior.inference import NetworkPosterior

    return NetworkPosterior.mlp(Xtr, ytr, [s.hidden], law, structure="unit", sigma0=s.sigma0,
                                parametrization=parametrization)


def _nuts(Xtr: Any, ytr: Any, Xte: Any, yte: Any, ym: float, ys: float, law: Any,
          s: McmcSettings, seed: int, parametrization: str) -> dict[str, float]:
    from dropprior.inference import run_mcmc

    with _default_float64():
        post = _posterior(Xtr, ytr, law, s, parametrization)
        r = run_mcmc(post, num_samples=s.num_samples, warmup=s.warmup, num_chains=s.chains,
                     max_tree_depth=s.max_tree_depth,
                     generator=torch.Generator().manual_seed(seed))
        scores = post.evaluate(r.samples, Xte, yte, y_mean=ym, y_std=ys)
    latent = [k for k in r.samples if k.endswith((".xi", ".z", ".b")) or k == "noise.precision"
              or (parametrization == "hp" and k.endswith(".w"))]
    scores.update(r.summary(latent))
    scores.update(_identifiable_diagnostics(post, r.samples))
    return scores


def _sgld(Xtr: Any, ytr: Any, Xte: Any, yte: Any, ym: float, ys: float, law: Any,
          s: McmcSettings, seed: int) -> dict[str, float]:
    from dropprior.inference import sgld_network

    with _default_float64():
        post = _posterior(Xtr, ytr, law, s, "ep")
        draws = sgld_network(post, step_size=s.sgld_step_size, num_samples=s.sgld_samples,
                             batch_size=min(s.sgld_batch, Xtr.shape[0]), warmup=s.sgld_warmup,
                             thin=s.sgld_thin, generator=torch.Generator().manual_seed(seed))
        return post.evaluate(draws, Xte, yte, y_mean=ym, y_std=ys)


def _identifiable_diagnostics(post: Any, samples: dict[str, torch.Tensor]) -> dict[str, float]:
    """R-hat and bulk ESS of quantities that the hidden units' permutation and sign symmetries
    leave unchanged: the training log-likelihood of each draw and the noise precision. (Chains
    that settle in symmetric copies of one mode give a huge max R-hat over weights and biases
    while agreeing on every prediction.)"""
    from dropprior.inference import bulk_ess, split_rhat

    chains, draws = next(iter(samples.values())).shape[:2]
    with torch.no_grad():
        train_ll = torch.stack([
            torch.stack([post.log_likelihood({k: v[c, i] for k, v in samples.items()},
                                             post.X, post.y) for i in range(draws)])
            for c in range(chains)])
    out = {"rhat_train_ll": float(split_rhat(train_ll)), "ess_train_ll": float(bulk_ess(train_ll))}
    if "noise.precision" in samples:
        lam = samples["noise.precision"].reshape(chains, draws)
        out.update(rhat_precision=float(split_rhat(lam)), ess_precision=float(bulk_ess(lam)))
    return out


@contextmanager
def _default_float64() -> Iterator[None]:
    old = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    try:
        yield
    finally:
        torch.set_default_dtype(old)
