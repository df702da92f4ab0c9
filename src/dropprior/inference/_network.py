"""The posterior of a small MLP or residual network under the structured prior, for HMC/NUTS.

A network is a stack of dense layers h ↦ act(h W + b) (or h ↦ h + act(h W + b) for a residual
block). Each layer's weights W (in × out) carry the prior the layer's noise induces:

* ``"unit"`` (ARD, dropout): one ξ per input unit, noise shape (in, 1);
* ``"weight"`` (DropConnect): one ξ per weight, noise shape (in, out);
* ``"layer"`` (ADD, stochastic depth for residual blocks): one ξ for the layer, noise shape ();
* no law: a plain Gaussian N(0, σ0²) (no ξ).

in EP (w = ξ·z, z ~ N(0, σ0²)) or HP (w | ξ ~ N(0, σ0² ξ²)). Biases carry N(0, bias_std²).
Regression targets: y ~ N(f(x), 1/λ) with λ fixed (``noise_std``) or λ ~ Gamma(a, b).

**ξ in MCMC vs in training.** Training with dropout draws a fresh ξ for every example and every
step (``granularity="example"``): it optimises the EP weights z by Monte Carlo over the prior on ξ.
In this posterior ξ is a latent variable: one value per group, shared by all examples, inferred
jointly with z. This is the model the paper's priors define (w = ξ·z is one weight); per-example
draws in training are how the MC objective integrates ξ out, not a different model.

:func:`posterior_from_model` builds this posterior from a ``dropprior.nn`` model (a
``torch.nn.Sequential`` of ``NoisyLinear`` / ``nn.Linear`` / activations / ``Residual`` blocks),
taking its layer sizes, structure and law.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import Tensor, nn
from torch.distributions import Distribution, Gamma, constraints

from dropprior._validation import (
    as_param,
    check_choice,
    check_finite_data,
    check_int,
    check_positive,
)
from dropprior.inference._density import LogDensity, Sites, _WeightPrior, normal_log_prob
from dropprior.inference._prior import check_continuous, check_parametrization

__all__ = ["LayerSpec", "NetworkPosterior", "posterior_from_model", "POSTERIOR_STRUCTURES",
           "ACTIVATIONS"]

POSTERIOR_STRUCTURES = ("unit", "weight", "layer")
"""``"unit"``: ξ per input unit (ARD); ``"weight"``: ξ per weight; ``"layer"``: one ξ per layer."""

ACTIVATIONS = ("relu", "tanh", "identity")
_ACT = {"relu": torch.relu, "tanh": torch.tanh, "identity": lambda h: h}


@dataclass(frozen=True)
class LayerSpec:
    """One dense layer: sizes, its noise law and structure, activation, residual or not."""

    in_features: int
    out_features: int
    law: Distribution | None = None
    structure: str = "unit"
    activation: str = "relu"
    residual: bool = False

    def __post_init__(self) -> None:
        check_int("in_features", self.in_features, 1)
        check_int("out_features", self.out_features, 1)
        check_choice("structure", self.structure, POSTERIOR_STRUCTURES)
        check_choice("activation", self.activation, ACTIVATIONS)
        if self.law is not None:
            check_continuous(self.law)
        if self.residual and self.in_features != self.out_features:
            raise ValueError(f"a residual layer needs in_features == out_features, got "
                             f"{self.in_features} and {self.out_features}")

    @property
    def noise_shape(self) -> tuple[int, ...]:
        return {"unit": (self.in_features, 1), "weight": (self.in_features, self.out_features),
                "layer": ()}[self.structure]


class NetworkPosterior(LogDensity):
    """p(ξ, z or w, b, λ | X, y) of a regression network under the structured prior.

    Args:
        layers: the network, input to output.
        X: inputs, shape (N, D_in); y: targets, shape (N,) (one output unit).
        sigma0: σ0 of the Gaussian on z (EP) / the HP conditional.
        parametrization: ``"ep"`` or ``"hp"``.
        noise_std: fixed observation noise σ, or None to infer the precision λ ~ Gamma(a, b).
        noise_prior: (a, b) of λ's Gamma prior (shape, rate).
        bias_std: standard deviation of the Gaussian prior on biases.

    Sites, per layer l: ``layer{l}.xi``, ``layer{l}.z`` (EP) or ``layer{l}.w`` (HP; also the
    deterministic EP weight), ``layer{l}.b``; ``noise.precision`` when σ is inferred.

    Shape:
        X: (N, D_in), y: (N,); :meth:`predict`: draws with leading dims (*B) → (*B, N).
    """

    def __init__(self, layers: Sequence[LayerSpec], X: Tensor, y: Tensor, sigma0: float = 1.0,
                 parametrization: str = "ep", noise_std: float | None = None,
                 noise_prior: tuple[float, float] = (1.0, 0.01), bias_std: float = 1.0) -> None:
        self.layers = list(layers)
        if not self.layers:
            raise ValueError("layers must hold at least one LayerSpec")
        for a, b in zip(self.layers[:-1], self.layers[1:], strict=False):
            if a.out_features != b.in_features:
                raise ValueError(f"layer sizes do not chain: {a.out_features} → {b.in_features}")
        self.parametrization = check_parametrization(parametrization)
        self.sigma0 = float(check_positive("sigma0", as_param(sigma0)))
        self.bias_std = float(check_positive("bias_std", as_param(bias_std)))
        self.X = torch.as_tensor(X, dtype=torch.get_default_dtype())
        self.y = torch.as_tensor(y, dtype=torch.get_default_dtype())
        if self.X.ndim != 2 or self.X.shape[1] != self.layers[0].in_features:
            raise ValueError(f"X must have shape (N, {self.layers[0].in_features}), "
                             f"got {tuple(self.X.shape)}")
        if self.y.shape != (self.X.shape[0],) or self.layers[-1].out_features != 1:
            raise ValueError(f"y must have shape (N,) = ({self.X.shape[0]},) and the last "
                             f"layer one output; got y {tuple(self.y.shape)}")
        check_finite_data("X", self.X)
        check_finite_data("y", self.y)
        self.noise_std = None if noise_std is None else float(
            check_positive("noise_std", as_param(noise_std)))
        self.noise_prior = Gamma(torch.tensor(float(noise_prior[0])),
                                 torch.tensor(float(noise_prior[1])))
        self._priors = [
            None if spec.law is None else _WeightPrior(spec.law, self.sigma0, parametrization)
            for spec in self.layers
        ]

    @classmethod
    def mlp(cls, X: Tensor, y: Tensor, hidden: Sequence[int], law: Distribution,
            structure: str = "unit", activation: str = "relu", residual: bool = False,
            **kwargs: object) -> NetworkPosterior:
        """An MLP D_in → hidden… → 1 with the same law and structure on every layer.

        With ``residual=True`` every hidden-to-hidden layer of equal width is a residual block.
        """
        sizes = [int(torch.as_tensor(X).shape[1]), *hidden, 1]
        layers = [
            LayerSpec(i, o, law, structure,
                      activation if k < len(sizes) - 2 else "identity",
                      residual and 0 < k < len(sizes) - 2 and i == o)
            for k, (i, o) in enumerate(zip(sizes[:-1], sizes[1:], strict=False))
        ]
        return cls(layers, X, y, **kwargs)  # type: ignore[arg-type]

    # ---- LogDensity ----------------------------------------------------------------------
    def sites(self) -> Sites:
        out: Sites = {}
        for l, (spec, prior) in enumerate(zip(self.layers, self._priors, strict=True)):
            shape = (spec.in_features, spec.out_features)
            if prior is None:
                out[f"layer{l}.w"] = (torch.Size(shape), constraints.real)
            else:
                out.update(prior.weight_sites(f"layer{l}", shape, spec.noise_shape))
            out[f"layer{l}.b"] = (torch.Size((spec.out_features,)), constraints.real)
        if self.noise_std is None:
            out["noise.precision"] = (torch.Size(), constraints.positive)
        return out

    def weights(self, values: dict[str, Tensor]) -> list[Tensor]:
        """The effective weights w of every layer, with the draws' leading dims."""
        ws = []
        for l, prior in enumerate(self._priors):
            ws.append(values[f"layer{l}.w"] if prior is None else prior.weight(f"layer{l}",
                                                                               values))
        return ws

    def forward(self, values: dict[str, Tensor], X: Tensor) -> Tensor:
        """f(X) for draws with leading dims (*B); returns shape (*B, N)."""
        h = torch.as_tensor(X, dtype=self.X.dtype)
        for l, (spec, w) in enumerate(zip(self.layers, self.weights(values), strict=True)):
            pre = h @ w + values[f"layer{l}.b"].unsqueeze(-2)
            out = _ACT[spec.activation](pre)
            h = h + out if spec.residual else out
        return h[..., 0]

    def log_prior(self, values: dict[str, Tensor]) -> Tensor:
        """log p(θ): the structured prior on every layer, the biases and λ."""
        lp = torch.zeros((), dtype=self.X.dtype)
        for l, prior in enumerate(self._priors):
            if prior is None:
                lp = lp + normal_log_prob(values[f"layer{l}.w"], self.sigma0)
            else:
                lp = lp + prior.group_log_prob(f"layer{l}", values)
            lp = lp + normal_log_prob(values[f"layer{l}.b"], self.bias_std)
        if self.noise_std is None:
            lp = lp + self.noise_prior.log_prob(values["noise.precision"])
        return lp

    def log_likelihood(self, values: dict[str, Tensor], X: Tensor, y: Tensor) -> Tensor:
        """Σ_i log N(y_i; f(x_i), 1/λ) over the given examples (one draw)."""
        resid = y - self.forward(values, X)
        if self.noise_std is None:
            lam = values["noise.precision"]
            return 0.5 * resid.numel() * (torch.log(lam) - math.log(2 * math.pi)) \
                - 0.5 * lam * (resid**2).sum()
        return normal_log_prob(resid, self.noise_std)

    def log_joint(self, values: dict[str, Tensor]) -> Tensor:
        return self.log_prior(values) + self.log_likelihood(values, self.X, self.y)

    def deterministic(self, values: dict[str, Tensor]) -> dict[str, Tensor]:
        if self.parametrization != "ep":
            return {}
        return {f"layer{l}.w": prior.weight(f"layer{l}", values)
                for l, prior in enumerate(self._priors) if prior is not None}

    # ---- prediction ----------------------------------------------------------------------
    def predict(self, samples: dict[str, Tensor], X: Tensor) -> Tensor:
        """Posterior-predictive means f_s(X), one row per draw.

        Shape:
            samples[site]: (C, S, *site) or (S, *site) → (C·S, N) or (S, N).
        """
        with torch.no_grad():
            flat = {k: v.reshape(-1, *self.sites()[k][0]) if k in self.sites() else v
                    for k, v in samples.items()}
            return self.forward(flat, X)

    def evaluate(self, samples: dict[str, Tensor], X: Tensor, y: Tensor,
                 y_mean: float = 0.0, y_std: float = 1.0) -> dict[str, float]:
        """Test RMSE and test log-likelihood of the posterior predictive, in original units.

        The predictive density is the mixture (1/S) Σ_s N(y; f_s(x), 1/λ_s) over draws; targets
        were standardised as (y − y_mean)/y_std, so outputs are mapped back before scoring.
        """
        from dropprior import metrics

        f = self.predict(samples, X) * y_std + y_mean  # (S, N)
        if self.noise_std is None:
            lam = samples["noise.precision"].reshape(-1).to(f.dtype) / y_std**2
        else:
            lam = torch.full((f.shape[0],), self.noise_std**-2 / y_std**2, dtype=f.dtype)
        y_t = torch.as_tensor(y, dtype=f.dtype)
        rmse = float(metrics.rmse(f.mean(0), y_t))
        log_n = 0.5 * (torch.log(lam)[:, None] - math.log(2 * math.pi)) \
            - 0.5 * lam[:, None] * (y_t - f) ** 2
        ll = float((torch.logsumexp(log_n, dim=0) - math.log(f.shape[0])).mean())
        return {"rmse": rmse, "test_ll": ll}


def posterior_from_model(model: nn.Module, X: Tensor, y: Tensor,
                         **kwargs: object) -> NetworkPosterior:
    """The posterior of a ``dropprior.nn`` regression network's architecture and prior.

    ``model`` is a ``torch.nn.Sequential`` of ``NoisyLinear`` (structure ``"unit"`` or
    ``"weight"``; its law becomes the layer's prior), plain ``nn.Linear`` (Gaussian prior),
    activations (``nn.ReLU``, ``nn.Tanh``) and ``Residual`` blocks whose branch is
    ``Sequential(nn.Linear, activation)`` with ``depth_noise`` (structure ``"layer"``) or
    ``unit_noise`` (``"unit"``). The trained values are not used: the posterior is over them.
    ``kwargs`` go to :class:`NetworkPosterior` (``sigma0``, ``parametrization``, …).
    """
    from dropprior.nn import NoisyLinear, Residual

    if not isinstance(model, nn.Sequential):
        raise TypeError(f"posterior_from_model needs a torch.nn.Sequential, got "
                        f"{type(model).__name__}")
    acts = {nn.ReLU: "relu", nn.Tanh: "tanh", nn.Identity: "identity"}
    specs: list[LayerSpec] = []

    def set_activation(name: str) -> None:
        if not specs or specs[-1].activation != "identity":
            raise ValueError("an activation must follow a linear layer, once")
        last = specs[-1]
        specs[-1] = LayerSpec(last.in_features, last.out_features, last.law, last.structure,
                              name, last.residual)

    for module in model:
        if isinstance(module, NoisyLinear):
            specs.append(LayerSpec(module.in_features, module.out_features, module.noise,
                                   module.structure, "identity"))
        elif isinstance(module, nn.Linear):
            specs.append(LayerSpec(module.in_features, module.out_features, None, "unit",
                                   "identity"))
        elif type(module) in acts:
            set_activation(acts[type(module)])
        elif isinstance(module, Residual):
            block = list(module.block) if isinstance(module.block, nn.Sequential) else []
            if (len(block) != 2 or not isinstance(block[0], nn.Linear)
                    or type(block[1]) not in acts or module.structure == "unit+layer"):
                raise ValueError("a Residual block must be Sequential(nn.Linear, activation) "
                                 "with depth_noise or unit_noise (not both)")
            law = module.depth_noise if module.structure == "layer" else module.unit_noise
            lin = block[0]
            specs.append(LayerSpec(lin.in_features, lin.out_features, law, module.structure,
                                   acts[type(block[1])], residual=True))
        else:
            raise ValueError(f"posterior_from_model cannot read a {type(module).__name__}; "
                             "expected NoisyLinear, nn.Linear, nn.ReLU/nn.Tanh or Residual")
    return NetworkPosterior(specs, X, y, **kwargs)  # type: ignore[arg-type]
