r"""G regression MLPs with multiplicative noise, trained at once as one stacked network.

A hyperparameter grid (dropout rate p × precision τ) over several splits is G independent
networks. :class:`BatchedMLP` is a stack of :class:`~dropprior.nn.StackedNoisyLinear` layers
(the library's noisy linear map with a grid dimension), so network g is exactly
``BatchedMLP.network(g)``, a Sequential of :class:`~dropprior.nn.NoisyLinear` maps with g's law
and generator, while the matrix products of all G run as one batched product: this is what
makes the UCI protocol (a 12-point grid, 20 splits, 4000 epochs) fit on a CPU. Every network
sees the same minibatches; its noise (its own generator), weights and objective are its own.

Model (one hidden layer by default, noise on the inputs of every weight layer, as in MC dropout):

.. math:: f_g(x) = \mathrm{ReLU}((x \odot \xi_1) W_{1g}^\top + b_{1g}) \odot \xi_2\,
          W_{2g}^\top + b_{2g}

with ξ drawn from network g's law at the ``"unit"`` structure (one ξ per input unit and example:
dropout / ARD) or the ``"weight"`` structure (one ξ per weight and example: DropConnect).

Network g minimises :func:`dropprior.objectives.training_loss`'s per-example loss with a Gaussian
likelihood of precision τ_g (standardised units), the ``"mc"`` (eq. 3) or ``"marginal"``
(eq. 10) reduction of :func:`dropprior.objectives.reduce_draws` over S draws, and the Gaussian
prior N(0, σ0_g²) on all its parameters written as the weight decay λ_g: σ0_g² = 1/(N τ_g λ_g).
So network g trains exactly as :func:`dropprior.fit` trains ``network(g)`` (tested), and it is
scored by :func:`dropprior.metrics.test_log_likelihood` and :func:`dropprior.metrics.rmse`.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor, nn

from dropprior._validation import check_choice
from dropprior.metrics import rmse, test_log_likelihood
from dropprior.nn import StackedNoisyLinear, sampling_mode
from dropprior.noise import NoiseLaw
from dropprior.objectives import reduce_draws

__all__ = ["BatchedMLP", "train_batched", "predict_batched", "score_batched", "Scores",
           "network_seed", "STREAMS", "BATCHED_STRUCTURES", "OBJECTIVES"]

#: Structures of the batched network's noise.
BATCHED_STRUCTURES = ("unit", "weight")
#: Training objectives.
OBJECTIVES = ("mc", "marginal")


#: The streams of a network's seeds (:func:`network_seed`).
STREAMS = ("noise", "init")


def network_seed(seed: int, g: int, stream: str = "noise") -> int:
    """The seed of network g's generator of ``stream`` (its noise, or its initial weights) in a
    batch trained with ``seed``: a function of (seed, g) alone, whatever the batch's size."""
    check_choice("stream", stream, STREAMS)
    words = [seed % (1 << 64), g, STREAMS.index(stream)]
    return int(np.random.SeedSequence(words).generate_state(1, dtype=np.uint64)[0]) >> 1


class BatchedMLP(nn.Module):
    """``n_networks`` ReLU MLPs of identical shape, each with its own noise law and generator.

    Weights are initialised as Keras' ``glorot_uniform`` (the MC-dropout reference code), network
    g's from ``init_generators[g]``, biases 0.

    Shape:
        forward: x (G, B, D_in) → (G, B).
    """

    def __init__(self, n_networks: int, n_inputs: int, hidden: Sequence[int],
                 laws: Sequence[NoiseLaw], structure: str = "unit",
                 generators: Sequence[torch.Generator] | None = None,
                 init_generators: Sequence[torch.Generator] | None = None,
                 dtype: torch.dtype | None = None) -> None:
        super().__init__()
        check_choice("structure", structure, BATCHED_STRUCTURES)
        sizes = [n_inputs, *hidden, 1]
        self.layers: list[StackedNoisyLinear] = nn.ModuleList()  # type: ignore[assignment]
        for d_in, d_out in zip(sizes[:-1], sizes[1:], strict=False):
            layer = StackedNoisyLinear(n_networks, d_in, d_out, laws, structure, generators,
                                       dtype=dtype)
            self.layers.append(layer)
        inits = list(init_generators) if init_generators is not None else [None] * n_networks
        with torch.no_grad():
            for g, init in enumerate(inits):
                for layer in self.layers:
                    d_out, d_in = layer.weight.shape[1:]
                    bound = math.sqrt(6.0 / (d_in + d_out))
                    w = (torch.rand(d_in, d_out, generator=init) * 2 - 1) * bound
                    layer.weight[g].copy_(w.T)

    def forward(self, x: Tensor) -> Tensor:
        h = x
        for i, layer in enumerate(self.layers):
            h = layer(h)
            if i < len(self.layers) - 1:
                h = torch.relu(h)
        return h.squeeze(-1)

    def squared_norms(self) -> Tensor:
        """Σ over layers of ‖W_g‖² + ‖b_g‖², per network. Shape: (G,)."""
        return sum(layer.squared_norms() for layer in self.layers)  # type: ignore[return-value]

    def network(self, g: int) -> nn.Sequential:
        """Network g as an ``nn.Sequential`` of :class:`~dropprior.nn.NoisyLinear` maps and
        ReLUs, with copies of its parameters and its law and generator (output (B, 1))."""
        modules: list[nn.Module] = []
        for i, layer in enumerate(self.layers):
            modules.append(layer.network(g))
            if i < len(self.layers) - 1:
                modules.append(nn.ReLU())
        return nn.Sequential(*modules)


def train_batched(x: Tensor, y: Tensor, laws: Sequence[NoiseLaw], precision: Tensor,
                  weight_decay: Tensor, *, hidden: Sequence[int] = (50,), epochs: int = 40,
                  batch_size: int = 128, lr: float = 1e-3, structure: str = "unit",
                  objective: str = "mc", samples: int = 1, seed: int = 0) -> BatchedMLP:
    r"""Train G = ``len(laws)`` networks with Adam, on shared or on per-network data.

    Per network g the minimised loss is, averaged over a minibatch,

    .. math:: -\ell_g(x_b, y_b) + \tfrac{1}{2}\tau_g \lambda_g \sum_l (\|W_{lg}\|^2
              + \|b_{lg}\|^2)

    where ℓ is the MC (mean over S draws) or marginal (log-mean-exp over S draws) Gaussian
    log-likelihood with precision τ_g: :func:`dropprior.objectives.training_loss` with the prior
    N(0, σ0²), σ0² = 1/(N τ_g λ_g). With S = 1 and ``"mc"`` this has the minimiser and Adam
    trajectory of the MC-dropout reference loss mean (y − f)² + λ‖θ‖² (Adam is invariant to the
    factor τ_g/2).

    Args:
        x: inputs, standardised. y: targets, standardised.
        laws: one noise law per network.
        precision: τ_g in standardised units. weight_decay: λ_g.
        hidden: hidden layer widths.
        epochs, batch_size, lr: Adam schedule (one reshuffle of the row positions per epoch,
            shared by all networks).
        structure: ``"unit"`` or ``"weight"``. objective: ``"mc"`` or ``"marginal"``.
        samples: S noise draws per example and step.
        seed: the shuffles (a generator seeded with it, as :func:`dropprior.fit`'s), network
            g's initial weights and its noise (generators seeded by :func:`network_seed`; the
            noise generators stay with the model for prediction).

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
    generators = [torch.Generator().manual_seed(network_seed(seed, g))
                  for g in range(n_networks)]
    inits = [torch.Generator().manual_seed(network_seed(seed, g, "init"))
             for g in range(n_networks)]
    model = BatchedMLP(n_networks, x.shape[-1], hidden, laws, structure, generators, inits,
                       dtype=x.dtype)
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    tau = precision.to(x.dtype)[:, None]
    decay = (0.5 * precision * weight_decay).to(x.dtype)
    log_norm = 0.5 * torch.log(tau / (2 * math.pi))
    n = x.shape[1]
    shuffle = torch.Generator().manual_seed(seed)
    model.train()
    for _ in range(epochs):
        order = torch.randperm(n, generator=shuffle)
        for start in range(0, n, batch_size):
            idx = order[start:start + batch_size].repeat(samples)
            xb, yb = x.index_select(1, idx), y.index_select(1, idx)
            out = model(xb)
            loglik = (log_norm - 0.5 * tau * (out - yb).pow(2)).view(n_networks, samples, -1)
            per_example = reduce_draws(loglik.transpose(0, 1), objective)  # (G, B)
            loss = (-per_example.mean(dim=1) + decay * model.squared_norms()).sum()
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
def predict_batched(model: BatchedMLP, x: Tensor, *, samples: int,
                    chunk_elements: int = 2_000_000) -> Iterator[Tensor]:
    """MC predictions of every network for T = ``samples`` noise draws, each network's drawn
    by its own generator, in chunks of t draws whose widest activation (G × t × N × width)
    holds at most ``chunk_elements`` values (so T = 10 000 draws fit in memory). A chunk is
    one pass of the inputs repeated t times, as :func:`dropprior.predict` runs its copies.

    Shape:
        x: (N, D) or (G, N, D) → yields (G, t, N) chunks whose t add up to T.
    """
    if samples < 1:
        raise ValueError(f"samples={samples!r} must be >= 1")
    n_networks = model.layers[0].n_networks
    if x.dim() == 2:
        x = x.expand(n_networks, *x.shape)
    n = x.shape[1]
    widest = max(max(layer.in_features, layer.out_features) for layer in model.layers)
    chunk = max(1, min(samples, chunk_elements // max(n_networks * n * widest, 1)))
    with sampling_mode(model):  # every layer draws
        for start in range(0, samples, chunk):
            t = min(chunk, samples - start)
            yield model(x.repeat(1, t, 1)).view(n_networks, t, n)


@dataclass(frozen=True)
class Scores:
    """Test metrics of G networks, in the targets' original units. Shape: each (G,)."""

    rmse: Tensor
    log_likelihood: Tensor


def score_batched(draws: Iterable[Tensor], y: Tensor, y_mean: Tensor, y_std: Tensor,
                  tau: Tensor) -> Scores:
    r"""Each network's RMSE of the MC mean (:func:`dropprior.metrics.rmse`) and MC test
    log-likelihood (:func:`dropprior.metrics.test_log_likelihood`, the MC-dropout reference
    code's), in original units:

    .. math:: \tfrac1N\sum_n \Big[\operatorname{logsumexp}_t(-\tfrac{\tau}{2}(y_n-\hat y_{tn})^2)
              - \log T - \tfrac12\log 2\pi + \tfrac12\log\tau\Big]

    with ŷ = standardised draw × y_std + y_mean and τ the precision in original units.

    Shape:
        draws: chunks (G, t, N) of standardised predictions; y: (N,) or (G, N) in original units;
        y_mean, y_std, tau: (G,) (or scalars), original units.
    """
    chunks = list(draws)
    if not chunks:
        raise ValueError("score_batched needs at least one chunk of draws")
    standard = torch.cat(chunks, dim=1).double()  # (G, T, N)
    n_networks = standard.shape[0]
    target = (y.double() if y.dim() == 2 else y.double()[None]).expand(n_networks, -1)
    tau = torch.as_tensor(tau, dtype=torch.float64).expand(n_networks)
    y_mean = torch.as_tensor(y_mean, dtype=torch.float64).expand(n_networks)
    y_std = torch.as_tensor(y_std, dtype=torch.float64).expand(n_networks)
    errors, lls = [], []
    for g in range(n_networks):
        pred = standard[g] * y_std[g] + y_mean[g]
        errors.append(rmse(pred.mean(dim=0), target[g]))
        lls.append(test_log_likelihood(pred, target[g], tau[g]))
    return Scores(rmse=torch.stack(errors), log_likelihood=torch.stack(lls))
