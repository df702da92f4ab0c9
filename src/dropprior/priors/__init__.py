"""Marginal priors p(w) of w = ξ·z, z ~ N(0, σ0²), induced by each noise law (paper Table 1)."""

__all__: list[str] = []
