"""Stochastic-gradient Langevin dynamics (Welling & Teh, 2011) for posteriors too large for NUTS.

The plain, textbook update, with a minibatch estimate of the log-posterior gradient:

.. math::

    \\theta_{t+1} = \\theta_t + \\tfrac{\\epsilon}{2}\\,\\widehat{\\nabla}\\log p(\\theta_t \\mid y)
                    + \\sqrt{\\epsilon}\\,\\eta_t,\\quad \\eta_t \\sim N(0, I),

run on the unconstrained scale of a :class:`LogDensity` (with its log-Jacobian), with a constant
step ε (no Metropolis correction: the stationary law is exact only as ε → 0, so pick ε small and
check moments). For minibatches, pass ``log_density(values)`` that draws its own batch and
returns log p(θ) + (N/B) Σ_{i∈batch} log p(y_i | θ).

It is written out rather than taken from posteriors (``posteriors.sgmcmc.sgld``, the same update
at lr = ε/2) because posteriors' step, built on ``torch.func.grad_and_value``, is measurably
slower on the networks this project samples: ``benchmarks/bench_sgld.py`` times both.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor
from torch.distributions import biject_to

from dropprior._validation import (
    check_chain_lengths,
    check_int,
    check_number,
    shape_or_type,
    type_name,
)
from dropprior.inference._network import NetworkPosterior

__all__ = ["sgld", "sgld_network"]


def sgld(
    log_density: Callable[[dict[str, Tensor]], Tensor],
    init: dict[str, Tensor],
    step_size: float,
    num_samples: int,
    warmup: int = 0,
    thin: int = 1,
    supports: dict[str, torch.distributions.constraints.Constraint] | None = None,
    generator: torch.Generator | None = None,
) -> dict[str, Tensor]:
    """Run SGLD on ``log_density`` and return the kept draws (constrained values).

    Args:
        log_density: values (constrained) → a scalar, an (unbiased, possibly minibatch)
            estimate of the log posterior up to a constant. It may be stochastic (its own
            minibatch choice).
        init: initial constrained values of every site.
        step_size: ε > 0.
        num_samples: draws kept (after ``warmup``, every ``thin``-th step).
        warmup: steps discarded first.
        thin: keep every ``thin``-th step.
        supports: site → support (default: real for every site); positive sites are moved on
            the log scale with the log-Jacobian added.
        generator: the Langevin noise's generator.

    Returns:
        site → tensor of shape (num_samples, *site_shape).

    Raises:
        FloatingPointError: the chain left the finite numbers (step size too large).
    """
    check_number("step_size", step_size)
    check_chain_lengths(num_samples, warmup, 1)
    check_int("thin", thin, 1)
    if not isinstance(init, dict) or not init:
        raise ValueError(f"init must be a non-empty dict of site name -> initial value, got "
                         f"{init!r}")
    for name, value in init.items():
        if not isinstance(value, Tensor) or not value.is_floating_point():
            got = value.dtype if isinstance(value, Tensor) else type_name(value)
            raise TypeError(f"init[{name!r}] must be a floating-point tensor (the chain moves "
                            f"it by gradients), got {got}")
    supports = supports or {}
    transforms = {k: biject_to(supports.get(k, torch.distributions.constraints.real))
                  for k in init}
    u = {k: transforms[k].inv(v.detach()).clone() for k, v in init.items()}
    draws: dict[str, list[Tensor]] = {k: [] for k in init}
    sqrt_eps = step_size**0.5
    for t in range(warmup + num_samples * thin):
        for v in u.values():
            v.requires_grad_(True)
        values = {k: transforms[k](v) for k, v in u.items()}
        log_jac = sum(transforms[k].log_abs_det_jacobian(u[k], values[k]).sum() for k in u)
        target = log_density(values) + log_jac
        if not isinstance(target, Tensor) or target.numel() != 1:
            shown = shape_or_type(target)
            raise ValueError(f"log_density must return a scalar tensor (the log posterior "
                             f"summed over its terms), got {shown}")
        grads = torch.autograd.grad(target, list(u.values()))
        with torch.no_grad():
            u = {
                k: v + 0.5 * step_size * g
                + sqrt_eps * torch.randn(v.shape, dtype=v.dtype, generator=generator)
                for (k, v), g in zip(u.items(), grads, strict=True)
            }
            bad = [k for k, v in u.items() if not bool(torch.isfinite(v).all())]
        if bad:
            raise FloatingPointError(
                f"SGLD diverged at step {t} (non-finite values of {bad}) with "
                f"step_size={step_size!r}; use a smaller step size"
            )
        if t >= warmup and (t - warmup) % thin == thin - 1:
            with torch.no_grad():
                for k, v in u.items():
                    draws[k].append(transforms[k](v).clone())
    return {k: torch.stack(v) for k, v in draws.items()}


def sgld_network(
    posterior: NetworkPosterior,
    step_size: float,
    num_samples: int,
    batch_size: int,
    warmup: int = 0,
    thin: int = 1,
    generator: torch.Generator | None = None,
) -> dict[str, Tensor]:
    """SGLD on a :class:`NetworkPosterior` with minibatches of ``batch_size`` examples.

    The log likelihood of each minibatch is scaled by N/B, so its gradient is unbiased for the
    full-data gradient. Starts from a prior-scale point (unconstrained values uniform in (−2, 2),
    as Pyro's ``init_to_uniform``).

    Returns:
        site → (num_samples, *site_shape), plus the EP deterministic weights.
    """
    if not isinstance(posterior, NetworkPosterior):
        raise TypeError(f"sgld_network needs a NetworkPosterior, got {type(posterior).__name__}")
    X, y = posterior.X, posterior.y
    N = X.shape[0]
    if not 1 <= batch_size <= N:
        raise ValueError(f"batch_size must lie in [1, {N}], got {batch_size!r}")
    sites = posterior.sites()
    supports = {k: s for k, (_, s) in sites.items()}
    init = {k: biject_to(s)(torch.rand(shape, dtype=X.dtype, generator=generator) * 4 - 2)
            for k, (shape, s) in sites.items()}

    def log_density(values: dict[str, Tensor]) -> Tensor:
        idx = torch.randperm(N, generator=generator)[:batch_size]
        return posterior.log_prior(values) + (N / batch_size) * posterior.log_likelihood(
            values, X[idx], y[idx])

    draws = sgld(log_density, init, step_size, num_samples, warmup, thin, supports,
                 generator=generator)
    draws.update(posterior.deterministic(draws))
    return draws
