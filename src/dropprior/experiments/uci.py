"""The UCI regression benchmark protocol of MC dropout (Gal & Ghahramani 2016; grid-searched 2018).

Per data set and split K:

1. the training split is cut into its first 80% (inner training) and last 20% (validation), in the
   order of ``index_train_K.txt``, as in the reference code;
2. inputs and targets are standardised on the data a network is trained on (input columns with
   zero spread keep scale 1);
3. one network per grid point (p, τ) of ``dropout_rates.txt`` × ``tau_values.txt`` is trained on the
   inner split, all at once (:mod:`dropprior.experiments.batched_mlp`); the grid point with the
   best validation log-likelihood is kept;
4. a network with that grid point is retrained on the whole training split and evaluated once on
   the test split: RMSE of the MC mean and MC test log-likelihood (T draws), in original units,
   and the predictive's interval metrics
   (:data:`~dropprior.experiments.uci_scales.INTERVAL_METRICS`).

The test split is never seen before step 4. Weight decay is the reference code's
λ = l²(1−p)/(2Nτ) with length-scale l = 10⁻², N the number of training rows; τ is the precision of
the Gaussian likelihood in original target units (standardised: τ·std(y)²).

Two baselines run the same protocol with networks trained without noise (law ``"none"``, p = 0,
so the grid is τ alone and λ = l²/(2Nτ)): objective ``"map"`` predicts with the trained network
and ``"laplace"`` with its last-layer Laplace posterior (:func:`dropprior.fit_last_layer_laplace`
under the Gaussian likelihood of precision τ, the prior precision chosen by the marginal
likelihood; :mod:`dropprior.experiments.batched_laplace`), whose predictive is scored from its
draws as MC dropout's is. τ is chosen on validation by each baseline's own predictive.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
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
from dropprior.data import UCIDataset, load_uci
from dropprior.experiments.anchors import UCI_DEEP_ENSEMBLES_LL, UCI_PUBLISHED
from dropprior.experiments.batched_laplace import laplace_draws, laplace_networks
from dropprior.experiments.batched_mlp import (
    BATCHED_STRUCTURES,
    OBJECTIVES,
    predict_batched,
    score_batched,
    train_batched,
)
from dropprior.experiments.laws import TABLE1_LAWS, dropout_law
from dropprior.experiments.runner import Job
from dropprior.experiments.tables import (
    beats,
    format_mean_se,
    markdown_table,
    mean_se,
    minus,
    write_csv,
)
from dropprior.experiments.uci_scales import INTERVAL_METRICS, VI_INIT_STD, interval_scores
from dropprior.noise import Bernoulli, NoiseLaw

__all__ = ["uci_jobs", "uci_scales_jobs", "run_uci_split", "fit_and_score", "standardise",
           "summarise_uci", "uci_row_order", "uci_markdown", "write_uci_tables", "anchor_verdicts",
           "plot_uci", "DEFAULTS", "NO_NOISE", "BASELINES"]

#: Noise draws per example and step of the marginal-MAP objective unless ``train_samples`` is set.
MARGINAL_SAMPLES = 5

#: The law name of the baselines' networks, trained without noise.
NO_NOISE = "none"

#: The baselines' objectives (law ``"none"`` only): the trained network's own predictive
#: (``"map"``) or its last-layer Laplace posterior's (``"laplace"``).
BASELINES = ("map", "laplace")

#: Protocol settings a job reads (each can be overridden per grid).
DEFAULTS: dict[str, Any] = {
    "epochs": None,  # None: n_epochs.txt × epoch_multiplier
    "epoch_multiplier": 100,
    "batch_size": 128,
    "lr": 1e-3,
    "lengthscale": 1e-2,
    "test_samples": 10_000,
    "validation_samples": 1_000,
    "train_samples": None,  # None: 1 for "mc" (standard dropout), 5 for "marginal"
    "hidden": None,  # None: n_hidden.txt
    "layers": 1,
    "validation_fraction": 0.2,
}


def uci_jobs(data_dir: str, datasets: Sequence[str], laws: Sequence[str],
             structures: Sequence[str], objectives: Sequence[str], *, seed: int = 0,
             splits: Sequence[int] | None = None, splits_per_job: int = 5,
             **settings: Any) -> list[Job]:
    """The grid of jobs: data set × law × structure × objective × group of splits.

    A job trains the networks of ``splits_per_job`` splits together (one batched network: faster
    per split than one split at a time). Its seed is ``seed`` plus its first split (modulo
    2**64), so its shuffles and noise do not depend on which other jobs run or where.
    ``settings`` override :data:`DEFAULTS`.
    """
    unknown = sorted(set(settings) - set(DEFAULTS))
    if unknown:
        raise ValueError(f"unknown UCI settings {unknown}; accepted: {sorted(DEFAULTS)}")
    check_int("splits_per_job", splits_per_job, 1)
    check_seed(seed, low=0)
    merged = {**DEFAULTS, **settings}
    for name in ("lr", "lengthscale"):
        check_number("--" + name, merged[name])
    check_number("validation_fraction", merged["validation_fraction"], 0.0, 1.0)
    for law in laws:
        check_choice("law", law, (*TABLE1_LAWS, NO_NOISE))
    for structure in structures:
        check_choice("structure", structure, BATCHED_STRUCTURES)
    for objective in objectives:
        check_choice("objective", objective, (*OBJECTIVES, *BASELINES))
    _check_baselines(laws, structures, objectives)
    jobs = []
    for name in datasets:
        dataset = _load(str(data_dir), name)
        chosen = _chosen_splits(dataset, splits)
        groups = [chosen[i:i + splits_per_job] for i in range(0, len(chosen), splits_per_job)]
        for law in laws:
            for structure in structures:
                for objective in objectives:
                    for group in groups:
                        params = {**DEFAULTS, **settings, "data_dir": str(data_dir),
                                  "dataset": name, "law": law, "structure": structure,
                                  "objective": objective, "splits": [int(k) for k in group],
                                  "seed": offset_seed(int(seed), int(group[0])),
                                  "data_digest": dataset.digest}
                        jobs.append(Job(key=_job_key(params), params=params))
    return jobs


def uci_scales_jobs(data_dir: str | Path, datasets: Sequence[str], laws: Sequence[str],
                    structures: Sequence[str], objectives: Sequence[str], *, depth: int | None,
                    hyperprior: str, inference: str, dropout: float, seed: int = 0,
                    splits: Sequence[int] | None = None, validate: bool = False,
                    local_reparam: bool = False, prior_weight: float | str = 1.0,
                    joint_rule: bool = False, init_std: float = VI_INIT_STD,
                    **settings: Any) -> list[Job]:
    """One job per data set × law × structure × objective × split for the library path
    (:mod:`dropprior.experiments.uci_scales`); ``settings`` are ``epochs``, ``hidden``, ``lr``,
    ``batch_size``, ``sigma0``, ``test_samples``, ``train_samples``. ``validate`` adds the inner
    80/20 fit whose validation log-likelihood the "chosen on validation" rows read (it enters
    the job key only when set, so earlier run directories resume); so does ``local_reparam``
    (VI: the linear maps trained by the local reparametrization, the variant's ", lrt"), and
    ``prior_weight`` β ≠ 1 (``fit``'s tempered prior, the variant's ", β=…"; or
    ``"per-weight"``, β = N / W per split, the variant's ", β=N/W"), ``joint_rule`` (VI
    groups pruned by the set-wise evidence rule, the variant's ", joint"), and ``init_std``
    other than :data:`VI_INIT_STD` (VI: the posterior std every weight starts from, the
    variant's ", init …").

    Raises:
        ValueError: a bad depth, seed, law, structure, objective, hyperprior or inference, or
            ``inference="vi"`` without a hyperprior.
    """
    from dropprior.experiments.uci_scales import HYPERPRIOR_CHOICES, LIBRARY_STRUCTURES
    from dropprior.scales import INFERENCE
    from dropprior.training import OBJECTIVES as LIBRARY_OBJECTIVES

    if depth is not None and (isinstance(depth, bool) or not isinstance(depth, int)
                              or depth < 0):
        raise ValueError(f"--depth={depth!r} must be an integer >= 0 (0: the standard network "
                         "of one hidden layer; K: K residual blocks)")
    check_seed(seed, low=0)
    check_choice("hyperprior", hyperprior, HYPERPRIOR_CHOICES)
    check_choice("inference", inference, INFERENCE)
    for structure in structures:
        if structure not in LIBRARY_STRUCTURES:
            raise ValueError(f"--structure {structure!r} is not supported with --depth, "
                             f"--hyperprior or --inference vi; accepted: "
                             f"{list(LIBRARY_STRUCTURES)}")
        if structure != "unit" and not depth:
            raise ValueError(f"--structure {structure!r} needs residual blocks: pass --depth >= 1")
    if inference == "vi" and hyperprior == "none":
        raise ValueError("--inference vi learns the group scales in closed form and needs "
                         f"--hyperprior {[h for h in HYPERPRIOR_CHOICES if h != 'none']}")
    if local_reparam and inference != "vi":
        raise ValueError("--local-reparam trains variational weights: it needs --inference vi, "
                         f"got --inference {inference}")
    if init_std != VI_INIT_STD and inference != "vi":
        raise ValueError("--init-std sets variational weights' initial posterior std: it needs "
                         f"--inference vi, got --inference {inference}")
    check_number("--init-std", init_std)
    check_number("--dropout", dropout, 0.0, 1.0)
    for name in ("lr", "sigma0"):
        if name in settings:
            check_number("--" + name, settings[name])
    if joint_rule and inference != "vi":
        raise ValueError("--joint-rule decides variational groups: it needs --inference vi, "
                         f"got --inference {inference}")
    for law in laws:
        check_choice("law", law, TABLE1_LAWS)
    for objective in objectives:
        check_choice("objective", objective, LIBRARY_OBJECTIVES)
    from dropprior._validation import check_prior_weight
    from dropprior.experiments.uci_scales import PER_WEIGHT

    if prior_weight == PER_WEIGHT:
        beta = ", β=N/W"
    else:
        prior_weight = check_prior_weight(prior_weight)
        beta = f", β={prior_weight:g}" if prior_weight != 1 else ""
    variant = (f"depth {depth or 0}, {inference}, {hyperprior}"
               + (", lrt" if local_reparam else "") + beta
               + (", joint" if joint_rule else "")
               + (f", init {init_std:g}" if init_std != VI_INIT_STD else ""))
    jobs = []
    for name in datasets:
        dataset = _load(str(data_dir), name)
        chosen = _chosen_splits(dataset, splits)
        epochs = settings.get("epochs") or dataset.n_epochs * 100
        for law in laws:
            for structure in structures:
                for objective in objectives:
                    for k in chosen:
                        params = {**settings, "epochs": int(epochs), "data_dir": str(data_dir),
                                  "dataset": name, "law": law, "structure": structure,
                                  "objective": objective, "split": int(k),
                                  "seed": offset_seed(int(seed), int(k)), "depth": depth,
                                  "hyperprior": hyperprior, "inference": inference,
                                  "dropout": float(dropout), "variant": variant,
                                  "data_digest": dataset.digest}
                        if validate:
                            params["validate"] = True
                        if local_reparam:
                            params["local_reparam"] = True
                        if prior_weight != 1:
                            params["prior_weight"] = prior_weight
                        if joint_rule:
                            params["joint_rule"] = True
                        if init_std != VI_INIT_STD:
                            params["init_std"] = float(init_std)
                        key = (f"{name}/{law}/{structure}/{objective}/{variant}/split={k}/"
                               + "-".join(f"{n}={params[n]}" for n in sorted(params)
                                          if n not in ("data_dir", "dataset", "law", "structure",
                                                       "objective", "variant", "split")))
                        jobs.append(Job(key=key, params=params))
    return jobs


def _check_baselines(laws: Sequence[str], structures: Sequence[str],
                     objectives: Sequence[str]) -> None:
    """Law "none" runs with the baseline objectives alone, they with it alone, unit structure."""
    baseline = [o for o in objectives if o in BASELINES]
    if NO_NOISE not in laws and not baseline:
        return
    if list(laws) != [NO_NOISE] or len(baseline) != len(objectives):
        raise ValueError(f"law {NO_NOISE!r} (networks without noise) runs with the objectives "
                         f"{list(BASELINES)} only, and they with it alone; got laws {list(laws)} "
                         f"and objectives {list(objectives)}")
    if list(structures) != ["unit"]:
        raise ValueError(f"law {NO_NOISE!r} has no noise to structure: give structure 'unit' "
                         f"alone, got {list(structures)}")


def _noise(law: str, p: float) -> NoiseLaw:
    """The law ``law`` set from dropout rate p; law "none" is Bernoulli(keep=1): no noise."""
    return Bernoulli(1.0, inverted=True) if law == NO_NOISE else dropout_law(law, p)


def _job_key(params: dict[str, Any]) -> str:
    """A readable key that changes whenever a setting or the data (its digest) changes."""
    fixed = "-".join(f"{k}={params[k]}" for k in sorted(DEFAULTS))
    splits = ",".join(map(str, params["splits"]))
    return (f"{params['dataset']}/{params['law']}/{params['structure']}/{params['objective']}/"
            f"splits={splits}/seed={params['seed']}/data={params['data_digest']}/{fixed}")


def _chosen_splits(dataset: UCIDataset, splits: Sequence[int] | None) -> list[int]:
    """The split indices to run (all where None), each checked against the data set's."""
    chosen = list(range(len(dataset.splits))) if splits is None else list(splits)
    for k in chosen:
        if not 0 <= k < len(dataset.splits):
            raise ValueError(f"split {k!r} is out of range; {dataset.name} has "
                             f"{len(dataset.splits)} splits (0..{len(dataset.splits) - 1})")
    return chosen


@functools.lru_cache(maxsize=8)
def _load(data_dir: str, name: str) -> UCIDataset:
    return load_uci(data_dir, name)


def standardise(train: np.ndarray, *others: np.ndarray) -> tuple[np.ndarray, ...]:
    """Centre and scale by the training rows' mean and std (std 0 → 1), along axis 0.

    Returns:
        (train, *others, mean, std), each standardised array float64.
    """
    mean = train.mean(axis=0)
    std = train.std(axis=0)
    std = np.where(std == 0, 1.0, std)
    return ((train - mean) / std, *[(o - mean) / std for o in others], mean, std)


def fit_and_score(tasks: Sequence[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]],
                  grids: Sequence[Sequence[tuple[float, float]]], *, law: str, structure: str,
                  objective: str, hidden: Sequence[int], epochs: int, batch_size: int,
                  lr: float, lengthscale: float, train_samples: int, eval_samples: int,
                  seed: int, intervals: bool = False) -> list[dict[str, list[float]]]:
    """For every task (x_train, y_train, x_eval, y_eval) train one network per grid point (p, τ)
    of its grid on the training rows, all in one batched network, and score each on its
    evaluation rows. Every task must have the same numbers of training and evaluation rows.

    With law ``"none"`` (p = 0) the networks are trained without noise, and the objective
    ``"map"`` scores each trained network, ``"laplace"`` its last-layer Laplace posterior's
    ``eval_samples`` draws (module docstring).

    Returns:
        Per task ``{"rmse": [...], "ll": [...]}``, one entry per grid point, original units;
        with ``"laplace"`` also ``"prior_precision"``, the chosen λ of each; with ``intervals``
        also the entries of :data:`~dropprior.experiments.uci_scales.INTERVAL_METRICS` (the
        mixture of N(draw, 1/τ) over the draws).

    Shape:
        x_*: (N, D); y_*: (N,).
    """
    sizes = {(t[0].shape[0], t[2].shape[0]) for t in tasks}
    if len(sizes) != 1:
        raise ValueError(f"tasks batched together need equal split sizes, got {sorted(sizes)}")
    laws = {p: _noise(law, p) for grid in grids for p, _ in grid}
    xs_tr, ys_tr, xs_ev, ys_ev, means, stds, per_net, taus, keeps = ([] for _ in range(9))
    # Networks ordered by p first so that networks sharing a law are adjacent (one draw each).
    order = sorted(((p, tau, i) for i, grid in enumerate(grids) for p, tau in grid),
                   key=lambda item: (item[0], item[2], item[1]))
    standardised = []
    for x_train, y_train, x_eval, y_eval in tasks:
        x_tr, x_ev, _, _ = standardise(x_train, x_eval)
        y_tr, y_mean, y_std = standardise(y_train)
        standardised.append((x_tr, y_tr, x_ev, y_eval, float(y_mean), float(y_std)))
    for p, tau, i in order:
        task = standardised[i]
        xs_tr.append(task[0])
        ys_tr.append(task[1])
        xs_ev.append(task[2])
        ys_ev.append(task[3])
        means.append(task[4])
        stds.append(task[5])
        per_net.append(laws[p])
        taus.append(tau)
        keeps.append(1.0 - p)
    dtype = torch.get_default_dtype()
    tau_t = torch.tensor(taus, dtype=torch.float64)
    std_t = torch.tensor(stds, dtype=torch.float64)
    n = xs_tr[0].shape[0]
    weight_decay = lengthscale**2 * torch.tensor(keeps, dtype=torch.float64) / (2.0 * n * tau_t)
    x_tr_t = torch.as_tensor(np.stack(xs_tr), dtype=dtype)
    y_tr_t = torch.as_tensor(np.stack(ys_tr), dtype=dtype)
    x_ev_t = torch.as_tensor(np.stack(xs_ev), dtype=dtype)
    model = train_batched(
        x_tr_t, y_tr_t, per_net, tau_t * std_t**2, weight_decay, hidden=hidden, epochs=epochs,
        batch_size=batch_size, lr=lr, structure=structure,
        objective="mc" if objective in BASELINES else objective, samples=train_samples,
        seed=seed,
    )
    precisions: list[float] = []
    if objective == "laplace":
        posteriors = laplace_networks(model, x_tr_t, y_tr_t, (tau_t * std_t**2).rsqrt())
        precisions = [posterior.prior_precision for posterior in posteriors]
        draws: Any = [laplace_draws(posteriors, x_ev_t, samples=eval_samples, seed=seed)]
    else:  # networks without noise give one draw
        draws = list(predict_batched(model, x_ev_t,
                                     samples=1 if law == NO_NOISE else eval_samples))
    y_ev_t = torch.as_tensor(np.stack(ys_ev))
    scores = score_batched(draws, y_ev_t, torch.tensor(means), std_t, tau_t)
    spread = _interval_scores(torch.cat(draws, dim=1), y_ev_t, means, std_t, tau_t) \
        if intervals else [{} for _ in order]
    out: list[dict[str, list[float]]] = [{"rmse": [], "ll": []} for _ in tasks]
    position = {(i, p, tau): g for g, (p, tau, i) in enumerate(order)}
    for i, grid in enumerate(grids):
        for p, tau in grid:
            g = position[(i, p, tau)]
            out[i]["rmse"].append(float(scores.rmse[g]))
            out[i]["ll"].append(float(scores.log_likelihood[g]))
            if precisions:
                out[i].setdefault("prior_precision", []).append(precisions[g])
            for name, value in spread[g].items():
                out[i].setdefault(name, []).append(value)
    return out


def _interval_scores(draws: torch.Tensor, y: torch.Tensor, y_mean: Sequence[float],
                     y_std: torch.Tensor, tau: torch.Tensor) -> list[dict[str, float]]:
    """Per network g, :data:`~dropprior.experiments.uci_scales.INTERVAL_METRICS` of the mixture
    of N(draw, 1/τ_g) over its draws (standardised: the draws, and noise std (τ_g y_std²)^-½).

    Shape:
        draws: (G, T, N) standardised; y: (G, N) original units; y_mean, y_std, tau: (G,).
    """
    out = []
    for g in range(draws.shape[0]):
        scale = float(y_std[g])
        means = draws[g].double()
        noise = 1.0 / math.sqrt(float(tau[g]) * scale**2)
        target = (y[g].double() - y_mean[g]) / scale
        stds = means.new_tensor(noise).expand_as(means)
        out.append({**interval_scores(means, stds, target, scale),
                    "noise_std": noise * scale,
                    "draw_std": float(means.std(dim=0, correction=0).mean()) * scale})
    return out


def run_uci_split(params: dict[str, Any]) -> dict[str, Any]:
    """The job function: the whole protocol (module docstring, steps 1-4) on a group of splits.

    Returns:
        ``{"splits": [...]}``, per split: ``"rmse"``, ``"ll"`` on the test split, the chosen
        ``"p"`` and ``"tau"``, the validation scores of every grid point, and the test
        predictive's :data:`~dropprior.experiments.uci_scales.INTERVAL_METRICS` (with
        ``"laplace"`` also the test fit's ``"prior_precision"``); and ``"epochs"``.
    """
    dataset = _load(params["data_dir"], params["dataset"])
    epochs = int(params["epochs"] or dataset.n_epochs * params["epoch_multiplier"])
    width = params["hidden"] or dataset.n_hidden
    hidden = [int(width)] * int(params["layers"])
    if not dataset.dropout_rates or not dataset.tau_values:
        raise ValueError(f"{dataset.name}: dropout_rates.txt and tau_values.txt must list the grid")
    rates = [0.0] if params["law"] == NO_NOISE else dataset.dropout_rates
    grid = [(p, t) for p in rates for t in dataset.tau_values]
    common = dict(law=params["law"], structure=params["structure"],
                  objective=params["objective"], hidden=hidden, epochs=epochs,
                  batch_size=int(params["batch_size"]), lr=float(params["lr"]),
                  lengthscale=float(params["lengthscale"]),
                  train_samples=int(params["train_samples"]
                                    or MARGINAL_SAMPLES * (params["objective"] == "marginal") or 1))
    inner_tasks, full_tasks = [], []
    for k in params["splits"]:
        x_train, y_train, x_test, y_test = dataset.split(k)
        n_inner = int(math.floor((1.0 - params["validation_fraction"]) * len(y_train)))
        inner_tasks.append((x_train[:n_inner], y_train[:n_inner], x_train[n_inner:],
                            y_train[n_inner:]))
        full_tasks.append((x_train, y_train, x_test, y_test))
    seed = int(params["seed"])  # the inner fits with it, the refits with seed + 1
    validation = fit_and_score(inner_tasks, [grid] * len(inner_tasks), seed=seed,
                               eval_samples=int(params["validation_samples"]), **common)
    best = [grid[int(np.nanargmax(np.asarray(v["ll"])))] for v in validation]
    test = fit_and_score(full_tasks, [[b] for b in best], seed=offset_seed(seed, 1),
                         eval_samples=int(params["test_samples"]), intervals=True, **common)
    results = []
    for k, (p, tau), v, t in zip(params["splits"], best, validation, test, strict=False):
        results.append({
            "split": int(k), "rmse": t["rmse"][0], "ll": t["ll"][0], "p": p, "tau": tau,
            "validation": [{"p": gp, "tau": gt, "rmse": r, "ll": ll}
                           for (gp, gt), r, ll in zip(grid, v["rmse"], v["ll"], strict=False)],
            **{name: t[name][0] for name in ("prior_precision", *INTERVAL_METRICS) if name in t},
        })
    return {"epochs": epochs, "splits": results}


def summarise_uci(records: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Mean ± standard error over splits, per (data set, law, structure, objective).

    Args:
        records: the runner's records of :func:`run_uci_split` jobs.

    Returns:
        One dict per group with ``dataset, law, structure, objective, n_splits, rmse, rmse_se, ll,
        ll_se, seconds`` (summed job time) and ``epochs``, in :func:`uci_row_order`.
    """
    groups: dict[tuple[str, str, str, str, str], dict[str, Any]] = {}
    for record in records:
        params = record["params"]
        key = (params["dataset"], params["law"], params["structure"], params["objective"],
               params.get("variant", ""))
        group = groups.setdefault(key, {"rmse": [], "ll": [], "seconds": 0.0, "kept": {},
                                        "epochs": record["result"]["epochs"]})
        group["seconds"] += float(record["seconds"])
        for split in record["result"]["splits"]:
            group["rmse"].append(split["rmse"])
            group["ll"].append(split["ll"])
            for count in _KEPT:
                if count in split:
                    group["kept"].setdefault(count, []).append(split[count])
            for name in _PRUNED + _INTERVALS:
                if name in split:
                    group.setdefault(name, []).append(split[name])
    rows = []
    for (dataset, law, structure, objective, variant), group in groups.items():
        rmse, rmse_se = mean_se(group["rmse"])
        ll, ll_se = mean_se(group["ll"])
        row = {"dataset": dataset, "law": law, "structure": structure, "variant": variant,
               "objective": objective, "n_splits": len(group["rmse"]), "rmse": rmse,
               "rmse_se": rmse_se, "ll": ll, "ll_se": ll_se, "seconds": group["seconds"],
               "epochs": group["epochs"]}
        for count in _KEPT:
            values = group["kept"].get(count)
            row[count] = float(np.mean(values)) if values else ""
        # only when every split has it: a mean over some splits is not comparable to ll
        for name in _PRUNED + _INTERVALS:
            values = group.get(name, [])
            row[name], row[f"{name}_se"] = (
                mean_se(values) if values and len(values) == len(group["ll"]) else ("", ""))
        rows.append(row)
    return sorted(rows, key=uci_row_order)


def uci_row_order(row: dict[str, Any]) -> tuple[str, int, str, str, str]:
    """The order of summary rows (:func:`summarise_uci`): data set, the baselines (law "none")
    then Table 1's law order, structure, objective, variant."""
    return (row["dataset"], (NO_NOISE, *TABLE1_LAWS).index(row["law"]), row["structure"],
            row["objective"], row.get("variant", ""))


#: Per-split counts of the library path, averaged over splits in the summary.
_KEPT = ("inputs_kept", "units_kept", "blocks_kept")
#: The test LL of the pruned network: removed groups at zero, and held at their means.
_PRUNED = ("ll_pruned", "ll_pruned_means")
#: The library path's interval metrics (dropprior.experiments.uci_scales.INTERVAL_METRICS).
_INTERVALS = ("picp90", "picp95", "crps", "coverage_error", "noise_std", "draw_std")


_CSV_FIELDS = ["dataset", "law", "structure", "variant", "objective", "n_splits", "epochs",
               "rmse", "rmse_se", "ll", "ll_se", "seconds", "inputs_kept", "units_kept",
               "blocks_kept", "ll_pruned", "ll_pruned_se", "ll_pruned_means",
               "ll_pruned_means_se", "picp90", "picp90_se", "picp95",
               "picp95_se", "crps", "crps_se", "coverage_error", "coverage_error_se",
               "noise_std", "noise_std_se", "draw_std", "draw_std_se"]


def anchor_verdicts(dataset: str, ll: float, ll_se: float
                    ) -> tuple[tuple[tuple[float, float], tuple[float, float]] | None,
                               float | None, str, str]:
    """The published anchors of ``dataset`` and how a mean test LL ``ll`` ± ``ll_se`` compares.

    Returns:
        ``(anchor, ensembles, beats_2018, beats_de)``: the 2018 grid-searched MC-dropout
        ((RMSE, s.e.), (LL, s.e.)) or None, Deep Ensembles' mean LL or None, and the verdicts
        "yes", "no" or "—" (no anchor). "Beats" means the difference exceeds the combined
        standard error √(ll_se² + se_anchor²) (:func:`~dropprior.experiments.tables.beats`), with
        Deep Ensembles' standard error its published standard deviation / √20.
    """
    anchor = UCI_PUBLISHED.get(dataset, {}).get("MC dropout 2018 (grid-searched)")
    ens = UCI_DEEP_ENSEMBLES_LL.get(dataset)
    verdict_2018 = ("yes" if beats(ll, ll_se, *anchor[1]) else "no") if anchor else "—"
    verdict_de = ("yes" if beats(ll, ll_se, *ens) else "no") if ens is not None else "—"
    return anchor, None if ens is None else ens[0], verdict_2018, verdict_de


def write_uci_tables(summary: Sequence[dict[str, Any]], markdown_path: str | Path,
                     csv_path: str | Path) -> str:
    """Write the summary as CSV and as Markdown (:func:`uci_markdown`); return the Markdown."""
    write_csv(csv_path, _CSV_FIELDS, [[row[f] for f in _CSV_FIELDS] for row in summary])
    text = uci_markdown(summary)
    Path(markdown_path).write_text(text)
    return text


def uci_markdown(summary: Sequence[dict[str, Any]]) -> str:
    """The summary rows (:func:`summarise_uci`) as a Markdown table beside the published anchors.

    "beats 2018" / "beats DE": the mean test LL exceeds the anchor's by more than the combined
    standard error of both (:func:`anchor_verdicts`). Rows of the learned-scale path add their
    variant and the inputs, units and blocks the fit kept.
    """
    header = ["dataset", "law", "structure", "objective", "splits", "epochs", "test RMSE",
              "test LL", "job time (s)", "2018 MC dropout RMSE / LL", "beats 2018 LL",
              "Deep Ens. LL", "beats DE"]
    library = any(row.get("variant") for row in summary)
    if library:
        header[3:3] = ["variant"]
        header += ["inputs kept", "units kept", "blocks kept"]
    rows = []
    for row in summary:
        anchor, ens, beats, beats_de = anchor_verdicts(row["dataset"], row["ll"], row["ll_se"])
        published = (f"{format_mean_se(*anchor[0])} / {format_mean_se(*anchor[1])}"
                     if anchor else "—")
        cells = [row["dataset"], row["law"], row["structure"], row["objective"],
                 row["n_splits"], row["epochs"], format_mean_se(row["rmse"], row["rmse_se"]),
                 format_mean_se(row["ll"], row["ll_se"]), f"{row['seconds']:.0f}", published,
                 beats, "—" if ens is None else minus(f"{ens:.2f}"), beats_de]
        if library:
            cells[3:3] = [row.get("variant") or "—"]
            cells += [f"{row[c]:.1f}" if row.get(c, "") != "" else "—" for c in _KEPT]
        rows.append(cells)
    return markdown_table(header, rows)


def plot_uci(summary: Sequence[dict[str, Any]], path: str | Path) -> None:
    """One panel per data set: test LL (mean ± s.e.) of every law / structure / objective, with
    the 2018 MC-dropout mean as a dashed line."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    datasets = sorted({row["dataset"] for row in summary})
    fig, axes = plt.subplots(1, len(datasets), figsize=(4 * len(datasets), 3.6), squeeze=False)
    for ax, name in zip(axes[0], datasets, strict=False):
        rows = [row for row in summary if row["dataset"] == name]
        labels = [f"{r['law']}\n{r['structure']}/{r['objective']}"
                  + (f"\n{r['variant']}" if r.get("variant") else "") for r in rows]
        ax.errorbar(range(len(rows)), [r["ll"] for r in rows], yerr=[r["ll_se"] for r in rows],
                    fmt="o", capsize=3)
        anchor = UCI_PUBLISHED.get(name, {}).get("MC dropout 2018 (grid-searched)")
        if anchor:
            ax.axhline(anchor[1][0], ls="--", color="gray", label="MC dropout 2018")
            ax.legend(fontsize=7)
        ax.set_xticks(range(len(rows)), labels, rotation=60, fontsize=7, ha="right")
        ax.set_title(name)
        ax.set_ylabel("test log-likelihood")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
