"""SGLD step time: dropprior's ``sgld`` (the update written out) against posteriors'
``sgmcmc.sgld`` (the same update through ``torch.func.grad_and_value``), on the same posterior,
measured in the same run.

Run:  python benchmarks/bench_sgld.py [--repeats 5] [--steps 200] [--threads 1]

posteriors is not a dependency of dropprior: ``pip install posteriors`` first (it keeps the
installed torch).

The posterior is ``dropprior mcmc``'s SGLD case at Yacht's size: a
:class:`~dropprior.inference.NetworkPosterior` MLP 6 → 50 → 1 with Rayleigh (Laplace-prior)
noise, N = 308 synthetic points, minibatches of 32 (``sgld_network``'s log density), a step
small enough not to diverge from the prior-scale start. The posteriors side runs the loop
``sgld`` runs, with posteriors' transform for the update (lr = ε/2, temperature 1) on the same
unconstrained sites, log density and log-Jacobian, the same finiteness check and the constrained
draw kept every step. The two alternate, ``--repeats`` times, ``--steps`` steps each; the
medians and their ratio (posteriors / dropprior) are printed. Run it on an otherwise idle
machine.
"""

from __future__ import annotations

import argparse
import statistics
import time
import warnings

import torch
from torch.distributions import biject_to

from dropprior.inference import NetworkPosterior, sgld
from dropprior.noise import Rayleigh


def _posterior() -> tuple[NetworkPosterior, dict, dict]:
    g = torch.Generator().manual_seed(0)
    X = torch.randn(308, 6, generator=g, dtype=torch.float64)
    y = X[:, 0] - X[:, 1] ** 2 + 0.1 * torch.randn(308, generator=g, dtype=torch.float64)
    post = NetworkPosterior.mlp(X, y, [50], Rayleigh(1.0), noise_std=0.3)
    sites = post.sites()
    supports = {k: s for k, (_, s) in sites.items()}
    init = {k: biject_to(s)(torch.rand(shape, dtype=post.X.dtype, generator=g) * 4 - 2)
            for k, (shape, s) in sites.items()}
    return post, supports, init


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    with warnings.catch_warnings():  # tensordict's FutureWarnings on posteriors' state classes
        warnings.simplefilter("ignore", FutureWarning)
        from posteriors.sgmcmc import sgld as posteriors_sgld
    torch.set_num_threads(args.threads)
    post, supports, init = _posterior()
    N, B, eps = post.X.shape[0], 32, 1e-8
    g = torch.Generator().manual_seed(1)

    def log_density(values: dict) -> torch.Tensor:
        idx = torch.randperm(N, generator=g)[:B]
        return post.log_prior(values) + (N / B) * post.log_likelihood(values, post.X[idx],
                                                                      post.y[idx])

    transforms = {k: biject_to(supports[k]) for k in init}

    def log_posterior(u: dict, batch: None) -> tuple[torch.Tensor, torch.Tensor]:
        values = {k: transforms[k](v) for k, v in u.items()}
        log_jac = sum(transforms[k].log_abs_det_jacobian(u[k], values[k]).sum() for k in u)
        return (log_density(values) + log_jac).reshape(()), torch.zeros(())

    def with_posteriors() -> None:
        transform = posteriors_sgld.build(log_posterior, lr=0.5 * eps)
        state = transform.init({k: transforms[k].inv(v).clone() for k, v in init.items()})
        draws = []
        for _ in range(args.steps):
            state, _ = transform.update(state, None)
            if not all(bool(torch.isfinite(v).all()) for v in state.params.values()):
                raise FloatingPointError("posteriors' chain diverged")
            with torch.no_grad():
                draws.append({k: transforms[k](v).clone() for k, v in state.params.items()})

    def ours() -> None:
        sgld(log_density, init, eps, num_samples=args.steps, supports=supports, generator=g)

    cases = (("dropprior", ours), ("posteriors", with_posteriors))
    times: dict[str, list[float]] = {name: [] for name, _ in cases}
    for _, fn in cases:  # warm-up
        fn()
    for _ in range(args.repeats):
        for name, fn in cases:
            start = time.perf_counter()
            fn()
            times[name].append((time.perf_counter() - start) / args.steps * 1e3)
    med = {k: statistics.median(v) for k, v in times.items()}
    print(f"torch {torch.__version__}, {args.threads} thread(s), {args.repeats} repeats of "
          f"{args.steps} steps")
    for name, value in med.items():
        print(f"{name:<10} {value:8.3f} ms/step  (all: "
              f"{', '.join(f'{t:.3f}' for t in times[name])})")
    print(f"ratio posteriors / dropprior: {med['posteriors'] / med['dropprior']:.2f}")


if __name__ == "__main__":
    main()
