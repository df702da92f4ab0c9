"""``dropprior mcmc``: MAP training vs NUTS under the same prior on a UCI regression dataset.

For each train/test split (targets and inputs standardised on the training part):

* ``mc-map``: MAP of the EP weights under the MC objective (eq. 3) with noise ``--law``;
* ``marginal-map``: MAP under the marginal-MAP bound (eq. 10), same law;
* ``mc-dropout``: the same MC objective with Bernoulli noise of keep 1 − p (MC dropout);
* ``nuts-ep`` / ``nuts-hp``: NUTS on the network posterior with prior ξ ~ ``--law`` in the EP and
  HP forms (noise precision inferred with a Gamma prior);
* ``sgld-ep``: minibatch SGLD on the same EP posterior (``--sgld-*`` options), the sampler for
  networks too large for full-batch NUTS.

It prints and writes (``--out``, JSON) test RMSE and test log-likelihood per method and split in
original units, and, for NUTS, the sampling efficiency (min bulk ESS per gradient evaluation,
divergences, max R-hat over the latent sites) of EP vs HP, and the R-hat and bulk ESS of the
training log-likelihood and the noise precision, which the hidden units' permutation symmetry
leaves identifiable. All hyperparameters are the options' values, fixed before
any test split is read.
"""

from __future__ import annotations

import argparse
import json
import math
import time
from pathlib import Path

import numpy as np
import torch

from dropprior.cli._common import CLIError, add_data_dir_option, resolve_data_dir
from dropprior.cli._config import adopt

METHODS = ("mc-dropout", "mc-map", "marginal-map", "nuts-ep", "nuts-hp", "sgld-ep")


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "mcmc", help="compare MAP training with NUTS under the same prior on a UCI dataset",
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_data_dir_option(p)
    p.add_argument("--dataset", default="bostonHousing",
                   help="UCI folder name under DATA_DIR/uci (default: bostonHousing)")
    p.add_argument("--splits", type=int, default=None,
                   help="use only the first N splits (default: all of the dataset's splits)")
    p.add_argument("--hidden", type=int, default=50, help="hidden units (default: 50)")
    p.add_argument("--law", default="gaussian",
                   help="continuous noise law for the prior, matched to dropout rate --p via "
                        "match_dropout (default: gaussian)")
    p.add_argument("--p", type=float, default=0.05,
                   help="dropout (drop) probability to match (default: 0.05)")
    p.add_argument("--sigma0", type=float, default=1.0,
                   help="σ0 of the Gaussian prior on EP weights z (default: 1.0)")
    p.add_argument("--methods", default=",".join(METHODS),
                   help=f"comma-separated subset of {','.join(METHODS)} (default: all)")
    p.add_argument("--epochs", type=int, default=400, help="MAP training epochs (default: 400)")
    p.add_argument("--samples", type=int, default=10,
                   help="noise draws per example for the MAP objectives (default: 10)")
    p.add_argument("--warmup", type=int, default=200, help="NUTS warm-up steps (default: 200)")
    p.add_argument("--num-samples", type=int, default=200,
                   help="NUTS draws kept per chain (default: 200)")
    p.add_argument("--chains", type=int, default=2, help="NUTS chains (default: 2)")
    p.add_argument("--max-tree-depth", type=int, default=7,
                   help="NUTS maximum tree depth (default: 7)")
    p.add_argument("--sgld-step-size", type=float, default=3e-5,
                   help="SGLD step size ε (default: 3e-5, the best of {3e-4, 1e-4, 3e-5, 1e-5} "
                        "by validation log-likelihood on an inner 80/20 split of Yacht split "
                        "0's training part)")
    p.add_argument("--sgld-warmup", type=int, default=20000,
                   help="SGLD steps discarded first (default: 20000)")
    p.add_argument("--sgld-samples", type=int, default=200,
                   help="SGLD draws kept (default: 200)")
    p.add_argument("--sgld-thin", type=int, default=50,
                   help="keep every N-th SGLD step after warm-up (default: 50)")
    p.add_argument("--sgld-batch", type=int, default=32,
                   help="SGLD minibatch size (default: 32)")
    p.add_argument("--seed", type=int, default=0, help="random seed (default: 0)")
    p.add_argument("--out", type=Path, default=None,
                   help="write results as JSON to this file (default: print only)")
    adopt(p)  # --config FILE for the options above
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from dropprior.data import load_uci
    from dropprior.noise import law_by_name, match_dropout

    torch.set_num_threads(1)
    data_dir = resolve_data_dir(args.data_dir)
    methods = [m.strip() for m in args.methods.split(",") if m.strip()]
    bad = [m for m in methods if m not in METHODS]
    if bad:
        raise CLIError(f"unknown method(s) {bad}; expected a subset of {list(METHODS)}")
    law_by_name(args.law)  # clear error for an unknown law name
    if not 0.0 < args.p < 1.0:
        raise CLIError(f"--p must lie in (0, 1), got {args.p}")
    if not args.sgld_step_size > 0:
        raise CLIError(f"--sgld-step-size must be > 0, got {args.sgld_step_size}")
    if args.sgld_warmup < 0:
        raise CLIError(f"--sgld-warmup must be ≥ 0, got {args.sgld_warmup}")
    for name in ("hidden", "epochs", "samples", "num_samples", "chains", "sgld_samples",
                 "sgld_thin", "sgld_batch"):
        if getattr(args, name) < 1:
            raise CLIError(f"--{name.replace('_', '-')} must be ≥ 1, got {getattr(args, name)}")
    ds = load_uci(data_dir, args.dataset)
    n_splits = len(ds.splits) if args.splits is None else min(args.splits, len(ds.splits))
    if n_splits < 1:
        raise CLIError(f"--splits must be ≥ 1, got {args.splits}")
    law = match_dropout(args.law, args.p, dtype=torch.float64)
    rows = []
    for k in range(n_splits):
        train, test = ds.splits[k]
        for method in methods:
            start = time.perf_counter()
            scores = _run_method(method, ds.X, ds.y, train, test, law, args, seed=args.seed + k)
            scores.update(split=k, method=method, seconds=time.perf_counter() - start)
            rows.append(scores)
            print(f"split {k:2d} {method:13s} RMSE {scores['rmse']:.3f} "
                  f"LL {scores['test_ll']:.3f}"
                  + (f"  ESS/grad {scores['min_ess_per_gradient']:.2e} "
                     f"div {scores['divergences']} R-hat {scores['max_rhat']:.3f} "
                     f"(train LL {scores['rhat_train_ll']:.3f})"
                     if method.startswith("nuts") else "")
                  + f"  ({scores['seconds']:.0f}s)", flush=True)
    summary = _summarise(rows, methods)
    print(f"\n{args.dataset}, {n_splits} split(s), law {args.law} matched to p={args.p}")
    for m, s in summary.items():
        print(f"{m:13s} RMSE {s['rmse']:.3f} ± {s['rmse_se']:.3f}   "
              f"LL {s['test_ll']:.3f} ± {s['test_ll_se']:.3f}")
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps({"args": {k: str(v) for k, v in vars(args).items()
                                                 if k != "func"},
                                        "rows": rows, "summary": summary}, indent=2))
    return 0


def _summarise(rows: list[dict], methods: list[str]) -> dict[str, dict[str, float]]:
    out = {}
    for m in methods:
        r = [row for row in rows if row["method"] == m]
        entry: dict[str, float] = {}
        for key in ("rmse", "test_ll"):
            v = np.array([row[key] for row in r])
            entry[key] = float(v.mean())
            entry[f"{key}_se"] = float(v.std(ddof=1) / math.sqrt(len(v))) if len(v) > 1 else 0.0
        out[m] = entry
    return out


def _standardise(X, y, train, test):
    from dropprior.experiments.uci import standardise

    x_train, x_test, _, _ = standardise(X[train], X[test])
    y_train, ym, ys = standardise(y[train])
    t = lambda a: torch.as_tensor(a, dtype=torch.float64)  # noqa: E731
    return t(x_train), t(y_train), t(x_test), t(y[test]), float(ym), float(ys)


def _run_method(method, X, y, train, test, law, args, seed):
    Xtr, ytr, Xte, yte, ym, ys = _standardise(X, y, train, test)
    if method.startswith("nuts"):
        return _nuts(Xtr, ytr, Xte, yte, ym, ys, law, args, seed, method[-2:])
    if method == "sgld-ep":
        return _sgld(Xtr, ytr, Xte, yte, ym, ys, law, args, seed)
    return _map(Xtr, ytr, Xte, yte, ym, ys, law, args, seed, method)


def _map(Xtr, ytr, Xte, yte, ym, ys, law, args, seed, method):
    from dropprior import metrics
    from dropprior.likelihoods import Gaussian
    from dropprior.nn import NoisyLinear
    from dropprior.noise import Bernoulli
    from dropprior.prediction import predict
    from dropprior.training import fit

    noise = Bernoulli(1 - args.p, inverted=True) if method == "mc-dropout" else law
    torch.manual_seed(seed)
    model = torch.nn.Sequential(
        NoisyLinear(Xtr.shape[1], args.hidden, noise), torch.nn.ReLU(),
        NoisyLinear(args.hidden, 1, noise)).double()
    lik = Gaussian(noise_std=0.5, learn=True).double()
    fit(model, lik, Xtr, ytr[:, None], objective="marginal" if method == "marginal-map" else "mc",
        samples=args.samples, sigma0=args.sigma0, lr=1e-2, epochs=args.epochs,
        batch_size=min(128, Xtr.shape[0]), seed=seed, progress=False)
    with torch.no_grad():
        pred = predict(model, Xte, samples=200, likelihood=lik)
        mean = pred.mean[:, 0] * ys + ym
        rmse = float(metrics.rmse(mean, yte))
        z = (yte - ym) / ys
        ll = float(pred.log_density(z[:, None]).mean()) - math.log(ys)
    return {"rmse": rmse, "test_ll": ll}


def _posterior(Xtr, ytr, law, args, parametrization):
    """The posterior both samplers target: one hidden layer, unit (ARD) noise."""
    from dropprior.inference import NetworkPosterior

    return NetworkPosterior.mlp(Xtr, ytr, [args.hidden], law, structure="unit",
                                sigma0=args.sigma0, parametrization=parametrization)


def _nuts(Xtr, ytr, Xte, yte, ym, ys, law, args, seed, parametrization):
    from dropprior.inference import run_mcmc

    with _default_float64():
        post = _posterior(Xtr, ytr, law, args, parametrization)
        r = run_mcmc(post, num_samples=args.num_samples, warmup=args.warmup,
                     num_chains=args.chains, max_tree_depth=args.max_tree_depth,
                     generator=torch.Generator().manual_seed(seed))
        scores = post.evaluate(r.samples, Xte, yte, y_mean=ym, y_std=ys)
    latent = [k for k in r.samples if k.endswith((".xi", ".z", ".b")) or k == "noise.precision"
              or (parametrization == "hp" and k.endswith(".w"))]
    scores.update(r.summary(latent))
    scores.update(_identifiable_diagnostics(post, r.samples))
    return scores


def _sgld(Xtr, ytr, Xte, yte, ym, ys, law, args, seed):
    from dropprior.inference import sgld_network

    with _default_float64():
        post = _posterior(Xtr, ytr, law, args, "ep")
        draws = sgld_network(post, step_size=args.sgld_step_size, num_samples=args.sgld_samples,
                             batch_size=min(args.sgld_batch, Xtr.shape[0]),
                             warmup=args.sgld_warmup, thin=args.sgld_thin,
                             generator=torch.Generator().manual_seed(seed))
        return post.evaluate(draws, Xte, yte, y_mean=ym, y_std=ys)


def _identifiable_diagnostics(post, samples) -> dict[str, float]:
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


class _default_float64:
    def __enter__(self):
        self.old = torch.get_default_dtype()
        torch.set_default_dtype(torch.float64)

    def __exit__(self, *exc):
        torch.set_default_dtype(self.old)
