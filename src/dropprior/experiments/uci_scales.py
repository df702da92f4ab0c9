r"""UCI splits through the library's own path: dropprior layers, learned scales, fit, predict.

``dropprior uci`` routes a job here when it asks for what the batched MC-dropout runner does not
have: a ResNet MLP (``depth`` ≥ 1), the ``add`` / ``ard+add`` structures, a scale
``hyperprior``, or ``inference="vi"``.

Model (width W, depth K, law from the dropout rate p by
:func:`dropprior.experiments.laws.dropout_law`):

* ``NoisyLinear(D, W)`` → ReLU (ARD on the inputs), K residual blocks Linear → ReLU → Linear,
  and ``NoisyLinear(W, 1)`` (ARD on the last hidden units). K = 0 is the standard network of one
  hidden layer, and a ResNet whose blocks are all switched off is that network too. The blocks'
  noise is the structure's: ``unit`` ARD on each block's input units, ``add`` one scale per block
  (ADD), ``ard+add`` both (a row scale times a block scale, the follow-up's ARD-ADD).

Inference: ``map`` trains under the chosen objective, with :func:`dropprior.scales.learn_scales`
when a hyperprior is given; ``vi`` is :func:`dropprior.scales.variational` (it needs one;
``local_reparam`` trains its linear maps by the local reparametrization; ``prior_weight`` is
``fit``'s β on the prior term, a number or :data:`PER_WEIGHT`). The likelihood
is Gaussian with a learned noise std (no τ grid), the prior σ0 on standardised data is
``sigma0``; the hyperparameters are fixed, not searched. Per split it reports test RMSE and test
log-likelihood in the target's units, and, where scales were learned, the inputs, last hidden
units and blocks the fit kept (:func:`dropprior.scales.kept_groups`: VI by the evidence rule on
the training split, MAP by the scales' collapse) with the test log-likelihood of the pruned
network: the removed groups at zero (``ll_pruned``), and held at their means over the training
rows (``ll_pruned_means``, :func:`dropprior.prune`'s ``mean_inputs``).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from dropprior._validation import check_choice, check_int

__all__ = ["LIBRARY_STRUCTURES", "HYPERPRIOR_CHOICES", "build_uci_network", "run_uci_scales_split",
           "needs_library_path", "PER_WEIGHT", "VI_INIT_STD", "resolve_prior_weight"]

LIBRARY_STRUCTURES = {
    "unit": "ARD: one scale per input unit of every noisy layer (dropout)",
    "add": "ADD: one scale per residual block",
    "ard+add": "ARD on the inputs and ADD on the blocks",
}

HYPERPRIOR_CHOICES = ("none", "inverse_gamma", "half_cauchy", "log_uniform")

VI_INIT_STD = 0.02
"""VI: the posterior std every weight starts from unless a job sets ``init_std``. A group the
data do not support keeps about this std (under a scale-free hyperprior such as the log-uniform,
scaling a collapsed group's σ and its learned scale together leaves the objective unchanged), so
it is also the scale at which such a group sits."""

PER_WEIGHT = "per-weight"
"""``prior_weight`` β = N / W, with N the training rows and W the network's weights and biases:
the objective of Nalisnick et al. (2019)'s code, whose ELBO is the mean log-likelihood over
examples minus the mean KL over weights."""


def resolve_prior_weight(value: float | str, model: nn.Module, n_train: int) -> float:
    """β of a job: ``value`` itself, or N / W for :data:`PER_WEIGHT` (W counted on ``model``
    before any scales are attached)."""
    if value == PER_WEIGHT:
        return n_train / sum(p.numel() for p in model.parameters())
    from dropprior._validation import check_prior_weight

    return check_prior_weight(value)

#: Per split, beside RMSE and LL: the test points' coverage of the predictive's central 90% and
#: 95% intervals, its CRPS (target units) and the mean |observed − nominal| coverage over the
#: levels 0.05 … 0.95 (:mod:`dropprior.metrics`), on the first INTERVAL_DRAWS draws; and the two
#: parts of the predictive's spread, in the target's units: the likelihood's noise std
#: (``noise_std``: learned here, the chosen τ^-½ in the grid protocol of
#: :mod:`dropprior.experiments.uci`) and the mean over test points of the draws' standard
#: deviation (``draw_std``).
INTERVAL_METRICS = ("picp90", "picp95", "crps", "coverage_error", "noise_std", "draw_std")
INTERVAL_DRAWS = 1000


def interval_scores(means: torch.Tensor, stds: torch.Tensor, target: torch.Tensor,
                    y_std: float) -> dict[str, float]:
    """The coverage and CRPS entries of :data:`INTERVAL_METRICS` for the Gaussian mixture of
    the first :data:`INTERVAL_DRAWS` draws, on standardised values; CRPS in the target's units
    (× ``y_std``), coverage unitless.

    Shape:
        means, stds: (S, N); target: (N,).
    """
    from dropprior import metrics

    means, stds = means[:INTERVAL_DRAWS], stds[:INTERVAL_DRAWS]  # CRPS costs S² per point
    return {"picp90": float(metrics.picp(means, stds, target, 0.9)),
            "picp95": float(metrics.picp(means, stds, target, 0.95)),
            "crps": float(metrics.crps(means, stds, target).mean()) * y_std,
            "coverage_error": float(metrics.coverage_calibration_error(means, stds, target))}


def needs_library_path(structure: str, depth: int | None, hyperprior: str,
                       inference: str) -> bool:
    """Whether a job needs this path rather than the batched MC-dropout runner."""
    return (depth is not None or hyperprior != "none" or inference != "map"
            or structure in ("add", "ard+add"))


def build_uci_network(d_in: int, width: int, depth: int, structure: str, law_name: str,
                      p: float) -> nn.Sequential:
    """The network of the module docstring.

    Shape:
        input: (N, d_in); output: (N, 1).
    """
    from dropprior.experiments.laws import dropout_law
    from dropprior.nn import NoisyLinear, Residual

    check_choice("structure", structure, LIBRARY_STRUCTURES)
    check_int("depth", depth, 0)
    law = dropout_law(law_name, p)
    if depth == 0 and structure != "unit":
        raise ValueError(f"structure={structure!r} needs residual blocks: pass depth >= 1")
    blocks = []
    for _ in range(depth):
        block = nn.Sequential(nn.Linear(width, width), nn.ReLU(), nn.Linear(width, width))
        blocks.append(Residual(block,
                               depth_noise=law if structure in ("add", "ard+add") else None,
                               unit_noise=law if structure in ("unit", "ard+add") else None))
    return nn.Sequential(NoisyLinear(d_in, width, law), nn.ReLU(), *blocks,
                         NoisyLinear(width, 1, law))


def _test_scores(model: nn.Module, likelihood: Any, x: torch.Tensor, y: torch.Tensor,
                 samples: int, y_std: float, intervals: dict[str, float] | None = None
                 ) -> tuple[float, float]:
    """Test RMSE and log-likelihood in the target's units; with ``intervals`` (a dict to fill)
    also the interval metrics of :data:`INTERVAL_METRICS`."""
    from dropprior.prediction import RegressionPrediction, predict

    pred = predict(model, x, samples=samples, likelihood=likelihood)
    assert isinstance(pred, RegressionPrediction)
    rmse = float(torch.sqrt(((pred.mean - y) ** 2).mean())) * y_std
    ll = float(pred.log_density(y).mean()) - math.log(y_std)
    if intervals is not None:
        assert pred.sample_stds is not None
        intervals.update(interval_scores(pred.sample_means.reshape(-1, x.shape[0]),
                                         pred.sample_stds.reshape(-1, x.shape[0]),
                                         y.reshape(-1), y_std))
        intervals.update({
            "noise_std": float(likelihood.noise_std.detach()) * y_std,
            "draw_std": float(pred.sample_means.std(dim=0, correction=0).mean()) * y_std,
        })
    return rmse, ll


def _kept_counts(kept: dict[str, torch.Tensor], model: nn.Sequential,
                 depth: int) -> dict[str, int]:
    last = str(len(model) - 1)
    blocks = [f"{i}:layer" for i in range(2, depth + 2) if f"{i}:layer" in kept]
    return {"inputs_kept": int(kept["0:unit"].sum()),
            "units_kept": int(kept[f"{last}:unit"].sum()),
            # without ADD groups no block can be switched off: all are kept
            "blocks_kept": sum(int(kept[b].all()) for b in blocks) if blocks else depth}


@dataclass
class _Fitted:
    """A setting fitted on one training set and scored on one evaluation set."""

    model: nn.Sequential
    likelihood: Any
    train: tuple[torch.Tensor, torch.Tensor]  # standardised
    evaluation: tuple[torch.Tensor, torch.Tensor]  # standardised
    y_std: float
    prior_weight: float
    rmse: float
    ll: float
    intervals: dict[str, float]


def _fit_and_score(params: dict[str, Any], x_train: Any, y_train: Any, x_eval: Any,
                   y_eval: Any, with_intervals: bool = True) -> _Fitted:
    """Standardise on (x_train, y_train), build, attach scales, fit, and score on the
    evaluation set (RMSE and log-likelihood in the target's units, and with
    ``with_intervals`` the interval metrics)."""
    from dropprior import fit, scales
    from dropprior.experiments.uci import standardise
    from dropprior.likelihoods import Gaussian

    x_train, x_eval, _, _ = standardise(x_train, x_eval)
    y_train, y_eval, _, y_scale = standardise(y_train, y_eval)
    y_std = float(y_scale)
    xt = torch.as_tensor(x_train, dtype=torch.float32)
    xs = torch.as_tensor(x_eval, dtype=torch.float32)
    yt = torch.as_tensor(y_train, dtype=torch.float32)[:, None]
    ys = torch.as_tensor(y_eval, dtype=torch.float32)[:, None]
    torch.manual_seed(int(params["seed"]))
    depth = int(params["depth"] or 0)
    width = int(params["hidden"] or params["n_hidden"])
    model = build_uci_network(xt.shape[1], width, depth, params["structure"], params["law"],
                              float(params["dropout"]))
    beta = resolve_prior_weight(params.get("prior_weight", 1.0), model, xt.shape[0])
    if params["inference"] == "vi" or params["hyperprior"] != "none":
        scales.attach_scales(model, params["inference"], params["hyperprior"],
                             init_std=float(params.get("init_std", VI_INIT_STD)),
                             local_reparam=bool(params.get("local_reparam", False)))
    likelihood = Gaussian(noise_std=0.5, learn=True)
    objective = params["objective"]
    fit(model, likelihood, xt, yt, objective=objective,
        samples=int(params["train_samples"] or (1 if objective == "mc" else 5)),
        sigma0=float(params["sigma0"]), epochs=int(params["epochs"]), lr=float(params["lr"]),
        batch_size=int(params["batch_size"]), seed=int(params["seed"]), progress=False,
        prior_weight=beta)
    intervals: dict[str, float] = {}
    rmse, ll = _test_scores(model, likelihood, xs, ys, int(params["test_samples"]), y_std,
                            intervals if with_intervals else None)
    return _Fitted(model, likelihood, (xt, yt), (xs, ys), y_std, beta, rmse, ll, intervals)


def run_uci_scales_split(params: dict[str, Any]) -> dict[str, Any]:
    """The job function of one data set × setting × split (module docstring). With
    ``params["validate"]`` the setting is also fitted on the split's first 80% of training rows
    and scored on the last 20%: the split's ``validation`` entry, which
    :func:`dropprior.experiments.uci_selection.select_on_validation` reads."""
    from dropprior import prune, scales
    from dropprior.data import load_uci

    dataset = load_uci(params["data_dir"], params["dataset"])
    k = int(params["split"])
    x_tr, y_tr, x_te, y_te = dataset.split(k)
    params = {**params, "n_hidden": dataset.n_hidden}
    depth = int(params["depth"] or 0)
    width = int(params["hidden"] or dataset.n_hidden)
    start = time.perf_counter()
    result: dict[str, Any] = {"split": k}
    if params.get("validate"):
        n_inner = int(math.floor(0.8 * len(y_tr)))
        inner = _fit_and_score(params, x_tr[:n_inner], y_tr[:n_inner], x_tr[n_inner:],
                               y_tr[n_inner:], with_intervals=False)  # only its LL is read
        result["validation"] = [{"rmse": inner.rmse, "ll": inner.ll}]
    fitted = _fit_and_score(params, x_tr, y_tr, x_te, y_te)
    model, likelihood = fitted.model, fitted.likelihood
    (xt, yt), (xs, ys), y_std = fitted.train, fitted.evaluation, fitted.y_std
    if "prior_weight" in params:
        result["prior_weight"] = fitted.prior_weight
    result.update({"rmse": fitted.rmse, "ll": fitted.ll, **fitted.intervals,
                   "seconds": time.perf_counter() - start})
    if scales.has_scales(model):
        # VI: the evidence rule on the training split; MAP: the scales' collapse
        data = (likelihood, xt, yt) if params["inference"] == "vi" else None
        sigma0 = float(params["sigma0"])
        decisions = scales.kept_groups(model, data, sigma0, prior_weight=fitted.prior_weight,
                                       joint=bool(params.get("joint_rule")))
        result.update(_kept_counts(decisions, model, depth))
        try:
            for name, means in (("ll_pruned", None), ("ll_pruned_means", xt)):
                pruned = prune(model, threshold="auto", decisions=decisions,
                               mean_inputs=means).model
                result[name] = _test_scores(pruned, likelihood, xs, ys,
                                            int(params["test_samples"]), y_std)[1]
        except ValueError as err:  # the fit switched a whole layer off
            result["prune_error"] = str(err)
    else:
        result.update({"inputs_kept": xt.shape[1], "units_kept": width, "blocks_kept": depth})
    return {"epochs": int(params["epochs"]), "splits": [result]}
