"""The UCI protocol's baselines without noise (law "none": "map" and "laplace") against numpy,
scipy and the trained networks' own layers."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy import optimize, stats

from dropprior.experiments.batched_laplace import laplace_draws, laplace_networks
from dropprior.experiments.batched_mlp import train_batched
from dropprior.experiments.uci import (
    fit_and_score,
    run_uci_split,
    standardise,
    summarise_uci,
    uci_jobs,
    uci_row_order,
)
from dropprior.noise import Bernoulli

NO_NOISE = Bernoulli(1.0, inverted=True)


def _trained(n_networks: int = 2, n: int = 50, epochs: int = 30):
    gen = torch.Generator().manual_seed(3)
    x = torch.randn(n_networks, n, 3, generator=gen, dtype=torch.float64)
    y = x[..., 0] - 2.0 * x[..., 1].tanh() + 0.3 * torch.randn(n_networks, n, generator=gen,
                                                                 dtype=torch.float64)
    model = train_batched(x, y, [NO_NOISE] * n_networks, torch.full((n_networks,), 4.0),
                          torch.full((n_networks,), 1e-3), hidden=(7,), epochs=epochs,
                          batch_size=16, seed=1)
    return model, x, y


def _log_z(log_lik: float, theta: np.ndarray, hessian: np.ndarray, lam: float) -> float:
    """The Laplace log marginal likelihood, written out with numpy."""
    p = theta.size
    _, logdet = np.linalg.slogdet(hessian + lam * np.eye(p))
    return log_lik + 0.5 * p * math.log(lam) - 0.5 * lam * theta @ theta - 0.5 * logdet


def test_laplace_networks_match_the_closed_form_last_layer_posterior():
    """Per network: the features from its own weights (numpy), H = Φ̃ᵀΦ̃/σ², the chosen λ at the
    maximum of log Z over a grid, Σ = (H + λI)⁻¹, and the draws' moments at new rows."""
    model, x, y = _trained()
    noise_std = torch.tensor([0.5, 0.8], dtype=torch.float64)
    posteriors = laplace_networks(model, x, y, noise_std)
    x_eval = torch.randn(2, 6, 3, generator=torch.Generator().manual_seed(9),
                         dtype=torch.float64)
    samples = 20_000
    draws = laplace_draws(posteriors, x_eval, samples=samples, seed=4)
    assert draws.shape == (2, samples, 6)
    first, second = model.layers
    for g in range(2):
        w1, b1 = first.weight[g].detach().numpy(), first.bias[g].detach().numpy()
        w2, b2 = second.weight[g].detach().numpy(), second.bias[g].detach().numpy()

        def features(rows: np.ndarray, w1=w1, b1=b1) -> np.ndarray:
            hidden = np.maximum(rows @ w1.T + b1, 0.0)
            return np.column_stack([hidden, np.ones(len(rows))])

        phi = features(x[g].numpy())
        theta = np.concatenate([w2[0], b2])
        sigma = float(noise_std[g])
        log_lik = stats.norm.logpdf(y[g].numpy(), phi @ theta, sigma).sum()
        hessian = phi.T @ phi / sigma**2
        lam = posteriors[g].prior_precision
        grid = lam * np.exp(np.linspace(-1.0, 1.0, 41))
        values = [_log_z(log_lik, theta, hessian, t) for t in grid]
        assert int(np.argmax(values)) == 20  # the middle of the grid: λ itself
        assert posteriors[g].log_marginal_likelihood == pytest.approx(values[20], rel=1e-7)
        covariance = np.linalg.inv(hessian + lam * np.eye(theta.size))
        np.testing.assert_allclose(posteriors[g].covariance.numpy(), covariance, rtol=1e-6,
                                   atol=1e-9)
        phi_eval = features(x_eval[g].numpy())
        mean = phi_eval @ theta
        var = np.einsum("ni,ij,nj->n", phi_eval, covariance, phi_eval)
        got = draws[g].double().numpy()
        assert np.all(np.abs(got.mean(0) - mean) < 6 * np.sqrt(var / samples))
        # the sample variance's s.e. for Gaussian draws is var·√(2/(S−1))
        assert np.all(np.abs(got.var(0, ddof=1) - var) < 6 * var * math.sqrt(2 / (samples - 1)))


def test_laplace_draws_depend_on_the_seed_and_network_alone():
    model, x, y = _trained()
    posteriors = laplace_networks(model, x, y, torch.tensor([0.5, 0.8], dtype=torch.float64))
    once = laplace_draws(posteriors, x[:, :4], samples=5, seed=2)
    again = laplace_draws(posteriors, x[:, :4], samples=5, seed=2)
    torch.testing.assert_close(once, again)
    alone = laplace_draws(posteriors[1:], x[1:, :4], samples=5, seed=2)
    assert not torch.equal(once[1], alone[0])  # network 1's stream is network_seed(seed, 1)
    assert not torch.equal(once, laplace_draws(posteriors, x[:, :4], samples=5, seed=3))


def test_map_baseline_scores_the_network_trained_without_noise():
    """fit_and_score(law "none", "map") against the protocol written out: numpy's
    standardisation, λ = l²/(2Nτ) with keep 1, the same Adam run, and scipy's Gaussian
    log-density of the trained network's own prediction (its nn layers, in eval mode)."""
    rng = np.random.default_rng(5)
    x = rng.normal(size=(40, 3))
    y = x @ np.array([1.0, -0.5, 2.0]) + 10.0 + 0.2 * rng.normal(size=40)
    tasks = [(x[:30], y[:30], x[30:], y[30:])]
    tau, lengthscale = 2.0, 1e-2
    settings = dict(hidden=[6], epochs=20, batch_size=8, lr=1e-3, lengthscale=lengthscale)
    got = fit_and_score(tasks, [[(0.0, tau)]], law="none", structure="unit", objective="map",
                        train_samples=1, eval_samples=7, seed=3, intervals=True, **settings)[0]
    x_tr, x_ev, _, _ = standardise(x[:30], x[30:])
    y_tr, y_mean, y_std = standardise(y[:30])
    dtype = torch.get_default_dtype()
    model = train_batched(torch.as_tensor(x_tr, dtype=dtype)[None],
                          torch.as_tensor(y_tr, dtype=dtype)[None], [NO_NOISE],
                          torch.tensor([tau * float(y_std) ** 2], dtype=torch.float64),
                          torch.tensor([lengthscale**2 / (2 * 30 * tau)], dtype=torch.float64),
                          hidden=(6,), epochs=20, batch_size=8, lr=1e-3, seed=3)
    network = model.network(0).eval()
    with torch.no_grad():
        pred = network(torch.as_tensor(x_ev, dtype=dtype))[:, 0].double().numpy()
    pred = pred * float(y_std) + float(y_mean)
    ll = stats.norm.logpdf(y[30:], pred, 1 / math.sqrt(tau)).mean()
    assert got["ll"][0] == pytest.approx(ll, rel=1e-6)
    assert got["rmse"][0] == pytest.approx(math.sqrt(((pred - y[30:]) ** 2).mean()), rel=1e-6)
    # one Gaussian N(pred, 1/τ) per point: its intervals and CRPS in closed form (scipy)
    sigma = 1 / math.sqrt(tau)
    z = np.abs(y[30:] - pred) / sigma
    assert got["picp90"][0] == pytest.approx(np.mean(z <= stats.norm.ppf(0.95)), abs=1e-12)
    assert got["picp95"][0] == pytest.approx(np.mean(z <= stats.norm.ppf(0.975)), abs=1e-12)
    crps = sigma * (z * (2 * stats.norm.cdf(z) - 1) + 2 * stats.norm.pdf(z)
                    - 1 / math.sqrt(math.pi))
    assert got["crps"][0] == pytest.approx(crps.mean(), rel=1e-5)
    levels = np.linspace(0.05, 0.95, 19)
    observed = [np.mean(z <= stats.norm.ppf(0.5 + a / 2)) for a in levels]
    assert got["coverage_error"][0] == pytest.approx(np.mean(np.abs(np.subtract(observed, levels))),
                                                     abs=1e-9)
    assert got["noise_std"][0] == pytest.approx(sigma, rel=1e-9)
    assert got["draw_std"][0] == 0.0
    laplace = fit_and_score(tasks, [[(0.0, tau)]], law="none", structure="unit",
                            objective="laplace", train_samples=1, eval_samples=100_000, seed=3,
                            **settings)[0]
    # the Laplace fit of the same network, written out: features from its body, Gaussian noise
    # of precision τ·std(y)² on the standardised targets, λ maximising log Z (scipy)
    body = model.network(0)[:-1].eval()
    with torch.no_grad():
        hidden = body(torch.as_tensor(np.concatenate([x_tr, x_ev]), dtype=dtype)).double()
    phi = np.column_stack([hidden.numpy(), np.ones(len(hidden))])
    phi_tr, phi_ev = phi[:30], phi[30:]
    last = model.layers[-1]
    theta = np.concatenate([last.weight[0, 0].detach().double().numpy(),
                            last.bias[0].detach().double().numpy()])
    sigma = 1 / math.sqrt(tau * float(y_std) ** 2)
    log_lik = stats.norm.logpdf(y_tr, phi_tr @ theta, sigma).sum()
    hessian = phi_tr.T @ phi_tr / sigma**2
    best = optimize.minimize_scalar(lambda t: -_log_z(log_lik, theta, hessian, 10.0**t),
                                    bounds=(-6, 6), method="bounded", options={"xatol": 1e-6})
    lam = laplace["prior_precision"][0]
    assert lam == pytest.approx(10.0**best.x, rel=1e-3)
    # Gaussian draws of f mixed with N(0, 1/τ): a Gaussian of variance 1/τ + std²·φΣφᵀ
    covariance = np.linalg.inv(hessian + lam * np.eye(theta.size))
    var = np.einsum("ni,ij,nj->n", phi_ev, covariance, phi_ev) * float(y_std) ** 2
    mean = (phi_ev @ theta) * float(y_std) + float(y_mean)
    expected = stats.norm.logpdf(y[30:], mean, np.sqrt(1 / tau + var)).mean()
    assert laplace["ll"][0] == pytest.approx(expected, abs=0.01)
    assert laplace["rmse"][0] == pytest.approx(got["rmse"][0], rel=0.05)


def test_baselines_run_the_protocol_over_tau_alone(tiny_uci):
    for objective in ("map", "laplace"):
        job = uci_jobs(str(tiny_uci), ["tiny"], ["none"], ["unit"], [objective], splits=[0],
                       epochs=300, batch_size=16, test_samples=200, validation_samples=50)[0]
        result = run_uci_split(dict(job.params))["splits"][0]
        data = np.loadtxt(tiny_uci / "uci" / "tiny" / "data.txt")
        assert result["rmse"] < 0.5 * data[:, 3].std()
        assert result["p"] == 0.0 and result["tau"] in (5.0, 50.0)
        assert [(v["p"], v["tau"]) for v in result["validation"]] == [(0.0, 5.0), (0.0, 50.0)]
        assert ("prior_precision" in result) == (objective == "laplace")
        assert 0.0 <= result["picp90"] <= result["picp95"] <= 1.0
        assert result["noise_std"] == pytest.approx(result["tau"] ** -0.5)
        assert (result["draw_std"] > 0) == (objective == "laplace")  # map: one draw
        assert "picp90" not in result["validation"][0]  # the test predictive's alone


def test_baseline_rows_come_first_in_the_summary():
    def record(law: str, objective: str) -> dict:
        return {"params": {"dataset": "d", "law": law, "structure": "unit",
                           "objective": objective}, "seconds": 1.0,
                "result": {"epochs": 3, "splits": [{"rmse": 1.0, "ll": -1.0},
                                                   {"rmse": 2.0, "ll": -2.0}]}}

    rows = summarise_uci([record("bernoulli", "mc"), record("none", "laplace"),
                          record("none", "map")])
    assert [(r["law"], r["objective"]) for r in rows] == [
        ("none", "laplace"), ("none", "map"), ("bernoulli", "mc")]
    assert rows == sorted(rows, key=uci_row_order)


@pytest.mark.parametrize("laws, structures, objectives, match", [
    (["none"], ["unit"], ["mc"], "objectives \\['map', 'laplace'\\] only"),
    (["bernoulli"], ["unit"], ["laplace"], "they with it alone"),
    (["none", "bernoulli"], ["unit"], ["map"], "got laws \\['none', 'bernoulli'\\]"),
    (["none"], ["weight"], ["map"], "give structure 'unit' alone, got \\['weight'\\]"),
    (["none"], ["unit"], ["vi"], "objective='vi' is not valid"),
])
def test_bad_baseline_combinations_are_named(tiny_uci, laws, structures, objectives, match):
    with pytest.raises(ValueError, match=match):
        uci_jobs(str(tiny_uci), ["tiny"], laws, structures, objectives)


def test_laplace_networks_reject_mismatched_shapes():
    model, x, y = _trained(epochs=1)
    with pytest.raises(ValueError, match="noise_std \\(2,\\)"):
        laplace_networks(model, x, y, torch.ones(3))
    posteriors = laplace_networks(model, x, y, torch.ones(2, dtype=torch.float64))
    with pytest.raises(ValueError, match="one block of rows per posterior \\(2\\)"):
        laplace_draws(posteriors, x[:1], samples=2, seed=0)
