"""Generator-aware draws that ``torch.distributions`` does not offer with a ``generator``.

``torch.distributions.Gamma.sample`` reads the global RNG; the Gibbs samplers here must be
reproducible from a ``torch.Generator``, so Gamma variates are drawn by Marsaglia & Tsang's (2000)
squeeze-rejection method from generator-driven normals and uniforms.
"""

from __future__ import annotations

import torch
from torch import Tensor

__all__ = ["standard_gamma", "inverse_gamma"]


def standard_gamma(shape: Tensor, generator: torch.Generator | None = None) -> Tensor:
    """Draws of Gamma(shape, rate=1), one per entry of ``shape`` (entries > 0).

    Marsaglia–Tsang: with d = a − 1/3, c = 1/√(9d), v = (1 + c x)³ for x ~ N(0, 1), accept d·v
    when log U < x²/2 + d − d v + d log v. Shapes a < 1 use Gamma(a) = Gamma(a + 1) · U^{1/a}.

    Shape:
        shape: (...) → (...).
    """
    a = torch.as_tensor(shape)
    boost = a < 1
    a1 = torch.where(boost, a + 1, a)
    d = a1 - 1.0 / 3.0
    c = 1.0 / torch.sqrt(9.0 * d)
    out = torch.empty_like(a1)
    todo = torch.ones_like(a1, dtype=torch.bool)
    while bool(todo.any()):
        x = torch.randn(a1.shape, dtype=a1.dtype, generator=generator)
        u = torch.rand(a1.shape, dtype=a1.dtype, generator=generator)
        v = (1 + c * x) ** 3
        ok = (v > 0) & (
            torch.log(u) < 0.5 * x**2 + d - d * v + d * torch.log(v.clamp(min=1e-300))
        )
        take = todo & ok
        out = torch.where(take, d * v, out)
        todo = todo & ~ok
    if bool(boost.any()):
        u = torch.rand(a1.shape, dtype=a1.dtype, generator=generator)
        out = torch.where(boost, out * u ** (1.0 / a), out)
    return out


def inverse_gamma(shape: Tensor, rate: Tensor,
                  generator: torch.Generator | None = None) -> Tensor:
    """Draws of InvGamma(shape, rate) (density ∝ x^{−shape−1} e^{−rate/x}) as rate / Gamma(shape).

    Shape:
        shape, rate: broadcastable → their broadcast shape.
    """
    shape_t, rate_t = torch.broadcast_tensors(torch.as_tensor(shape), torch.as_tensor(rate))
    return rate_t / standard_gamma(shape_t, generator=generator)
