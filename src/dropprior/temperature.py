r"""Temperature scaling (Guo et al., 2017): a post-hoc calibration baseline for a classifier.

One scalar T > 0 divides the logits z, p(y | x) = softmax(z / T), and is chosen to minimise the
mean negative log-likelihood on held-out labelled data (never the training data, where a net's
NLL is near 0). In β = 1/T the held-out NLL,

.. math::
    L(\beta) = \frac1N \sum_n \Big[\log \sum_c e^{\beta z_{nc}} - \beta z_{n y_n}\Big],

is convex, and its derivative L'(β) = (1/N) Σ_n (E_{softmax(β z_n)}[z_n] − z_{n y_n}) increases
with β. :func:`fit_temperature` finds the root of L' by bisection in log β over
[1e-4, 1e4]; where L' has no root there (L keeps falling, or is flat in float64, as T → 0,
which happens when every held-out example is classified correctly with a margin; or L keeps
falling as T → ∞) it raises, rather than return a bound. torch-uncertainty's
``TemperatureScaler`` fits the same T by L-BFGS.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from dropprior._validation import (
    check_finite_data,
    check_int,
    check_number,
    class_labels,
    shape_or_type,
    type_name,
)

__all__ = ["fit_temperature", "TemperatureScaled"]

_LOG_BETA = (math.log(1e-4), math.log(1e4))


def _check(logits: Tensor, y: Tensor) -> Tensor:
    """``y`` as torch.long after checking ``logits`` ((N, C), N >= 1, C >= 2, finite) and
    ``y`` (one label in [0, C − 1] per row)."""
    if not isinstance(logits, Tensor):
        raise TypeError("logits must be a floating-point torch.Tensor of shape (N, C), got "
                        f"{type_name(logits)}")
    if not logits.is_floating_point() or logits.dim() != 2:
        raise ValueError("logits must be a floating-point tensor of shape (N, C), got "
                         f"{logits.dtype} of shape {shape_or_type(logits)}")
    n, c = logits.shape
    if n == 0 or c < 2:
        raise ValueError(f"logits must have N >= 1 examples of C >= 2 classes, got shape "
                         f"{tuple(logits.shape)}")
    y = class_labels(y, (n,), c)
    check_finite_data("logits", logits)
    return y


def _slope(beta: float, z: Tensor, z_true: Tensor) -> float:
    """L'(β): the mean over examples of E_{softmax(βz)}[z] − z_y."""
    return float(((torch.softmax(beta * z, dim=1) * z).sum(dim=1) - z_true).mean())


def fit_temperature(logits: Tensor, y: Tensor, iterations: int = 80) -> float:
    """The temperature T of the lowest mean NLL of softmax(logits / T) on labels ``y``.

    Args:
        logits: held-out logits, shape (N, C).
        y: their class indices, shape (N,).
        iterations: bisection steps in log(1/T) over [log 1e-4, log 1e4] (80 halve the
            interval's width of 18.4 below 1e-23).

    Returns:
        T in [1e-4, 1e4].

    Raises:
        TypeError: logits that are not a tensor, or labels that are not integers.
        ValueError: bad shapes, labels or non-finite logits; or no optimum inside the bracket
            (the NLL still falls at T = 1e-4 or at T = 1e4).
    """
    y = _check(logits, y)
    check_int("iterations", iterations, 1)
    z = logits.detach().double()
    z_true = z.gather(1, y.unsqueeze(1)).squeeze(1)
    if bool((z.amax(dim=1) == z.amin(dim=1)).all()):
        raise ValueError("the logits are equal across the classes in every row, so no "
                         "temperature changes the predictive")
    low, high = _LOG_BETA
    if _slope(math.exp(high), z, z_true) <= 0:
        raise ValueError("the NLL still falls at T = 1e-4: every held-out example is classified "
                         "correctly with a margin, so temperature scaling has no finite optimum; "
                         "hold out more data")
    if _slope(math.exp(low), z, z_true) > 0:
        raise ValueError("the NLL still falls at T = 1e4: the logits rank the true class below "
                         "the average class, so no temperature calibrates them")
    for _ in range(iterations):
        mid = 0.5 * (low + high)
        if _slope(math.exp(mid), z, z_true) < 0:
            low = mid
        else:
            high = mid
    return math.exp(-0.5 * (low + high))


class TemperatureScaled(nn.Module):
    """``model``'s logits divided by a fixed temperature T (from :func:`fit_temperature`).

    Args:
        model: a classifier returning logits of shape (*, C).
        temperature: T > 0.

    Example:
        >>> import torch
        >>> scaled = TemperatureScaled(torch.nn.Linear(3, 2), temperature=2.0)
        >>> x = torch.randn(4, 3)
        >>> torch.allclose(scaled(x), scaled.model(x) / 2)
        True
    """

    def __init__(self, model: nn.Module, temperature: float) -> None:
        super().__init__()
        check_number("temperature", temperature)
        self.model = model
        self.temperature = float(temperature)

    def forward(self, x: Tensor) -> Tensor:
        return self.model(x) / self.temperature

    def extra_repr(self) -> str:
        return f"temperature={self.temperature:g}"
