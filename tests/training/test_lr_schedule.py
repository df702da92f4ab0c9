"""fit(lr_lambda=...): the per-epoch learning rates equal torch's LambdaLR / CosineAnnealingLR,
a resumed run follows the schedule, and bad schedules are refused by value."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from dropprior import cosine_lr, fit
from dropprior.likelihoods import Gaussian
from tests.training._training_models import MaskMLP, regression_data, resumed_equals_straight

_SEEN: list[float] = []


class _SpySGD(torch.optim.SGD):
    """SGD that records the learning rate of every step."""

    def step(self, closure=None):  # type: ignore[override]
        _SEEN.append(self.param_groups[0]["lr"])
        return super().step(closure)


_data = regression_data


def _torch_lrs(make_scheduler, lr: float, epochs: int) -> list[float]:
    opt = torch.optim.SGD([nn.Parameter(torch.zeros(1))], lr=lr)
    scheduler = make_scheduler(opt)
    lrs = []
    for _ in range(epochs):
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        scheduler.step()
    return lrs


def _fit_lrs(lr_lambda, lr: float, epochs: int, **kwargs) -> list[float]:
    _SEEN.clear()
    x, y = _data()
    fit(MaskMLP(), Gaussian(0.5), x, y, optimizer=_SpySGD, lr=lr, epochs=epochs,
        batch_size=20, progress=False, lr_lambda=lr_lambda, **kwargs)
    return _SEEN[::2]  # two steps per epoch


def test_cosine_lr_equals_torch_cosine_annealing():
    got = _fit_lrs(cosine_lr(7), 0.3, 7)
    want = _torch_lrs(lambda o: torch.optim.lr_scheduler.CosineAnnealingLR(o, T_max=7), 0.3, 7)
    assert got == pytest.approx(want, rel=1e-12, abs=1e-15)
    assert got[0] == 0.3 and got[-1] < 0.3 * 0.06


def test_cosine_lr_past_its_epochs_rises_along_the_same_cosine():
    """As its docstring says: symmetric about ``epochs`` and back at the full rate at twice."""
    factor = cosine_lr(4)
    assert factor(4) == pytest.approx(0.0, abs=1e-15)
    assert factor(6) == pytest.approx(factor(2), rel=1e-12)
    assert factor(8) == pytest.approx(1.0, rel=1e-12)


def test_any_lambda_equals_torch_lambda_lr():
    def step_down(e: int) -> float:
        return 0.5 ** (e // 2)

    want = _torch_lrs(lambda o: torch.optim.lr_scheduler.LambdaLR(o, step_down), 0.2, 5)
    assert _fit_lrs(step_down, 0.2, 5) == pytest.approx(want, rel=1e-12)


def test_without_lambda_the_rate_is_constant():
    assert _fit_lrs(None, 0.05, 3) == [0.05] * 3


def test_resumed_run_follows_the_schedule(tmp_path):
    x, y = _data()
    model = resumed_equals_straight(tmp_path / "ckpt.pt", x, y, batch_size=20,
                                    lr_lambda=cosine_lr(4))
    # and the schedule changed the result: a constant rate ends elsewhere
    torch.manual_seed(1)
    constant = MaskMLP()
    fit(constant, Gaussian(0.5), x, y, lr=0.05, epochs=4, batch_size=20, progress=False)
    assert not torch.equal(constant.fc1.weight, model.fc1.weight)


@pytest.mark.parametrize("bad", [-0.1, math.nan, math.inf, "1", True])
def test_bad_schedule_value_is_refused_by_value(bad):
    x, y = _data()
    with pytest.raises(ValueError, match=r"lr_lambda\(0\) must be a finite number >= 0, got"):
        fit(MaskMLP(), Gaussian(0.5), x, y, epochs=1, progress=False, lr_lambda=lambda e: bad)


def test_bad_schedule_and_horizon_are_refused():
    x, y = _data()
    with pytest.raises(TypeError, match="lr_lambda must be a function of the epoch or None"):
        fit(MaskMLP(), Gaussian(0.5), x, y, epochs=1, progress=False,
            lr_lambda=0.5)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="epochs must be an int >= 1, got 0"):
        cosine_lr(0)
