"""The functional core: structured multiplicative noise as pure functions.

:func:`multiplicative_noise` multiplies a tensor by noise of a structure's noise shape
(:func:`noise_shape`); the weight-level structures (DropConnect, conv channel pairs, untied LSTM
gates) have their own exact functions here. :mod:`dropprior.nn` wraps them in thin modules.
"""

from dropprior.functional._conv import per_example_conv
from dropprior.functional._fused import FusedPlan, fused_plan, fused_sample, fused_sample_blocks
from dropprior.functional._linear import (
    dropconnect_linear,
    local_reparam_linear,
    stacked_dropconnect,
)
from dropprior.functional._lstm import (
    gate_projections,
    lstm_layer,
    lstm_recurrence,
    packed_lstm_recurrence,
    packed_owners,
    untied_lstm_fused,
)
from dropprior.functional._multiply import (
    draw_noise,
    multiplicative_noise,
    noise_mean,
    register_compact_draw,
)
from dropprior.functional._rng import draw_generator
from dropprior.functional._structure import GRANULARITIES, STRUCTURES, noise_shape

__all__ = [
    "FusedPlan",
    "fused_plan",
    "fused_sample",
    "fused_sample_blocks",
    "multiplicative_noise",
    "noise_shape",
    "STRUCTURES",
    "GRANULARITIES",
    "noise_mean",
    "draw_noise",
    "register_compact_draw",
    "draw_generator",
    "dropconnect_linear",
    "stacked_dropconnect",
    "local_reparam_linear",
    "per_example_conv",
    "gate_projections",
    "lstm_layer",
    "lstm_recurrence",
    "packed_lstm_recurrence",
    "packed_owners",
    "untied_lstm_fused",
]
