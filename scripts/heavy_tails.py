"""Heavy-tailed noise that trains (issue section 6): what makes half-Cauchy and small-m
inverse-Nakagami noise train? Two experiments, both printing Markdown tables.

``diabetes`` — ARD MLP 20 → 32 → 1 on diabetes + 10 standard-normal noise features, first layer
unit-structured NoisyLinear; 300 full-batch Adam epochs (lr 0.01, σ0 = 0.1); for each seed a
fresh 80/20 split and initialisation. Per configuration: how many seeds kept a finite loss, the
test RMSE of the MC predictive mean and of the per-draw median (original units, mean ± sd over
seeds), and in how many seeds relevance ranks bmi, s5, bp above every noise feature.

``mnist`` — the selection experiment for ``scripts/mnist_laws.py``: MLP 784 → 256 → 256 → 10,
every linear map unit-structured NoisyLinear with the same law; minibatch 128, Adam lr 1e-3,
σ0 = 0.1, a few epochs on a subset of the training images; the error is measured on 5 000
validation images carved from the training set (never the test set), by MC prediction with 8
draws (class probabilities are bounded, so their MC average exists for every law).

Usage::

    python scripts/heavy_tails.py diabetes --seeds 0 1 2
    python scripts/heavy_tails.py mnist --data-dir ../shared/data --train-size 20000 --epochs 2
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

import numpy as np
import torch
from torch import nn

from dropprior import relevance
from dropprior.data import load_diabetes, load_mnist
from dropprior.likelihoods import Categorical, Gaussian
from dropprior.metrics import accuracy
from dropprior.nn import NoisyLinear
from dropprior.noise import Bernoulli, HalfCauchy, InverseNakagami, NoiseLaw
from dropprior.prediction import predict
from dropprior.training import fit
from dropprior.truncation import Truncated

# (label, law factory, objective, S, grad clip, lr)
Config = tuple[str, Callable[[], NoiseLaw], str, int, float | None, float]

DIABETES: list[Config] = [
    ("bernoulli(0.8) MC S=1", lambda: Bernoulli(0.8, inverted=True), "mc", 1, None, 0.01),
    ("half-Cauchy(1) MC S=1", lambda: HalfCauchy(1.0), "mc", 1, None, 0.01),
    ("half-Cauchy(1) MC S=1 clip 1", lambda: HalfCauchy(1.0), "mc", 1, 1.0, 0.01),
    ("half-Cauchy(1) marginal S=8", lambda: HalfCauchy(1.0), "marginal", 8, None, 0.01),
    ("half-Cauchy(1) marginal S=8 clip 1", lambda: HalfCauchy(1.0), "marginal", 8, 1.0, 0.01),
    ("half-Cauchy(1) truncated at 10, MC S=1", lambda: Truncated(HalfCauchy(1.0), 10.0), "mc",
     1, None, 0.01),
    ("half-Cauchy(1) truncated at 10, marginal S=8", lambda: Truncated(HalfCauchy(1.0), 10.0),
     "marginal", 8, None, 0.01),
    ("inv-Nakagami(m=0.75) MC S=1", lambda: InverseNakagami(0.75, 1.0), "mc", 1, None, 0.01),
    ("inv-Nakagami(m=0.75) marginal S=8", lambda: InverseNakagami(0.75, 1.0), "marginal", 8,
     None, 0.01),
    ("inv-Nakagami(m=0.75) truncated at 5, MC S=1",
     lambda: Truncated(InverseNakagami(0.75, 1.0), 5.0), "mc", 1, None, 0.01),
]

MNIST: list[Config] = [
    ("bernoulli(0.5) marginal S=2 clip 10 (reference)",
     lambda: Bernoulli(0.5, inverted=True), "marginal", 2, 10.0, 1e-3),
    ("half-Cauchy(1) MC S=1 clip 10", lambda: HalfCauchy(1.0), "mc", 1, 10.0, 1e-3),
    ("half-Cauchy(1) marginal S=2 clip 10", lambda: HalfCauchy(1.0), "marginal", 2, 10.0, 1e-3),
    ("half-Cauchy(1) marginal S=8 clip 10", lambda: HalfCauchy(1.0), "marginal", 8, 10.0, 1e-3),
    ("half-Cauchy(1) marginal S=2 clip 1", lambda: HalfCauchy(1.0), "marginal", 2, 1.0, 1e-3),
    ("half-Cauchy(1) marginal S=2 clip 10 lr 1e-4", lambda: HalfCauchy(1.0), "marginal", 2,
     10.0, 1e-4),
    ("half-Cauchy(0.1) marginal S=2 clip 10", lambda: HalfCauchy(0.1), "marginal", 2, 10.0,
     1e-3),
    ("half-Cauchy(1) truncated at 10, marginal S=2 clip 10",
     lambda: Truncated(HalfCauchy(1.0), 10.0), "marginal", 2, 10.0, 1e-3),
    ("half-Cauchy(1) truncated at 3, marginal S=2 clip 10",
     lambda: Truncated(HalfCauchy(1.0), 3.0), "marginal", 2, 10.0, 1e-3),
    ("inv-Nakagami(m=0.75) marginal S=2 clip 10", lambda: InverseNakagami(0.75, 1.0),
     "marginal", 2, 10.0, 1e-3),
    ("inv-Nakagami(m=0.75) truncated at 5, marginal S=2 clip 10",
     lambda: Truncated(InverseNakagami(0.75, 1.0), 5.0), "marginal", 2, 10.0, 1e-3),
]


def diabetes(seeds: list[int], only: list[int] | None) -> None:
    X, y, names = load_diabetes()
    strong = [names.index(f) for f in ("bmi", "s5", "bp")]
    print("| configuration | finite loss (seeds) | RMSE MC mean | RMSE median | "
          "bmi,s5,bp > all noise (seeds) |")
    print("|---|---|---|---|---|")
    for k, (label, make_law, objective, samples, clip, lr) in enumerate(DIABETES):
        if only is not None and k not in only:
            continue
        finite, ranked, rmse_mean, rmse_median = 0, 0, [], []
        for seed in seeds:
            rng = np.random.default_rng(seed)
            Xn = np.concatenate([X, rng.normal(size=(X.shape[0], 10))], axis=1)
            Xn = (Xn - Xn.mean(0)) / Xn.std(0)
            ys = (y - y.mean()) / y.std()
            perm = rng.permutation(len(y))
            tr, te = perm[:354], perm[354:]
            xt = torch.tensor(Xn, dtype=torch.float32)
            yt = torch.tensor(ys, dtype=torch.float32)
            torch.manual_seed(seed)
            model = nn.Sequential(NoisyLinear(20, 32, make_law()), nn.ReLU(), nn.Linear(32, 1),
                                  nn.Flatten(0))
            lik = Gaussian(0.7, learn=True)
            h = fit(model, lik, xt[tr], yt[tr], objective=objective, samples=samples,
                    sigma0=0.1, lr=lr, epochs=300, grad_clip=clip, seed=seed, progress=False,
                    on_nonfinite="stop")
            finite += not h.diverged
            torch.manual_seed(seed + 1000)
            pred = predict(model, xt[te], samples=200, likelihood=lik)
            scale = float(y.std())
            rmse_mean.append(float(((pred.mean - yt[te]) ** 2).mean().sqrt()) * scale)
            rmse_median.append(float(((pred.median - yt[te]) ** 2).mean().sqrt()) * scale)
            s = relevance(model)["0"]
            ranked += bool(s[strong].min() > s[10:].max())

        def show(v: list[float]) -> str:
            return f"{statistics.mean(v):.1f} ± {statistics.stdev(v):.1f}" if len(v) > 1 \
                else f"{v[0]:.1f}"

        print(f"| {label} | {finite}/{len(seeds)} | {show(rmse_mean)} | {show(rmse_median)} | "
              f"{ranked}/{len(seeds)} |", flush=True)


def mnist(data_dir: str | None, train_size: int, epochs: int, seed: int,
          only: list[int] | None) -> None:
    x, y = load_mnist(data_dir, "train")
    x = (x - 0.1307) / 0.3081
    perm = torch.randperm(x.shape[0], generator=torch.Generator().manual_seed(seed))
    val, tr = perm[:5000], perm[5000:5000 + train_size]
    print(f"MNIST: {len(tr)} training images, {epochs} epochs, 5000 validation images, "
          f"seed {seed}")
    print("| configuration | finite loss | last train loss | val error MC-8 (%) | seconds |")
    print("|---|---|---|---|---|")
    for k, (label, make_law, objective, samples, clip, lr) in enumerate(MNIST):
        if only is not None and k not in only:
            continue
        law = make_law()
        torch.manual_seed(seed)
        model = nn.Sequential(NoisyLinear(784, 256, law), nn.ReLU(),
                              NoisyLinear(256, 256, law), nn.ReLU(), NoisyLinear(256, 10, law))
        start = time.perf_counter()
        h = fit(model, Categorical(), x[tr], y[tr], objective=objective, samples=samples,
                sigma0=0.1, lr=lr, epochs=epochs, batch_size=128, grad_clip=clip, seed=seed,
                progress=False, on_nonfinite="stop")
        seconds = time.perf_counter() - start
        torch.manual_seed(seed + 1)
        pred = predict(model, x[val], samples=8, likelihood=Categorical(), batch_size=2500)
        err = 100.0 * (1.0 - float(accuracy(pred.probs, y[val])))  # type: ignore[union-attr]
        last = h.train_loss[-1] if h.train_loss else float("nan")
        print(f"| {label} | {not h.diverged} | {last:.3g} | {err:.2f} | {seconds:.0f} |",
              flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("experiment", choices=["diabetes", "mnist"], help="which experiment")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2],
                        help="diabetes: seeds (split + init) (default: 0 1 2)")
    parser.add_argument("--data-dir", default=None,
                        help="mnist: data root holding mnist/ (default: $DROPPRIOR_DATA_DIR)")
    parser.add_argument("--train-size", type=int, default=20000,
                        help="mnist: training images used (default: 20000)")
    parser.add_argument("--epochs", type=int, default=2, help="mnist: epochs (default: 2)")
    parser.add_argument("--seed", type=int, default=0, help="mnist: seed (default: 0)")
    parser.add_argument("--only", type=int, nargs="*", default=None,
                        help="run only these configuration rows (0-based; default: all)")
    args = parser.parse_args()
    torch.set_num_threads(1)
    if args.experiment == "diabetes":
        diabetes(args.seeds, args.only)
    else:
        mnist(args.data_dir, args.train_size, args.epochs, args.seed, args.only)


if __name__ == "__main__":
    main()
