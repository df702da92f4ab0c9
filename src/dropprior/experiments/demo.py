"""The default run: every law of Table 1 on data that ships with scikit-learn (no download).

Two problems, the same network shape per problem, one noise law at a time (unit structure: one ξ
per input unit of every layer, i.e. dropout / ARD), all set from the same dropout rate by
:func:`dropprior.experiments.laws.dropout_law`:

* **diabetes** (442 × 10, regression): 10 → ``hidden`` → 1, Gaussian likelihood with a learned
  noise std; test RMSE and test log-likelihood (MC mixture density) in the target's units, and a
  calibration curve of the probability integral transform (PIT) of the test targets;
* **digits** (1797 × 64, 10 classes): 64 → ``hidden`` → 10, categorical likelihood; test error,
  NLL, expected calibration error and a reliability diagram.

Objective: the MC objective (eq. 3), except for a law without a mean (half-Cauchy), which trains
under the marginal-MAP objective (:func:`objective_for`); the table names it. A row that still
fails (a regression worse than the mean predictor, a classifier near chance) is marked with the
reason and the fix in its "note" column.

Relevance: the input layer's per-feature relevance (:func:`dropprior.relevance`) — the
10 diabetes features as bars and the 64 digit pixels as an 8 × 8 image.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from dropprior._validation import check_int, check_number, check_seed
from dropprior.experiments.laws import DEMO_LAWS, dropout_law
from dropprior.experiments.tables import markdown_table, write_csv

__all__ = ["DemoSettings", "run_demo", "write_demo_outputs", "record_demo"]


@dataclass(frozen=True)
class DemoSettings:
    """What the demo trains: the laws, the dropout rate they are set from, the hidden width,
    the training schedule, the weights' prior std, the MC draws at test time, the test
    fraction and the seed."""

    laws: Sequence[str] = DEMO_LAWS
    dropout: float = 0.1
    hidden: int = 50
    epochs_regression: int = 150
    epochs_classification: int = 40
    batch_size: int = 64
    lr: float = 3e-3
    sigma0: float = 1.0
    samples: int = 100
    test_fraction: float = 0.2
    seed: int = 0

    def __post_init__(self) -> None:
        for name in ("hidden", "epochs_regression", "epochs_classification", "batch_size",
                     "samples"):
            check_int(name, getattr(self, name), 1)
        check_seed(self.seed, low=0)
        check_number("dropout", self.dropout, 0.0, 1.0)
        check_number("test_fraction", self.test_fraction, 0.0, 1.0)
        check_number("lr", self.lr)
        check_number("sigma0", self.sigma0)


def _mlp(n_in: int, hidden: int, n_out: int, law_name: str, p: float) -> nn.Sequential:
    from dropprior.nn import NoisyLinear

    law = dropout_law(law_name, p)
    layers: list[nn.Module] = [NoisyLinear(n_in, hidden, law, structure="unit"), nn.ReLU(),
                               NoisyLinear(hidden, n_out, law, structure="unit")]
    if n_out == 1:
        layers.append(nn.Flatten(start_dim=0))
    return nn.Sequential(*layers)


def _split(n: int, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    perm = np.random.default_rng(seed).permutation(n)
    n_test = int(round(fraction * n))
    return perm[n_test:], perm[:n_test]


def _standardise(train: np.ndarray, test: np.ndarray) -> tuple[Tensor, Tensor, Any, Any]:
    mean, std = train.mean(axis=0), train.std(axis=0)
    std = np.where(std == 0, 1.0, std)
    as_t = lambda a: torch.as_tensor((a - mean) / std, dtype=torch.float32)  # noqa: E731
    return as_t(train), as_t(test), mean, std


def objective_for(law: str, p: float) -> str:
    """The MC objective (eq. 3), or the marginal-MAP objective (eq. 10) for a law without a mean
    (half-Cauchy), under which the MC objective's rare huge draws dominate and training fails."""
    return "mc" if bool(torch.isfinite(dropout_law(law, p).mean)) else "marginal"


def failure(row: dict[str, Any], y_std: float | None = None) -> str:
    """Why a demo result failed, with the fix, or "" (a regression worse than predicting the
    mean, a classifier within 20 points of chance). The fix named is the marginal objective where
    the row used the MC one, else a truncated law (and, for a regression, the median of the draws:
    a law without a mean gives a predictive mean dominated by rare huge draws)."""
    if row.get("objective", "mc") == "mc":
        fix = "try objective='marginal' or a Truncated law"
    else:
        fix = "try a Truncated law" + (" or the median prediction" if "rmse" in row else "")
    if "rmse" in row and y_std is not None and not row["rmse"] < y_std:
        return f"failed: RMSE {row['rmse']:.3g} ≥ the mean predictor's {y_std:.3g}; {fix}"
    if "error" in row and not row["error"] < 0.7:
        return f"failed: error {100 * row['error']:.1f}% is near chance (90%); {fix}"
    return ""


def regression_run(law: str, s: DemoSettings) -> dict[str, Any]:
    """Train and evaluate on diabetes; returns metrics, PIT values and relevance per feature."""
    from dropprior._relevance import relevance
    from dropprior.data import load_diabetes
    from dropprior.likelihoods import Gaussian
    from dropprior.prediction import RegressionPrediction, predict
    from dropprior.training import fit

    x, y, names = load_diabetes()
    train, test = _split(len(y), s.test_fraction, s.seed)
    x_tr, x_te, _, _ = _standardise(x[train], x[test])
    y_tr, y_te, y_mean, y_std = _standardise(y[train], y[test])
    torch.manual_seed(s.seed)
    model = _mlp(x.shape[1], s.hidden, 1, law, s.dropout)
    likelihood = Gaussian(noise_std=0.5, learn=True)
    start = time.perf_counter()
    objective = objective_for(law, s.dropout)
    fit(model, likelihood, x_tr, y_tr, objective=objective, samples=_samples(objective),
        sigma0=s.sigma0, lr=s.lr, epochs=s.epochs_regression, batch_size=s.batch_size,
        seed=s.seed, progress=False)
    pred = predict(model, x_te, samples=s.samples, likelihood=likelihood)
    if not isinstance(pred, RegressionPrediction):
        raise TypeError("a Gaussian likelihood gives a RegressionPrediction")
    seconds = time.perf_counter() - start
    scale = float(y_std)
    with torch.no_grad():
        rmse = float(torch.sqrt(((pred.mean - y_te) ** 2).mean())) * scale
        ll = float(pred.log_density(y_te).mean()) - math.log(scale)
        if pred.sample_stds is None:
            raise RuntimeError("a Gaussian likelihood's prediction has per-draw stds")
        z = (y_te - pred.sample_means) / pred.sample_stds
        pit = torch.special.ndtr(z).mean(dim=0)
    scores = relevance(model)["0"]
    out = {"rmse": rmse, "ll": ll, "seconds": seconds, "pit": pit.tolist(),
           "relevance": scores.tolist(), "features": names, "objective": objective,
           "noise_std": float(likelihood.noise_std.detach()) * scale}
    out["failure"] = failure(out, float(np.std(y[test])))
    return out


def _samples(objective: str) -> int:
    """Noise draws per example and step: 1 for the MC objective, 5 for the marginal bound."""
    return 1 if objective == "mc" else 5


def classification_run(law: str, s: DemoSettings) -> dict[str, Any]:
    """Train and evaluate on digits; returns metrics, reliability bins and per-pixel relevance."""
    from dropprior._relevance import relevance
    from dropprior.data import load_digits
    from dropprior.likelihoods import Categorical
    from dropprior.metrics import expected_calibration_error, nll, reliability
    from dropprior.prediction import ClassificationPrediction, predict
    from dropprior.training import fit

    x, y = load_digits()
    train, test = _split(len(y), s.test_fraction, s.seed)
    x_tr = torch.as_tensor(x[train], dtype=torch.float32)
    x_te = torch.as_tensor(x[test], dtype=torch.float32)
    y_tr, y_te = torch.as_tensor(y[train]), torch.as_tensor(y[test])
    torch.manual_seed(s.seed)
    model = _mlp(x.shape[1], s.hidden, 10, law, s.dropout)
    start = time.perf_counter()
    objective = objective_for(law, s.dropout)
    fit(model, Categorical(), x_tr, y_tr, objective=objective, samples=_samples(objective),
        sigma0=s.sigma0, lr=s.lr, epochs=s.epochs_classification, batch_size=s.batch_size,
        seed=s.seed, progress=False)
    prediction = predict(model, x_te, samples=s.samples, likelihood=Categorical())
    if not isinstance(prediction, ClassificationPrediction):
        raise TypeError("a Categorical likelihood gives a ClassificationPrediction")
    probs = prediction.probs
    seconds = time.perf_counter() - start
    rel = reliability(probs, y_te)
    out = {"error": float((probs.argmax(dim=1) != y_te).double().mean()),
           "nll": float(nll(probs, y_te)), "ece": float(expected_calibration_error(probs, y_te)),
           "seconds": seconds, "confidence": rel.confidence.tolist(),
           "accuracy": rel.accuracy.tolist(), "relevance": relevance(model)["0"].tolist(),
           "objective": objective}
    out["failure"] = failure(out)
    return out


def run_demo(settings: DemoSettings, progress: bool = True) -> list[dict[str, Any]]:
    """Both problems under every law of ``settings.laws``; one result dict per law."""
    from tqdm.auto import tqdm

    results = []
    bar = tqdm(settings.laws, desc="demo", unit="law", disable=not progress, dynamic_ncols=True)
    for law in bar:
        bar.set_postfix_str(law)
        results.append({"law": law, "noise": repr(dropout_law(law, settings.dropout)),
                        "diabetes": regression_run(law, settings),
                        "digits": classification_run(law, settings)})
    return results


HEADER = ["law", "noise ξ", "objective", "diabetes RMSE", "diabetes test LL", "digits error %",
          "digits NLL", "digits ECE", "time (s)", "note"]


def demo_rows(results: Sequence[dict[str, Any]]) -> list[list[str]]:
    """The results table's rows (see :data:`HEADER`)."""
    rows = []
    for r in results:
        d, c = r["diabetes"], r["digits"]
        note = "; ".join(f"{name}: {x['failure']}" for name, x in (("diabetes", d), ("digits", c))
                         if x["failure"])
        rows.append([r["law"], r["noise"], d["objective"], f"{d['rmse']:.2f}", f"{d['ll']:.3f}",
                     f"{100 * c['error']:.2f}", f"{c['nll']:.3f}", f"{c['ece']:.3f}",
                     f"{d['seconds'] + c['seconds']:.1f}", note])
    return rows


def write_demo_outputs(results: Sequence[dict[str, Any]], out: Path) -> str:
    """Write demo.md, demo.csv, calibration.png and relevance.png into ``out``; return the table."""
    rows = demo_rows(results)
    table = markdown_table(HEADER, rows)
    (out / "demo.md").write_text(table)
    write_csv(out / "demo.csv", HEADER, rows)
    _calibration_figure(results, out / "calibration.png")
    _relevance_figure(results, out / "relevance.png")
    return table


def _calibration_figure(results: Sequence[dict[str, Any]], path: Path) -> None:
    from matplotlib.figure import Figure

    fig = Figure(figsize=(9, 4))
    left, right = fig.add_subplot(1, 2, 1), fig.add_subplot(1, 2, 2)
    levels = np.linspace(0, 1, 21)
    for r in results:
        pit = np.asarray(r["diabetes"]["pit"])
        left.plot(levels, [(pit <= q).mean() for q in levels], marker=".", label=r["law"])
        conf = np.asarray(r["digits"]["confidence"], dtype=float)
        acc = np.asarray(r["digits"]["accuracy"], dtype=float)
        keep = ~np.isnan(conf)
        right.plot(conf[keep], acc[keep], marker="o", label=r["law"])
    for ax in (left, right):
        ax.plot([0, 1], [0, 1], "k--", lw=1)
        ax.set_xlim(0, 1)
        ax.set_ylim(0, 1)
        ax.legend(fontsize=7)
    left.set(title="diabetes: PIT calibration", xlabel="predictive quantile level",
             ylabel="fraction of test targets below it")
    right.set(title="digits: reliability", xlabel="confidence", ylabel="accuracy")
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def _relevance_figure(results: Sequence[dict[str, Any]], path: Path) -> None:
    from matplotlib.figure import Figure

    fig = Figure(figsize=(8, 2.2 * len(results)))
    for i, r in enumerate(results):
        ax = fig.add_subplot(len(results), 2, 2 * i + 1)
        d = r["diabetes"]
        ax.bar(range(len(d["relevance"])), d["relevance"])
        ax.set_xticks(range(len(d["features"])), d["features"], fontsize=7)
        ax.set_title(f"{r['law']}: diabetes input relevance", fontsize=9)
        img = fig.add_subplot(len(results), 2, 2 * i + 2)
        shown = img.imshow(np.asarray(r["digits"]["relevance"]).reshape(8, 8), cmap="viridis")
        img.set_title(f"{r['law']}: digits pixel relevance", fontsize=9)
        img.set_xticks([])
        img.set_yticks([])
        fig.colorbar(shown, ax=img)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


#: The scalar results :func:`demo_rows` reads, per problem: what a result record keeps.
_RECORDED = {"diabetes": ("rmse", "ll", "seconds", "objective", "noise_std", "failure"),
             "digits": ("error", "nll", "ece", "seconds", "objective", "failure")}


def record_demo(settings: DemoSettings, results: Sequence[dict[str, Any]], seconds: float,
                command: str, commit: str | None, root: str | Path) -> Path:
    """Write the run's result record to ``<root>/demo/`` (one per settings, replacing an earlier
    one): the table's scalars per law (not the PIT values, reliability bins or relevance).
    Returns the record's file."""
    from dataclasses import asdict

    from dropprior.experiments.records import make_record, record_store, settings_key

    laws = [{"law": r["law"], "noise": r["noise"],
             **{problem: {k: r[problem][k] for k in keys} for problem, keys in _RECORDED.items()}}
            for r in results]
    store = record_store("demo", root)
    key = settings_key("demo", settings)
    store.put(key, make_record(command, asdict(settings), settings.seed, {"laws": laws},
                               seconds, commit), replace=True)
    return store.path(key)
