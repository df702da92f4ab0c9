"""Per-example log-likelihoods log p(y_n | f(x_n)) for regression and classification.

A likelihood turns a network's output for one noise draw into one log-density per example; the
objectives (:mod:`dropprior.objectives`) average or log-mean-exp these over noise draws.

Every likelihood is a thin :class:`torch.nn.Module` (so that a learned noise precision is a
parameter the optimizer sees) whose :meth:`~Likelihood.log_prob` is exact — no constants dropped:

* :class:`Gaussian` — :math:`\\log \\mathcal N(y; \\hat y, \\sigma^2)` summed over output
  dimensions,
  with a fixed, learned or predicted (heteroscedastic) standard deviation σ;
* :class:`Categorical` — :math:`\\log \\operatorname{softmax}(\\text{logits})_y`;
* :class:`Bernoulli` — :math:`y \\log \\sigma(\\ell) + (1-y)\\log(1-\\sigma(\\ell))`, via softplus.

Trailing non-batch dimensions (several regression targets, time steps of a sequence) are summed:
the result always has shape (N,), one value per example.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from dropprior._validation import check_finite_data, class_labels, type_name

__all__ = ["Likelihood", "Gaussian", "Categorical", "Bernoulli", "check_scored_data"]

_LOG_2PI = math.log(2 * math.pi)


class Likelihood(nn.Module):
    """Abstract base: ``log_prob(output, y)`` returns log p(y_n | output_n), shape (N,)."""

    #: "regression" or "classification": how :func:`dropprior.prediction.predict` summarises.
    task: str = "regression"

    def log_prob(self, output: Tensor, y: Tensor) -> Tensor:
        raise NotImplementedError

    def check(self, output: Tensor, y: Tensor) -> None:
        """Raise a clear error if ``y`` does not fit ``output`` (shape, dtype, values)."""
        raise NotImplementedError

    def forward(self, output: Tensor, y: Tensor) -> Tensor:
        return self.log_prob(output, y)


def _sum_trailing(values: Tensor) -> Tensor:
    return values.reshape(values.shape[0], -1).sum(dim=1) if values.dim() > 1 else values


class Gaussian(Likelihood):
    r"""Gaussian regression likelihood, :math:`\log\mathcal N(y;\hat y,\sigma^2)` per example.

    .. math:: \log p(y_n\mid\hat y_n) = \sum_d -\tfrac12\log(2\pi\sigma_d^2)
              - \frac{(y_{nd}-\hat y_{nd})^2}{2\sigma_d^2}

    The precision of the MC-dropout papers is τ = σ⁻².

    Args:
        noise_std: the observation noise standard deviation σ > 0. ``None`` makes the model
            *heteroscedastic*: its output carries twice the target's width along the last
            dimension, the first half the mean and the second half a raw value r with
            σ = softplus(r) (for a 1-d target (N,), the output is (N, 2)).
        learn: if True (with a float ``noise_std``), σ is a learned parameter initialised at
            ``noise_std`` (stored as the inverse softplus, so it stays positive).

    Shape:
        output: (N,) or (N, D...) like ``y`` (``(N, 2)`` / ``(N, 2D)`` when heteroscedastic);
        y: (N,) or (N, D...), floating; result: (N,).

    Example:
        >>> lik = Gaussian(noise_std=0.5)
        >>> lik.log_prob(torch.zeros(3), torch.zeros(3)).shape
        torch.Size([3])
    """

    task = "regression"

    def __init__(self, noise_std: float | None = 1.0, learn: bool = False) -> None:
        super().__init__()
        self.heteroscedastic = noise_std is None
        self.learn = bool(learn)
        if noise_std is None:
            if learn:
                raise ValueError(
                    "learn=True needs a float noise_std (its initial value); noise_std=None "
                    "means the model predicts σ itself (heteroscedastic)"
                )
            self.raw_std: Tensor | None = None
            return
        if isinstance(noise_std, bool) or not isinstance(noise_std, (int, float)):
            raise TypeError(f"noise_std must be a float > 0 or None, got {noise_std!r}")
        if not (math.isfinite(noise_std) and noise_std > 0):
            raise ValueError(f"noise_std must be finite and > 0, got {noise_std!r}")
        raw = torch.tensor(float(noise_std)).expm1().log()  # inverse softplus
        if learn:
            self.raw_std = nn.Parameter(raw)
        else:
            self.register_buffer("raw_std", raw)

    @property
    def noise_std(self) -> Tensor:
        """σ (a scalar tensor); not defined for a heteroscedastic likelihood."""
        if self.raw_std is None:
            raise ValueError("a heteroscedastic Gaussian has no single noise_std; use split()")
        return F.softplus(self.raw_std)

    def split(self, output: Tensor) -> tuple[Tensor, Tensor]:
        """The predicted mean and σ from a network output (σ broadcast for the homoscedastic case).

        Shape:
            output: (..., N, ...) as for :meth:`log_prob`; mean and std have the target's shape.
        """
        if self.raw_std is not None:
            return output, self.noise_std.to(output.dtype).expand_as(output)
        if output.dim() < 2 or output.shape[-1] % 2:
            raise ValueError(
                "a heteroscedastic Gaussian (noise_std=None) needs an output whose last dimension "
                f"holds the mean and a raw std (even size), got output of shape "
                f"{tuple(output.shape)}"
            )
        mean, raw = output.chunk(2, dim=-1)
        return mean, F.softplus(raw)

    def check(self, output: Tensor, y: Tensor) -> None:
        if not isinstance(y, Tensor):
            raise TypeError(f"y must be a torch.Tensor, got {type(y).__name__}")
        if not y.is_floating_point():
            raise TypeError(f"Gaussian likelihood needs floating targets y, got dtype {y.dtype}")
        mean_shape = output.shape
        if self.heteroscedastic:
            mean_shape = self.split(output)[0].shape
            if y.dim() == 1 and output.dim() == 2 and output.shape[1] == 2:
                mean_shape = output.shape[:1]
        if tuple(mean_shape) != tuple(y.shape):
            raise ValueError(
                f"y has shape {tuple(y.shape)} but the model predicts means of shape "
                f"{tuple(mean_shape)}; they must match (e.g. y.reshape(-1) for a (N, 1) output "
                "or vice versa)"
            )

    def log_prob(self, output: Tensor, y: Tensor) -> Tensor:
        self.check(output, y)
        mean, std = self.split(output)
        if self.heteroscedastic and y.dim() == 1:
            mean, std = mean.squeeze(-1), std.squeeze(-1)
        log_density = -0.5 * _LOG_2PI - torch.log(std) - 0.5 * ((y - mean) / std) ** 2
        return _sum_trailing(log_density)


class Categorical(Likelihood):
    r"""Categorical classification likelihood on logits, :math:`\log\mathrm{softmax}(\ell_n)_{y_n}`.

    Shape:
        output: logits (N, C) or (N, T..., C); y: integer labels (N,) or (N, T...) in
        [0, C); result: (N,), summed over T.
    """

    task = "classification"

    @staticmethod
    def check_logits(output: Tensor) -> None:
        """Raise a ValueError unless ``output`` holds logits of at least two classes along its
        last axis (one logit is a binary classifier: :class:`Bernoulli`)."""
        if output.dim() < 2 or output.shape[-1] < 2:
            raise ValueError(
                f"Categorical likelihood needs logits of shape (N, ..., C) with C >= 2 classes, "
                f"got shape {tuple(output.shape)}; a binary classifier with one logit takes "
                "Bernoulli()"
            )

    def check(self, output: Tensor, y: Tensor) -> None:
        if not isinstance(y, Tensor):
            raise TypeError(f"y must be a torch.Tensor, got {type(y).__name__}")
        self.check_logits(output)
        if tuple(output.shape[:-1]) != tuple(y.shape):
            raise ValueError(
                f"y has shape {tuple(y.shape)} but the logits have shape {tuple(output.shape)}; "
                "expected y of shape logits.shape[:-1] (one label per example)"
            )
        class_labels(y, tuple(y.shape), output.shape[-1])

    def log_prob(self, output: Tensor, y: Tensor) -> Tensor:
        self.check(output, y)
        log_p = torch.log_softmax(output, dim=-1).gather(-1, y.unsqueeze(-1)).squeeze(-1)
        return _sum_trailing(log_p)


class Bernoulli(Likelihood):
    r"""Bernoulli (binary) likelihood on logits ℓ, computed with softplus:

    .. math:: \log p(y\mid\ell) = y\,\ell - \operatorname{softplus}(\ell)

    Shape:
        output: logits (N,) or (N, D...); y: the same shape, values in {0, 1} (float, int or
        bool); result: (N,), summed over D.
    """

    task = "classification"

    def check(self, output: Tensor, y: Tensor) -> None:
        if not isinstance(y, Tensor):
            raise TypeError(f"y must be a torch.Tensor, got {type(y).__name__}")
        if y.is_complex():
            raise TypeError(f"Bernoulli likelihood needs real 0/1 targets, got dtype {y.dtype}")
        if tuple(output.shape) != tuple(y.shape):
            raise ValueError(
                f"y has shape {tuple(y.shape)} but the logits have shape {tuple(output.shape)}; "
                "they must match"
            )
        bad = (y != 0) & (y != 1)
        if y.numel() and bool(bad.any()):
            raise ValueError(f"Bernoulli targets must be 0 or 1, got {y[bad][0].item()!r} "
                             f"({int(bad.sum())} such value(s))")

    def log_prob(self, output: Tensor, y: Tensor) -> Tensor:
        self.check(output, y)
        y = y.to(output.dtype)
        return _sum_trailing(y * output - F.softplus(output))


def check_scored_data(likelihood: object, x: object, y: object) -> None:
    """Raise a TypeError unless ``likelihood`` is a :class:`Likelihood` and ``x``, ``y`` are
    tensors with a batch dimension, and a ValueError (how many, the first example) where the
    floating-point data hold nan or ±inf: the checks of the functions that score a fixed
    model on data (the evidence rules, the inclusion probabilities)."""
    if not isinstance(likelihood, Likelihood):
        raise TypeError(f"likelihood must be a dropprior Likelihood, got {type_name(likelihood)}")
    for name, data in (("x", x), ("y", y)):
        if not isinstance(data, Tensor) or data.dim() == 0:
            raise TypeError(f"{name} must be a tensor with a batch dimension")
        check_finite_data(name, data)
