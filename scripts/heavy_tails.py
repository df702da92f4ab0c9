"""Heavy-tailed noise on diabetes (+10 noise features): what trains? (issue 6, first measurements)

ARD MLP 20 → 32 → 1, first layer unit-structured NoisyLinear; 300 full-batch Adam epochs
(lr 0.01, σ0 = 0.1), 80/20 split fixed by seed 0. For each configuration: whether the loss stayed
finite, the test RMSE of the MC predictive mean and of the per-draw median (original units), and
whether relevance ranks bmi, s5, bp above every noise feature.

Usage::

    python scripts/heavy_tails.py
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from dropprior.data import load_diabetes
from dropprior.likelihoods import Gaussian
from dropprior.nn import NoisyLinear
from dropprior.noise import Bernoulli, HalfCauchy, InverseNakagami, NoiseLaw
from dropprior.prediction import predict
from dropprior.relevance import relevance
from dropprior.training import fit

CONFIGS: list[tuple[str, NoiseLaw, str, int, float | None]] = [
    ("bernoulli(0.8) MC S=1", Bernoulli(0.8, inverted=True), "mc", 1, None),
    ("half-Cauchy(1) MC S=1", HalfCauchy(1.0), "mc", 1, None),
    ("half-Cauchy(1) MC S=1 clip 1", HalfCauchy(1.0), "mc", 1, 1.0),
    ("half-Cauchy(1) marginal S=8", HalfCauchy(1.0), "marginal", 8, None),
    ("half-Cauchy(1) marginal S=8 clip 1", HalfCauchy(1.0), "marginal", 8, 1.0),
    ("inv-Nakagami(m=0.75) MC S=1", InverseNakagami(0.75, 1.0), "mc", 1, None),
    ("inv-Nakagami(m=0.75) marginal S=8", InverseNakagami(0.75, 1.0), "marginal", 8, None),
]


def main() -> None:
    torch.set_num_threads(1)
    X, y, names = load_diabetes()
    rng = np.random.default_rng(0)
    Xn = np.concatenate([X, rng.normal(size=(X.shape[0], 10))], axis=1)
    Xn = (Xn - Xn.mean(0)) / Xn.std(0)
    ys = (y - y.mean()) / y.std()
    perm = rng.permutation(len(y))
    tr, te = perm[:354], perm[354:]
    xt, yt = torch.tensor(Xn, dtype=torch.float32), torch.tensor(ys, dtype=torch.float32)
    strong = [names.index(f) for f in ("bmi", "s5", "bp")]
    print("| configuration | finite loss | final train loss | RMSE (MC mean) | RMSE (median) "
          "| bmi,s5,bp > all noise |")
    print("|---|---|---|---|---|---|")
    for label, law, objective, samples, clip in CONFIGS:
        torch.manual_seed(0)
        model = nn.Sequential(NoisyLinear(20, 32, law), nn.ReLU(), nn.Linear(32, 1),
                              nn.Flatten(0))
        lik = Gaussian(0.7, learn=True)
        h = fit(model, lik, xt[tr], yt[tr], objective=objective, samples=samples, sigma0=0.1,
                lr=0.01, epochs=300, grad_clip=clip, progress=False, on_nonfinite="stop")
        torch.manual_seed(1)
        pred = predict(model, xt[te], samples=200, likelihood=lik)
        scale = float(y.std())
        rmse_mean = float(((pred.mean - yt[te]) ** 2).mean().sqrt()) * scale
        rmse_median = float(((pred.median - yt[te]) ** 2).mean().sqrt()) * scale
        s = relevance(model)["0"]
        ranked = bool(s[strong].min() > s[10:].max())
        print(f"| {label} | {not h.diverged} | {h.train_loss[-1]:.3g} | {rmse_mean:.1f} | "
              f"{rmse_median:.1f} | {ranked} |", flush=True)


if __name__ == "__main__":
    main()
