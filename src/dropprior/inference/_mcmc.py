"""Full-batch HMC / NUTS with Pyro, several chains, and the diagnostics a user needs to trust it.

:func:`run_mcmc` runs Pyro's :class:`~pyro.infer.NUTS` (or :class:`~pyro.infer.HMC`) on any Pyro
model, one chain after another, and returns an :class:`MCMCResult`: the draws of every latent and
deterministic site, and per chain the number of gradient evaluations and of divergent transitions.
From those it reports rank-normalised split R-hat, bulk ESS and ESS per gradient evaluation.

Randomness: Pyro draws from torch's global generator. Each chain gets a seed drawn from
``generator`` and runs inside :func:`torch.random.fork_rng`, so a fixed ``generator`` gives the same
draws and the caller's global RNG state is left untouched.

Gradient evaluations are counted exactly by wrapping the potential energy U(q) = −log p(q, y) that
Pyro differentiates: each call of it is one gradient evaluation (for NUTS, the leapfrog steps of
every tree, plus the step-size search).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch
from pyro import poutine
from pyro.infer import HMC, MCMC, NUTS
from pyro.infer.mcmc.util import initialize_model
from torch import Tensor
from torch.distributions import biject_to

from dropprior._validation import check_chain_lengths, check_choice, check_int, check_number
from dropprior.inference._density import LogDensity
from dropprior.inference._diagnostics import bulk_ess, split_rhat

__all__ = ["ALGORITHMS", "MCMCResult", "run_mcmc"]

ALGORITHMS = ("nuts", "hmc")
"""``"nuts"``: No-U-Turn sampler (adaptive path length); ``"hmc"``: ``num_steps`` leapfrogs."""


@dataclass
class MCMCResult:
    """Draws and diagnostics of :func:`run_mcmc`.

    Attributes:
        samples: site name → draws of shape (num_chains, num_samples, *site_shape), in the
            constrained space (e.g. ξ > 0), including deterministic sites such as EP's w = ξ·z.
        gradient_evaluations: per chain, gradients of the log density during sampling, (C,).
        warmup_gradient_evaluations: per chain, gradients during warm-up, (C,).
        divergences: per chain, divergent transitions after warm-up, (C,).
        seconds: wall-clock time of the whole run.
    """

    samples: dict[str, Tensor]
    gradient_evaluations: Tensor
    warmup_gradient_evaluations: Tensor
    divergences: Tensor
    seconds: float
    latent_sites: tuple[str, ...] = field(default=())

    @property
    def num_chains(self) -> int:
        return int(self.gradient_evaluations.numel())

    def flat(self, name: str) -> Tensor:
        """Draws of one site with chains pooled, shape (num_chains · num_samples, *site_shape)."""
        draws = self.samples[name]
        return draws.reshape(-1, *draws.shape[2:])

    def rhat(self) -> dict[str, Tensor]:
        """Rank-normalised split R-hat of every scalar of every site."""
        return {k: split_rhat(v) for k, v in self.samples.items()}

    def ess(self) -> dict[str, Tensor]:
        """Bulk ESS of every scalar of every site (pooled over chains)."""
        return {k: bulk_ess(v) for k, v in self.samples.items()}

    def ess_per_gradient(self) -> dict[str, Tensor]:
        """Bulk ESS divided by the gradient evaluations spent sampling (warm-up excluded)."""
        total = float(self.gradient_evaluations.sum())
        return {k: v / total for k, v in self.ess().items()}

    def summary(self, sites: list[str] | None = None) -> dict[str, float]:
        """Worst-case diagnostics over the chosen sites (default: every site).

        Returns ``max_rhat``, ``min_ess``, ``min_ess_per_gradient``, ``divergences`` (total),
        ``gradient_evaluations`` (total, sampling), ``seconds``.
        """
        names = list(self.samples) if sites is None else sites
        rh = torch.cat([split_rhat(self.samples[n]).reshape(-1) for n in names])
        es = torch.cat([bulk_ess(self.samples[n]).reshape(-1) for n in names])
        grads = float(self.gradient_evaluations.sum())
        return {
            "max_rhat": float(rh.max()),
            "min_ess": float(es.min()),
            "min_ess_per_gradient": float(es.min()) / grads,
            "divergences": int(self.divergences.sum()),
            "gradient_evaluations": int(grads),
            "seconds": self.seconds,
        }


def run_mcmc(
    model: LogDensity | Callable[..., Any],
    *model_args: Any,
    algorithm: str = "nuts",
    num_samples: int = 500,
    warmup: int = 500,
    num_chains: int = 2,
    target_accept: float = 0.8,
    max_tree_depth: int = 10,
    step_size: float = 0.1,
    num_steps: int = 10,
    full_mass: bool = False,
    generator: torch.Generator | None = None,
    **model_kwargs: Any,
) -> MCMCResult:
    """Sample a posterior with Pyro's NUTS or HMC; chains run one after another.

    Args:
        model: a :class:`LogDensity` (e.g. :class:`LinearRegression`, :class:`NetworkPosterior`;
            fastest), or any Pyro model (e.g. :func:`linear_regression_model`).
        *model_args, **model_kwargs: passed to a Pyro ``model`` (none for a LogDensity).
        algorithm: ``"nuts"`` or ``"hmc"``.
        num_samples: draws kept per chain.
        warmup: adaptation steps per chain (step size and diagonal mass matrix), discarded.
        num_chains: number of chains (≥ 2 for a meaningful R-hat).
        target_accept: target mean acceptance probability of the step-size adaptation.
        max_tree_depth: NUTS's cap on tree doublings (2^depth leapfrogs per draw).
        step_size: initial step size (adapted during warm-up).
        num_steps: leapfrog steps per HMC proposal (``algorithm="hmc"`` only).
        full_mass: adapt a dense instead of a diagonal mass matrix.
        generator: seeds the chains (see the module docstring).

    Returns:
        An :class:`MCMCResult`.

    Shape:
        ``result.samples[site]``: (num_chains, num_samples, *site_shape).
    """
    check_choice("algorithm", algorithm, ALGORITHMS)
    check_chain_lengths(num_samples, warmup, num_chains)
    check_number("target_accept", target_accept, 0.0, 1.0)
    check_number("step_size", step_size)
    for name, value in (("num_steps", num_steps), ("max_tree_depth", max_tree_depth)):
        check_int(name, value, 1)

    seeds = torch.randint(0, 2**31 - 1, (num_chains,), generator=generator).tolist()
    start = time.perf_counter()
    per_chain: list[dict[str, Tensor]] = []
    grads, warm_grads, divs = [], [], []
    latent: tuple[str, ...] = ()
    for seed in seeds:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(int(seed))
            draws, n_warm, n_sample, n_div, latent = _one_chain(
                model, model_args, model_kwargs, algorithm, num_samples, warmup,
                target_accept, max_tree_depth, step_size, num_steps, full_mass,
            )
        per_chain.append(draws)
        grads.append(n_sample)
        warm_grads.append(n_warm)
        divs.append(n_div)
    samples = {k: torch.stack([c[k] for c in per_chain]) for k in per_chain[0]}
    return MCMCResult(
        samples=samples,
        gradient_evaluations=torch.tensor(grads),
        warmup_gradient_evaluations=torch.tensor(warm_grads),
        divergences=torch.tensor(divs),
        seconds=time.perf_counter() - start,
        latent_sites=latent,
    )


def _density_potential(density: LogDensity):
    """Initial point, potential energy and transforms of a :class:`LogDensity`.

    Each site is mapped by ``biject_to(support)``; the potential is
    U(u) = −log p(T(u), y) − Σ log|det ∂T/∂u|. The start is uniform in (−2, 2) on the
    unconstrained scale, as Pyro's ``init_to_uniform``, in the density's ``dtype``.
    """
    sites = density.sites()
    transforms = {k: biject_to(support) for k, (_, support) in sites.items()}
    init = {k: torch.rand(shape, dtype=density.dtype) * 4 - 2
            for k, (shape, _) in sites.items()}

    def potential(u: dict[str, Tensor]) -> Tensor:
        values = {k: transforms[k](v) for k, v in u.items()}
        log_jac = sum(transforms[k].log_abs_det_jacobian(u[k], values[k]).sum() for k in u)
        energy = -(density.log_joint(values) + log_jac)
        if bool(torch.isfinite(energy)):
            return energy
        # Far out on the unconstrained scale (early warm-up leaps) ξ = exp(u) overflows; an
        # infinite energy with zero gradient makes NUTS reject the leap as divergent, where
        # autograd through the overflow would carry a nan into the chain.
        return torch.stack([v.sum() for v in u.values()]).sum() * 0.0 + math.inf

    # Pyro's convention: ``transforms`` map the constrained space to the unconstrained one.
    return init, potential, {k: t.inv for k, t in transforms.items()}


def _one_chain(model, model_args, model_kwargs, algorithm, num_samples, warmup, target_accept,
               max_tree_depth, step_size, num_steps, full_mass):
    if isinstance(model, LogDensity):
        if model_args or model_kwargs:
            raise TypeError("a LogDensity carries its data; pass no model arguments")
        init, potential_fn, transforms = _density_potential(model)
    else:
        init, potential_fn, transforms, _ = initialize_model(
            model, model_args=model_args, model_kwargs=model_kwargs
        )
    calls = [0]

    def counted(params: dict[str, Tensor]) -> Tensor:
        calls[0] += 1
        return potential_fn(params)

    if algorithm == "nuts":
        kernel: HMC = NUTS(potential_fn=counted, step_size=step_size, full_mass=full_mass,
                           target_accept_prob=target_accept, max_tree_depth=max_tree_depth)
    else:
        kernel = HMC(potential_fn=counted, step_size=step_size, num_steps=num_steps,
                     full_mass=full_mass, target_accept_prob=target_accept)
    at_warmup_end = [0]

    def hook(kernel: Any, params: Any, stage: str, i: int) -> None:
        if stage == "Warmup":
            at_warmup_end[0] = calls[0]

    mcmc = MCMC(kernel, num_samples=num_samples, warmup_steps=warmup,
                initial_params={k: v.detach() for k, v in init.items()}, transforms=transforms,
                hook_fn=hook, disable_progbar=True)
    mcmc.run()
    draws = {k: v.detach() for k, v in mcmc.get_samples().items()}
    n_div = len(mcmc.diagnostics()["divergences"]["chain 0"])
    if isinstance(model, LogDensity):
        with torch.no_grad():
            draws.update(model.deterministic(draws))
    else:
        draws.update(_deterministic_sites(model, model_args, model_kwargs, draws))
    latent = tuple(k for k in draws if k in init)
    return draws, at_warmup_end[0], calls[0] - at_warmup_end[0], n_div, latent


def _deterministic_sites(model, model_args, model_kwargs,
                         draws: dict[str, Tensor]) -> dict[str, Tensor]:
    """Replay the model on every draw and collect its ``pyro.deterministic`` sites."""
    n = next(iter(draws.values())).shape[0]
    out: dict[str, list[Tensor]] = {}
    with torch.no_grad():
        for i in range(n):
            conditioned = poutine.condition(model, data={k: v[i] for k, v in draws.items()})
            tr = poutine.trace(conditioned).get_trace(*model_args, **model_kwargs)
            for name, site in tr.nodes.items():
                infer = site.get("infer") or {}
                if site["type"] == "sample" and infer.get("_deterministic", False):
                    out.setdefault(name, []).append(torch.as_tensor(site["value"]).detach())
    return {k: torch.stack(v) for k, v in out.items()}
