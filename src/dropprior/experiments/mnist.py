"""MNIST architecture experiments: residual depth priors (ADD, ARD+ADD) and convolutional noise.

**ResNet** (paper Section 5.1): a dense residual network x → ReLU(x W₀) → K blocks
h ↦ τ f((h ⊙ ξ) W_k) + h → softmax layer, with f = ReLU. Variants:

* ``plain``: no noise (τ = ξ = 1);
* ``stochastic_depth``: Huang et al.: h + λ·f(h W), λ ~ Bernoulli(1 − p) (inverted);
* ``add``: automatic depth determination, τ from the chosen law (one per block and example);
* ``ard+add``: ADD and ARD together (τ per block, ξ per input unit of the block).

Reported: test error, and the blocks the prior switched off — a block counts as switched off when
the L2 norm of its weight matrix is below ``threshold`` × the largest block's norm.

**CNN**: two 5×5 convolutions (ReLU, 2×2 max-pool each) and a linear softmax layer. Variants:
``plain``; ``dropout2d`` (torch's ``nn.Dropout2d`` on each conv block's output and dropout on the
features); and dropprior's ``channel`` / ``filter`` / ``channel+filter`` structures
(:class:`dropprior.nn.NoisyConv2d`) with the chosen law. Reported: test error, the filters pruned
(a filter is pruned when its weight norm is below ``threshold`` × the largest in its layer), and
the test error of the pruned network (those filters set to zero).

Training uses :func:`dropprior.training.fit` (MC objective, Gaussian prior σ0 on all weights) and
prediction with :func:`dropprior.prediction.predict` (MC averaging over ``samples`` draws).
"""

from __future__ import annotations

import copy
import time
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn

from dropprior._validation import check_choice, check_int, check_number, check_seed

__all__ = ["RESNET_VARIANTS", "CNN_VARIANTS", "MnistSettings", "SIZES", "build_resnet",
           "build_cnn", "run_mnist_variant"]

RESNET_VARIANTS = ("plain", "stochastic_depth", "add", "ard+add")
CNN_VARIANTS = ("plain", "dropout2d", "channel", "filter", "channel+filter")


@dataclass(frozen=True)
class MnistSettings:
    """Sizes and training schedule; :data:`SIZES` holds the named presets."""

    train_size: int = 20_000
    epochs: int = 3
    width: int = 64          # ResNet units per block
    blocks: int = 4          # ResNet residual blocks
    channels: tuple[int, int] = (8, 16)  # CNN filters per conv layer
    batch_size: int = 128
    lr: float = 1e-3
    sigma0: float = 1.0
    dropout: float = 0.2
    law: str = "gaussian"
    samples: int = 10
    threshold: float = 0.05
    seed: int = 0

    def __post_init__(self) -> None:
        for name in ("train_size", "epochs", "width", "blocks", "batch_size", "samples"):
            check_int(name, getattr(self, name), 1)
        check_seed(self.seed, low=0)
        if not (isinstance(self.channels, (tuple, list)) and len(self.channels) == 2):
            raise ValueError(f"channels must be a pair (filters of the two conv layers), got "
                             f"{self.channels!r}")
        for filters in self.channels:
            check_int("channels", filters, 1)
        check_number("lr", self.lr)
        check_number("sigma0", self.sigma0)
        check_number("dropout", self.dropout, 0.0, 1.0)
        check_number("threshold", self.threshold, 0.0, 1.0, low_open=False)


#: ``small``: 20 000 images, 3 epochs, narrow networks (minutes on a CPU; docs/mnist.md has the
#: times and errors). ``published`` uses all 60 000 training images at the widths of
#: the classic MNIST networks (LeNet-5-like 20/50 filters; 10 blocks of 256).
SIZES = {
    "small": MnistSettings(),
    "published": MnistSettings(train_size=60_000, epochs=20, width=256, blocks=10,
                               channels=(20, 50), samples=20),
}


class _Plain(nn.Module):
    """h + f(h): a residual block without noise."""

    def __init__(self, block: nn.Module) -> None:
        super().__init__()
        self.block = block

    def forward(self, h: Tensor) -> Tensor:
        return h + self.block(h)


class _StochasticDepth(nn.Module):
    """h + λ f(h), λ ~ Bernoulli(keep)/keep per example (Huang et al. 2016)."""

    def __init__(self, block: nn.Module, p: float) -> None:
        super().__init__()
        from dropprior.noise import Bernoulli

        self.block = block
        self.law = Bernoulli(keep=1.0 - p, inverted=True)

    def forward(self, h: Tensor) -> Tensor:
        from dropprior.functional import multiplicative_noise

        return h + multiplicative_noise(self.block(h), self.law, "layer",
                                        training=self.training)


def build_resnet(variant: str, s: MnistSettings) -> nn.Sequential:
    """The dense ResNet of the module docstring. Shape: (N, 784) → (N, 10) logits."""
    from dropprior.experiments.laws import dropout_law
    from dropprior.nn import Residual

    check_choice("variant", variant, RESNET_VARIANTS)
    layers: list[nn.Module] = [nn.Linear(784, s.width), nn.ReLU()]
    for _ in range(s.blocks):
        block = nn.Sequential(nn.Linear(s.width, s.width), nn.ReLU())
        if variant == "plain":
            layers.append(_Plain(block))
        elif variant == "stochastic_depth":
            layers.append(_StochasticDepth(block, s.dropout))
        elif variant == "add":
            layers.append(Residual(block, depth_noise=dropout_law(s.law, s.dropout)))
        else:
            layers.append(Residual(block, depth_noise=dropout_law(s.law, s.dropout),
                                   unit_noise=dropout_law(s.law, s.dropout)))
    layers.append(nn.Linear(s.width, 10))
    return nn.Sequential(*layers)


def build_cnn(variant: str, s: MnistSettings) -> nn.Sequential:
    """The CNN of the module docstring. Shape: (N, 784) → (N, 10) logits."""
    from dropprior.experiments.laws import dropout_law
    from dropprior.nn import NoisyConv2d

    check_choice("variant", variant, CNN_VARIANTS)
    c1, c2 = s.channels
    layers: list[nn.Module] = [nn.Unflatten(1, (1, 28, 28))]
    for c_in, c_out in ((1, c1), (c1, c2)):
        if variant in ("plain", "dropout2d"):
            layers.append(nn.Conv2d(c_in, c_out, 5, padding=2))
        else:
            layers.append(NoisyConv2d(c_in, c_out, 5, dropout_law(s.law, s.dropout),
                                      structure=variant, padding=2))
        layers += [nn.ReLU(), nn.MaxPool2d(2)]
        if variant == "dropout2d":
            layers.append(nn.Dropout2d(s.dropout))
    layers.append(nn.Flatten())
    if variant == "dropout2d":
        layers.append(nn.Dropout(s.dropout))
    layers.append(nn.Linear(c2 * 7 * 7, 10))
    return nn.Sequential(*layers)


def _block_norms(model: nn.Module) -> list[float]:
    norms = []
    for module in model.modules():
        if isinstance(module, (_Plain, _StochasticDepth)) or type(module).__name__ == "Residual":
            block = module.get_submodule("block")
            first = next(m for m in block.modules() if isinstance(m, nn.Linear))
            norms.append(float(first.weight.detach().norm()))
    return norms


def _conv_layers(model: nn.Module) -> list[nn.Module]:
    from dropprior.nn import NoisyConv2d

    return [m for m in model.modules() if isinstance(m, (nn.Conv2d, NoisyConv2d))]


def _error(model: nn.Module, x: Tensor, y: Tensor, samples: int) -> float:
    from dropprior.likelihoods import Categorical
    from dropprior.prediction import ClassificationPrediction, predict

    prediction = predict(model, x, samples=samples, likelihood=Categorical(), batch_size=2000)
    if not isinstance(prediction, ClassificationPrediction):
        raise TypeError("a Categorical likelihood gives a ClassificationPrediction")
    probs = prediction.probs
    return float((probs.argmax(dim=1) != y).double().mean())


def run_mnist_variant(params: dict[str, Any]) -> dict[str, Any]:
    """Train and evaluate one variant (a runner job function).

    Args:
        params: ``{"data_dir", "architecture": "resnet"|"cnn", "variant", "settings": {...}}``
            (``settings`` as :class:`MnistSettings` fields).

    Returns:
        ``{"error", "seconds"}`` plus ``"blocks_off", "block_norms"`` (ResNet) or
        ``"filters_pruned", "filters", "pruned_error"`` (CNN).
    """
    from dropprior.data import load_mnist
    from dropprior.likelihoods import Categorical
    from dropprior.training import fit

    settings = dict(params["settings"])
    settings["channels"] = tuple(settings["channels"])
    s = MnistSettings(**settings)
    architecture = check_choice("architecture", params["architecture"], ["resnet", "cnn"])
    x_train, y_train = load_mnist(params["data_dir"], "train")
    x_test, y_test = load_mnist(params["data_dir"], "test")
    generator = torch.Generator().manual_seed(s.seed)
    subset = torch.randperm(x_train.shape[0], generator=generator)[:s.train_size]
    mean, std = 0.1307, 0.3081
    x_tr, y_tr = (x_train[subset] - mean) / std, y_train[subset]
    x_te = (x_test - mean) / std
    torch.manual_seed(s.seed)
    build = build_resnet if architecture == "resnet" else build_cnn
    model = build(params["variant"], s)
    start = time.perf_counter()
    fit(model, Categorical(), x_tr, y_tr, objective="mc", sigma0=s.sigma0, lr=s.lr,
        epochs=s.epochs, batch_size=s.batch_size, seed=s.seed, progress=False)
    error = _error(model, x_te, y_test, s.samples)
    out: dict[str, Any] = {"error": error}
    if architecture == "resnet":
        norms = _block_norms(model)
        top = max(norms)
        out.update(block_norms=norms, blocks_off=sum(n < s.threshold * top for n in norms))
    else:
        pruned_model = copy.deepcopy(model)
        pruned, total = [], []
        with torch.no_grad():
            for conv in _conv_layers(pruned_model):
                weight = conv.get_parameter("weight")
                norms = weight.flatten(1).norm(dim=1)
                off = norms < s.threshold * norms.max()
                weight[off] = 0.0
                if getattr(conv, "bias", None) is not None:
                    conv.get_parameter("bias")[off] = 0.0
                pruned.append(int(off.sum()))
                total.append(int(norms.numel()))
        out.update(filters_pruned=pruned, filters=total,
                   pruned_error=_error(pruned_model, x_te, y_test, s.samples))
    out["seconds"] = time.perf_counter() - start
    return out
