"""Special functions the closed-form marginals need, in float64 and with autograd.

``torch.special`` has the modified Bessel functions K0 and K1 only and no exponential integral, so
both are computed by :mod:`scipy.special` (``kve``, ``exp1``) inside a
:class:`torch.autograd.Function` whose backward pass is the analytic derivative:

* :func:`log_bessel_k`: log K_ν(x) for a fixed real order ν, with
  d/dx log K_ν(x) = −(K_{ν−1}(x) + K_{ν+1}(x)) / (2 K_ν(x));
* :func:`log_exp_e1`: log(e^u E1(u)), with d/du log(e^u E1(u)) = 1 − 1/(u e^u E1(u)).

Both run on CPU in float64 and return a tensor on the input's device and dtype. Gradients flow to
the argument only (the order ν is a Python float fixed by the group size).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch
from scipy import special
from torch import Tensor

__all__ = ["log_bessel_k", "log_exp_e1", "log_gamma_variance_mixture"]

# Above this u, e^u E1(u) is summed from its asymptotic series (e^u overflows float64 near 709).
_E1_SERIES_FROM = 50.0
_E1_SERIES_TERMS = 30  # smallest term at u = 50 is 30!/50**30 ~ 3e-19: float64-exact


def _to_numpy(x: Tensor) -> np.ndarray:
    return x.detach().to(device="cpu", dtype=torch.float64).numpy()


def _from_numpy(a: np.ndarray, like: Tensor) -> Tensor:
    out = torch.from_numpy(np.array(a, dtype=np.float64)).reshape(like.shape)
    return out.to(device=like.device, dtype=like.dtype)


def _log_kve(nu: float, x: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore"):
        return np.log(special.kve(nu, x))  # kve = K_ν(x)·e^x; x = 0 gives +inf


class _LogBesselK(torch.autograd.Function):
    @staticmethod
    def forward(ctx: Any, x: Tensor, nu: float) -> Tensor:
        xn = _to_numpy(x)
        out = _log_kve(nu, xn) - xn
        ctx.nu = nu
        ctx.save_for_backward(x)
        return _from_numpy(out, x)

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> tuple[Tensor, None]:
        (x,) = ctx.saved_tensors
        xn = _to_numpy(x)
        with np.errstate(invalid="ignore", divide="ignore"):
            ratio = (special.kve(ctx.nu - 1, xn) + special.kve(ctx.nu + 1, xn)) / (
                2 * special.kve(ctx.nu, xn))
        ratio = np.where(xn > 0, ratio, 0.0)  # at x = 0 the density has a pole or a cusp
        return grad * _from_numpy(-ratio, x), None


def log_bessel_k(nu: float, x: Tensor) -> Tensor:
    r"""log K_ν(x), the modified Bessel function of the second kind, for x ≥ 0.

    Computed as ``log(scipy.special.kve(nu, x)) - x`` in float64, so it neither underflows for
    large x nor overflows for small x; ``+inf`` at x = 0.

    Args:
        nu: the order ν (a Python float; K_{−ν} = K_ν).
        x: the argument, any shape, ≥ 0.

    Shape:
        ``x``: any; output: same as ``x``.
    """
    return _LogBesselK.apply(x, float(nu))


def _log_exp_e1_numpy(u: np.ndarray) -> np.ndarray:
    out = np.empty_like(u)
    small = u <= _E1_SERIES_FROM
    with np.errstate(divide="ignore"):
        out[small] = np.log(special.exp1(u[small])) + u[small]
    big = u[~small]
    # e^u E1(u) ~ (1/u) Σ_k (−1)^k k! / u^k, an alternating asymptotic series.
    term = np.ones_like(big)
    total = np.ones_like(big)
    for k in range(1, _E1_SERIES_TERMS + 1):
        term = term * (-k / big)
        total = total + term
    out[~small] = np.log(total) - np.log(big)
    return out


class _LogExpE1(torch.autograd.Function):
    @staticmethod
    def forward(ctx: Any, u: Tensor) -> Tensor:
        out = _from_numpy(_log_exp_e1_numpy(_to_numpy(u)), u)
        ctx.save_for_backward(u, out)
        return out

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> Tensor:
        u, out = ctx.saved_tensors
        safe = torch.where(u > 0, u, torch.ones_like(u))
        d = 1 - torch.exp(-torch.log(safe) - out)
        return grad * torch.where(u > 0, d, torch.zeros_like(d))


def log_exp_e1(u: Tensor) -> Tensor:
    r"""log(e^u E1(u)) for u ≥ 0, where E1(u) = ∫_u^∞ e^{−t}/t dt is the exponential integral.

    ``scipy.special.exp1`` for u ≤ 50 and the asymptotic series e^u E1(u) ~ Σ (−1)^k k!/u^{k+1}
    (30 terms, float64-exact there) above; ``+inf`` at u = 0 (the horseshoe's pole).

    Shape:
        ``u``: any; output: same as ``u``.
    """
    return _LogExpE1.apply(u)


def log_gamma_variance_mixture(r: Tensor, shape: float, rate: Tensor, dim: int) -> Tensor:
    r"""log p(w) of w | V ~ N(0, V I_D), V ~ Gamma(a, rate β), at r = ‖w‖: the symmetric
    variance-gamma (Bessel-K) family.

    .. math::
        p(w) = \frac{2\,β^a}{(2π)^{D/2} Γ(a)} \Big(\frac{x}{2β}\Big)^{ν} K_ν(x),\qquad
        x = r\sqrt{2β},\ ν = a - D/2,

    from ∫ v^{ν−1} e^{−A/v − βv} dv = 2 (A/β)^{ν/2} K_ν(2√(Aβ)) with A = r²/2. At r = 0 the
    density is (β/2π)^{D/2} Γ(a − D/2)/Γ(a) when a > D/2 and +inf otherwise.

    Args:
        r: the norms ‖w‖ ≥ 0 (float64).
        shape: a, the Gamma shape of the variance.
        rate: β, the Gamma rate of the variance (float64 tensor broadcastable with ``r``).
        dim: D.

    Shape:
        output: the broadcast of ``r`` and ``rate``.
    """
    nu = shape - dim / 2
    r, rate = torch.broadcast_tensors(r, rate)
    x = r * torch.sqrt(2 * rate)
    safe_x = torch.where(x > 0, x, torch.ones_like(x))
    const = (math.log(2.0) - 0.5 * dim * math.log(2 * math.pi) + shape * torch.log(rate)
             - math.lgamma(shape))
    body = const + nu * (torch.log(safe_x) - torch.log(2 * rate)) + log_bessel_k(nu, safe_x)
    if nu > 0:
        at_zero = (0.5 * dim * (torch.log(rate) - math.log(2 * math.pi))
                   + math.lgamma(nu) - math.lgamma(shape))
    else:
        at_zero = torch.full_like(body, math.inf)
    return torch.where(x > 0, body, at_zero)
