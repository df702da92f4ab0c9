r"""The synthetic selection check: does a fit switch off what the data do not need?

Data: D inputs x ~ N(0, I), of which the first ``relevant`` matter, and a *linear* target
y = x[:, :relevant] β + ε, β = (2, −1.5, 1, …) cycled, ε ~ N(0, noise_std²).

Model (a ResNet MLP): an ARD input layer ``NoisyLinear(D, width)`` with no activation, ``blocks``
ADD residual blocks Linear → ReLU → Linear, and a linear output. With every block off the
network is linear, which is all the target needs, so a prior that selects should switch off the
``D − relevant`` irrelevant inputs and most blocks, and keep the relevant inputs.

Inference: ``"vi"`` (:func:`dropprior.scales.variational`) or ``"map"``
(:func:`dropprior.scales.learn_scales`) under a hyperprior, trained by :func:`dropprior.fit`;
the decisions are :func:`dropprior.scales.kept_groups`'s, and the pruned model
(``prune(threshold="auto")``) is scored on fresh test data against the unpruned one.
"""

from __future__ import annotations

import copy
import math
import time
from dataclasses import asdict, dataclass
from typing import Any

import torch
from torch import Tensor, nn

from dropprior._validation import check_choice, check_int, check_number, check_seed

__all__ = ["SelectionSettings", "synthetic_regression", "build_resnet_mlp", "run_selection",
           "run_and_record", "record_key", "settings_dict"]


@dataclass(frozen=True)
class SelectionSettings:
    """One run of the selection check (module docstring)."""

    inference: str = "vi"
    hyperprior: str = "log_uniform"
    objective: str = "mc"
    samples: int = 1
    inputs: int = 12
    relevant: int = 3
    blocks: int = 6
    width: int = 16
    n_train: int = 400
    n_test: int = 1000
    noise_std: float = 0.1
    keep: float = 0.9
    sigma0: float = 1.0
    epochs: int = 1000
    batch_size: int = 100
    lr: float = 1e-2
    init_std: float = 0.02
    seed: int = 0

    def __post_init__(self) -> None:
        from dropprior.hyperpriors import HYPERPRIORS
        from dropprior.scales import INFERENCE
        from dropprior.training import OBJECTIVES

        check_choice("inference", self.inference, INFERENCE)
        check_choice("hyperprior", self.hyperprior, [k for k in HYPERPRIORS if k != "auto"])
        check_choice("objective", self.objective, OBJECTIVES)
        for name in ("samples", "inputs", "relevant", "width", "n_train", "n_test", "epochs",
                     "batch_size"):
            check_int(name, getattr(self, name), 1)
        check_int("blocks", self.blocks, 0)
        check_seed(self.seed, low=0)
        for name in ("lr", "sigma0", "init_std"):
            check_number(name, getattr(self, name))
        check_number("noise_std", self.noise_std)  # also the likelihood's std
        check_number("keep", self.keep, 0.0, 1.0, high_open=False)
        if self.relevant > self.inputs:
            raise ValueError(f"relevant={self.relevant} exceeds inputs={self.inputs}")


def synthetic_regression(n: int, inputs: int, relevant: int, noise_std: float,
                         generator: torch.Generator) -> tuple[Tensor, Tensor]:
    """x (n, inputs) ~ N(0, I) and y (n, 1) = x[:, :relevant] β + ε (module docstring)."""
    x = torch.randn(n, inputs, generator=generator)
    beta = torch.tensor([2.0, -1.5, 1.0])[torch.arange(relevant) % 3]
    y = x[:, :relevant] @ beta + noise_std * torch.randn(n, generator=generator)
    return x, y.unsqueeze(1)


def build_resnet_mlp(inputs: int, width: int, blocks: int, keep: float) -> nn.Sequential:
    """ARD input layer, ``blocks`` ADD blocks, linear output; noise Bernoulli(keep, inverted)."""
    from dropprior.nn import NoisyLinear, Residual
    from dropprior.noise import Bernoulli

    law = Bernoulli(keep, inverted=True)
    body = [Residual(nn.Sequential(nn.Linear(width, width), nn.ReLU(), nn.Linear(width, width)),
                     depth_noise=law) for _ in range(blocks)]
    return nn.Sequential(NoisyLinear(inputs, width, law), *body, nn.Linear(width, 1))


def _rmse(model: nn.Module, x: Tensor, y: Tensor) -> float:
    model.eval()
    with torch.no_grad():
        return float((model(x) - y).square().mean().sqrt())


def run_selection(s: SelectionSettings) -> dict[str, Any]:
    """Train, read the fit back and prune; returns the metrics of a result record."""
    from dropprior import fit, prune, scales
    from dropprior.likelihoods import Gaussian

    gen = torch.Generator().manual_seed(s.seed)
    x, y = synthetic_regression(s.n_train, s.inputs, s.relevant, s.noise_std, gen)
    x_test, y_test = synthetic_regression(s.n_test, s.inputs, s.relevant, s.noise_std, gen)
    torch.manual_seed(s.seed)
    model = build_resnet_mlp(s.inputs, s.width, s.blocks, s.keep)
    scales.attach_scales(model, s.inference, s.hyperprior, s.init_std)
    start = time.perf_counter()
    fit(model, Gaussian(s.noise_std), x, y, objective=s.objective, samples=s.samples,
        sigma0=s.sigma0,
        epochs=s.epochs, lr=s.lr, batch_size=s.batch_size, seed=s.seed, progress=False)
    seconds = time.perf_counter() - start
    found = scales.learned_scales(model)
    kept = scales.kept_groups(model)
    block_names = [str(i) for i in range(1, s.blocks + 1)]
    metrics: dict[str, Any] = {
        "input_scales": found["0:unit"].reshape(-1).tolist(),
        "block_scales": [float(found[f"{b}:layer"]) for b in block_names],
        "inputs_kept": kept["0:unit"].reshape(-1).nonzero().reshape(-1).tolist(),
        "blocks_kept": [int(b) for b in block_names if bool(kept[f"{b}:layer"])],
        "train_seconds": round(seconds, 2),
    }
    if s.inference == "vi":
        snr = scales.group_snr(model)
        metrics["input_snr"] = snr["0:unit"].reshape(-1).tolist()
        metrics["block_snr"] = [float(snr[f"{b}:layer"]) for b in block_names]
    metrics["test_rmse"] = _rmse(scales.collapse(copy.deepcopy(model)), x_test, y_test)
    if metrics["inputs_kept"]:
        pruned = prune(model, threshold="auto").model
        metrics["test_rmse_pruned"] = _rmse(pruned, x_test, y_test)
    else:
        metrics["test_rmse_pruned"] = math.nan
    return metrics


def settings_dict(s: SelectionSettings) -> dict[str, Any]:
    """The settings as a plain dict (a result record's config)."""
    return asdict(s)


def record_key(s: SelectionSettings) -> str:
    """The job key of a run: its settings, field by field."""
    from dropprior.experiments.records import settings_key

    return settings_key("selection", s)


def run_and_record(s: SelectionSettings, command: str,
                   root: str | None = None) -> tuple[dict[str, Any], bool]:
    """The run's result record, from ``results/selection/`` if it is there, else run and write
    it. Returns (record, whether it was run now)."""
    from dropprior.experiments.records import run_recorded

    return run_recorded("selection", s, command, lambda: run_selection(s), root)
