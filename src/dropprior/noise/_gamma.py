r"""Exact Gamma(α, 1) draws that can be replayed cheaply: Marsaglia & Tsang (2000), vectorised.

For α ≥ 1, with d = α − ⅓ and c = 1/√(9d), a proposal is G = d·v, v = (1 + cZ)³, Z ~ N(0, 1),
accepted with probability

.. math:: p = \min\big(1, \exp\{\tfrac12 Z^2 + d - d v + d \log v\}\big) \quad (v > 0;\ p = 0
          \text{ otherwise}).

Entries whose proposal is rejected are redrawn, only those, until every entry has been accepted:
each entry is the first accepted proposal of its own i.i.d. proposal sequence, so the draw is
exact. For α < 1 the boost G(α) = G(α + 1)·W^{1/α}, W ~ U(0, 1] (Marsaglia & Tsang, §6), again
exact.

**Replay.** The noise layers keep no float copy of ξ for backward: they draw ξ again from the
saved generator state. Here a draw consumes the generator in two phases:

1. *proposals* — for each requested gamma in turn, n normals Z (one ``normal_`` over the flat
   tensor) and, if some α < 1, n boost uniforms W;
2. *decisions* — acceptance bits, tie-breaking uniforms and the redraws of rejected entries.

Every entry whose first proposal is accepted (≥ 95% for every α, ~98% at α = 2) is a function of
phase 1 alone. :func:`draw_gammas` returns, besides the draws, the *patch*: the flat positions of
the other entries and their final values (8 bytes per patched entry: ≈ 0.15 bytes per
element at α = 2, ≤ 0.4 at α = 1). Given the generator
state from before the draw, :func:`replay_gammas` redraws phase 1 only — one ``normal_`` instead of
the whole rejection sampler — and applies the patch: the same tensor, bit for bit.

**Acceptance with 8-bit uniforms.** The accept test needs U < p for U ~ U(0, 1). Write
U = (B + U′)/256 with B a uniform byte and U′ ~ U(0, 1) independent: U < p surely when
B + 1 ≤ 256p, surely not when B ≥ 256p, and otherwise (probability ≤ 1/256) when U′ < 256p − B,
with U′ drawn for those entries only. That is the same event as U < p, so the draw stays exact,
and one 32-bit random number serves four entries.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

__all__ = ["draw_gammas", "replay_gammas", "needs_boost"]

_CHUNK = 1 << 16  # entries per pass of the acceptance test: its work buffers stay in cache


def needs_boost(alpha: Tensor) -> bool:
    """Whether some α < 1 (drawn by the boost G(α + 1)·W^{1/α}); a host sync, eager only."""
    return bool((alpha < 1).any())


class _Plan:
    """d, c and the boost exponent of one Gamma(α) request, flat over the n output entries
    (Python floats when α is a single number)."""

    def __init__(self, alpha: Tensor, shape: torch.Size) -> None:
        self.boost = needs_boost(alpha)
        base = torch.where(alpha < 1, alpha + 1, alpha) if self.boost else alpha
        d = base - 1.0 / 3.0
        c = torch.rsqrt(9 * d)
        self.d: float | Tensor
        self.c: float | Tensor
        if alpha.numel() == 1:
            self.d, self.c = float(d), float(c)
        else:
            self.d = d.expand(shape).reshape(-1)
            self.c = c.expand(shape).reshape(-1)
        # W^{1/α} for α < 1, W^0 = 1 for the others
        self.power = torch.where(alpha < 1, 1 / alpha, torch.zeros_like(alpha)).expand(shape) \
            if self.boost else None

    def part(self, start: int, end: int) -> tuple[float | Tensor, float | Tensor]:
        if isinstance(self.d, float):
            return self.d, self.c
        assert isinstance(self.c, Tensor)
        return self.d[start:end], self.c[start:end]


def _proposals(plans: Sequence[_Plan], shape: torch.Size, dtype: torch.dtype,
               device: torch.device, generator: torch.Generator | None
               ) -> list[tuple[Tensor, Tensor | None]]:
    """Phase 1: (Z, W or None) per request, in generator order."""
    out = []
    for plan in plans:
        z = torch.empty(shape, dtype=dtype, device=device)
        _fill(z, "normal", generator)
        w = None
        if plan.boost:
            w = torch.empty(shape, dtype=dtype, device=device)
            _fill(w, "uniform", generator)
            w.neg_().add_(1)  # U(0, 1]: log W is finite
        out.append((z, w))
    return out


def _fill(t: Tensor, kind: str, generator: torch.Generator | None) -> None:
    """Fill ``t`` in place: ``"normal"``, ``"uniform"``, or ``"bits"`` (every int32 value)."""
    args = (-(1 << 31), 1 << 31) if kind == "bits" else ()
    kw = {} if generator is None else {"generator": generator}
    getattr(t, {"bits": "random_", "normal": "normal_", "uniform": "uniform_"}[kind])(*args, **kw)


def _cube(z: Tensor, c: float | Tensor, out: Tensor | None = None) -> Tensor:
    """v = (1 + cZ)³ (negative where 1 + cZ < 0), into ``out`` (default: in place of z)."""
    v = z.mul_(c) if out is None else torch.mul(z, c, out=out)
    return v.add_(1).pow_(3)


def _log_accept(z: Tensor, v: Tensor, d: float | Tensor, out: Tensor) -> Tensor:
    """log p before the min(·, 0): ½Z² + d(1 − v + log v), −inf where v ≤ 0."""
    torch.clamp_min(v, 0, out=out).log_().sub_(v).add_(1).mul_(d)
    return out.addcmul_(z, z, value=0.5)


def _settle(z: Tensor, plan: _Plan, generator: torch.Generator | None
            ) -> tuple[Tensor, Tensor]:
    """Phase 2 for one request. Turns the normals Z (flat) into G in place and returns the patch
    (flat positions whose first proposal was rejected, their accepted values)."""
    n = z.numel()
    if n == 0:
        return torch.empty(0, dtype=torch.int32, device=z.device), z.new_empty(0)
    bits = torch.empty((n + 3) // 4, dtype=torch.int32, device=z.device)
    _fill(bits, "bits", generator)
    byte = bits.view(torch.uint8)[:n]
    step = min(n, _CHUNK) if z.device.type == "cpu" else n
    work = [torch.empty(step, dtype=z.dtype, device=z.device) for _ in range(2)]
    open_index, open_margin = [], []
    for start in range(0, n, max(step, 1)):
        end = min(start + step, n)
        d, c = plan.part(start, end)
        zk, v, q = z[start:end], work[0][:end - start], work[1][:end - start]
        _cube(zk, c, out=v)
        _log_accept(zk, v, d, out=q)
        q.exp_().mul_(256).sub_(byte[start:end])  # 256p − B
        torch.mul(v, d, out=zk)  # G = d·v
        undecided = (q < 1).nonzero().squeeze(1)
        open_index.append(undecided + start)
        open_margin.append(q[undecided])
    index, margin = torch.cat(open_index), torch.cat(open_margin)
    # B < 256p < B + 1: accept iff U′ < 256p − B; B ≥ 256p: reject
    tie = margin > 0
    u = torch.empty(index.numel(), dtype=z.dtype, device=z.device)
    _fill(u, "uniform", generator)
    rejected = index[~(tie & (u < margin))]
    values = _redraw(rejected, plan, z.dtype, generator)
    z[rejected] = values
    if n < 1 << 31:  # 4-byte positions: the patch then stays under 1 byte per element
        rejected = rejected.to(torch.int32)
    return rejected, values


def _redraw(index: Tensor, plan: _Plan, dtype: torch.dtype,
            generator: torch.Generator | None) -> Tensor:
    """Accepted Marsaglia–Tsang draws for the flat positions ``index``: fresh proposals with
    full-precision uniforms, rejected ones proposed again, until all are accepted."""
    d_all, c_all = (plan.d, plan.c)
    value = torch.empty(index.numel(), dtype=dtype, device=index.device)
    pending = torch.arange(index.numel(), device=index.device)
    while pending.numel():
        k = pending.numel()
        d = d_all if isinstance(d_all, float) else d_all[index[pending]]
        c = c_all if isinstance(c_all, float) else c_all[index[pending]]
        z, u = value.new_empty(k), value.new_empty(k)
        _fill(z, "normal", generator)
        _fill(u, "uniform", generator)
        v = _cube(z, c, out=value.new_empty(k))
        bound = _log_accept(z, v, d, out=value.new_empty(k))
        accepted = u.neg_().add_(1).log_() < bound  # log V < bound, V ~ U(0, 1]
        value[pending[accepted]] = (v * d)[accepted]
        pending = pending[~accepted]
    return value


def _boost(g: Tensor, w: Tensor | None, plan: _Plan) -> Tensor:
    if w is not None:
        assert plan.power is not None
        g.mul_(w.log_().mul_(plan.power).exp_())
    return g.clamp_min_(torch.finfo(g.dtype).tiny)


def draw_gammas(alphas: Sequence[Tensor], shape: torch.Size,
                generator: torch.Generator | None = None) -> tuple[list[Tensor], list[Tensor]]:
    """Independent G_i ~ Gamma(α_i, 1) of ``shape``, exact, with their replay patch.

    Args:
        alphas: concentrations α_i > 0, each broadcastable to ``shape`` (no autograd).
        shape: the output shape.
        generator: the generator of every draw (default: the device's default generator).

    Returns:
        ``(gammas, patch)``: the draws (clamped below at the dtype's smallest normal number,
        as torch's ``Gamma.rsample``) and the tensors :func:`replay_gammas` needs, two per
        request (positions and values).
    """
    plans = [_Plan(a, shape) for a in alphas]
    dtype, device = alphas[0].dtype, alphas[0].device
    drawn = _proposals(plans, shape, dtype, device, generator)
    patch: list[Tensor] = []
    gammas = []
    for (z, w), plan in zip(drawn, plans, strict=True):
        patch.extend(_settle(z.view(-1), plan, generator))
        gammas.append(_boost(z, w, plan))
    return gammas, patch


def replay_gammas(alphas: Sequence[Tensor], shape: torch.Size,
                  generator: torch.Generator | None, patch: Sequence[Tensor]) -> list[Tensor]:
    """The draws of :func:`draw_gammas` again, from ``generator`` in the state it had before
    that call: phase 1 (the proposals) is redrawn and ``patch`` overwrites the rest."""
    plans = [_Plan(a, shape) for a in alphas]
    dtype, device = alphas[0].dtype, alphas[0].device
    drawn = _proposals(plans, shape, dtype, device, generator)
    gammas = []
    for k, ((z, w), plan) in enumerate(zip(drawn, plans, strict=True)):
        flat = z.view(-1)
        _cube(flat, plan.c).mul_(plan.d)
        index, value = patch[2 * k], patch[2 * k + 1]
        flat[index] = value
        gammas.append(_boost(z, w, plan))
    return gammas
