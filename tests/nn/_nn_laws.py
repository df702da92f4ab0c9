"""One instance of every registered noise law, for the generic layer contracts (the package's
shared examples, also used by the benchmarks), and the layer tests' check of output moments."""

from __future__ import annotations

import torch

from dropprior.noise import example_laws

LAWS = example_laws()


def assert_moments(draws: torch.Tensor, mean: torch.Tensor, var: torch.Tensor) -> None:
    """The mean and variance of ``draws`` over their first axis (independent draws) against
    ``mean`` and ``var``, each within 6 standard errors (the variance's from the spread of the
    squared deviations)."""
    n = draws.shape[0]
    assert torch.all((draws.mean(0) - mean).abs() < 6 * (var / n).sqrt())
    dev2 = (draws - draws.mean(0)) ** 2
    assert torch.all((dev2.mean(0) - var).abs() < 6 * dev2.std(0) / n**0.5)
