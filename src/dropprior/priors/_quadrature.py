r"""Numerical quadrature of Gaussian scale mixtures, vectorised over many points, in float64.

For a noise law with density p(ξ) and a point w ∈ R^D with r = ‖w‖, the marginal density and
(D = 1) the tail probability are one-dimensional integrals over the scale,

.. math::
    p(w) = \int N(w; 0, σ_0^2 ξ^2 I_D)\, q(ξ)\, dξ, \qquad
    P(w_1 > r) = \int Φ\!\left(-\frac{r}{σ_0 ξ}\right) q(ξ)\, dξ,

where q is the density of |ξ| (p(ξ) + p(−ξ) for a law on R, p itself for a law on ξ ≥ 0).

How the integral is computed (all in log space, ``logsumexp`` over nodes):

1. **Change of variable.** ξ = e^s on (0, ∞); ξ = lo + (hi − lo)·sigmoid(s) on a bounded support
   (lo, hi); ξ = lo + e^s on (lo, ∞). On the s axis the Gaussian factor is a smooth bump of
   width O(1) around s = log(r/σ0) that vanishes double-exponentially to its left, algebraic
   endpoint singularities of p become exponential tails, and |w| → 0 (where the horseshoe and
   variance-gamma marginals have poles) only moves the bump to the left.
2. **Bulk of the law.** Once per law, p is scanned on a fine s grid (step 0.02) to find where
   its mass lies; the initial panel width there is halved until ∫ q = 1 is reproduced to
   1e-14, and a law whose density integrates to anything but 1 (to 1e-9) is refused with an
   error, rather than giving silently wrong marginals.
3. **Per call.** Adaptive Gauss–Kronrod (21/10 points) starting from unit panels covering the
   s range every point needs, plus the law's bulk panels; every panel is bisected until its
   Kronrod and Gauss values agree to 1e-11 of each point's integral, so a peak that is narrow
   for some points (far tails) is refined only there. Where an end of the range still carries
   mass (bounded supports, or r = 0), the integrand is an exponential in s there and its tail
   is added in closed form, e^{G(s_end)}/|slope|; a tail that does not decay at r = 0 means
   the density is infinite at w = 0 (+inf is returned); anywhere else it is an error.

The integrand is built from torch operations (including the law's own ``log_prob``), so the
result is differentiable in w, σ0 and the law's parameters (the panel layout is not).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from torch import Tensor
from torch.distributions import constraints

from dropprior.noise import NoiseLaw

__all__ = ["MixingDensity"]

# Gauss-Kronrod 21 / Gauss 10 (QUADPACK's qk21 constants, as in scipy.integrate.quad_vec).
_GK_HALF = [0.995657163025808080735527280689003, 0.973906528517171720077964012084452,
            0.930157491355708226001207180059508, 0.865063366688984510732096688423493,
            0.780817726586416897063717578345042, 0.679409568299024406234327365114874,
            0.562757134668604683339000099272694, 0.433395394129247190799265943165784,
            0.294392862701460198131126603103866, 0.148874338981631210884826001129720]
_K_HALF = [0.011694638867371874278064396062192, 0.032558162307964727478818972459390,
           0.054755896574351996031381300244580, 0.075039674810919952767043140916190,
           0.093125454583697605535065465083366, 0.109387158802297641899210590325805,
           0.123491976262065851077958109831074, 0.134709217311473325928054001771707,
           0.142775938577060080797094273138717, 0.147739104901338491374841515972068]
_K_CENTRE = 0.149445554002916905664936468389821
_G_HALF = [0.066671344308688137593568809893332, 0.149451349150580593145776339657697,
           0.219086362515982043995534934228163, 0.269266719309996355091226921569469,
           0.295524224714752870173892994651338]
_GK_NODES = torch.tensor(_GK_HALF + [0.0] + [-x for x in reversed(_GK_HALF)], dtype=torch.float64)
_LOG_KRONROD = torch.log(torch.tensor(_K_HALF + [_K_CENTRE] + _K_HALF[::-1],
                                      dtype=torch.float64))
_gauss = np.zeros(21)
_gauss[1:10:2] = _G_HALF
_gauss[11:20:2] = _G_HALF[::-1]
with np.errstate(divide="ignore"):
    _LOG_GAUSS = torch.from_numpy(np.log(_gauss))  # -inf off the 10 Gauss nodes
_PANEL_TOL = 1e-11
_MAX_ROUNDS = 40
_SCAN_STEP = 0.02
_LOG_MIN_S = -700.0  # e^-700 ~ 1e-304, still a normal float64
_LOG_MAX_S = 100.0
_LOGIT_END = 20.0  # sigmoid(±20): 2e-9 from the bounds, where ξ is still exact to ~1e-7 relative
_NEGLIGIBLE = 38.0  # e^-38 ~ 3e-17 relative to the largest node: below float64 resolution
_BULK_DROP = 50.0
_NODE_CHUNK = 4_000_000  # nodes x points evaluated at once


def _log_ndtr(x: Tensor) -> Tensor:
    return torch.special.log_ndtr(x)


class MixingDensity:
    """The density q of |ξ| on a transformed axis s, prepared once per noise law.

    Args:
        law: a continuous :class:`~dropprior.noise.NoiseLaw`; its support must be (0, ∞), [0, ∞),
            R (folded to |ξ|), a bounded interval, or (lo, ∞).
    """

    def __init__(self, law: NoiseLaw) -> None:
        if law.is_discrete:
            raise ValueError(
                f"{law!r} is discrete; its marginal has atoms and no quadrature density "
                "(Bernoulli noise has the SpikeAndSlab marginal)"
            )
        self.law = law.to(dtype=torch.float64)
        self.batch_shape = self.law.batch_shape
        support = self.law.support
        assert support is not None
        lo, hi, self._fold = _bounds(support, law)
        self.lo = lo
        self.hi = hi
        # folding an interval (lo < 0 < hi) leaves a kink in q at min(−lo, hi): a panel edge
        self._kinks: list[float] = []
        if self._fold and hi is not None:
            raw: Any = support
            inner = torch.minimum(-torch.as_tensor(raw.lower_bound, dtype=torch.float64),
                                  torch.as_tensor(raw.upper_bound, dtype=torch.float64))
            for k in torch.unique((inner / hi).flatten()).tolist():
                if 0 < k < 1:
                    self._kinks.append(math.log(k) - math.log1p(-k))
        if self.hi is not None:
            self.kind = "logit"
        elif bool(torch.all(self.lo == 0)):
            self.kind = "log"
        else:
            self.kind = "shift"
        self.zero_lower = bool(torch.all(self.lo == 0))
        self.bulk_lo, self.bulk_hi, self.bulk_step = self._find_bulk()

    # ---- the change of variable --------------------------------------------------------
    def _shaped(self, s: Tensor) -> Tensor:
        return s.reshape(s.shape + (1,) * len(self.batch_shape))

    def log_xi(self, s: Tensor) -> Tensor:
        """log ξ(s), shape (K, *batch_shape) for nodes s of shape (K,)."""
        s = self._shaped(s)
        if self.kind == "log":
            return s.expand(s.shape[:1] + self.batch_shape)
        if self.kind == "shift":
            return torch.logaddexp(torch.log(self.lo), s)
        assert self.hi is not None
        if self.zero_lower:
            return torch.log(self.hi) + torch.nn.functional.logsigmoid(s)
        return torch.log(self.lo + (self.hi - self.lo) * torch.sigmoid(s))

    def log_weight(self, s: Tensor) -> Tensor:
        """L(s) = log q(ξ(s)) + log |dξ/ds|, shape (K, *batch_shape)."""
        log_xi = self.log_xi(s)
        xi = torch.exp(log_xi)
        s = self._shaped(s)
        if self.kind == "logit":
            assert self.hi is not None
            log_jac = (torch.log(self.hi - self.lo) + torch.nn.functional.logsigmoid(s)
                       + torch.nn.functional.logsigmoid(-s))
        else:
            log_jac = s.expand(log_xi.shape)
        log_q = self.law.log_prob(xi)
        if self._fold:
            log_q = torch.logaddexp(log_q, self.law.log_prob(-xi))
        return log_q + log_jac

    def default_range(self) -> tuple[float, float]:
        if self.kind == "logit":
            return -_LOGIT_END, _LOGIT_END
        if self.kind == "shift":
            return float(torch.log(self.lo).min()) - 40.0, _LOG_MAX_S
        return _LOG_MIN_S, _LOG_MAX_S

    # ---- the law's bulk -----------------------------------------------------------------
    def _find_bulk(self) -> tuple[float, float, float]:
        lo, hi = self.default_range()
        with torch.no_grad():
            s = torch.arange(lo, hi + _SCAN_STEP / 2, _SCAN_STEP, dtype=torch.float64)
            L = self.log_weight(s).reshape(len(s), -1)
            if bool(torch.isnan(L).any()):
                raise ValueError(f"{self.law!r}: log_prob returned nan inside its support")
            top = L.max(dim=0).values
            inside = (L > top - _BULK_DROP).any(dim=1).nonzero().flatten()
            if inside.numel() == 0:
                raise ValueError(f"{self.law!r}: its density is zero on its whole support")
            a = float(s[max(int(inside[0]) - 1, 0)])
            b = float(s[min(int(inside[-1]) + 1, len(s) - 1)])
            a, b = max(a, lo), min(b, hi)
            step = min(1.0, (b - a) / 2)
            previous = self._log_normaliser(a, b, step, lo, hi)
            for _ in range(14):
                step /= 2
                current = self._log_normaliser(a, b, step, lo, hi)
                if float((current - previous).abs().max()) < 1e-14:
                    break
                previous = current
            worst = float(current.abs().max())
            if not math.isfinite(worst) or worst > 1e-9:
                raise ValueError(
                    f"{self.law!r}: its density integrates to exp({worst:.3g}) != 1 on the "
                    "quadrature grid; the law is too concentrated or too spread out for "
                    "QuadratureMarginal"
                )
        return a, b, step

    def _log_normaliser(self, a: float, b: float, step: float, lo: float, hi: float) -> Tensor:
        edges = _panel_edges([np.arange(a, b, step), [a, b], self._kinks], a, b)
        return log_integrate(lambda s: self.log_weight(s).reshape(len(s), -1), edges,
                             may_diverge_left=None)

    # ---- per-call panels ----------------------------------------------------------------
    def panel_edges(self, s_lo: float, s_hi: float) -> np.ndarray:
        """Unit panels on [s_lo, s_hi] refined by the bulk's panels where they overlap."""
        a, b = max(self.bulk_lo, s_lo), min(self.bulk_hi, s_hi)
        pieces = [np.arange(math.floor(s_lo), s_hi, 1.0), [s_lo, s_hi], self._kinks]
        if a < b:
            pieces.append(np.arange(a, b, self.bulk_step))
            pieces.append([a, b])
        return _panel_edges(pieces, s_lo, s_hi)

    def s_range(self, log_ratio_min: float, log_ratio_max: float,
                any_zero: bool) -> tuple[float, float]:
        """The s interval that points with log(r/σ0) in [``log_ratio_min``, ``log_ratio_max``]
        need (``any_zero``: some r = 0, whose integrand has no Gaussian cut-off at ξ → 0)."""
        lo, hi = self.default_range()
        if self.kind == "logit" and self.zero_lower:
            assert self.hi is not None
            log_scale = float(torch.log(self.hi).max())
            left = _LOG_MIN_S if any_zero else log_ratio_min - log_scale - 5.0
            return max(min(left, hi - 1.0), _LOG_MIN_S), hi
        if self.kind == "log":
            left = _LOG_MIN_S if any_zero else max(log_ratio_min - 5.0, _LOG_MIN_S)
            right = max(self.bulk_hi, log_ratio_max) + 60.0
            return left, max(right, left + 1.0)
        return lo, hi


def _bounds(support: constraints.Constraint,
            law: NoiseLaw) -> tuple[Tensor, Tensor | None, bool]:
    """(lower, upper, fold) bounds of |ξ|'s support; upper ``None`` when infinite; ``fold`` when
    ξ takes negative values too (q(x) = p(x) + p(−x))."""

    def t(v: float | Tensor) -> Tensor:
        return torch.as_tensor(v, dtype=torch.float64)

    zero = torch.zeros((), dtype=torch.float64)
    if isinstance(support, constraints._Real):
        return zero, None, True
    if isinstance(support, (constraints._Interval, constraints._HalfOpenInterval)):
        lo, hi = t(support.lower_bound), t(support.upper_bound)
        if bool(torch.all(lo >= 0)):
            return lo, hi, False
        if bool(torch.all((lo < 0) & (hi > 0))):
            return torch.zeros_like(lo), torch.maximum(-lo, hi), True
    elif isinstance(support, (constraints._GreaterThan, constraints._GreaterThanEq)):
        lo = t(support.lower_bound)
        if bool(torch.all(lo >= 0)):
            return lo, None, False
    raise ValueError(
        f"QuadratureMarginal supports noise laws on R, [0, inf), (lo, inf), a bounded interval "
        f"of [0, inf) or one around 0; {law!r} has support {support}"
    )


def _panel_edges(pieces: list, lo: float, hi: float) -> np.ndarray:
    edges = np.unique(np.concatenate([np.asarray(p, dtype=np.float64) for p in pieces]))
    edges = edges[(edges >= lo) & (edges <= hi)]
    keep = np.concatenate([[True], np.diff(edges) > 1e-12])
    return edges[keep]


def log_integrate(log_integrand: Callable[[Tensor], Tensor], edges: np.ndarray,
                  may_diverge_left: Tensor | None) -> Tensor:
    r"""log ∫ exp(G(s)) ds by adaptive Gauss–Kronrod (21/10 points) on shared panels, plus
    exponential end tails.

    Every panel is integrated for all points at once with the 21-point Kronrod rule and its
    embedded 10-point Gauss rule; a panel whose two values differ by more than 1e-11 of some
    point's whole integral is bisected and redone (at most 40 rounds), so narrow peaks of the
    integrand (far tails, concentrated laws) are resolved where they are, for each point.

    Args:
        log_integrand: maps nodes s of shape (K,) to G of shape (K, *P), one column per point.
        edges: initial panel edges (sorted) on the s axis. Where G is not negligible at an end,
            the integral beyond it is added as an exponential tail fitted to G there.
        may_diverge_left: boolean mask of shape P of points whose integral may genuinely diverge
            at the left end (w = 0 with a pole): +inf there instead of an error. ``None``: none.

    Shape:
        output: P.
    """
    lo = torch.from_numpy(np.asarray(edges[:-1], dtype=np.float64))
    hi = torch.from_numpy(np.asarray(edges[1:], dtype=np.float64))
    accepted: Tensor | None = None
    for _ in range(_MAX_ROUNDS):
        log_k, log_g = _panel_rules(log_integrand, lo, hi)  # (n_panels, *P)
        pending = torch.logsumexp(log_k, dim=0)
        total = pending if accepted is None else torch.logaddexp(accepted, pending)
        finite_total = torch.where(torch.isfinite(total), total, torch.zeros_like(total))
        gap = (torch.exp(log_k - finite_total) - torch.exp(log_g - finite_total)).abs()
        gap = torch.nan_to_num(gap, nan=0.0).reshape(len(lo), -1).amax(dim=1)
        bad = gap > _PANEL_TOL
        good_sum = torch.logsumexp(log_k[~bad], dim=0) if bool((~bad).any()) else None
        if good_sum is not None:
            accepted = good_sum if accepted is None else torch.logaddexp(accepted, good_sum)
        if not bool(bad.any()):
            break
        mid = (lo[bad] + hi[bad]) / 2
        lo, hi = torch.cat([lo[bad], mid]), torch.cat([mid, hi[bad]])
    else:  # budget spent: keep the last (finest) values of the remaining panels
        rest = torch.logsumexp(log_k[bad], dim=0)
        accepted = rest if accepted is None else torch.logaddexp(accepted, rest)
    assert accepted is not None
    total = accepted
    top = total  # the integral bounds every node's contribution from above
    for end, inward in ((float(edges[0]), 1.0), (float(edges[-1]), -1.0)):
        delta = 1e-2
        pair = log_integrand(torch.tensor([end, end + inward * delta], dtype=torch.float64))
        g_end, g_in = pair[0], pair[1]
        significant = g_end > top - _NEGLIGIBLE
        if not bool(significant.any()):
            continue
        decay = (g_in - g_end) / delta  # > 0: the integrand falls off outward
        tail = g_end - torch.log(decay.clamp_min(1e-300))
        diverges = significant & ~(decay > 0)
        if bool(diverges.any()):
            allowed = may_diverge_left if (inward > 0 and may_diverge_left is not None) else None
            if allowed is None or not bool((allowed | ~diverges).all()):
                side = "left" if inward > 0 else "right"
                raise RuntimeError(
                    f"scale-mixture quadrature: the integrand does not decay at the {side} end "
                    f"s = {end:.4g} of the integration range; please report this law and input"
                )
            tail = torch.where(diverges, torch.full_like(tail, math.inf), tail)
        total = torch.where(significant, torch.logaddexp(total, tail), total)
    return total


def _panel_rules(log_integrand: Callable[[Tensor], Tensor], lo: Tensor,
                 hi: Tensor) -> tuple[Tensor, Tensor]:
    """log of the Kronrod-21 and Gauss-10 integrals of exp(G) on each panel, shape (n, *P)."""
    mid, half = (lo + hi) / 2, (hi - lo) / 2
    nodes = (mid[:, None] + half[:, None] * _GK_NODES[None, :]).reshape(-1)
    log_half = torch.log(half)
    out_k, out_g = [], []
    first = log_integrand(nodes[:1])
    per_panel = max(1, _NODE_CHUNK // (max(first[0].numel(), 1) * len(_GK_NODES)))
    for start in range(0, len(lo), per_panel):
        stop = min(start + per_panel, len(lo))
        G = log_integrand(nodes[start * len(_GK_NODES):stop * len(_GK_NODES)])
        G = G.reshape((stop - start, len(_GK_NODES)) + G.shape[1:])
        shape = (1, len(_GK_NODES)) + (1,) * (G.dim() - 2)
        lh = log_half[start:stop].reshape((-1,) + (1,) * (G.dim() - 2))
        out_k.append(torch.logsumexp(G + _LOG_KRONROD.reshape(shape), dim=1) + lh)
        out_g.append(torch.logsumexp(G + _LOG_GAUSS.reshape(shape), dim=1) + lh)
    return torch.cat(out_k), torch.cat(out_g)


def log_gaussian_mixture(mixing: MixingDensity, r: Tensor, log_sigma0: Tensor, dim: int,
                         kind: str = "density") -> Tensor:
    r"""log ∫ N(w; 0, σ0²ξ² I_D) q(ξ) dξ (``kind="density"``) or log ∫ Φ(−r/(σ0 ξ)) q(ξ) dξ
    (``kind="tail"``, D = 1) at r = ‖w‖.

    Args:
        mixing: the prepared density of |ξ|.
        r: the norms ‖w‖ ≥ 0, float64, shape P (P broadcasts with the law's batch shape).
        log_sigma0: log σ0, float64, broadcastable to P.
        dim: the group size D.
        kind: ``"density"`` or ``"tail"``.

    Shape:
        output: the broadcast of P, ``log_sigma0``'s shape and the law's batch shape.
    """
    with torch.no_grad():
        positive = r[r > 0]
        any_zero = bool((r == 0).any())
        if positive.numel():
            lr_min = float(torch.log(positive.min()) - log_sigma0.max())
            lr_max = float(torch.log(positive.max()) - log_sigma0.min())
        else:
            lr_min = lr_max = 0.0
        s_lo, s_hi = mixing.s_range(lr_min, lr_max, any_zero)
    edges = mixing.panel_edges(s_lo, s_hi)
    log_r = torch.log(r)[None]
    log_sigma0 = log_sigma0[None]
    n_point_dims = len(torch.broadcast_shapes(r.shape, log_sigma0.shape[1:], mixing.batch_shape))
    pad = (1,) * (n_point_dims - len(mixing.batch_shape))
    half_log_2pi = 0.5 * math.log(2 * math.pi)

    def lift(x: Tensor) -> Tensor:  # (K, *batch) -> (K, 1, ..., 1, *batch) against the points
        return x.reshape(x.shape[:1] + pad + x.shape[1:])

    def integrand(s: Tensor) -> Tensor:
        log_xi = lift(mixing.log_xi(s))
        log_scale = log_sigma0 + log_xi  # log(σ0 ξ), shape (K, *points)
        log_ratio = log_r - log_scale  # log(r / (σ0 ξ))
        L = lift(mixing.log_weight(s))
        if kind == "density":
            g = -dim * (half_log_2pi + log_scale) - 0.5 * torch.exp(2 * log_ratio)
        else:
            g = _log_ndtr(-torch.exp(log_ratio))
        return g + L

    diverge_ok = (r == 0) if kind == "density" else None
    return log_integrate(integrand, edges, may_diverge_left=diverge_ok)
