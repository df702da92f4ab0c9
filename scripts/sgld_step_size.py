"""Choose the SGLD step size of ``dropprior mcmc --methods sgld-ep`` on validation data only.

Yacht, split 0's *training* part, split again 80/20 (seed 0); SGLD on the EP posterior of a
50-unit network with Gaussian noise matched to p = 0.05 (σ0 = 1, noise precision ~ Gamma), batch
32, 20 000 warm-up steps, 200 draws thinned by 50; prints the validation RMSE and log-likelihood
for each step size. The test split is never read.

    python scripts/sgld_step_size.py --data-dir ../shared/data
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from dropprior.data import load_uci
from dropprior.experiments.uci import standardise
from dropprior.inference import NetworkPosterior, sgld_network
from dropprior.noise import match_dropout


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", default="../shared/data", help="data root (with uci/)")
    parser.add_argument("--step-sizes", default="3e-4,1e-4,3e-5,1e-5",
                        help="comma-separated candidates (default: 3e-4,1e-4,3e-5,1e-5)")
    args = parser.parse_args()
    torch.set_num_threads(1)
    torch.set_default_dtype(torch.float64)
    ds = load_uci(args.data_dir, "yacht")
    train, _ = ds.splits[0]
    perm = np.random.default_rng(0).permutation(train)
    cut = int(0.8 * len(perm))
    fit, val = perm[:cut], perm[cut:]
    x_fit, x_val, _, _ = standardise(ds.X[fit], ds.X[val])
    y_fit, y_mean, y_std = standardise(ds.y[fit])
    X_fit, y_fit, X_val = (torch.as_tensor(a) for a in (x_fit, y_fit, x_val))
    y_val, y_mean, y_std = torch.as_tensor(ds.y[val]), float(y_mean), float(y_std)
    law = match_dropout("gaussian", 0.05, dtype=torch.float64)
    for eps in (float(s) for s in args.step_sizes.split(",")):
        start = time.perf_counter()
        post = NetworkPosterior.mlp(X_fit, y_fit, [50], law, structure="unit", sigma0=1.0,
                                    parametrization="ep")
        try:
            draws = sgld_network(post, step_size=eps, num_samples=200, batch_size=32,
                                 warmup=20_000, thin=50,
                                 generator=torch.Generator().manual_seed(0))
        except FloatingPointError as err:
            print(f"step {eps:.0e}: {err}")
            continue
        scores = post.evaluate(draws, X_val, y_val, y_mean=y_mean, y_std=y_std)
        print(f"step {eps:.0e}: validation RMSE {scores['rmse']:.3f}, "
              f"LL {scores['test_ll']:.3f} ({time.perf_counter() - start:.0f} s)", flush=True)


if __name__ == "__main__":
    main()
