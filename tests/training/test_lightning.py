"""The Lightning integration, with a real Trainer on CPU: its loss is fit's, and its logged
metrics are dropprior.metrics on the whole validation set."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

pl = pytest.importorskip("lightning.pytorch")

from dropprior import fit, metrics, predict  # noqa: E402
from dropprior.lightning import NoisyLightningModule  # noqa: E402
from dropprior.likelihoods import Categorical, Gaussian  # noqa: E402
from dropprior.nn import NoisyLinear  # noqa: E402
from dropprior.noise import Bernoulli  # noqa: E402

pytestmark = [pytest.mark.filterwarnings("ignore::UserWarning"),  # Lightning's CPU-run advice
              pytest.mark.filterwarnings("ignore:.*treespec:FutureWarning")]  # Lightning+torch


def _trainer(epochs: int) -> pl.Trainer:
    return pl.Trainer(max_epochs=epochs, accelerator="cpu", logger=False,
                      enable_checkpointing=False, enable_progress_bar=False,
                      enable_model_summary=False, num_sanity_val_steps=0)


def _classification() -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    x = torch.randn(64, 4, generator=g)
    return x, (x[:, 0] + x[:, 1] > 0).long()


@pytest.mark.parametrize("prior_weight", [1.0, 0.25])
def test_training_matches_fit_over_the_same_batches(prior_weight) -> None:
    x, y = _classification()
    torch.manual_seed(0)
    model = nn.Sequential(NoisyLinear(4, 2, Bernoulli(1.0)))  # no randomness: exact agreement
    reference = nn.Sequential(NoisyLinear(4, 2, Bernoulli(1.0)))
    reference.load_state_dict(model.state_dict())
    loader = DataLoader(TensorDataset(x, y), batch_size=16, shuffle=False)
    module = NoisyLightningModule(model, Categorical(), n_train=64, sigma0=2.0, lr=0.05,
                                  prior_weight=prior_weight)
    _trainer(3).fit(module, loader)
    fit(reference, Categorical(), loader, sigma0=2.0, lr=0.05, epochs=3, progress=False,
        prior_weight=prior_weight)
    for p, q in zip(model.parameters(), reference.parameters(), strict=True):
        torch.testing.assert_close(p, q)


def test_validation_metrics_are_dropprior_metrics_of_the_whole_set() -> None:
    x, y = _classification()
    torch.manual_seed(0)
    model = nn.Sequential(NoisyLinear(4, 2, Bernoulli(1.0)))
    module = NoisyLightningModule(model, Categorical(), n_train=64, lr=0.05, eval_samples=3)
    train = DataLoader(TensorDataset(x, y), batch_size=16, shuffle=True)
    val = DataLoader(TensorDataset(x[:40], y[:40]), batch_size=16)  # uneven last batch
    trainer = _trainer(2)
    trainer.fit(module, train, val)
    probs = predict(model, x[:40], samples=3, likelihood=Categorical()).probs
    logged = trainer.callback_metrics
    for name, fn in (("accuracy", metrics.accuracy), ("nll", metrics.nll),
                     ("brier", metrics.brier), ("ece", metrics.expected_calibration_error)):
        assert float(logged[f"val/{name}"]) == pytest.approx(float(fn(probs, y[:40])), abs=1e-6)
    assert "train/loss" in logged


def test_eval_exclude_holds_those_layers_at_their_mean_in_validation() -> None:
    """eval_exclude=["0"] on a one-layer noisy classifier: validation predicts with the layer at
    E[ξ], so the logged NLL is that of mean-scaling; training still draws (the weights move
    differently from a noiseless run)."""
    x, y = _classification()
    torch.manual_seed(0)
    model = nn.Sequential(NoisyLinear(4, 2, Bernoulli(0.5, inverted=True)))
    module = NoisyLightningModule(model, Categorical(), n_train=64, lr=0.05, eval_samples=5,
                                  eval_exclude=(name for name in ["0"]))  # read once
    trainer = _trainer(2)
    trainer.fit(module, DataLoader(TensorDataset(x, y), batch_size=16),
                DataLoader(TensorDataset(x[:40], y[:40]), batch_size=16))
    mean = predict(model, x[:40], likelihood=Categorical(), method="mean_scaling").probs
    drawn = predict(model, x[:40], samples=5, likelihood=Categorical()).probs
    logged = float(trainer.callback_metrics["val/nll"])
    assert logged == pytest.approx(float(metrics.nll(mean, y[:40])), abs=1e-6)
    assert logged != pytest.approx(float(metrics.nll(drawn, y[:40])), abs=1e-4)
    with pytest.raises(ValueError, match=r"NoisyLightningModule: exclude names 'head'"):
        NoisyLightningModule(model, Categorical(), n_train=64, eval_exclude=["head"])


def test_regression_logs_rmse_log_likelihood_and_crps() -> None:
    g = torch.Generator().manual_seed(1)
    x = torch.randn(50, 3, generator=g)
    y = x.sum(1, keepdim=True) + 0.1 * torch.randn(50, 1, generator=g)
    torch.manual_seed(0)
    model = nn.Sequential(NoisyLinear(3, 16, Bernoulli(0.8, inverted=True)), nn.ReLU(),
                          nn.Linear(16, 1))
    module = NoisyLightningModule(model, Gaussian(0.3), n_train=50, objective="marginal",
                                  samples=4, lr=0.02, eval_samples=8)
    loader = DataLoader(TensorDataset(x, y), batch_size=25)
    trainer = _trainer(30)
    trainer.fit(module, loader)
    result = trainer.test(module, loader, verbose=False)[0]
    assert set(result) == {"test/rmse", "test/log_likelihood", "test/crps"}
    assert result["test/rmse"] < 1.0 and math.isfinite(result["test/log_likelihood"])
    assert 0 < result["test/crps"] < result["test/rmse"]


def test_bad_arguments_name_the_value() -> None:
    model = nn.Sequential(NoisyLinear(3, 1, Bernoulli(0.9)))
    with pytest.raises(ValueError, match="n_train must be the number of training examples"):
        NoisyLightningModule(model, Gaussian(1.0), n_train=0)
    with pytest.raises(ValueError, match="objective"):
        NoisyLightningModule(model, Gaussian(1.0), n_train=5, objective="elbo")
    with pytest.raises(TypeError, match="dropprior Likelihood"):
        NoisyLightningModule(model, nn.MSELoss(), n_train=5)
    with pytest.raises(ValueError, match="prior_weight must be a finite number > 0"):
        NoisyLightningModule(model, Gaussian(1.0), n_train=5, prior_weight=0.0)
    with pytest.raises(ValueError, match="lr must be a finite number > 0, got inf"):
        NoisyLightningModule(model, Gaussian(1.0), n_train=5, lr=math.inf)
    # at construction, not at the first training step
    with pytest.raises(ValueError, match=r"sigma0 must be > 0 \(math.inf for no prior\), got 0"):
        NoisyLightningModule(model, Gaussian(1.0), n_train=5, sigma0=0)
