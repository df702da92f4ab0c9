"""End to end on scikit-learn's diabetes data (no download): ARD with Bernoulli noise trains,
ranks the real predictors above appended noise features, and pruning the low-relevance inputs
leaves the test RMSE within its standard error."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import nn

from dropprior import relevance
from dropprior.data import load_diabetes
from dropprior.likelihoods import Gaussian
from dropprior.metrics import rmse
from dropprior.nn import NoisyLinear
from dropprior.noise import Bernoulli
from dropprior.prediction import predict
from dropprior.pruning import SelectFeatures, prune
from dropprior.training import fit

N_NOISE = 10


@pytest.fixture(scope="module")
def trained():
    X, y, names = load_diabetes()
    rng = np.random.default_rng(0)
    Xn = np.concatenate([X, rng.normal(size=(X.shape[0], N_NOISE))], axis=1)
    Xn = (Xn - Xn.mean(0)) / Xn.std(0)
    y_std = float(y.std())
    ys = (y - y.mean()) / y_std
    perm = rng.permutation(len(y))
    tr, te = perm[:354], perm[354:]
    xt, yt = torch.tensor(Xn, dtype=torch.float32), torch.tensor(ys, dtype=torch.float32)
    torch.manual_seed(0)
    model = nn.Sequential(NoisyLinear(Xn.shape[1], 32, Bernoulli(0.8, inverted=True)), nn.ReLU(),
                          nn.Linear(32, 1), nn.Flatten(0))
    lik = Gaussian(noise_std=0.7, learn=True)
    history = fit(model, lik, xt[tr], yt[tr], sigma0=0.1, lr=0.01, epochs=300, progress=False)
    return model, lik, xt[te], yt[te], y_std, names, history


def _rmse_and_se(model, lik, x, y, y_std):
    torch.manual_seed(1)
    pred = predict(model, x, samples=200, likelihood=lik)
    err2 = ((pred.mean - y) * y_std) ** 2
    value = float(err2.mean().sqrt())
    # delta method: se(RMSE) = sd(e²) / (2 RMSE √n)
    se = float(err2.std()) / (2 * value * math.sqrt(len(y)))
    return value, se


def test_ard_trains_and_reports_rmse(trained) -> None:
    model, lik, x, y, y_std, _, history = trained
    assert history.train_loss[-1] < history.train_loss[0] - 1.0
    value, se = _rmse_and_se(model, lik, x, y, y_std)
    baseline = float(y.std(unbiased=False)) * y_std  # predicting the training mean (≈ 0)
    print(f"diabetes ARD test RMSE {value:.2f} ± {se:.2f} (predict-the-mean {baseline:.2f})")
    assert value < baseline - 10.0
    assert float(rmse(predict(model, x, likelihood=lik, method="mean_scaling").mean, y)) * y_std \
        < baseline - 10.0


def test_relevance_ranks_real_features_above_noise(trained) -> None:
    model, _, _, _, _, names, _ = trained
    scores = relevance(model)["0"]
    assert scores.shape == (10 + N_NOISE,)
    real, noise = scores[:10], scores[10:]
    for feature in ("bmi", "s5", "bp"):
        assert float(scores[names.index(feature)]) > float(noise.max()), feature
    assert float(noise.mean()) < float(real.mean())


def test_pruning_low_relevance_inputs_keeps_rmse(trained) -> None:
    model, lik, x, y, y_std, _, _ = trained
    full, se = _rmse_and_se(model, lik, x, y, y_std)
    result = prune(model, keep=0.5, layers=["0"])
    kept = result.kept["0"]
    assert kept.numel() == 10
    assert isinstance(result.model[0], SelectFeatures)
    assert result.model[1].weight.shape == (32, 10)
    assert result.params_after == result.params_before - 32 * 10
    assert result.flops_after < result.flops_before
    pruned, _ = _rmse_and_se(result.model, lik, x, y, y_std)
    print(f"pruned to {kept.tolist()}: RMSE {full:.2f} → {pruned:.2f} (se {se:.2f})")
    assert abs(pruned - full) < se
