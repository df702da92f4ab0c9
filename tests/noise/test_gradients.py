"""rsample gradients: pathwise derivatives against finite differences of the same draw, and the
Monte Carlo gradient of E[f(ξ)] against autograd of its closed form (gamma-based laws)."""

from __future__ import annotations

import math

import pytest
import torch
from _noise_reference import BY_NAME, FIXTURES, case_id, cases, make

PATHWISE = [f for f in FIXTURES if f.pathwise]


@pytest.mark.parametrize(("fixture", "params"), cases(PATHWISE), ids=case_id)
def test_pathwise_gradient_matches_finite_differences(fixture, params) -> None:
    law = make(fixture, params)
    leaves = {k: v.detach().clone().requires_grad_(True) for k, v in law.params().items()}
    draw = fixture.law(**leaves).rsample((64,), generator=torch.Generator().manual_seed(5))
    weights = torch.linspace(0.5, 1.5, 64, dtype=torch.float64)
    (draw * weights).sum().backward()
    h = 1e-6
    for name, leaf in leaves.items():
        shifted = []
        for sign in (1, -1):
            moved = {k: v.detach() + (sign * h if k == name else 0.0) for k, v in leaves.items()}
            x = fixture.law(**moved).rsample((64,), generator=torch.Generator().manual_seed(5))
            shifted.append((x * weights).sum())
        numeric = (shifted[0] - shifted[1]) / (2 * h)
        torch.testing.assert_close(leaf.grad, numeric, rtol=1e-5, atol=1e-6)


def _exact_and_integrand(fixture):
    """(closed form of E[f(ξ)] from the law's moments, f)."""
    if fixture.name == "half_cauchy":  # E[√ξ] = √(2s) (no mean exists)
        return (lambda law: torch.sqrt(2 * law.scale)), torch.sqrt
    return (lambda law: law.mean), (lambda x: x)


@pytest.mark.parametrize(
    ("fixture", "params"),
    [(BY_NAME["inverse_nakagami"], {"shape": 3.0, "spread": 2.0}),
     (BY_NAME["inverse_nakagami"], {"shape": 1.5, "spread": 0.5}),
     (BY_NAME["beta"], {"concentration1": 2.0, "concentration0": 3.0}),
     (BY_NAME["beta"], {"concentration1": 0.5, "concentration0": 0.7}),
     (BY_NAME["half_cauchy"], {"scale": 2.0}),
     (BY_NAME["log_normal"], {"loc": 0.1, "scale": 0.4})],
    ids=case_id,
)
def test_monte_carlo_gradient_matches_closed_form(fixture, params) -> None:
    law = make(fixture, params)
    exact_fn, f = _exact_and_integrand(fixture)
    leaves = {k: v.detach().clone().requires_grad_(True) for k, v in law.params().items()}
    estimate = f(fixture.law(**leaves).rsample((200_000,),
                                               generator=torch.Generator().manual_seed(2)))
    mc = torch.autograd.grad(estimate.mean(), list(leaves.values()))
    exact_leaves = {k: v.detach().clone().requires_grad_(True) for k, v in law.params().items()}
    exact = torch.autograd.grad(exact_fn(fixture.law(**exact_leaves)),
                                list(exact_leaves.values()))
    for name, got, want in zip(leaves, mc, exact, strict=True):
        assert math.isfinite(float(got)), name
        torch.testing.assert_close(got, want, rtol=0.03, atol=2e-3, msg=name)


@pytest.mark.parametrize("params", BY_NAME["inverse_nakagami"].examples, ids=str)
def test_inverse_nakagami_icdf_gradient_in_spread_matches_scipy(params) -> None:
    """d icdf / dΩ against central differences of scipy's ppf in Ω, for icdf's bisection has no
    autograd path of its own; the batch of spreads gets one gradient each."""
    fixture = BY_NAME["inverse_nakagami"]
    q = torch.tensor([1e-3, 0.2, 0.5, 0.8, 0.999], dtype=torch.float64)
    spreads = torch.tensor([params["spread"], 2 * params["spread"]], dtype=torch.float64)
    spread = spreads.clone().requires_grad_(True)
    law = fixture.law(shape=torch.tensor(params["shape"], dtype=torch.float64), spread=spread)
    law.icdf(q[:, None]).sum().backward()
    h = 1e-6
    for k, s in enumerate(spreads.tolist()):
        plus = fixture.scipy(shape=params["shape"], spread=s + h).ppf(q.numpy())
        minus = fixture.scipy(shape=params["shape"], spread=s - h).ppf(q.numpy())
        assert math.isclose(float(spread.grad[k]), float(((plus - minus) / (2 * h)).sum()),
                            rel_tol=1e-6)


def test_inverse_nakagami_icdf_refuses_a_gradient_in_shape() -> None:
    """No silent zero: as torch's gammaincc in its first argument, backward raises."""
    law = BY_NAME["inverse_nakagami"].law(shape=torch.tensor(2.0, requires_grad=True),
                                          spread=torch.tensor(1.0))
    x = law.icdf(torch.tensor([0.3, 0.6]))
    assert x.requires_grad
    with pytest.raises(NotImplementedError, match="no derivative in shape"):
        x.sum().backward()
