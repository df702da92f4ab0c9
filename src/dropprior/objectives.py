r"""Training objectives of multiplicative-noise networks (paper eq. 3, 9–11; Section 4).

All objectives are pure functions of a model, a batch and a likelihood; they return per-example
values of shape (N,) (or a scalar for a prior term), so they are ordinary loss functions in plain
PyTorch or Lightning code:

.. code-block:: python

    loglik = marginal_log_likelihood(model, x, y, likelihood, samples=8)    # (N,)
    loss = -loglik.mean() + ep_weight_penalty(model, sigma0) / n_train
    loss.backward()

The model must be *stochastic* when called: a dropprior model in train mode or inside
``with dropprior.nn.mc(model):``, or any torch model with active dropout.

**MC objective (eq. 3).** For S draws Ξ_s of the noise,

.. math:: \mathcal L_{MN}(x_n, y_n) \approx \frac1S\sum_{s=1}^S \log p(y_n\mid x_n, W, \Xi_s).

**Marginal-MAP bound (eq. 10).** The log of the S-sample average of the likelihood,

.. math:: \hat{\mathcal L}_S(x_n, y_n) = \log\frac1S\sum_{s=1}^S p(y_n\mid x_n, W, \Xi_s)
          = \operatorname{logsumexp}_s \log p(y_n\mid x_n,W,\Xi_s) - \log S,

a lower bound (in expectation) on :math:`\log \mathbb E_\xi\, p(y_n\mid x_n, W, \Xi)` that is
≥ the MC objective on the same draws (Jensen), tightens monotonically in expectation as S grows
(Burda et al., 2016) and tends to the marginal MAP objective. Because each example draws its own
scales ξ (per-example noise), :math:`\log \mathbb E_\xi \prod_n p(y_n\mid\xi_n) = \sum_n \log
\mathbb E_{\xi_n} p(y_n\mid\xi_n)`: the objective decomposes over data and minibatches are
unbiased for the sum of per-example bounds. With one draw per *batch* (``granularity="batch"``)
it does not decompose; see :func:`marginal_log_likelihood`.

**Gaussian prior on the EP weights.** :math:`\log p(W) = -\|W\|^2/(2\sigma_0^2) + \text{const}`,
summed over weights. Convention of the per-example loss used throughout dropprior:

.. math:: \ell(W) = -\frac1N\sum_{n=1}^N \log p(y_n\mid x_n,W) + \frac{1}{2N\sigma_0^2}\|W\|^2,

whose gradient of the prior term is :math:`W/(N\sigma_0^2)`. torch's ``weight_decay=λ`` (SGD and
Adam, **not** AdamW) adds λW to the gradient, i.e. the loss λ/2 ‖W‖²; hence
λ = 1/(Nσ0²) and σ0 = 1/√(Nλ) (:func:`weight_decay_from_sigma0`, :func:`sigma0_from_weight_decay`).

**Hierarchical parametrization (HP).** The same prior with ξ in the Gaussian's variance,
:math:`w_g\mid\xi_g \sim \mathcal N(0, \sigma_0^2\xi_g^2 I_D)`, and a noise-free network.
:func:`hp_log_prior` estimates :math:`\log \mathbb E_\xi \mathcal N(w_g; 0, \sigma_0^2\xi^2 I)`
either
by its Jensen bound :math:`\mathbb E_\xi \log\mathcal N(\cdot)` or by log-mean-exp. Prop. 4.2: the
Jensen gap grows with Var[ξ⁻²], infinite for Bernoulli, Rayleigh and Gaussian noise.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import TYPE_CHECKING

import torch
from torch import Tensor, nn

from dropprior._validation import check_choice, check_sigma0, shape_or_type, type_name
from dropprior.likelihoods import Likelihood
from dropprior.noise import NoiseLaw

if TYPE_CHECKING:
    from dropprior.nn import SeededDraws

__all__ = [
    "model_output",
    "output_samples",
    "log_likelihood_samples",
    "mc_log_likelihood",
    "marginal_log_likelihood",
    "tail_adaptive_weights",
    "tail_adaptive_log_likelihood",
    "reduce_draws",
    "prior_penalty",
    "training_loss",
    "OBJECTIVE_FUNCTIONS",
    "ep_weight_penalty",
    "gaussian_log_prior",
    "weight_decay_from_sigma0",
    "sigma0_from_weight_decay",
    "hp_log_prior",
    "check_samples",
    "check_sigma0",
    "noise_granularities",
]

# Rows per forward pass when the batch is repeated S times (bounds memory at large S).
_MAX_ROWS = 1 << 16


def check_samples(samples: int, name: str = "samples") -> int:
    """Return ``samples`` if it is an int ≥ 1; else a clear TypeError/ValueError."""
    if isinstance(samples, bool) or not isinstance(samples, int):
        raise TypeError(f"{name} must be an int >= 1, got {samples!r}")
    if samples < 1:
        raise ValueError(f"{name} must be >= 1 (the number of noise draws), got {samples}")
    return samples


def noise_granularities(model: nn.Module) -> set[str]:
    """The set of noise granularities ("example", "batch", "sequence") of the model's noisy layers
    and variational weights (one weight draw per forward pass: "batch").

    torch's own dropout modules draw per example and count as "example".
    """
    from dropprior.nn import Stochastic

    found: set[str] = set()
    for module in model.modules():
        if isinstance(module, Stochastic):
            found.add(str(module.granularity))
    return found


def _check_batch(x: Tensor, y: Tensor, likelihood: Likelihood) -> None:
    if not isinstance(x, Tensor):
        raise TypeError(f"x must be a torch.Tensor, got {type(x).__name__}")
    if not isinstance(y, Tensor):
        raise TypeError(f"y must be a torch.Tensor, got {type(y).__name__}")
    if not isinstance(likelihood, Likelihood):
        raise TypeError(
            "likelihood must be a dropprior.likelihoods.Likelihood (Gaussian, Categorical, "
            f"Bernoulli), got {type_name(likelihood)}"
        )
    if x.dim() == 0 or y.dim() == 0 or x.shape[0] != y.shape[0]:
        raise ValueError(
            f"x and y must have the same number of examples along dim 0, got x of shape "
            f"{tuple(x.shape)} and y of shape {tuple(y.shape)}"
        )


def model_output(model: nn.Module, x: Tensor) -> Tensor:
    """``model(x)``, refused with a TypeError unless it is one tensor (the likelihood's input,
    as the objectives, ``fit`` and ``predict`` take it)."""
    out = model(x)
    if not isinstance(out, Tensor):
        hint = (": an LSTM returns (output, (h_n, c_n)); put dropprior.nn.LSTMOutput() after it "
                "or return the head's output" if isinstance(out, tuple) else "")
        raise TypeError(f"the model's forward must return one tensor, the likelihood's input; "
                        f"{type(model).__name__} returned {type_name(out)}{hint}")
    return out


def output_samples(model: nn.Module, x: Tensor, samples: int = 1,
                   vectorize: bool | None = None, max_rows: int | None = None,
                   seeded: SeededDraws | None = None) -> Tensor:
    r"""The model's outputs under S independent noise draws, stacked along a new dim 0.

    With per-example noise the batch is repeated S times along dim 0 and run through the model in
    one pass (chunked to at most ``max_rows`` rows), so that each copy draws its own noise;
    otherwise (noise per batch or per sequence, or ``vectorize=False``) the model is called S
    times.

    Args:
        model: a stochastic model (train mode, or inside ``dropprior.nn.mc``), batch along dim 0.
        x: inputs with N examples along dim 0.
        samples: S ≥ 1.
        vectorize: force (True) or forbid (False) the repeated-batch pass; None decides from the
            layers' granularity (only "example" noise can be vectorized).
        max_rows: rows per vectorised pass (copies × N; None: 65536); at least one copy.
        seeded: the handle of :func:`dropprior.nn.seeded_draws`: each pass announces the
            samples it runs, so sample s draws from its own generators and the result does not
            depend on ``vectorize`` or ``max_rows``.

    Shape:
        x: (N, ...); result: (S, N, ...).
    """
    check_samples(samples)
    if not isinstance(x, Tensor):
        raise TypeError(f"x must be a torch.Tensor, got {type(x).__name__}")
    if x.dim() == 0:
        raise ValueError("x must have a batch dimension (dim 0), got a 0-d tensor")
    n = x.shape[0]
    if vectorize is None:
        vectorize = noise_granularities(model) <= {"example"}
    if not vectorize or samples == 1:
        outputs = []
        for s in range(samples):
            if seeded is not None:
                seeded.start_pass(s, 1)
            outputs.append(model_output(model, x))
        return torch.stack(outputs)
    if max_rows is not None and (isinstance(max_rows, bool) or not isinstance(max_rows, int)
                                 or max_rows < 1):
        raise ValueError(f"max_rows must be an int >= 1 or None, got {max_rows!r}")
    budget = _MAX_ROWS if max_rows is None else max_rows
    copies = max(1, min(samples, budget // max(n, 1)))
    chunks = []
    done = 0
    while done < samples:
        k = min(copies, samples - done)
        if seeded is not None:
            seeded.start_pass(done, k)
        out = model_output(model, x.repeat(k, *([1] * (x.dim() - 1))))
        chunks.append(out.reshape(k, n, *out.shape[1:]))
        done += k
    return torch.cat(chunks, dim=0)


def log_likelihood_samples(model: nn.Module, x: Tensor, y: Tensor, likelihood: Likelihood,
                           samples: int = 1, vectorize: bool | None = None) -> Tensor:
    r"""log p(y_n | x_n, W, Ξ_s) for S independent noise draws: the objectives' building block.

    Args:
        model, x, samples, vectorize: as :func:`output_samples`.
        y: targets with N examples along dim 0.
        likelihood: a :class:`~dropprior.likelihoods.Likelihood`.

    Shape:
        x: (N, ...); y: (N, ...); result: (S, N).
    """
    check_samples(samples)
    _check_batch(x, y, likelihood)
    outputs = output_samples(model, x, samples, vectorize)
    likelihood.check(outputs[0], y)
    s, n = outputs.shape[:2]
    flat_y = y.unsqueeze(0).expand(s, *y.shape).reshape(s * n, *y.shape[1:])
    return likelihood.log_prob(outputs.reshape(s * n, *outputs.shape[2:]), flat_y).reshape(s, n)


def mc_log_likelihood(model: nn.Module, x: Tensor, y: Tensor, likelihood: Likelihood,
                      samples: int = 1, vectorize: bool | None = None) -> Tensor:
    r"""The MC objective (eq. 3): :math:`\frac1S\sum_s \log p(y_n\mid x_n, W, \Xi_s)` per example.

    Args: as :func:`log_likelihood_samples`.

    Shape:
        result: (N,).
    """
    return reduce_draws(log_likelihood_samples(model, x, y, likelihood, samples, vectorize),
                        "mc")


def marginal_log_likelihood(model: nn.Module, x: Tensor, y: Tensor, likelihood: Likelihood,
                            samples: int = 1, vectorize: bool | None = None) -> Tensor:
    r"""The marginal-MAP bound (eq. 10) by log-mean-exp over S draws, per example.

    .. math:: \operatorname{logsumexp}_{s} \log p(y_n\mid x_n, W, \Xi_s) - \log S

    Exact in log space: no underflow even at S = 1000 with log-likelihoods of −10⁴.

    If any layer draws one noise value per *batch*, the batch's bound
    :math:`\log\frac1S\sum_s\prod_n p(y_n\mid\Xi_s)` does not split over examples; each entry
    of the result is then that batch value divided by N, so that the sum is the batch bound.

    Shape:
        result: (N,).
    """
    logp = log_likelihood_samples(model, x, y, likelihood, samples, vectorize)
    if "batch" in noise_granularities(model):
        joint = reduce_draws(logp.sum(dim=1), "marginal")
        return (joint / logp.shape[1]).expand(logp.shape[1])
    return reduce_draws(logp, "marginal")


def tail_adaptive_weights(logp: Tensor) -> Tensor:
    r"""The tail-adaptive rank weights of S log-likelihoods per example (Wang et al., 2018, with
    β = −1, as the follow-up trains dropout): sort the draws by log-likelihood, largest first, and
    give the draw of rank r the weight (1/r) / Σ_{k=1}^S 1/k. Ties keep the draws' order.

    Shape:
        logp: (S, ...) with at least one dim after S; result: its shape, each column (fixed
        trailing index) summing to 1 over S.
    """
    if logp.dim() < 2:
        raise ValueError(f"logp must have shape (S, N, ...), got {tuple(logp.shape)}")
    s = logp.shape[0]
    order = torch.argsort(logp.detach(), dim=0, descending=True, stable=True)
    ranks = torch.empty_like(order)
    steps = torch.arange(1, s + 1, device=logp.device).reshape(s, *([1] * (logp.dim() - 1)))
    ranks.scatter_(0, order, steps.expand_as(order))
    weights = 1.0 / ranks.to(logp.dtype)
    return weights / weights.sum(dim=0, keepdim=True)


def tail_adaptive_log_likelihood(model: nn.Module, x: Tensor, y: Tensor, likelihood: Likelihood,
                                 samples: int = 1, vectorize: bool | None = None) -> Tensor:
    r"""The tail-adaptive objective: :math:`\sum_s \gamma_{s,n} \log p(y_n\mid x_n, W, \Xi_s)`
    with the rank weights γ of :func:`tail_adaptive_weights` held constant in the gradient, so
    its gradient is the γ-weighted sum of the draws' gradients. Between the MC objective (equal
    weights) and the marginal bound (weights ∝ the likelihoods), it leans on the better draws
    without the variance of self-normalised importance weights. With one draw per *batch* the
    draws are ranked by their joint log-likelihood over the batch.

    Shape:
        result: (N,).
    """
    logp = log_likelihood_samples(model, x, y, likelihood, samples, vectorize)
    if "batch" in noise_granularities(model):
        weights = tail_adaptive_weights(logp.sum(dim=1, keepdim=True)).expand_as(logp)
        return (weights.detach() * logp).sum(dim=0)
    return reduce_draws(logp, "tail_adaptive")


def reduce_draws(logp: Tensor, objective: str) -> Tensor:
    r"""An objective's per-example value from the log-likelihoods of S draws: the one place
    each objective is computed (the model-level functions above and the batched UCI runner call
    it).

    * ``"mc"``: :math:`rac1S\sum_s \log p_s` (eq. 3);
    * ``"marginal"``: :math:`\operatorname{logsumexp}_s \log p_s - \log S` (eq. 10);
    * ``"tail_adaptive"``: :math:`\sum_s \gamma_s \log p_s` with the rank weights γ of
      :func:`tail_adaptive_weights` held constant in the gradient.

    Shape:
        logp: (S, ...); result: logp.shape[1:].
    """
    if objective not in _REDUCERS:
        raise ValueError(f"objective={objective!r} is not valid; expected one of "
                         f"{list(_REDUCERS)}")
    if not isinstance(logp, Tensor) or logp.dim() < 1 or logp.shape[0] < 1:
        raise ValueError(f"logp must be a tensor (S, ...) with S >= 1 draws along dim 0, got "
                         f"{shape_or_type(logp)}")
    return _REDUCERS[objective](logp)


def _tail_adaptive(logp: Tensor) -> Tensor:
    if logp.dim() == 1:  # one value per draw: rank them as one column
        return _tail_adaptive(logp.unsqueeze(1)).squeeze(0)
    return (tail_adaptive_weights(logp).detach() * logp).sum(dim=0)


_REDUCERS = {
    "mc": lambda logp: logp.mean(dim=0),
    "marginal": lambda logp: torch.logsumexp(logp, dim=0) - math.log(logp.shape[0]),
    "tail_adaptive": _tail_adaptive,
}


# ---- the Gaussian prior on the EP weights ---------------------------------------------------

def _parameters(params: nn.Module | Iterable[Tensor]) -> list[Tensor]:
    if isinstance(params, nn.Module):
        return list(params.parameters())
    out = list(params)
    for p in out:
        if not isinstance(p, Tensor):
            raise TypeError(f"expected a module or an iterable of tensors, got {type(p).__name__}")
    return out


def ep_weight_penalty(params: nn.Module | Iterable[Tensor], sigma0: float) -> Tensor:
    r"""The negative log Gaussian prior on the EP weights, up to its constant:
    :math:`\|W\|^2/(2\sigma_0^2)`.

    Summed (never averaged) over every weight. A module contributes all its parameters (biases
    included, as torch's ``weight_decay`` does); pass an explicit list to leave some out.
    ``sigma0=math.inf`` gives 0 (plain dropout).

    Shape:
        result: scalar.
    """
    sigma0 = check_sigma0(sigma0)
    tensors = _parameters(params)
    if not tensors:
        return torch.zeros(())
    total = torch.stack([(p**2).sum() for p in tensors]).sum()
    return total / (2 * sigma0**2) if math.isfinite(sigma0) else total * 0.0


def gaussian_log_prior(params: nn.Module | Iterable[Tensor], sigma0: float) -> Tensor:
    r"""The exact log density :math:`\sum_i \log\mathcal N(w_i; 0, \sigma_0^2)`, constants included.

    Shape:
        result: scalar.
    """
    sigma0 = check_sigma0(sigma0)
    if not math.isfinite(sigma0):
        raise ValueError("gaussian_log_prior needs a finite sigma0 (the density of an improper "
                         "flat prior is not defined)")
    tensors = _parameters(params)
    count = sum(p.numel() for p in tensors)
    const = -0.5 * count * math.log(2 * math.pi * sigma0**2)
    return const - ep_weight_penalty(tensors, sigma0)


def prior_penalty(model: nn.Module, sigma0: float) -> Tensor:
    r"""−log p(θ) of a model, up to constants: the Gaussian N(0, σ0²) on its EP weights
    (:func:`ep_weight_penalty`) plus, where learned scales are attached, their term
    (:func:`dropprior.scales.scale_penalty`: −Σ log p(s_g) for type-II MAP; the KL of q from the
    prior at closed-form scales, −Σ log p(v_g), for VI). The parameters the scales' term covers
    (the scales; for VI the means and standard deviations) get no Gaussian.

    Shape:
        result: scalar.
    """
    from dropprior.scales import covered_parameters, scale_penalty

    covered = covered_parameters(model)
    plain = [p for p in model.parameters() if id(p) not in covered]
    return ep_weight_penalty(plain, sigma0) + scale_penalty(model, sigma0)


def training_loss(model: nn.Module, x: Tensor, y: Tensor, likelihood: Likelihood,
                  objective: str, samples: int, sigma0: float, n_train: int,
                  vectorize: bool | None = None, prior_weight: float = 1.0) -> Tensor:
    r"""The per-example minibatch loss every trainer minimises (``fit``, the Lightning module):
    −(1/B) Σ_n ℓ_n + w · prior_penalty(model, σ0) / N, with ℓ_n the ``objective``'s
    log-likelihood of example n (:data:`OBJECTIVE_FUNCTIONS`), N the number of training examples
    and w = ``prior_weight`` (1: the posterior; below 1 during a warm-up).

    Shape:
        x: (B, ...); y: (B, ...); result: scalar.
    """
    if objective not in OBJECTIVE_FUNCTIONS:
        raise ValueError(f"objective={objective!r} is not valid; expected one of "
                         f"{list(OBJECTIVE_FUNCTIONS)}")
    loglik = OBJECTIVE_FUNCTIONS[objective](model, x, y, likelihood, samples, vectorize)
    return -loglik.mean() + prior_weight * prior_penalty(model, sigma0) / n_train


def weight_decay_from_sigma0(sigma0: float, n_data: int) -> float:
    r"""torch's ``weight_decay`` λ that states the prior N(0, σ0²) for a per-example
    loss on N points.

    λ = 1/(N σ0²) (0 for σ0 = ∞). Valid for ``torch.optim.SGD`` / ``Adam`` (L2 added to the
    gradient), not for AdamW's decoupled decay.
    """
    sigma0 = check_sigma0(sigma0)
    _check_n(n_data)
    return 0.0 if not math.isfinite(sigma0) else 1.0 / (n_data * sigma0**2)


def sigma0_from_weight_decay(weight_decay: float, n_data: int) -> float:
    r"""The prior standard deviation σ0 = 1/√(Nλ) that ``weight_decay`` λ states (∞ for λ = 0)."""
    if isinstance(weight_decay, bool) or not isinstance(weight_decay, (int, float)):
        raise TypeError(f"weight_decay must be a float >= 0, got {weight_decay!r}")
    if not (weight_decay >= 0 and math.isfinite(weight_decay)):
        raise ValueError(f"weight_decay must be finite and >= 0, got {weight_decay!r}")
    _check_n(n_data)
    return math.inf if weight_decay == 0 else 1.0 / math.sqrt(n_data * weight_decay)


def _check_n(n_data: int) -> None:
    if isinstance(n_data, bool) or not isinstance(n_data, int) or n_data < 1:
        raise ValueError(f"n_data must be an int >= 1 (the training set size), got {n_data!r}")


# ---- the hierarchical parametrization ------------------------------------------------------

HP_ESTIMATORS = ("jensen", "log_mean_exp")


def hp_log_prior(weight: Tensor, noise: NoiseLaw, sigma0: float, samples: int = 1,
                 group_dim: int = 0, estimator: str = "jensen",
                 generator: torch.Generator | None = None) -> Tensor:
    r"""The HP prior term: ξ in the prior's variance, one ξ per group of weights.

    For group g with weights :math:`w_g \in \mathbb R^D` and S draws ξ_{gs} ~ p(ξ),

    .. math:: \ell_{gs} = \log\mathcal N(w_g; 0, \sigma_0^2\xi_{gs}^2 I_D)
              = -\tfrac D2\log(2\pi\sigma_0^2\xi_{gs}^2) - \frac{\|w_g\|^2}{2\sigma_0^2\xi_{gs}^2}

    * ``estimator="jensen"``: :math:`\sum_g \frac1S\sum_s \ell_{gs}` — the HP analogue of eq. 3,
      a lower bound of :math:`\sum_g\log\mathbb E_\xi\mathcal N(w_g;0,\sigma_0^2\xi^2 I)` whose gap
      grows with Var[ξ⁻²] (Prop. 4.2);
    * ``estimator="log_mean_exp"``: :math:`\sum_g \operatorname{logsumexp}_s \ell_{gs} - \log S`.

    A draw ξ = 0 (Bernoulli) puts the weights at a point mass: ℓ = −∞ for a non-zero group, so
    the Jensen bound is −∞ whenever a zero is drawn — the instability, visible.

    Args:
        weight: the (effective) weights of one layer.
        noise: the noise law p(ξ) (scalar parameters).
        sigma0: σ0 > 0.
        samples: S ≥ 1 draws per group.
        group_dim: the dimension of ``weight`` that indexes groups (for ``nn.Linear.weight`` of
            shape (out, in), ``group_dim=1`` groups by input unit — ARD).
        estimator: "jensen" or "log_mean_exp".
        generator: for the draws of ξ.

    Shape:
        weight: any, with G groups along ``group_dim``; result: scalar (summed over groups).
    """
    check_samples(samples)
    check_choice("estimator", estimator, HP_ESTIMATORS)
    sigma0 = check_sigma0(sigma0)
    if not isinstance(noise, NoiseLaw):
        raise TypeError(f"noise must be a dropprior NoiseLaw, got {type_name(noise)}")
    groups = weight.movedim(group_dim, 0).reshape(weight.shape[group_dim], -1)
    n_groups, d = groups.shape
    sq_norm = (groups**2).sum(dim=1)  # (G,)
    draws = noise.sample((samples, n_groups), generator=generator)  # type: ignore[call-arg]
    xi = draws.to(weight.dtype)
    var = sigma0**2 * xi**2  # (S, G)
    safe = torch.where(var > 0, var, torch.ones_like(var))
    log_n = -0.5 * d * torch.log(2 * math.pi * safe) - sq_norm / (2 * safe)
    point_mass = torch.where(sq_norm > 0, -math.inf, math.inf).to(weight.dtype).expand_as(var)
    log_n = torch.where(var > 0, log_n, point_mass)
    if estimator == "jensen":
        return log_n.mean(dim=0).sum()
    return reduce_draws(log_n, "marginal").sum()


#: The training objectives by name: per-example log-likelihoods (B,) of a minibatch.
OBJECTIVE_FUNCTIONS = {"mc": mc_log_likelihood, "marginal": marginal_log_likelihood,
                       "tail_adaptive": tail_adaptive_log_likelihood}
