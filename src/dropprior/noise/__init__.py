"""Noise laws of the dropout family, each a ``torch.distributions.Distribution`` with exact moments."""

from dropprior.noise._base import NoiseLaw
from dropprior.noise._registry import (
    law_by_name,
    marginal_for,
    register_law,
    register_marginal,
    registered_laws,
)
from dropprior.noise.bernoulli import Bernoulli

__all__ = [
    "NoiseLaw",
    "Bernoulli",
    "register_marginal",
    "marginal_for",
    "register_law",
    "registered_laws",
    "law_by_name",
]
