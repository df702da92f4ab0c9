"""Tiny models shared by the training tests: a mask-injecting MLP whose Bernoulli masks can be
enumerated exactly."""

from __future__ import annotations

import itertools
import math

import torch
from torch import Tensor, nn


class MaskMLP(nn.Module):
    """x → tanh(x W1 + b1) ⊙ m → · W2 + b2, with m ~ Bernoulli(keep) per example and hidden unit.

    ``forward(x, mask)`` uses the given mask (N, H) or (H,); without one it draws from torch's
    global RNG, so that ``torch.manual_seed`` pins the draws.
    """

    def __init__(self, d_in: int = 2, hidden: int = 4, keep: float = 0.6) -> None:
        super().__init__()
        self.hidden = hidden
        self.keep = keep
        self.fc1 = nn.Linear(d_in, hidden)
        self.fc2 = nn.Linear(hidden, 1)

    def forward(self, x: Tensor, mask: Tensor | None = None) -> Tensor:
        h = torch.tanh(self.fc1(x))
        if mask is None:
            mask = torch.bernoulli(torch.full_like(h, self.keep))
        return self.fc2(h * mask).squeeze(-1)

    def all_masks(self) -> tuple[Tensor, Tensor]:
        """Every mask in {0,1}^H and its log probability under Bernoulli(keep)."""
        masks = torch.tensor(list(itertools.product([0.0, 1.0], repeat=self.hidden)),
                             dtype=self.fc1.weight.dtype)
        on = masks.sum(dim=1)
        log_p = on * math.log(self.keep) + (self.hidden - on) * math.log1p(-self.keep)
        return masks, log_p


def regression_data(n: int = 40) -> tuple[Tensor, Tensor]:
    """n rows of 2 inputs and a noisy linear target (fixed seed)."""
    g = torch.Generator().manual_seed(0)
    x = torch.randn(n, 2, generator=g)
    return x, x.sum(dim=1) + 0.1 * torch.randn(n, generator=g)


def resumed_equals_straight(path, x: Tensor, y: Tensor, **fit_kwargs) -> MaskMLP:  # noqa: ANN001
    """Train a MaskMLP for 4 epochs straight, and again stopped after 2 and resumed from the
    checkpoint ``path``; assert the two end bit for bit equal and return the trained model."""
    from dropprior import fit
    from dropprior.likelihoods import Gaussian

    models = []
    for stops in ([4], [2, 4]):
        torch.manual_seed(1)
        model = MaskMLP()
        for epochs in stops:
            fit(model, Gaussian(0.5), x, y, lr=0.05, epochs=epochs, progress=False,
                checkpoint=path, resume=True, **fit_kwargs)
        models.append(model)
        path.unlink()
    for a, b in zip(models[0].parameters(), models[1].parameters(), strict=True):
        torch.testing.assert_close(a, b, rtol=0, atol=0)
    return models[0]
