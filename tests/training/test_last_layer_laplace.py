"""The last-layer Laplace posterior against autograd's Hessian and Jacobian, scipy's Gaussian
log-density and numpy's log-determinant, and its predictive draws against their moments."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.stats
import torch
from torch import nn
from torch.testing import assert_close

from dropprior import LastLayerLaplace, fit_last_layer_laplace
from dropprior.last_layer_laplace import laplace_log_marginal_likelihood, last_layer_ggn

f64 = torch.float64


def _problem(n: int = 60, bias: bool = True) -> tuple[nn.Sequential, torch.Tensor, torch.Tensor]:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 5), nn.Tanh(), nn.Linear(5, 3, bias=bias)).double()
    x = torch.randn(n, 4, dtype=f64)
    y = torch.randint(0, 3, (n,))
    return model, x, y


def _theta(last: nn.Linear) -> torch.Tensor:
    """θ class by class: (W_1, b_1, ..., W_C, b_C)."""
    w = last.weight.detach()
    return (torch.cat([w, last.bias.detach()[:, None]], 1) if last.bias is not None
            else w).reshape(-1)


def _nll(model: nn.Sequential, x: torch.Tensor, y: torch.Tensor, theta: torch.Tensor,
         bias: bool) -> torch.Tensor:
    k = model[-1].in_features + int(bias)
    params = theta.reshape(3, k)
    logits = model[:-1](x) @ params[:, :model[-1].in_features].T
    if bias:
        logits = logits + params[:, -1]
    return torch.nn.functional.cross_entropy(logits, y, reduction="sum")


@pytest.mark.parametrize("bias", [True, False])
def test_ggn_is_autograds_hessian_of_the_summed_nll(bias) -> None:
    model, x, y = _problem(bias=bias)
    la = fit_last_layer_laplace(model, x, y, prior_precision=2.0)
    theta = _theta(model[-1])
    want = torch.autograd.functional.hessian(lambda t: _nll(model, x, y, t, bias), theta)
    phi = la.features(x)
    probs = torch.softmax(phi @ theta.reshape(3, -1).T, 1)
    assert_close(last_layer_ggn(phi, probs), want)
    # Σ = (H + λI)⁻¹
    assert_close(la.covariance, torch.linalg.inv(want + 2.0 * torch.eye(theta.numel(), dtype=f64)))
    assert_close(la.theta, theta)


def test_marginal_likelihood_against_scipy_and_numpy_and_its_maximum() -> None:
    """log Z(λ) = log p(D|θ*) + log N(θ*; 0, λ⁻¹I) + P/2 log 2π − ½ log det(H + λI), each term
    from an independent routine; the chosen λ beats its neighbours and a grid."""
    model, x, y = _problem()
    la = fit_last_layer_laplace(model, x, y)
    theta = _theta(model[-1])
    p = theta.numel()
    hessian = torch.autograd.functional.hessian(lambda t: _nll(model, x, y, t, True), theta)
    with torch.no_grad():
        log_lik = -float(_nll(model, x, y, theta, True))

    def reference(lam: float) -> float:
        log_prior = scipy.stats.multivariate_normal(np.zeros(p), np.eye(p) / lam).logpdf(
            theta.numpy())
        _, logdet = np.linalg.slogdet(hessian.numpy() + lam * np.eye(p))
        return log_lik + log_prior + 0.5 * p * np.log(2 * np.pi) - 0.5 * logdet

    lam = la.prior_precision
    assert la.log_marginal_likelihood == pytest.approx(reference(lam), rel=1e-9)
    assert 1e-6 < lam < 1e6
    for other in (lam * 1.05, lam / 1.05, *np.logspace(-4, 4, 33)):
        assert reference(other) <= reference(lam) + 1e-7
    eig = torch.linalg.eigvalsh(hessian).clamp(min=0)
    assert laplace_log_marginal_likelihood(log_lik, float(theta @ theta), eig, 0.3) == \
        pytest.approx(reference(0.3), rel=1e-9)


def test_predictive_draws_have_the_linearised_mean_and_covariance() -> None:
    """At each test point the logit draws have mean f(x) and covariance J Σ Jᵀ, J from
    autograd's Jacobian in θ (within 5 standard errors over 20 000 draws); probs average the
    draws' softmax."""
    model, x, y = _problem()
    la = fit_last_layer_laplace(model, x, y, prior_precision=0.5)
    theta = _theta(model[-1])
    x_test = torch.randn(4, 4, dtype=f64)
    pred = la.predict(x_test, samples=20000, generator=torch.Generator().manual_seed(3))
    assert pred.sample_probs.shape == (20000, 4, 3)
    assert_close(pred.probs, pred.sample_probs.mean(0))
    logits = pred.sample_logits  # log-softmax of the draws: logits up to a per-draw constant
    centred = logits - logits.mean(-1, keepdim=True)
    for n in range(4):
        def f(t: torch.Tensor, n: int = n) -> torch.Tensor:
            params = t.reshape(3, 6)
            return model[:-1](x_test[n]) @ params[:, :5].T + params[:, 5]
        jac = torch.autograd.functional.jacobian(f, theta)
        cov = jac @ la.covariance @ jac.T
        centre = torch.eye(3, dtype=f64) - 1 / 3  # the same centring of mean and covariance
        mean_c, cov_c = centre @ f(theta), centre @ cov @ centre
        draws = centred[:, n].double()
        se = (torch.diagonal(cov_c) / 20000).sqrt()
        assert torch.all((draws.mean(0) - mean_c).abs() < 5 * se)
        emp = torch.cov(draws.T)
        se_cov = ((torch.diagonal(cov_c)[:, None] * torch.diagonal(cov_c)[None, :]
                   + cov_c**2) / 20000).sqrt()
        assert torch.all((emp - cov_c).abs() < 5 * se_cov + 1e-12)


def test_an_infinitely_sure_prior_gives_the_map_softmax() -> None:
    model, x, y = _problem()
    la = fit_last_layer_laplace(model, x, y, prior_precision=1e12)
    x_test = torch.randn(5, 4, dtype=f64)
    pred = la.predict(x_test, samples=3)
    with torch.no_grad():
        assert_close(pred.probs, torch.softmax(model(x_test), 1), atol=1e-5, rtol=0)
    assert isinstance(la, LastLayerLaplace) and model.training  # the model is left as it was


def test_end_to_end_sure_near_the_data_and_unsure_far_from_it() -> None:
    """End to end: an overfit 2-class net (logit gaps > 20, a softmax within 3e-9 of 0 or 1, at
    the cluster centres and far away); the Laplace predictive keeps > 0.9 on the right class at
    the centres and drops below 0.9 far from the data."""
    torch.manual_seed(1)
    x = torch.cat([torch.randn(200, 2) + 1.5, torch.randn(200, 2) - 1.5])
    y = torch.cat([torch.zeros(200), torch.ones(200)]).long()
    model = nn.Sequential(nn.Linear(2, 16), nn.ReLU(), nn.Linear(16, 2))
    opt = torch.optim.Adam(model.parameters(), lr=0.05)
    for _ in range(200):
        opt.zero_grad()
        torch.nn.functional.cross_entropy(model(x), y).backward()
        opt.step()
    points = torch.tensor([[1.5, 1.5], [-1.5, -1.5], [30.0, -30.0]])
    with torch.no_grad():
        logits = model(points)
        assert torch.all((logits[:, 0] - logits[:, 1]).abs() > 20)
    la = fit_last_layer_laplace(model, x, y)
    probs = la.predict(points, samples=2000, generator=torch.Generator().manual_seed(0)).probs
    assert probs[0, 0] > 0.9 and probs[1, 1] > 0.9
    assert probs[2].max() < 0.9


@pytest.mark.parametrize(("kwargs", "error", "match"), [
    ({"model": nn.Linear(4, 3)}, TypeError, "an nn.Sequential of at least two modules .*got "
     "Linear"),
    ({"model": nn.Sequential(nn.Linear(4, 3), nn.ReLU())}, TypeError,
     "last module to be an nn.Linear .*got ReLU"),
    ({"y": torch.tensor([0, 1, 3] * 20)}, ValueError,
     r"labels must lie in \[0, 2\] for 3 classes, got \[0, 3\]"),
    ({"y": torch.zeros(60)}, TypeError, "labels y must be integers .*torch.float32"),
    ({"prior_precision": 0.0}, ValueError, "prior_precision must be a finite number > 0 or None"
     ".*got 0.0"),
    ({"prior_precision": float("nan")}, ValueError, "got nan"),
    ({"model": nn.Sequential(nn.Linear(4, 200), nn.Linear(200, 50))}, ValueError,
     "the last layer has 10,050 parameters .*at most 10,000"),
])
def test_bad_input_is_named(kwargs, error, match) -> None:
    model, x, y = _problem()
    args = {"model": model, "x": x, "y": y, **kwargs}
    with pytest.raises(error, match=match):
        fit_last_layer_laplace(args.pop("model"), args.pop("x"), args.pop("y"), **args)


def test_samples_must_be_positive() -> None:
    model, x, y = _problem()
    la = fit_last_layer_laplace(model, x, y, prior_precision=1.0)
    with pytest.raises(ValueError, match="samples must be an int >= 1, got 0"):
        la.predict(x, samples=0)


# ---- regression: a homoscedastic Gaussian likelihood ------------------------------------------

def test_regression_hessian_is_autograds_and_the_predictive_has_its_moments() -> None:
    """Gaussian(σ): H against autograd's Hessian of the summed Gaussian NLL; the draws'
    per-point means against J Σ Jᵀ (within 5 s.e. over 20 000 draws), the aleatoric part σ²."""
    from dropprior.likelihoods import Gaussian as GaussianLikelihood

    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(3, 6), nn.Tanh(), nn.Linear(6, 2)).double()
    x = torch.randn(50, 3, dtype=f64)
    y = torch.randn(50, 2, dtype=f64)
    sigma = 0.7
    la = fit_last_layer_laplace(model, x, y, prior_precision=1.5,
                                likelihood=GaussianLikelihood(noise_std=sigma))
    theta = _theta(model[-1])

    def nll(t: torch.Tensor) -> torch.Tensor:
        params = t.reshape(2, 7)
        out = model[:-1](x) @ params[:, :6].T + params[:, 6]
        return 0.5 * ((y - out) / sigma).square().sum()

    hessian = torch.autograd.functional.hessian(nll, theta)
    assert_close(torch.linalg.inv(la.covariance) - 1.5 * torch.eye(14, dtype=f64), hessian)
    x_test = torch.randn(3, 3, dtype=f64)
    pred = la.predict(x_test, samples=20000, generator=torch.Generator().manual_seed(4))
    assert_close(pred.aleatoric, torch.full((3, 2), sigma**2, dtype=f64))
    for n in range(3):
        jac = torch.autograd.functional.jacobian(
            lambda t, n=n: model[:-1](x_test[n]) @ t.reshape(2, 7)[:, :6].T
            + t.reshape(2, 7)[:, 6], theta)
        var = torch.diagonal(jac @ la.covariance @ jac.T)
        with torch.no_grad():
            centre = model(x_test[n])
        assert torch.all((pred.mean[n] - centre).abs() < 5 * (var / 20000).sqrt())
        assert torch.all((pred.epistemic[n] - var).abs() < 5 * var * (2 / 20000) ** 0.5)


def test_regression_log_z_is_the_exact_evidence_of_bayesian_linear_regression() -> None:
    """With an identity body the model is Bayesian linear regression, for which the Laplace
    approximation at the posterior mode is exact: log Z equals log N(y; 0, σ²I + Φ̃Φ̃ᵀ/λ)
    (scipy), and Σ the closed-form posterior covariance."""
    from dropprior.likelihoods import Gaussian as GaussianLikelihood

    torch.manual_seed(2)
    x = torch.randn(40, 3, dtype=f64)
    y = x @ torch.tensor([[1.0], [-2.0], [0.5]], dtype=f64) + 0.3 * torch.randn(40, 1,
                                                                                 dtype=f64)
    likelihood, lam = GaussianLikelihood(noise_std=0.4), 2.0
    sigma = float(likelihood.noise_std.detach())  # 0.4 as the likelihood stores it (float32)
    phi = torch.cat([x, torch.ones(40, 1, dtype=f64)], 1).numpy()
    precision = phi.T @ phi / sigma**2 + lam * np.eye(4)
    mode = np.linalg.solve(precision, phi.T @ y.numpy() / sigma**2)
    model = nn.Sequential(nn.Identity(), nn.Linear(3, 1)).double()
    with torch.no_grad():
        model[1].weight.copy_(torch.from_numpy(mode[:3, 0])[None])
        model[1].bias.copy_(torch.from_numpy(mode[3]))
    la = fit_last_layer_laplace(model, x, y, prior_precision=lam, likelihood=likelihood)
    evidence = scipy.stats.multivariate_normal(
        np.zeros(40), sigma**2 * np.eye(40) + phi @ phi.T / lam).logpdf(y.numpy()[:, 0])
    assert la.log_marginal_likelihood == pytest.approx(evidence, rel=1e-10)
    assert_close(la.covariance, torch.from_numpy(np.linalg.inv(precision)))


def test_regression_bad_input_is_named() -> None:
    from dropprior.likelihoods import Gaussian as GaussianLikelihood

    model, x, _ = _problem()
    with pytest.raises(TypeError, match="homoscedastic Gaussian.*got "
                       "dropprior.likelihoods.Gaussian with noise_std=None"):
        fit_last_layer_laplace(model, x, torch.randn(60, 3, dtype=f64),
                               likelihood=GaussianLikelihood(noise_std=None))
    with pytest.raises(ValueError, match=r"y has shape \(60,\) but the model predicts means of "
                       r"shape \(60, 3\)"):
        fit_last_layer_laplace(model, x, torch.randn(60, dtype=f64),
                               likelihood=GaussianLikelihood(noise_std=1.0))
    with pytest.raises(TypeError, match="likelihood=Categorical\\(\\) or a homoscedastic"):
        fit_last_layer_laplace(model, x, torch.randn(60, 3, dtype=f64), likelihood="gaussian")
