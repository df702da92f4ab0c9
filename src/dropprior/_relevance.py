r"""Reading the prior back: one relevance score per group of weights that shares a noise scale.

:func:`relevance` reports what the fit says about each group (``by=``):

* ``"scale"`` — the learned scale s_g of :mod:`dropprior.scales` (type-II MAP: s_g; VI: √v_g);
* ``"snr"`` — VI only: the group's posterior signal-to-noise ratio √(Σμ²/Σσ²);
* ``"norm"`` — :func:`norm_relevance`, the weight-norm score below (the only score a model with a
  fixed noise law has: every group has the same prior scale, so it cannot select by itself);
* ``"auto"`` (default) — ``"scale"`` where the model has learned scales, else ``"norm"``.

Posterior inclusion probabilities of Bernoulli groups are :func:`dropprior.inference.inclusion`'s.

**The norm score.** A noisy layer's group g (an input feature under ARD on the first layer, a
hidden unit, a residual block under ADD, a conv channel or filter, an LSTM input dimension per
gate) has EP weights z_g and effective weights w_g = ξ_g z_g. Its norm score is

.. math:: r_g = c(p_\xi)\,\|z_g\|_2,

the layer's ``group_norms()`` times one scale c of the noise law. Choice of c (``scale=``):

* ``"rms"`` — :math:`c=\sqrt{\mathbb E[\xi^2]}`: then :math:`r_g^2 = \mathbb E_\xi\|w_g\|^2`, the
  expected squared norm of the effective weights. Exists only when E[ξ²] < ∞.
* ``"median"`` — c = median of |ξ|, which exists for every law (half-Cauchy: its scale s; inverse
  Nakagami with m ≤ 1 has E[ξ²] = ∞ but a median). Computed by bisection on the law's ``cdf``.
* ``"auto"`` (default) — "rms" where E[ξ²] is finite, else "median".
* ``"none"`` — c = 1, the bare EP norms.

Within one layer every group has the same law, so c does not change the ranking; it only makes
scores comparable across layers with different laws. A group the prior switched off has
:math:`\|z_g\| \approx 0` whatever c is.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from dropprior._validation import check_choice, type_name
from dropprior.noise import NoiseLaw

__all__ = ["relevance", "norm_relevance", "noise_scale", "SCALES", "RELEVANCE"]

RELEVANCE = {
    "auto": "the learned scale where the model has one, else the norm score",
    "scale": "the learned group scale (dropprior.scales)",
    "snr": "VI: the group's posterior signal-to-noise ratio",
    "norm": "the EP group norm times a scale of the noise law (norm_relevance)",
}

SCALES = {
    "auto": "sqrt(E[ξ²]) where finite, else the median of |ξ|",
    "rms": "sqrt(E[ξ²]): r² is the expected squared norm of the effective weights",
    "median": "the median of |ξ| (exists for every law)",
    "none": "1: the bare EP group norms",
}


def _median_abs(law: NoiseLaw) -> Tensor:
    """The median m of |ξ|: P(|ξ| ≤ m) = ½, by bisection on the law's cdf (60 halvings)."""
    dtype = law.mean.dtype

    lo = torch.zeros((), dtype=dtype)
    hi = torch.ones((), dtype=dtype)
    for _ in range(200):
        if float(_abs_cdf(law, hi)) >= 0.5:
            break
        hi = hi * 2
    for _ in range(60):
        mid = (lo + hi) / 2
        if float(_abs_cdf(law, mid)) >= 0.5:
            hi = mid
        else:
            lo = mid
    return hi


def _abs_cdf(law: NoiseLaw, m: Tensor) -> Tensor:
    """P(|ξ| ≤ m) for m ≥ 0 (ξ may take negative values, e.g. Gaussian noise)."""
    below = law.cdf(-m) if float(m) > 0 else torch.zeros_like(m)
    # P(ξ = −m) is 0 for every law here except at m = 0 (Bernoulli's atom is at 0, counted in cdf).
    return law.cdf(m) - below


def noise_scale(law: NoiseLaw, scale: str = "auto") -> Tensor:
    """The scale c of a noise law used by :func:`relevance` (module docstring).

    Shape:
        result: scalar.
    """
    check_choice("scale", scale, SCALES)
    if not isinstance(law, NoiseLaw):
        raise TypeError(f"law must be a dropprior NoiseLaw, got {type_name(law)}")
    if scale == "none":
        return torch.ones((), dtype=law.mean.dtype)
    second = law.second_moment
    if scale == "rms" or (scale == "auto" and bool(torch.isfinite(second))):
        if not bool(torch.isfinite(second)):
            raise ValueError(f"scale='rms' needs E[ξ²] < ∞, but {law!r} has E[ξ²] = ∞; use "
                             "scale='median' or 'auto'")
        return second.sqrt()
    return _median_abs(law)


def _law_of(module: nn.Module) -> NoiseLaw:
    return module.noise  # type: ignore[return-value]


def relevance(model: nn.Module, by: str = "auto", scale: str = "auto") -> dict[str, Tensor]:
    r"""Relevance per group for every noisy layer of ``model``: the learned scale, the VI
    posterior SNR, or the norm score (module docstring).

    Args:
        model: a model containing :class:`dropprior.nn.NoisyModule` layers.
        by: "auto", "scale", "snr" or "norm" (:data:`RELEVANCE`).
        scale: the noise-law scale of the norm score (:func:`norm_relevance`).

    Returns:
        ``{layer name: scores}`` in the layout of the layer's ``group_norms()``. For layers with
        two groups the learned scales multiply (ARD+ADD gives the block's scale; conv
        channel+filter the (channel, filter) pair's scale times its filter's); their SNR is the
        coarser group's (the filter's, the block's).

    Raises:
        ValueError: ``by="scale"`` or ``"snr"`` on a model without learned scales / VI.
    """
    from dropprior.scales import group_snr, has_scales, layer_layout, learned_scales

    check_choice("by", by, RELEVANCE)
    if by == "auto":
        by = "scale" if has_scales(model) else "norm"
    if by == "norm":
        return norm_relevance(model, scale)
    if not has_scales(model):
        raise ValueError(f"relevance(by={by!r}) needs learned scales: call "
                         "dropprior.scales.learn_scales(model) or variational(model) before "
                         "training; by='norm' scores a model without them")
    if by == "scale":
        return layer_layout(model, learned_scales(model), combine="product")
    return layer_layout(model, group_snr(model), combine="coarse")


def norm_relevance(model: nn.Module, scale: str = "auto") -> dict[str, Tensor]:
    r"""Norm scores per group for every noisy layer of ``model``: c(p_ξ) ‖z_g‖.

    Args:
        model: a model containing :class:`dropprior.nn.NoisyModule` layers.
        scale: how the EP norms are scaled by the noise: "auto", "rms", "median" or "none".

    Returns:
        ``{layer name (as in named_modules): scores}``; e.g. a unit-structured ``NoisyLinear``
        gives shape (in_features,) — one score per input unit. Bare noise modules without weights
        (``MultiplicativeNoise``) are skipped.

    Shape:
        each value: the layer's ``group_norms()`` shape.

    Example:
        >>> from torch import nn
        >>> from dropprior.nn import NoisyLinear
        >>> from dropprior.noise import Bernoulli
        >>> model = nn.Sequential(NoisyLinear(5, 3, Bernoulli(0.8, inverted=True)), nn.ReLU())
        >>> scores = norm_relevance(model)
        >>> scores["0"].shape                       # one score per input feature
        torch.Size([5])
        >>> order = scores["0"].argsort(descending=True)  # most relevant first
    """
    from dropprior.nn import MultiplicativeNoise, NoisyModule

    check_choice("scale", scale, SCALES)
    out: dict[str, Tensor] = {}
    for name, module in model.named_modules():
        if isinstance(module, NoisyModule) and not isinstance(module, MultiplicativeNoise):
            norms = module.group_norms().detach()
            out[name] = norms * noise_scale(_law_of(module), scale).to(norms.dtype)
    if not out:
        raise ValueError("model has no noisy layers with weights (dropprior.nn.NoisyLinear, "
                         "NoisyConv*, Residual, NoisyLSTM, NoisyEmbedding); nothing to "
                         "score")
    return out
