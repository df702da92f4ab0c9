"""Learned group scales: structured priors that select (DESIGN §4, docs/scales.md).

:func:`scale_groups` lists which weights share a scale in every structure; :func:`learn_scales`
(type-II MAP) and :func:`variational` (mean-field VI with closed-form scales) attach the scales;
:func:`scale_penalty` is their term of the objective; :func:`learned_scales` and
:func:`group_snr` read the fit back; :func:`kept_groups` decides which groups are on
(:func:`group_evidence`: whether each variational group pays for itself).
"""

from dropprior.scales._attach import (
    INFERENCE,
    attach_scales,
    collapse,
    covered_parameters,
    group_snr,
    has_scales,
    learn_scales,
    learned_scales,
    noise_off,
    scale_penalty,
    update_scales,
    variational,
)
from dropprior.scales._evidence import group_evidence, group_kl, joint_evidence_kept
from dropprior.scales._groups import GROUP_KINDS, ScaleGroup, Target, scale_groups
from dropprior.scales._kept import MAP_MIN_SCALE, VI_MAX_LOG_ALPHA, kept_groups
from dropprior.scales._layout import COMBINE, layer_layout
from dropprior.scales._scale import (
    MIN_VARIANCE,
    GaussianTensor,
    GroupScale,
    LearnedScale,
    ScaledTensor,
    ScaleVariance,
)

__all__ = [
    "scale_groups",
    "ScaleGroup",
    "Target",
    "GROUP_KINDS",
    "attach_scales",
    "learn_scales",
    "variational",
    "update_scales",
    "scale_penalty",
    "learned_scales",
    "group_snr",
    "has_scales",
    "covered_parameters",
    "collapse",
    "noise_off",
    "INFERENCE",
    "kept_groups",
    "group_evidence",
    "group_kl",
    "joint_evidence_kept",
    "VI_MAX_LOG_ALPHA",
    "MAP_MIN_SCALE",
    "layer_layout",
    "COMBINE",
    "GroupScale",
    "LearnedScale",
    "ScaleVariance",
    "ScaledTensor",
    "GaussianTensor",
    "MIN_VARIANCE",
]
