r"""Prediction: MC averaging over noise draws, and deterministic mean-scaling for comparison.

**MC prediction** draws S noise samples and treats the network outputs as a mixture. For Gaussian
regression with per-draw means μ_s and standard deviations σ_s,

.. math:: \hat y = \frac1S\sum_s\mu_s,\qquad
          \operatorname{Var}[y] = \underbrace{\frac1S\sum_s\mu_s^2-\hat y^2}_{\text{epistemic}}
          + \underbrace{\frac1S\sum_s\sigma_s^2}_{\text{aleatoric}},\qquad
          \log p(y) = \operatorname{logsumexp}_s\log\mathcal N(y;\mu_s,\sigma_s^2)-\log S.

For classification the predictive probabilities are :math:`\frac1S\sum_s\operatorname{softmax}
(\ell_s)` (or the sigmoid for :class:`~dropprior.likelihoods.Bernoulli`).

**Mean-scaling** (``method="mean_scaling"``) runs the network once in eval mode, where every noisy
layer multiplies by E[ξ] instead of a draw (the "weight scaling" rule of Srivastava et al.). It
exists only when E[ξ] is finite: half-Cauchy noise has no mean and gets a clear error.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Iterable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn

from dropprior._validation import check_choice, check_finite_data, shape_or_type, type_name
from dropprior.likelihoods import Bernoulli, Categorical, Gaussian, Likelihood
from dropprior.noise import NoiseLaw
from dropprior.objectives import check_samples, model_output, output_samples

__all__ = [
    "predict",
    "mc_mode",
    "check_mean_scaling",
    "RegressionPrediction",
    "ClassificationPrediction",
    "PREDICTION_METHODS",
    "sample_outputs",
]

#: "mc": average over noise draws; "mean_scaling": one pass with ξ replaced by E[ξ].
PREDICTION_METHODS = ("mc", "mean_scaling")


@contextmanager
def mc_mode(model: nn.Module, kept: Collection[nn.Module] = ()) -> Iterator[nn.Module]:
    """Eval mode (batch-norm statistics frozen) with the noise still drawn, then restore modes.

    dropprior's noisy layers and torch's own dropout modules draw inside :func:`dropprior.nn.mc`;
    the modules ``kept`` stay in eval mode (their noise at its mean).
    """
    from dropprior.nn import sampling_mode

    modes = {m: m.training for m in model.modules()}
    model.eval()
    try:
        with sampling_mode(model, kept):
            yield model
    finally:
        for m, training in modes.items():
            m.train(training)


def check_mean_scaling(model: nn.Module) -> None:
    """Raise a ValueError naming the layer if any noisy layer's law has an infinite mean E[ξ]."""
    from dropprior.nn import NoisyModule

    for name, m in model.named_modules():
        if isinstance(m, NoisyModule):
            for law in _laws(m):
                if not bool(torch.all(torch.isfinite(law.mean))):
                    raise ValueError(
                        f"mean-scaling prediction needs E[ξ] < ∞, but layer {name or '<root>'!r} "
                        f"uses {law!r}, which has no mean; use method='mc' (MC prediction) instead"
                    )


def _laws(module: nn.Module) -> list[NoiseLaw]:
    return [v for v in vars(module).values() if isinstance(v, NoiseLaw)]


@dataclass(frozen=True)
class RegressionPrediction:
    """Predictive summary of a regression model.

    Attributes:
        mean: predictive mean, shape (N,) or (N, D).
        variance: total predictive variance = epistemic + aleatoric, same shape.
        epistemic: variance of the per-draw means (0 for mean-scaling).
        aleatoric: mean of the per-draw observation variances (0 without a likelihood).
        sample_means: per-draw means μ_s, shape (S, N[, D]) (S = 1 for mean-scaling).
        sample_stds: per-draw σ_s, same shape, or None without a likelihood.
        sample_outputs: the raw per-draw network outputs, (S, N, ...); :meth:`stacked` gives
            them in the (S·N, ...) layout.

    For heavy-tailed noise (half-Cauchy) the predictive mean may not exist and the MC average of
    the draws is dominated by rare huge draws; :attr:`median` (the per-draw means' median) is the
    robust point prediction then.
    """

    mean: Tensor
    variance: Tensor
    epistemic: Tensor
    aleatoric: Tensor
    sample_means: Tensor
    sample_stds: Tensor | None
    sample_outputs: Tensor | None = None

    def stacked(self) -> Tensor:
        """The raw per-draw outputs in the stacked layout (S·N, ...), sample-major (rows
        s·N … s·N + N − 1 are draw s), as torch-uncertainty's MC-dropout wrapper returns them."""
        return _stacked(sample_outputs(self))

    def log_density(self, y: Tensor) -> Tensor:
        r"""The mixture log-density over the S draws,
        :math:`\log\frac1S\sum_s\mathcal N(y_n;\mu_{s,n},\sigma_{s,n}^2)`.

        Shape:
            y: like ``mean``; result: (N,) (summed over D).
        """
        if self.sample_stds is None:
            raise ValueError("log_density needs a Gaussian likelihood: call predict(..., "
                             "likelihood=Gaussian(noise_std=...))")
        if not isinstance(y, Tensor) or y.shape != self.mean.shape:
            raise ValueError(f"y must be a tensor of shape {tuple(self.mean.shape)}, got "
                             f"{shape_or_type(y)}")
        mu, sd = self.sample_means, self.sample_stds
        log_n = -0.5 * math.log(2 * math.pi) - torch.log(sd) - 0.5 * ((y - mu) / sd) ** 2
        log_n = log_n.reshape(mu.shape[0], mu.shape[1], -1).sum(dim=-1)
        return torch.logsumexp(log_n, dim=0) - math.log(mu.shape[0])

    @property
    def median(self) -> Tensor:
        """The median over draws of the per-draw means (a robust point prediction)."""
        return self.sample_means.median(dim=0).values

    def plot_coverage(self, y: Tensor, path: str | None = None) -> Any:
        """The coverage calibration curve of this predictive on targets ``y``
        (:func:`dropprior.plotting.coverage_plot` of :func:`dropprior.metrics.coverage_curve`);
        returns the matplotlib Figure, saved to ``path`` if given.

        Shape:
            y: like ``mean``.
        """
        from dropprior.metrics import coverage_curve
        from dropprior.plotting import coverage_plot

        if self.sample_stds is None:
            raise ValueError("plot_coverage needs a Gaussian likelihood: call predict(..., "
                             "likelihood=Gaussian(noise_std=...))")
        s = self.sample_means.shape[0]
        curve = coverage_curve(self.sample_means.reshape(s, -1),
                               self.sample_stds.reshape(s, -1), y.reshape(-1))
        return coverage_plot(*curve, path=path)


@dataclass(frozen=True)
class ClassificationPrediction:
    """Predictive class probabilities.

    Attributes:
        probs: (N, C) for a categorical model, (N[, D]) success probabilities for a Bernoulli one.
        sample_probs: per-draw probabilities, shape (S, ...).
        binary: whether the probabilities are a Bernoulli model's (sigmoid), not a softmax.
    """

    probs: Tensor
    sample_probs: Tensor
    binary: bool = False

    def plot_reliability(self, y: Tensor, n_bins: int = 15, path: str | None = None) -> Any:
        """The reliability diagram with its bin counts (:func:`dropprior.plotting.
        reliability_diagram` of :func:`dropprior.metrics.reliability`) on labels ``y``; returns
        the matplotlib Figure, saved to ``path`` if given.

        Shape:
            y: (N,) class indices.
        """
        from dropprior.metrics import reliability
        from dropprior.plotting import reliability_diagram

        if self.binary:
            raise ValueError("plot_reliability reads a categorical predictive (N, C); for a "
                             "Bernoulli model stack the probabilities as (1 - p, p) first")
        return reliability_diagram(reliability(self.probs, y, n_bins), path=path)

    @property
    def sample_logits(self) -> Tensor:
        """Per-draw logits recovered from the probabilities: log-probabilities for a categorical
        model (equal to its logits up to a per-row constant, so their softmax is
        ``sample_probs``), log(p / (1 − p)) for a Bernoulli one. Shape (S, ...)."""
        p = self.sample_probs
        return torch.logit(p) if self.binary else torch.log(p)

    def stacked(self) -> Tensor:
        """:attr:`sample_logits` in the stacked layout (S·N, ...), sample-major (rows s·N …
        s·N + N − 1 are draw s), as torch-uncertainty's MC-dropout wrapper returns them."""
        return _stacked(self.sample_logits)


def _stacked(outputs: Tensor) -> Tensor:
    return outputs.reshape(outputs.shape[0] * outputs.shape[1], *outputs.shape[2:])


def sample_outputs(pred: RegressionPrediction | ClassificationPrediction) -> Tensor:
    """Per-draw outputs that :func:`summarise` turns back into ``pred``: a regression's raw
    outputs, a classifier's :attr:`ClassificationPrediction.sample_logits`."""
    if isinstance(pred, ClassificationPrediction):
        return pred.sample_logits
    if pred.sample_outputs is None:
        raise ValueError("this prediction holds no raw outputs (it was not made by predict), "
                         "so it has no draws to lay out")
    return pred.sample_outputs


class _Unset:
    def __repr__(self) -> str:
        return "<required>"


_UNSET: Any = _Unset()


def predict(model: nn.Module, x: Tensor, samples: int = 100,
            likelihood: Likelihood | None = _UNSET, method: str = "mc",
            batch_size: int | None = None, vectorize: bool | None = None,
            scope: str = "example", max_rows: int | None = None,
            seed: int | None = None, exclude: Iterable[str | nn.Module] = ()
            ) -> RegressionPrediction | ClassificationPrediction:
    """Predict with MC averaging over noise draws (or deterministic mean-scaling).

    Args:
        model: a dropprior model (or any torch model with dropout). Its train/eval modes are
            restored afterwards; gradients are not tracked.
        x: inputs.
        samples: S ≥ 1 noise draws (ignored by mean-scaling, and 1 for a model with no noise,
            whose draws would all be the same).
        likelihood: required; selects the summary: :class:`~dropprior.likelihoods.Gaussian` →
            :class:`RegressionPrediction` with its aleatoric variance;
            :class:`~dropprior.likelihoods.Categorical` / :class:`~dropprior.likelihoods.Bernoulli`
            → :class:`ClassificationPrediction`; ``None`` → a regression summary of the raw
            outputs (no aleatoric part; a classifier's logits would be averaged as numbers).
        method: "mc" or "mean_scaling" (raises if some layer's E[ξ] is infinite).
        batch_size: examples per forward pass (None: all at once).
        vectorize: see :func:`dropprior.objectives.output_samples` (only with
            ``scope="example"``).
        scope: how far one draw reaches (:data:`dropprior.nn.SCOPES`): ``"example"`` (each
            input its own draw), ``"batch"`` (one draw per forward pass) or ``"function"`` (one
            draw per sampled function: sample s uses the same ξ for every input, across
            batches, so the S samples are S networks). With ``"example"`` and no ``seed``, a
            variational linear map trained by the local reparametrization draws each input's
            output from its exact law under q (:func:`dropprior.nn.per_example_draws`): every
            input's predictive is the one weight draws give it, and the S draws run
            vectorised; ``"batch"``, ``"function"`` or a ``seed`` draw whole weights per pass.
        seed: the seed of the draws. ``scope="function"``: the S functions (None: 0; the same
            seed gives the same S networks). ``"example"`` and ``"batch"``: None draws from the
            layers' own generators, so the numbers depend on how the draws are split into
            passes; an int gives sample s of batch b generators of its own, seeded by (seed, b,
            s, module) (:func:`dropprior.nn.seeded_draws`), and the same numbers vectorised or
            looped and at any ``max_rows``. Seeded vectorised passes run each noisy module once
            per copy. Every noisy module must then be dropprior's.
        max_rows: the memory budget of a vectorised pass: at most this many rows (draws ×
            examples) go through the model at once (None: 65536); the S draws of a batch run in
            chunks of ⌊max_rows / batch⌋ copies.
        exclude: submodules (names as ``model.named_modules()`` gives them, or the modules)
            that the MC passes hold at their mean, with everything below them (as
            :func:`dropprior.nn.mc`'s ``exclude``): MC over the rest of the model. Only with
            ``method="mc"``.

    Shape:
        x: (N, ...); outputs as documented on the returned dataclass.
    """
    check_choice("method", method, PREDICTION_METHODS)
    check_samples(samples)
    if likelihood is _UNSET:
        raise TypeError("predict() needs likelihood=: Categorical() or Bernoulli() for a "
                        "classifier, Gaussian(noise_std=...) for a regression, or None to "
                        "summarise the raw outputs as a regression without aleatoric noise")
    if likelihood is not None and not isinstance(likelihood, Likelihood):
        raise TypeError(f"likelihood must be a dropprior Likelihood or None, got "
                        f"{type_name(likelihood)}")
    if not isinstance(model, nn.Module):
        raise TypeError(f"predict() takes a torch.nn.Module, got {type_name(model)}")
    if not isinstance(x, Tensor) or x.dim() == 0:
        raise TypeError("x must be a torch.Tensor with a batch dimension")
    if x.shape[0] == 0:
        raise ValueError(f"x holds no examples (shape {tuple(x.shape)}); predict needs at least "
                         "one")
    check_finite_data("x", x)
    if batch_size is not None and (isinstance(batch_size, bool) or
                                   not isinstance(batch_size, int) or batch_size < 1):
        raise ValueError(f"batch_size must be an int >= 1 or None, got {batch_size!r}")
    step = x.shape[0] if batch_size is None else batch_size
    from dropprior.nn import (
        SCOPES,
        excluded_modules,
        has_noise,
        noise_scope,
        per_example_draws,
        seeded_draws,
    )

    check_choice("scope", scope, SCOPES)
    if scope != "example" and vectorize:
        raise ValueError(f"vectorize=True repeats the batch so that each copy draws its own "
                         f"noise, which scope={scope!r} shares; leave vectorize=None")
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int)):
        raise TypeError(f"seed must be an int or None, got {type_name(seed)}")
    if scope == "function" and seed is None:
        seed = 0

    kept = excluded_modules(model, exclude, "predict()")
    if kept and method != "mc":
        raise ValueError(f"exclude holds modules to keep at their mean in the MC passes; "
                         f"method={method!r} draws no noise anywhere (use method='mc')")
    if not has_noise(model, kept):
        samples = 1  # every draw would be the same: one pass
    parts = []
    with torch.no_grad():
        if method == "mean_scaling":
            check_mean_scaling(model)
            modes = {m: m.training for m in model.modules()}
            model.eval()
            try:
                for i in range(0, x.shape[0], max(step, 1)):
                    parts.append(_draws(model_output(model, x[i:i + step]).unsqueeze(0),
                                        likelihood))
            finally:
                for m, training in modes.items():
                    m.train(training)
        else:
            with mc_mode(model, kept), noise_scope(model, scope, kept), ExitStack() as stack:
                if scope == "example" and seed is None:
                    stack.enter_context(per_example_draws(model))
                seeded = None if seed is None else stack.enter_context(
                    seeded_draws(model, seed, per_batch=scope != "function", kept=kept))
                for b, i in enumerate(range(0, x.shape[0], max(step, 1))):
                    if seeded is not None:
                        seeded.start_batch(b)
                    parts.append(_draws(output_samples(model, x[i:i + step], samples,
                                                       vectorize, max_rows, seeded),
                                        likelihood))
    with torch.no_grad():  # a learned likelihood std must not attach the summary to a graph
        return _summary(torch.cat(parts, dim=1), likelihood)  # draws (S, N, ...)


def _draws(outputs: Tensor, likelihood: Likelihood | None) -> Tensor:
    """One batch's draws as kept: a classifier's probabilities (so that its raw outputs, a
    second S × N × C tensor, are never held for the whole set), a regression's raw outputs."""
    if isinstance(likelihood, Categorical):
        likelihood.check_logits(outputs[0])
        return torch.softmax(outputs, dim=-1)
    if isinstance(likelihood, Bernoulli):
        return torch.sigmoid(outputs)
    return outputs


def summarise(outputs: Tensor, likelihood: Likelihood | None) -> (
        RegressionPrediction | ClassificationPrediction):
    """Turn per-draw outputs (S, N, ...) into a predictive summary (see :func:`predict`)."""
    return _summary(_draws(outputs, likelihood), likelihood)


def _summary(draws: Tensor, likelihood: Likelihood | None) -> (
        RegressionPrediction | ClassificationPrediction):
    """The predictive summary of draws as :func:`_draws` keeps them (S, N, ...)."""
    if isinstance(likelihood, (Categorical, Bernoulli)):
        return ClassificationPrediction(draws.mean(dim=0), draws,
                                        binary=isinstance(likelihood, Bernoulli))
    outputs = draws
    if likelihood is None:
        means, stds = outputs, None
        aleatoric = torch.zeros_like(outputs[0])
    elif isinstance(likelihood, Gaussian):
        means, stds = likelihood.split(outputs)
        if likelihood.heteroscedastic and means.shape[-1] == 1 and outputs.dim() == 3:
            means, stds = means.squeeze(-1), stds.squeeze(-1)
        aleatoric = (stds**2).mean(dim=0)
    else:
        raise TypeError(f"no predictive summary for likelihood {type_name(likelihood)}")
    mean = means.mean(dim=0)
    epistemic = means.var(dim=0, unbiased=False)
    return RegressionPrediction(mean, epistemic + aleatoric, epistemic, aleatoric, means, stds,
                                outputs)
