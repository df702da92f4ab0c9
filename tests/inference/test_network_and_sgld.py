"""The network posterior (log density, dropprior.nn bridge, prediction) and SGLD."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from dropprior.inference import (
    LayerSpec,
    NetworkPosterior,
    ScaleMixture1D,
    posterior_from_model,
    run_mcmc,
    sgld,
    sgld_network,
)
from dropprior.noise import Bernoulli, Rayleigh


@pytest.fixture(autouse=True)
def float64():
    old = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    yield
    torch.set_default_dtype(old)


def _data(n=20, d=3, seed=0):
    g = torch.Generator().manual_seed(seed)
    X = torch.randn(n, d, generator=g)
    return X, torch.sin(X[:, 0]) + 0.1 * torch.randn(n, generator=g), g


def _values(post, g):
    return {k: torch.rand(shape, generator=g) + 0.2 for k, (shape, _) in post.sites().items()}


@pytest.mark.parametrize("structure", ["unit", "weight", "layer"])
def test_log_joint_matches_direct_computation(structure):
    """EP and HP log densities against a hand-expanded computation with torch.distributions."""
    X, y, g = _data()
    law = Rayleigh(0.7)
    for param in ("ep", "hp"):
        post = NetworkPosterior.mlp(X, y, [4], law, structure=structure, sigma0=0.8,
                                    parametrization=param, noise_std=None)
        v = _values(post, g)
        D = torch.distributions
        lp = torch.zeros(())
        ws = []
        for l, (i, o) in enumerate([(3, 4), (4, 1)]):
            xi = v[f"layer{l}.xi"]
            lp = lp + (torch.log(xi) - 2 * math.log(0.7) - xi**2 / (2 * 0.49)).sum()
            if param == "ep":
                z = v[f"layer{l}.z"]
                lp = lp + D.Normal(0.0, 0.8).log_prob(z).sum()
                w = xi * z
            else:
                w = v[f"layer{l}.w"]
                lp = lp + D.Normal(0.0, 0.8 * xi.expand(i, o)).log_prob(w).sum()
            lp = lp + D.Normal(0.0, 1.0).log_prob(v[f"layer{l}.b"]).sum()
            ws.append(w.expand(i, o))
        lam = v["noise.precision"]
        lp = lp + D.Gamma(1.0, 0.01).log_prob(lam)
        f = (torch.relu(X @ ws[0] + v["layer0.b"]) @ ws[1] + v["layer1.b"])[:, 0]
        lp = lp + D.Normal(f, lam**-0.5).log_prob(y).sum()
        torch.testing.assert_close(post.log_joint(v), lp)


def test_posterior_from_model_reads_architecture():
    from dropprior.nn import NoisyLinear, Residual

    X, y, _ = _data()
    model = nn.Sequential(
        NoisyLinear(3, 5, Rayleigh(1.0), structure="unit"), nn.ReLU(),
        Residual(nn.Sequential(nn.Linear(5, 5), nn.Tanh()), depth_noise=Rayleigh(0.5)),
        nn.Linear(5, 1),
    )
    post = posterior_from_model(model, X, y, parametrization="hp")
    assert [(s.in_features, s.out_features, s.structure, s.activation, s.residual)
            for s in post.layers] == [(3, 5, "unit", "relu", False), (5, 5, "layer", "tanh", True),
                                      (5, 1, "unit", "identity", False)]
    assert post.layers[2].law is None
    sites = post.sites()
    assert sites["layer0.xi"][0] == (3, 1) and sites["layer1.xi"][0] == ()
    assert "layer2.xi" not in sites
    with pytest.raises(ValueError, match="kuo_mallick"):
        posterior_from_model(nn.Sequential(NoisyLinear(3, 1, Bernoulli(0.5))), X, y)
    with pytest.raises(ValueError, match="cannot read"):
        posterior_from_model(nn.Sequential(nn.Linear(3, 1), nn.Dropout(0.1)), X, y)


def test_hmc_on_network_runs_and_predicts():
    X, y, g = _data(n=30)
    post = NetworkPosterior.mlp(X, y, [4], Rayleigh(1.0), parametrization="ep", noise_std=0.3)
    r = run_mcmc(post, algorithm="hmc", num_steps=5, num_samples=20, warmup=20, num_chains=2,
                 generator=g)
    assert r.samples["layer0.z"].shape == (2, 20, 3, 4)
    torch.testing.assert_close(r.samples["layer0.w"],
                               r.samples["layer0.xi"] * r.samples["layer0.z"])
    # Pyro's HMC keeps the trajectory length (5 × initial step) fixed while adapting the step,
    # so the leapfrog count per draw varies; every draw costs at least one gradient.
    assert (r.gradient_evaluations >= 20).all() and (r.warmup_gradient_evaluations > 0).all()
    assert post.predict(r.samples, X).shape == (40, 30)
    scores = post.evaluate(r.samples, X, y)
    assert math.isfinite(scores["rmse"]) and math.isfinite(scores["test_ll"])


def test_sgld_recovers_gaussian_moments():
    mean = torch.tensor([1.0, -2.0])
    cov = torch.tensor([[1.0, 0.5], [0.5, 2.0]])
    target = torch.distributions.MultivariateNormal(mean, cov)
    draws = sgld(lambda v: target.log_prob(v["x"]), {"x": torch.zeros(2)}, step_size=0.05,
                 num_samples=5000, warmup=300, thin=2, generator=torch.Generator().manual_seed(0))
    x = draws["x"]
    from dropprior.inference import bulk_ess

    ess = bulk_ess(x[None])  # one chain, split in halves
    tol = 4 * x.std(0) / ess.sqrt()
    assert ((x.mean(0) - mean).abs() < tol).all(), (x.mean(0), tol)
    # O(ε) discretisation bias is ~1% here; a wrong noise scale would be off by far more
    torch.testing.assert_close(torch.cov(x.T), cov, atol=0.3, rtol=0)


def test_one_sgld_step_is_the_textbook_update():
    """θ₁ = θ₀ + ε/2 ∇log p(θ₀) + √ε η on log p(θ) = −θ²/2 (∇ = −θ), η the first normal draw of
    ``generator``."""
    eps, theta0 = 0.1, torch.tensor([1.0, -2.0, 0.5])
    draws = sgld(lambda v: -0.5 * v["x"].square().sum(), {"x": theta0}, step_size=eps,
                 num_samples=1, generator=torch.Generator().manual_seed(3))
    eta = torch.randn(3, generator=torch.Generator().manual_seed(3))
    torch.testing.assert_close(draws["x"][0], theta0 - 0.5 * eps * theta0 + eps**0.5 * eta)


def test_sgld_network_shapes_and_errors():
    X, y, g = _data(n=40)
    post = NetworkPosterior.mlp(X, y, [4], Rayleigh(1.0), noise_std=0.3)
    draws = sgld_network(post, 1e-4, num_samples=5, batch_size=10, warmup=5, generator=g)
    assert draws["layer1.w"].shape == (5, 4, 1)
    with pytest.raises(ValueError, match="batch_size"):
        sgld_network(post, 1e-4, num_samples=5, batch_size=0)
    with pytest.raises(ValueError, match="step_size"):
        sgld(lambda v: v["x"].sum(), {"x": torch.zeros(1)}, step_size=0.0, num_samples=1)
    with pytest.raises(ValueError, match="step_size must be a finite number > 0, got inf"):
        sgld(lambda v: v["x"].sum(), {"x": torch.zeros(1)}, step_size=math.inf, num_samples=1)
    # before: torch's "`inputs` argument to `grad()` cannot be empty", "grad can be implicitly
    # created only for scalar outputs" and "only Tensors of floating point dtype ..."
    with pytest.raises(ValueError, match="init must be a non-empty dict"):
        sgld(lambda v: torch.zeros(()), {}, step_size=0.1, num_samples=1)
    with pytest.raises(ValueError, match=r"log_density must return a scalar tensor .* got \(2,\)"):
        sgld(lambda v: -v["x"].square(), {"x": torch.zeros(2)}, step_size=0.1, num_samples=1)
    with pytest.raises(TypeError, match=r"init\['x'\] must be a floating-point tensor .* "
                                        r"torch.int64"):
        sgld(lambda v: v["x"].sum(), {"x": torch.zeros(2, dtype=torch.long)}, step_size=0.1,
             num_samples=1)
    with pytest.raises(ValueError, match="thin must be an int >= 1, got 0"):
        sgld(lambda v: v["x"].sum(), {"x": torch.zeros(1)}, step_size=0.1, num_samples=1, thin=0)
    # a step far too large for a N(0, 1e-6) target leaves the finite numbers: a clear error
    with pytest.raises(FloatingPointError, match="diverged.*smaller step size"):
        sgld(lambda v: -0.5e6 * v["x"].square().sum(), {"x": torch.ones(1)}, step_size=1.0,
             num_samples=500)


def test_layer_spec_validation():
    with pytest.raises(ValueError, match="structure"):
        LayerSpec(2, 2, Rayleigh(1.0), structure="row")
    with pytest.raises(ValueError, match="out_features must be an int >= 1, got 0"):
        NetworkPosterior.mlp(torch.zeros(4, 2), torch.zeros(4), [0], Rayleigh(1.0))
    with pytest.raises(ValueError, match=r"X holds 1 non-finite value\(s\)"):
        NetworkPosterior.mlp(torch.tensor([[0.0, float("nan")]] + [[0.0, 1.0]] * 3),
                             torch.zeros(4), [3], Rayleigh(1.0))
    with pytest.raises(ValueError, match=r"y holds 1 non-finite value\(s\)"):
        ScaleMixture1D(Rayleigh(1.0), y=torch.tensor([0.5, float("inf")]))
    with pytest.raises(ValueError, match="residual"):
        LayerSpec(2, 3, Rayleigh(1.0), residual=True)
