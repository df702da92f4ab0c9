r"""The Jensen gap of the expanded parametrization (EP): noise in the likelihood (paper Prop. 4.1).

.. math:: \mathcal J_{EP} = \log \mathbb E_\xi\, p(y\mid X, W, \Xi)
          - \mathbb E_\xi \log p(y\mid X,W,\Xi)

— the difference between the marginal-MAP objective (eq. 10) and the MC objective (eq. 3); the
prior p(W) cancels. With per-example noise (``granularity="example"``, what dropout does) both
terms split over examples, so the batch gap is the sum of per-example gaps
:math:`\mathcal J_n = \log\mathbb E_{\xi_n} p(y_n\mid\xi_n)
- \mathbb E_{\xi_n}\log p(y_n\mid\xi_n)`.
With one draw per batch it does not split and is estimated jointly.

**Estimator.** From S draws :math:`\ell_{sn} = \log p(y_n\mid x_n, W, \Xi_s)`, the plug-in
:math:`\hat{\mathcal J}_n = \operatorname{logsumexp}_s \ell_{sn} - \log S - \bar\ell_n` is
consistent but biased low by O(1/S) (the log of a mean). The jackknife over draws gives the bias
estimate :math:`(S-1)(\bar{\mathcal J}_{(\cdot)} - \hat{\mathcal J})`, the bias-corrected value and
the standard error
:math:`\sqrt{\tfrac{S-1}{S}\sum_i(\hat{\mathcal J}_{(i)} - \bar{\mathcal J}_{(\cdot)})^2}`.
Leave-one-out log-mean-exps are computed stably in float64.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import Tensor, nn

from dropprior._validation import (
    check_at_least,
    check_choice,
    check_finite_data,
    check_int,
    shape_or_type,
)
from dropprior.analysis._estimate import GapEstimate, SeriesApproximation
from dropprior.analysis._series import series_from_derivatives
from dropprior.likelihoods import Likelihood

__all__ = ["ep_gap", "ep_gap_from_samples", "ep_series", "TRACE_METHODS"]

#: How the Hessian trace of Prop. 4.1 is computed: exactly (one Hessian-vector product per noise
#: coordinate), by Hutchinson's estimator (Rademacher probes), or "auto" (exact up to
#: ``exact_max`` coordinates).
TRACE_METHODS = ("auto", "exact", "hutchinson")


def _check_samples(samples: int) -> int:
    if isinstance(samples, bool) or not isinstance(samples, int):
        raise TypeError(f"samples must be an int >= 2, got {samples!r}")
    if samples < 2:
        raise ValueError(f"samples must be >= 2 (the jackknife needs two draws), got {samples}")
    return samples


def _jackknife(logp: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """Plug-in, bias-corrected value, bias and s.e. of the gap per column of ``logp`` (S, P)."""
    s = logp.shape[0]
    logp = logp.to(torch.float64)
    mean = logp.mean(dim=0)
    peak, top = logp.max(dim=0)
    lme = torch.logsumexp(logp, dim=0) - math.log(s)
    plugin = lme - mean
    # leave-one-out log-mean-exp: log(T - w_i) with w = exp(l - max), T = Σ w; T - w_i ≥ 1 for
    # every i except the arg-max, whose leave-one-out value is a logsumexp over the rest.
    w = torch.exp(logp - peak)
    total = w.sum(dim=0)
    loo = peak + torch.log((total - w).clamp_min(torch.finfo(torch.float64).tiny))
    masked = logp.scatter(0, top.unsqueeze(0), float("-inf"))
    loo_top = torch.logsumexp(masked, dim=0)
    loo = loo.scatter(0, top.unsqueeze(0), loo_top.unsqueeze(0))
    loo = loo - math.log(s - 1)
    loo_mean = (s * mean - logp) / (s - 1)
    gaps = loo - loo_mean  # (S, P)
    gbar = gaps.mean(dim=0)
    bias = (s - 1) * (gbar - plugin)
    stderr = torch.sqrt((s - 1) / s * ((gaps - gbar) ** 2).sum(dim=0))
    return plugin, plugin - bias, bias, stderr


def ep_gap_from_samples(log_likelihoods: Tensor, joint: bool = False,
                        series: SeriesApproximation | None = None) -> GapEstimate:
    r"""The EP Jensen gap from S draws of per-example log-likelihoods.

    Args:
        log_likelihoods: :math:`\ell_{sn} = \log p(y_n\mid x_n, W, \Xi_s)`, S ≥ 2 independent
            noise draws (e.g. :func:`dropprior.objectives.log_likelihood_samples`).
        joint: False for per-example noise (each column drawn independently: the batch gap is
            the sum of per-example gaps); True for one draw per batch (the batch gap is the gap of
            the row sums ``log_likelihoods.sum(1)``; ``parts`` are then the per-example marginal
            gaps, which do not add up to it).
        series: a series approximation to attach (see :func:`ep_series`).

    Shape:
        log_likelihoods: (S, N); result parts: (N,).

    Example:
        >>> est = ep_gap_from_samples(torch.randn(1000, 5, dtype=torch.float64))
        >>> est.parts.shape
        torch.Size([5])
    """
    if not isinstance(log_likelihoods, Tensor) or log_likelihoods.dim() != 2:
        got = (tuple(log_likelihoods.shape) if isinstance(log_likelihoods, Tensor)
               else type(log_likelihoods).__name__)
        raise ValueError(f"log_likelihoods must be a tensor of shape (S, N), got {got}")
    _check_samples(log_likelihoods.shape[0])
    if bool(torch.isnan(log_likelihoods).any()) or bool(torch.isposinf(log_likelihoods).any()):
        raise ValueError("log_likelihoods contains nan or +inf; a log-density must be < +inf")
    if bool(torch.isneginf(log_likelihoods).any()):
        raise ValueError(
            "log_likelihoods contains -inf (a draw with zero likelihood): E_xi log p = -inf and "
            "the EP gap is infinite; check the model and data"
        )
    plugin, value, bias, stderr = _jackknife(log_likelihoods)
    if joint:
        t_plugin, t_value, t_bias, t_se = _jackknife(log_likelihoods.sum(dim=1, keepdim=True))
        total = (t_value[0], t_se[0], t_bias[0], t_plugin[0])
    else:
        total = (value.sum(), stderr.pow(2).sum().sqrt(), bias.sum(), plugin.sum())
    return GapEstimate(value=total[0], stderr=total[1], bias=total[2], plugin=total[3],
                       parts=value, parts_stderr=stderr, part_kind="example",
                       samples=int(log_likelihoods.shape[0]), series=series)


def ep_series(log_likelihood: Callable[[Tensor], Tensor], mean: Tensor, variance: Tensor,
              trace: str = "auto", exact_max: int = 64, probes: int = 64,
              generator: torch.Generator | None = None) -> SeriesApproximation:
    r"""Prop. 4.1's series of the EP gap, from autograd derivatives at ξ = μ_ξ.

    For each part p (an example), with :math:`g = \nabla_{\xi_p}\log p(y_p\mid\xi_p)` and
    :math:`h = \operatorname{diag}\nabla^2_{\xi_p}\log p(y_p\mid\xi_p)` at :math:`\xi_p = \mu`,

    .. math:: \mathcal J_p \approx \tfrac12\sum_j \mathrm{Var}_j\, g_j^2
              - \sum_{k\ge2}\frac{(-1)^k}{k}\Bigl[\tfrac12\sum_j\mathrm{Var}_j(g_j^2+h_j)\Bigr]^k,

    which is the paper's ½ Var ‖∇‖² − Σ (−1)^k/k [½ Var Ω]^k, Ω = ‖∇‖² + Tr ∇², when every
    coordinate has the same variance. Σ_j Var_j h_j is exact (one Hessian-vector product per
    coordinate, batched over parts) or Hutchinson's estimate :math:`\mathbb E_v[\sum_j V_j v_j
    (Hv)_j]` with Rademacher v.

    Args:
        log_likelihood: maps noise values ξ of ``mean``'s shape to log p per part; part p must
            depend only on row p of ξ (per-example noise). For noise shared by the batch use one
            row and return the batch total with shape (1,).
        mean: μ_ξ per part and coordinate.
        variance: Var[ξ] per part and coordinate (broadcast to ``mean``), finite.
        trace: one of :data:`TRACE_METHODS`.
        exact_max: with ``trace="auto"``, the largest coordinate count traced exactly.
        probes: number of Hutchinson probes.
        generator: for the Hutchinson probes.

    Shape:
        mean: (P, G); variance: broadcastable to (P, G); log_likelihood(ξ): (P,).
    """
    check_choice("trace", trace, TRACE_METHODS)
    if not isinstance(mean, Tensor) or mean.dim() != 2:
        raise ValueError(f"mean must be a tensor of shape (P, G), got "
                         f"{shape_or_type(mean)}")
    check_int("probes", probes, 1)
    var = torch.as_tensor(variance, dtype=mean.dtype).expand_as(mean)
    check_at_least("variance (Prop. 4.1 needs Var[xi] < inf)", var, 0.0)
    xi = mean.detach().clone().requires_grad_(True)
    with torch.enable_grad():
        logp = log_likelihood(xi)
        if logp.shape != mean.shape[:1]:
            raise ValueError(f"log_likelihood must return shape {tuple(mean.shape[:1])} (one "
                             f"value per row of mean), got {tuple(logp.shape)}")
        (grad,) = torch.autograd.grad(logp.sum(), xi, create_graph=True)
        grad_sq = (var * grad.detach() ** 2).sum(dim=1)
        n_coords = mean.shape[1]
        method = "exact" if trace == "exact" or (trace == "auto" and n_coords <= exact_max) \
            else "hutchinson"
        if not grad.requires_grad:  # log p is linear in ξ: the Hessian is zero
            weighted_trace = torch.zeros_like(grad_sq)
        elif method == "exact":
            weighted_trace = torch.zeros_like(grad_sq)
            for j in range(n_coords):
                e = torch.zeros_like(xi)
                e[:, j] = 1.0
                (hv,) = torch.autograd.grad(grad, xi, e, retain_graph=True, allow_unused=True)
                if hv is not None:
                    weighted_trace = weighted_trace + var[:, j] * hv[:, j]
        else:
            weighted_trace = torch.zeros_like(grad_sq)
            for _ in range(probes):
                v = torch.randint(0, 2, xi.shape, generator=generator, dtype=xi.dtype,
                                  device=xi.device) * 2 - 1
                (hv,) = torch.autograd.grad(grad, xi, v, retain_graph=True, allow_unused=True)
                if hv is not None:
                    weighted_trace = weighted_trace + (var * v * hv).sum(dim=1) / probes
    return series_from_derivatives(
        grad_sq.detach(), weighted_trace.detach(), trace_method=method,
        note="Prop. 4.1: leading term exact to first order in Var[xi]; the k>=2 terms are the "
             "paper's and omit higher moments of xi",
    )


def ep_gap(model: nn.Module, x: Tensor, y: Tensor, likelihood: Likelihood, samples: int = 1000,
           series: bool = True, trace: str = "auto", probes: int = 64,
           generator: torch.Generator | None = None) -> GapEstimate:
    r"""The EP Jensen gap of ``model`` on a batch by Monte Carlo, with Prop. 4.1's series beside it.

    The model is run S times with noise drawn (inside :func:`dropprior.nn.mc`, whatever its
    train/eval mode); the noise comes from the layers' own generators. The series is evaluated
    with every noisy layer's noise replaced by its mean and differentiated with respect to that
    mean (supported for ``structure="unit"`` linear layers: the noise multiplies the layer's input
    features).

    Args:
        model: a network with dropprior noisy layers.
        x: inputs; y: targets.
        likelihood: a :class:`dropprior.likelihoods.Likelihood`.
        samples: S ≥ 2 noise draws.
        series: also compute Prop. 4.1's series (``result.series``).
        trace: Hessian-trace method for the series, one of :data:`TRACE_METHODS`.
        probes: Hutchinson probes.
        generator: for the Hutchinson probes.

    Returns:
        a :class:`GapEstimate` with ``parts`` per example (N,).

    Shape:
        x: (N, ...); y: (N, ...).
    """
    from dropprior.analysis._scales import model_log_likelihood_at, noise_moments
    from dropprior.objectives import log_likelihood_samples, noise_granularities

    _check_samples(samples)
    check_choice("trace", trace, TRACE_METHODS)
    for name, data in (("x", x), ("y", y)):
        if isinstance(data, Tensor) and data.dim() > 0:
            check_finite_data(name, data)
    joint = bool(noise_granularities(model) - {"example"})
    from dropprior.nn import mc

    with torch.no_grad(), mc(model):
        logp = log_likelihood_samples(model, x, y, likelihood, samples=samples)
    approx = None
    if series:
        mean, var = noise_moments(model, x, joint=joint)
        if bool(torch.isfinite(mean).all() & torch.isfinite(var).all()):
            fn = model_log_likelihood_at(model, x, y, likelihood, joint=joint)
            approx = ep_series(fn, mean, var, trace=trace, probes=probes, generator=generator)
        else:
            parts = torch.ones(mean.shape[0], dtype=torch.bool)
            zero = torch.zeros(mean.shape[0], dtype=torch.float64)
            approx = series_from_derivatives(
                zero, zero, infinite=parts, trace_method="exact",
                note="E[xi] or Var[xi] is infinite: Prop. 4.1's expansion around mu_xi does not "
                     "exist")
    return ep_gap_from_samples(logp, joint=joint, series=approx)
