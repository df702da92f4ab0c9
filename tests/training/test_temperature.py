"""Temperature scaling: T against scipy's bounded minimiser of the held-out NLL (sklearn's log
loss), the scaled module against the logits divided by T, and every bad input named."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.optimize import minimize_scalar
from sklearn.metrics import log_loss

from dropprior import TemperatureScaled, fit_temperature


def _overconfident(n: int = 2000, classes: int = 4, seed: int = 0, sharpen: float = 3.0):
    """Labels drawn from softmax(z); the logits returned are sharpened by ``sharpen``, so the
    calibrating temperature is near ``sharpen``."""
    g = torch.Generator().manual_seed(seed)
    z = 1.5 * torch.randn(n, classes, generator=g, dtype=torch.float64)
    y = torch.multinomial(torch.softmax(z, -1), 1, generator=g).squeeze(1)
    return sharpen * z, y


def _scipy_temperature(logits: torch.Tensor, y: torch.Tensor) -> float:
    z, labels = logits.numpy(), y.numpy()

    def loss(log_t: float) -> float:
        p = torch.softmax(torch.from_numpy(z / np.exp(log_t)), -1).numpy()
        return log_loss(labels, p, labels=list(range(z.shape[1])))

    return float(np.exp(minimize_scalar(loss, bounds=(-5, 5), method="bounded",
                                        options={"xatol": 1e-10}).x))


@pytest.mark.parametrize("sharpen", [0.5, 1.0, 3.0])
def test_the_temperature_minimises_sklearns_log_loss(sharpen) -> None:
    logits, y = _overconfident(sharpen=sharpen)
    t = fit_temperature(logits, y)
    assert t == pytest.approx(_scipy_temperature(logits, y), rel=1e-6)
    assert t == pytest.approx(sharpen, rel=0.1)  # the labels' own law, up to sampling


def test_float32_logits_give_the_same_temperature() -> None:
    logits, y = _overconfident()
    assert fit_temperature(logits.float(), y) == pytest.approx(fit_temperature(logits, y),
                                                               rel=1e-5)


def test_int32_labels_give_the_same_temperature() -> None:
    logits, y = _overconfident()
    assert fit_temperature(logits, y.int()) == fit_temperature(logits, y)


def test_the_scaled_module_divides_the_logits() -> None:
    model = torch.nn.Linear(5, 3)
    scaled = TemperatureScaled(model, 2.5)
    x = torch.randn(7, 5)
    torch.testing.assert_close(scaled(x), model(x) / 2.5)
    assert "temperature=2.5" in repr(scaled)


def test_no_optimum_inside_the_bracket_is_an_error() -> None:
    y = torch.tensor([0, 1, 2])
    separated = 5.0 * torch.eye(3)
    with pytest.raises(ValueError, match="still falls at T = 1e-4"):
        fit_temperature(separated, y)
    with pytest.raises(ValueError, match="still falls at T = 1e4"):
        fit_temperature(-separated, y)
    with pytest.raises(ValueError, match="equal across the classes in every row"):
        fit_temperature(torch.ones(3, 3), y)


def test_bad_inputs_are_named() -> None:
    logits = torch.randn(4, 3)
    with pytest.raises(ValueError, match=r"shape \(N, C\), got torch.float32 of shape \(4,\)"):
        fit_temperature(torch.randn(4), torch.zeros(4, dtype=torch.long))
    with pytest.raises(ValueError, match=r"floating-point .* got torch.int64 of shape \(4, 3\)"):
        fit_temperature(torch.ones(4, 3, dtype=torch.long), torch.zeros(4, dtype=torch.long))
    with pytest.raises(TypeError, match="torch.Tensor of shape \\(N, C\\), got list"):
        fit_temperature([[0.0, 1.0]], torch.zeros(1, dtype=torch.long))
    with pytest.raises(TypeError, match="got numpy.ndarray"):
        fit_temperature(np.zeros((4, 3)), torch.zeros(4, dtype=torch.long))
    with pytest.raises(TypeError, match="labels y must be integers"):
        fit_temperature(logits, torch.zeros(4))
    with pytest.raises(TypeError, match="labels y must be a torch.Tensor of integers, got list"):
        fit_temperature(logits, [0, 1, 2, 0])
    with pytest.raises(ValueError, match=r"N >= 1 examples of C >= 2 classes, got shape \(4, 1\)"):
        fit_temperature(torch.zeros(4, 1), torch.zeros(4, dtype=torch.long))
    with pytest.raises(ValueError, match=r"labels y of shape \(3,\) must have shape "
                                         r"\(4,\)"):
        fit_temperature(logits, torch.zeros(3, dtype=torch.long))
    with pytest.raises(ValueError, match=r"labels must lie in \[0, 2\].*got \[0, 3\]"):
        fit_temperature(logits, torch.tensor([0, 1, 2, 3]))
    with pytest.raises(ValueError, match="logits holds 1 non-finite value"):
        fit_temperature(torch.tensor([[0.0, float("nan")], [1.0, 0.0]]), torch.tensor([0, 1]))
    with pytest.raises(ValueError, match="iterations must be an int >= 1, got 0"):
        fit_temperature(logits, torch.tensor([0, 1, 2, 0]), iterations=0)
    with pytest.raises(ValueError, match="temperature must be a finite number > 0, got -1.0"):
        TemperatureScaled(torch.nn.Linear(2, 2), -1.0)
