r"""Which groups the fit keeps: the absolute decisions ``prune(threshold="auto")`` acts on.

Three rules, by estimator and by what is at hand:

* **VI with the training data** (``data=``): a group is kept when it pays for itself, Δ_g > 0
  (:func:`dropprior.scales.group_evidence`): its effect on the training log-likelihood exceeds
  its share of the KL term. With ``joint=True`` the groups to switch off are chosen as a set
  (:func:`dropprior.scales.joint_evidence_kept`): of the candidates Δ_g ≤ 0, cheapest
  likelihood cost first, the prefix whose joint removal improves the objective most, so that
  groups that are each dispensable are not all removed when together they are not.
* **VI without data**: a group is kept when its posterior signal-to-noise ratio is at least 1
  (:data:`VI_MAX_LOG_ALPHA`). The SNR aggregates the group's weights, so a wide group whose
  weights are individually noisy but jointly useful can fall below 1; pass ``data=`` for such
  groups.
* **Type-II MAP**: a group is kept while its learned scale is at least :data:`MAP_MIN_SCALE`.
"""

from __future__ import annotations

import math

from torch import Tensor, nn

from dropprior.scales._attach import _parametrized, group_snr, has_scales, learned_scales
from dropprior.scales._evidence import group_evidence, joint_evidence_kept
from dropprior.scales._scale import GaussianTensor

__all__ = ["kept_groups", "VI_MAX_LOG_ALPHA", "MAP_MIN_SCALE"]

VI_MAX_LOG_ALPHA = 0.0
"""VI without data: a group is off when log α_g = log(Σσ²/Σμ²) > 0, i.e. its posterior
signal-to-noise ratio √(Σμ²/Σσ²) is below 1: zero lies within one posterior standard deviation of
the group's mean (in norm). Molchanov et al. (2017) prune a single weight at log α > 3."""

MAP_MIN_SCALE = 1e-3
"""Type-II MAP: a group is off when its learned scale has fallen below 1e-3, three orders of
magnitude under its initial value 1 (the log-uniform's pole drives an unsupported group's scale
towards 0 without bound, while a supported group's stays of order 1)."""


def kept_groups(model: nn.Module, data: tuple[nn.Module, Tensor, Tensor] | None = None,
                sigma0: float = 1.0, max_examples: int = 10_000,
                prior_weight: float = 1.0, joint: bool = False,
                mean_replacement: bool = False) -> dict[str, Tensor]:
    """Which groups the fit keeps, ``{group name: bool tensor of the group's shape}`` (module
    docstring).

    Args:
        model: a model with learned scales.
        data: VI only: ``(likelihood, x, y)``, the likelihood and all training data the model
            was fitted to, for the evidence rule; None: the SNR rule.
        sigma0: the prior σ0 of the fit (the evidence rule's KL term).
        max_examples: the evidence rule's log-likelihoods use at most this many examples.
        prior_weight: the evidence rule's β, the fit's weight on its KL term
            (``fit(prior_weight=)``).
        joint: with ``data``, decide the groups to switch off as a set (module docstring).
        mean_replacement: with ``data``, the evidence rule switches a group off by holding its
            contribution at its mean instead of at zero (:func:`group_evidence`), as
            ``prune(mean_inputs=...)`` removes it; not with ``joint``.

    Raises:
        ValueError: the model has no learned scales, or ``data`` is given for a MAP model.
    """
    if not has_scales(model):
        raise ValueError("the model has no learned scales, so the fit sets no threshold: call "
                         "dropprior.scales.learn_scales(model) or variational(model) before "
                         "training, or pass keep= or a numeric threshold=")
    variational = any(isinstance(p, GaussianTensor) for _, _, p, _ in _parametrized(model))
    if mean_replacement and (joint or data is None):
        raise ValueError("mean_replacement=True applies to the per-group evidence rule: pass "
                         "data=(likelihood, x, y) and joint=False")
    if joint and data is None:
        raise ValueError("joint=True decides variational groups by the evidence rule: pass "
                         "data=(likelihood, x, y)")
    if data is not None:
        if not variational:
            raise ValueError("data= selects the evidence rule of a variational model; a type-II "
                             "MAP model is decided by its scales alone: leave data=None")
        if not isinstance(data, tuple) or len(data) != 3:
            raise ValueError(f"data must be the fit's (likelihood, x, y), got "
                             f"{type(data).__name__}"
                             + (f" of {len(data)}" if isinstance(data, tuple) else ""))
        likelihood, x, y = data
        evidence = group_evidence(model, likelihood, x, y, sigma0, max_examples=max_examples,
                                  prior_weight=prior_weight, mean_replacement=mean_replacement)
        if joint:
            return joint_evidence_kept(model, likelihood, x, y, sigma0, evidence,
                                       prior_weight, max_examples)
        return {name: delta > 0 for name, delta in evidence.items()}
    if variational:
        limit = math.exp(-VI_MAX_LOG_ALPHA / 2)  # SNR = α^(-1/2)
        return {name: snr >= limit for name, snr in group_snr(model).items()}
    return {name: s >= MAP_MIN_SCALE for name, s in learned_scales(model).items()}
