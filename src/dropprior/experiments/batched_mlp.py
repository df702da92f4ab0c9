r"""G regression MLPs with multiplicative noise, trained at once as one batched network.

A hyperparameter grid (dropout rate p × precision τ) is G independent networks. Stacking their
weights as (G, D_in, D_out) tensors and multiplying with :func:`torch.baddbmm` trains all of them in
the time of a few: this is what makes the UCI protocol (a 12-point grid, 20 splits, 4000 epochs)
fit on a CPU. Every network sees the same minibatches; its noise, weights and objective are its own.

Model (one hidden layer by default, noise on the inputs of every weight layer, as in MC dropout):

.. math:: f_g(x) = \mathrm{ReLU}((x \odot \xi_1) W_{1g} + b_{1g}) \odot \xi_2\, W_{2g} + b_{2g}

with ξ drawn from network g's law at the ``"unit"`` structure (one ξ per input unit and example:
dropout / ARD) or the ``"weight"`` structure (one ξ per weight and example: DropConnect).

Objectives, per example, with Gaussian likelihood of precision τ_g (standardised units) and the EP
weight prior ‖W‖²/(2σ0²) written as a weight decay λ_g:

* ``"mc"`` (paper eq. 3): mean over S draws of log N(y | f(x, ξ_s), 1/τ_g);
* ``"marginal"`` (eq. 10): log-mean-exp over S draws, the tighter bound on the marginal MAP.

Both are :func:`dropprior.objectives.reduce_draws`, the objectives' one implementation.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from dropprior._validation import check_choice
from dropprior.functional import fused_plan, fused_sample
from dropprior.noise import NoiseLaw
from dropprior.objectives import reduce_draws

__all__ = ["BatchedMLP", "train_batched", "predict_batched", "score_batched", "Scores",
           "BATCHED_STRUCTURES", "OBJECTIVES"]

#: Structures of the batched network's noise.
BATCHED_STRUCTURES = ("unit", "weight")
#: Training objectives.
OBJECTIVES = ("mc", "marginal")


class BatchedMLP(nn.Module):
    """``n_networks`` ReLU MLPs of identical shape with stacked parameters.

    Weights are initialised as Keras' ``glorot_uniform`` (the MC-dropout reference code), biases 0.

    Shape:
        forward: x (G, B, D_in) and one noise tensor per layer → (G, B).
    """

    def __init__(self, n_networks: int, n_inputs: int, hidden: Sequence[int],
                 generator: torch.Generator | None = None) -> None:
        super().__init__()
        sizes = [n_inputs, *hidden, 1]
        self.weights = nn.ParameterList()
        self.biases = nn.ParameterList()
        for d_in, d_out in zip(sizes[:-1], sizes[1:], strict=False):
            bound = math.sqrt(6.0 / (d_in + d_out))
            w = (torch.rand(n_networks, d_in, d_out, generator=generator) * 2 - 1) * bound
            self.weights.append(nn.Parameter(w))
            self.biases.append(nn.Parameter(torch.zeros(n_networks, 1, d_out)))

    @property
    def layer_inputs(self) -> list[int]:
        """Input width of every weight layer (the width of its noise)."""
        return [int(w.shape[1]) for w in self.weights]

    def forward(self, x: Tensor, noise: Sequence[Tensor | None]) -> Tensor:
        h = x
        last = len(self.weights) - 1
        for i, (w, b, xi) in enumerate(zip(self.weights, self.biases, noise, strict=False)):
            if xi is None:
                h = torch.baddbmm(b, h, w)
            elif xi.dim() == 3:  # unit structure: (G, B, D_in)
                h = torch.baddbmm(b, h * xi, w)
            else:  # weight structure: (G, B, D_in, D_out)
                h = torch.einsum("gbi,gbio,gio->gbo", h, xi, w) + b
            if i < last:
                h = torch.relu(h)
        return h.squeeze(-1)

    def weight_norms(self) -> Tensor:
        """Σ over layers of ‖W_g‖², per network. Shape: (G,)."""
        return sum(w.pow(2).sum(dim=(1, 2)) for w in self.weights)  # type: ignore[return-value]


class _NoiseSampler:
    """Draws each network's noise; networks that share one law object share one sampling call.

    Where the fused kernel draws the law (:func:`~dropprior.functional.fused_plan`: every
    law of Table 1 in float32 on CPU, by Numba), ξ comes from it, seeded from the generator
    (faster than torch's serial CPU samplers; docs/cli.md has the timings). Elsewhere
    ``law.sample``.
    """

    def __init__(self, laws: Sequence[NoiseLaw], structure: str, widths: Sequence[int],
                 hidden_out: Sequence[int]) -> None:
        self.structure = check_choice("structure", structure, BATCHED_STRUCTURES)
        groups: dict[int, list[int]] = {}
        self.laws: dict[int, NoiseLaw] = {}
        for g, law in enumerate(laws):
            groups.setdefault(id(law), []).append(g)
            self.laws[id(law)] = law
        self.groups = list(groups.items())
        order = [g for _, members in self.groups for g in members]
        self.inverse = torch.argsort(torch.tensor(order))
        self.identity = order == sorted(order)
        self.widths = list(widths)
        self.outs = list(hidden_out)

    @staticmethod
    def _draw(law: NoiseLaw, out: Tensor, generator: torch.Generator | None) -> None:
        plan = fused_plan(law, out)
        if plan is not None:
            fused_sample(out, plan, generator)
        else:
            out.copy_(law.sample(out.shape, generator=generator))  # type: ignore[call-arg]

    def __call__(self, batch: int, generator: torch.Generator | None) -> list[Tensor]:
        out = []
        for d_in, d_out in zip(self.widths, self.outs, strict=False):
            shape = (batch, d_in) if self.structure == "unit" else (batch, d_in, d_out)
            xi = torch.empty(len(self.inverse), *shape)  # the groups' draws, one after the other
            start = 0
            for key, members in self.groups:
                self._draw(self.laws[key], xi[start:start + len(members)], generator)
                start += len(members)
            out.append(xi if self.identity else xi[self.inverse])
        return out


def train_batched(x: Tensor, y: Tensor, laws: Sequence[NoiseLaw], precision: Tensor,
                  weight_decay: Tensor, *, hidden: Sequence[int] = (50,), epochs: int = 40,
                  batch_size: int = 128, lr: float = 1e-3, structure: str = "unit",
                  objective: str = "mc", samples: int = 1,
                  generator: torch.Generator | None = None) -> BatchedMLP:
    r"""Train G = ``len(laws)`` networks with Adam, on shared or on per-network data.

    Per network g the minimised loss is, averaged over a minibatch,

    .. math:: -\ell_g(x_b, y_b) + \tfrac{1}{2}\tau_g \lambda_g \sum_l \|W_{lg}\|^2

    where ℓ is the MC (mean over S draws) or marginal (log-mean-exp over S draws) Gaussian
    log-likelihood with precision τ_g. With S = 1 and ``"mc"`` this has the minimiser and Adam
    trajectory of the MC-dropout reference loss mean (y − f)² + λ‖W‖² (Adam is invariant to the
    factor τ_g/2). The prior term is the EP weight prior with σ0² = 1/(N τ_g λ_g).

    Args:
        x: inputs, standardised. y: targets, standardised.
        laws: one noise law per network (reuse one object for networks that share a law: they
            are sampled in one call).
        precision: τ_g in standardised units. weight_decay: λ_g.
        hidden: hidden layer widths.
        epochs, batch_size, lr: Adam schedule (one reshuffle of the row positions per epoch,
            shared by all networks).
        structure: ``"unit"`` or ``"weight"``. objective: ``"mc"`` or ``"marginal"``.
        samples: S noise draws per example and step.
        generator: source of the shuffles, the initial weights and the noise.

    Shape:
        x: (N, D) shared or (G, N, D) per network; y: (N,) or (G, N); precision, weight_decay: (G,).
    """
    check_choice("objective", objective, OBJECTIVES)
    check_choice("structure", structure, BATCHED_STRUCTURES)
    if samples < 1:
        raise ValueError(f"samples={samples!r} must be >= 1")
    if epochs < 1 or batch_size < 1:
        raise ValueError(f"epochs={epochs!r} and batch_size={batch_size!r} must be >= 1")
    n_networks = len(laws)
    if precision.shape != (n_networks,) or weight_decay.shape != (n_networks,):
        raise ValueError(f"precision and weight_decay must have shape ({n_networks},), got "
                         f"{tuple(precision.shape)} and {tuple(weight_decay.shape)}")
    x, y = _per_network(x, y, n_networks)
    model = BatchedMLP(n_networks, x.shape[-1], hidden, generator=generator)
    sampler = _NoiseSampler(laws, structure, model.layer_inputs, [*hidden, 1])
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    tau = precision.to(x.dtype)[:, None]
    decay = (0.5 * precision * weight_decay).to(x.dtype)
    log_norm = 0.5 * torch.log(tau / (2 * math.pi))
    n = x.shape[1]
    for _ in range(epochs):
        order = torch.randperm(n, generator=generator)
        for start in range(0, n, batch_size):
            idx = order[start:start + batch_size].repeat(samples)
            xb, yb = x[:, idx], y[:, idx]
            out = model(xb, sampler(idx.numel(), generator))
            loglik = (log_norm - 0.5 * tau * (out - yb).pow(2)).view(n_networks, samples, -1)
            per_example = reduce_draws(loglik.transpose(0, 1), objective)  # (G, B)
            loss = (-per_example.mean(dim=1) + decay * model.weight_norms()).sum()
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
    return model


def _per_network(x: Tensor, y: Tensor, n_networks: int) -> tuple[Tensor, Tensor]:
    """Broadcast shared data (N, D), (N,) to per-network views (G, N, D), (G, N)."""
    if x.dim() == 2:
        x = x.expand(n_networks, *x.shape)
    if y.dim() == 1:
        y = y.expand(n_networks, *y.shape)
    if x.dim() != 3 or x.shape[0] != n_networks or y.shape != x.shape[:2]:
        raise ValueError(f"x must be (N, D) or ({n_networks}, N, D) and y (N,) or "
                         f"({n_networks}, N) to match; got {tuple(x.shape)} and {tuple(y.shape)}")
    return x, y


@torch.no_grad()
def predict_batched(model: BatchedMLP, x: Tensor, laws: Sequence[NoiseLaw], *, samples: int,
                    structure: str = "unit", generator: torch.Generator | None = None,
                    chunk_elements: int = 2_000_000) -> Iterator[Tensor]:
    """MC predictions of every network for T = ``samples`` noise draws, in chunks of draws
    (so that T = 10 000 draws on thousands of points fit in memory).

    Shape:
        x: (N, D) or (G, N, D) → yields (G, t, N) chunks whose t add up to T.
    """
    if samples < 1:
        raise ValueError(f"samples={samples!r} must be >= 1")
    n_networks = len(laws)
    outs = [int(w.shape[2]) for w in model.weights]
    sampler = _NoiseSampler(laws, structure, model.layer_inputs, outs)
    widest = max(model.layer_inputs + outs) * (max(outs) if structure == "weight" else 1)
    if x.dim() == 2:
        x = x.expand(n_networks, *x.shape)
    n = x.shape[1]
    per_draw = n_networks * n * widest
    chunk = max(1, min(samples, chunk_elements // max(per_draw, 1)))
    for start in range(0, samples, chunk):
        t = min(chunk, samples - start)
        xb = x.repeat(1, t, 1)
        yield model(xb, sampler(t * n, generator)).view(n_networks, t, n)


@dataclass(frozen=True)
class Scores:
    """Test metrics of G networks, in the targets' original units. Shape: each (G,)."""

    rmse: Tensor
    log_likelihood: Tensor


def score_batched(draws: Iterable[Tensor], y: Tensor, y_mean: Tensor, y_std: Tensor,
                  tau: Tensor) -> Scores:
    r"""RMSE of the MC mean and the MC test log-likelihood of the MC-dropout reference code,

    .. math:: \tfrac1N\sum_n \Big[\operatorname{logsumexp}_t(-\tfrac{\tau}{2}(y_n-\hat y_{tn})^2)
              - \log T - \tfrac12\log 2\pi + \tfrac12\log\tau\Big]

    with ŷ in original units and τ the precision in original units. Accumulated over chunks of
    draws (a running sum for the mean, a log-sum-exp per chunk for the likelihood).

    Shape:
        draws: chunks (G, t, N) of standardised predictions; y: (N,) or (G, N) in original units;
        y_mean, y_std, tau: (G,) (or scalars), original units.
    """
    target = y.double() if y.dim() == 2 else y.double()[None]
    target = target[:, None, :]
    t = torch.as_tensor(tau, dtype=torch.float64).reshape(-1, 1, 1)
    y_mean = torch.as_tensor(y_mean, dtype=torch.float64).reshape(-1, 1, 1)
    y_std = torch.as_tensor(y_std, dtype=torch.float64).reshape(-1, 1, 1)
    total = None
    lse = []
    count = 0
    for chunk in draws:
        pred = chunk.double() * y_std + y_mean
        total = pred.sum(dim=1) if total is None else total + pred.sum(dim=1)
        lse.append(torch.logsumexp(-0.5 * t * (target - pred).pow(2), dim=1))
        count += chunk.shape[1]
    if total is None:
        raise ValueError("score_batched needs at least one chunk of draws")
    rmse = (total / count - target[:, 0]).pow(2).mean(dim=1).sqrt()
    inner = torch.logsumexp(torch.stack(lse), dim=0) - math.log(count)
    ll = inner.mean(dim=1) - 0.5 * math.log(2 * math.pi) + 0.5 * torch.log(t.reshape(-1))
    return Scores(rmse=rmse, log_likelihood=ll)
