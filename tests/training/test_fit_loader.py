"""fit with a DataLoader and an optimizer class, against a plain PyTorch training loop over the
same batches."""

from __future__ import annotations

import pytest
import torch
from torch import nn
from torch.distributions import Normal
from torch.utils.data import DataLoader, IterableDataset, TensorDataset

from dropprior import fit
from dropprior.likelihoods import Gaussian
from dropprior.nn import NoisyLinear
from dropprior.noise import Bernoulli

f64 = torch.float64


def _data(n: int = 30) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    x = torch.randn(n, 3, generator=g, dtype=f64)
    return x, x @ torch.tensor([[1.0], [-2.0], [0.5]], dtype=f64) + 0.1


def _model() -> nn.Sequential:
    torch.manual_seed(0)  # Bernoulli(1.0): the draws are all 1, so the reference is exact
    return nn.Sequential(NoisyLinear(3, 1, Bernoulli(1.0))).double()


def test_a_loader_and_an_optimizer_class_train_as_a_plain_loop() -> None:
    x, y = _data()
    loader = DataLoader(TensorDataset(x, y), batch_size=8, shuffle=False)
    model, reference = _model(), _model()
    fit(model, Gaussian(0.5), loader, optimizer=torch.optim.SGD,
        optimizer_kwargs={"momentum": 0.5}, lr=0.05, epochs=3, progress=False)
    opt = torch.optim.SGD(reference.parameters(), lr=0.05, momentum=0.5)
    for _ in range(3):
        for xb, yb in loader:
            loss = -Normal(reference(xb), 0.5).log_prob(yb).sum(-1).mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
    for p, q in zip(model.parameters(), reference.parameters(), strict=True):
        torch.testing.assert_close(p, q)


def test_a_loader_scales_the_prior_by_the_dataset_size() -> None:
    x, y = _data()
    a, b = _model(), _model()
    fit(a, Gaussian(0.5), DataLoader(TensorDataset(x, y), batch_size=30), sigma0=0.3,
        optimizer="sgd", optimizer_kwargs={"momentum": 0.0}, lr=0.1, epochs=4, progress=False)
    fit(b, Gaussian(0.5), x, y, sigma0=0.3, optimizer="sgd",
        optimizer_kwargs={"momentum": 0.0}, lr=0.1, epochs=4, progress=False)  # full batch
    for p, q in zip(a.parameters(), b.parameters(), strict=True):
        torch.testing.assert_close(p, q)


class _Stream(IterableDataset):
    def __iter__(self):
        yield from zip(*_data(), strict=True)


def test_bad_loader_and_optimizer_arguments_say_what_is_accepted() -> None:
    x, y = _data()
    loader = DataLoader(TensorDataset(x, y), batch_size=8)
    model = _model()
    with pytest.raises(ValueError, match="pass it alone, with y=None"):
        fit(model, Gaussian(0.5), loader, y, progress=False)
    with pytest.raises(ValueError, match="batch_size=8 belongs to the DataLoader"):
        fit(model, Gaussian(0.5), loader, batch_size=8, progress=False)
    with pytest.raises(ValueError, match="validation must be an explicit"):
        fit(model, Gaussian(0.5), loader, validation=0.2, progress=False)
    with pytest.raises(ValueError, match=r"needs len\(loader.dataset\)"):
        fit(model, Gaussian(0.5), DataLoader(_Stream(), batch_size=4), progress=False)
    with pytest.raises(ValueError, match="pair \\(x, y\\) of tensors"):
        fit(model, Gaussian(0.5), DataLoader(TensorDataset(x), batch_size=4), progress=False)
    with pytest.raises(TypeError, match="torch.optim.Optimizer subclass, got the class dict"):
        fit(model, Gaussian(0.5), x, y, optimizer=dict, progress=False)
    with pytest.raises(ValueError, match="other than lr"):
        fit(model, Gaussian(0.5), x, y, optimizer_kwargs={"lr": 0.1}, progress=False)
    with pytest.raises(ValueError, match="optimizer"):
        fit(model, Gaussian(0.5), x, y, optimizer="lbfgs", progress=False)
    # a DataLoader's data is not read ahead; a nan in it is named as the data's, not as a
    # diverged loss that a smaller lr would cure
    bad = y.clone()
    bad[13] = float("nan")
    with pytest.raises(ValueError, match=r"a training batch's y holds 1 non-finite value\(s\) "
                                         r"\(nan or ±inf\) at epoch 0"):
        fit(model, Gaussian(0.5), DataLoader(TensorDataset(x, bad), batch_size=8), epochs=1,
            progress=False)


def _sgd_with_weighted_prior(reference: nn.Module, x: torch.Tensor, y: torch.Tensor,
                             weights: tuple[float, ...]) -> None:
    """Full-batch SGD (lr 0.05) on −mean log N(y | f(x), 0.5²) + w · ‖θ‖²/(2·0.2²) / N, one
    step per weight w: the loss fit should minimise, written out."""
    opt = torch.optim.SGD(reference.parameters(), lr=0.05)
    for weight in weights:
        penalty = sum((p**2).sum() for p in reference.parameters()) / (2 * 0.2**2)
        loss = (-Normal(reference(x), 0.5).log_prob(y).sum(-1).mean()
                + weight * penalty / x.shape[0])
        opt.zero_grad()
        loss.backward()
        opt.step()


def test_prior_warmup_weights_the_prior_up_to_one() -> None:
    x, y = _data()
    model, reference = _model(), _model()
    fit(model, Gaussian(0.5), x, y, sigma0=0.2, optimizer="sgd",
        optimizer_kwargs={"momentum": 0.0}, lr=0.05, epochs=4, prior_warmup=2, progress=False)
    # (epoch + 1) / (warmup + 1), then the full prior
    _sgd_with_weighted_prior(reference, x, y, (1 / 3, 2 / 3, 1.0, 1.0))
    for p, q in zip(model.parameters(), reference.parameters(), strict=True):
        torch.testing.assert_close(p, q)
    with pytest.raises(ValueError, match="prior_warmup must be an int >= 0"):
        fit(model, Gaussian(0.5), x, y, prior_warmup=-1, progress=False)


def test_prior_weight_tempers_the_prior_throughout_and_after_the_warmup() -> None:
    x, y = _data()
    model, reference = _model(), _model()
    fit(model, Gaussian(0.5), x, y, sigma0=0.2, optimizer="sgd",
        optimizer_kwargs={"momentum": 0.0}, lr=0.05, epochs=4, prior_warmup=1,
        prior_weight=0.3, progress=False)
    # β · min(1, (epoch + 1) / (warmup + 1))
    _sgd_with_weighted_prior(reference, x, y, (0.3 / 2, 0.3, 0.3, 0.3))
    for p, q in zip(model.parameters(), reference.parameters(), strict=True):
        torch.testing.assert_close(p, q)
    for bad in (0, -1.0, float("inf"), float("nan")):
        with pytest.raises(ValueError, match=r"prior_weight must be a finite number > 0 "
                                             r"\(1: the posterior\), got"):
            fit(model, Gaussian(0.5), x, y, prior_weight=bad, progress=False)
    for bad in (True, "1", None):
        with pytest.raises(TypeError, match=r"prior_weight must be a number, got"):
            fit(model, Gaussian(0.5), x, y, prior_weight=bad, progress=False)
