"""One instance of every registered noise law, for the generic layer contracts (the package's
shared examples, also used by the benchmarks)."""

from __future__ import annotations

from dropprior.noise import example_laws

LAWS = example_laws()
