"""The last-layer Laplace's cheaper Hessian structures. ``"kron"`` against numpy's dense
Kronecker product and inverse, against the full posterior where the factorisation is exact (a
Gaussian likelihood), and, for a last layer too wide for the full one, against scipy's
conjugate-gradient solves with the factors' matrix-vector product. ``"diag"`` against the
diagonal of autograd's Hessian, numpy's log Z and the draws' moments."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse.linalg
import scipy.special
import torch
from torch import nn
from torch.testing import assert_close

from dropprior import fit_last_layer_laplace
from dropprior.likelihoods import Gaussian

f64 = torch.float64


def _classifier(n: int = 80, d: int = 4, width: int = 6, classes: int = 3, seed: int = 0
                ) -> tuple[nn.Sequential, torch.Tensor, torch.Tensor]:
    torch.manual_seed(seed)
    model = nn.Sequential(nn.Linear(d, width), nn.Tanh(), nn.Linear(width, classes)).double()
    x = torch.randn(n, d, dtype=f64)
    return model, x, torch.randint(0, classes, (n,))


def _numpy_factors(model: nn.Sequential, x: torch.Tensor) -> tuple[np.ndarray, np.ndarray,
                                                                      np.ndarray, np.ndarray]:
    """(Φ̃, θ class by class, B = mean of diag p − p pᵀ, A = Φ̃ᵀΦ̃), written out in numpy."""
    with torch.no_grad():
        phi = model[:-1](x).numpy()
    phi = np.hstack([phi, np.ones((phi.shape[0], 1))])
    theta = np.hstack([model[-1].weight.detach().numpy(),
                       model[-1].bias.detach().numpy()[:, None]])
    probs = scipy.special.softmax(phi @ theta.T, axis=1)
    b = np.mean([np.diag(p) - np.outer(p, p) for p in probs], axis=0)
    return phi, theta, b, phi.T @ phi


def test_kron_log_z_and_output_covariance_against_numpys_dense_kronecker_product() -> None:
    """log Z(λ) = log p(D|θ*) + P/2 log λ − λ/2 ‖θ*‖² − ½ log det(B ⊗ A + λI) with numpy's
    ``kron`` and ``slogdet``; the outputs' covariance J_x (B ⊗ A + λI)⁻¹ J_xᵀ with
    J_x = I_C ⊗ φ̃(x)ᵀ and numpy's dense inverse; the draws' covariance against it."""
    model, x, y = _classifier()
    lam = 0.8
    la = fit_last_layer_laplace(model, x, y, prior_precision=lam, hessian_structure="kron")
    assert la.hessian_structure == "kron" and la.covariance is None
    phi, theta, b, a = _numpy_factors(model, x)
    log_lik = float(np.sum(scipy.special.log_softmax(phi @ theta.T, axis=1)[np.arange(80),
                                                                             y.numpy()]))
    precision = np.kron(b, a) + lam * np.eye(theta.size)
    want = (log_lik + 0.5 * theta.size * np.log(lam) - 0.5 * lam * np.sum(theta**2)
            - 0.5 * np.linalg.slogdet(precision)[1])
    assert la.log_marginal_likelihood == pytest.approx(want, rel=1e-10)

    x_test = torch.randn(5, 4, dtype=f64)
    phi_test = la.features(x_test)
    covariance = np.linalg.inv(precision)
    for n, row in enumerate(phi_test.numpy()):
        jac = np.kron(np.eye(3), row[None, :])
        assert_close(la.output_covariance(phi_test[n:n + 1])[0],
                     torch.from_numpy(jac @ covariance @ jac.T))
    # the draws of the logits (log-softmax: up to a per-draw constant, so both centred) have
    # mean f(x) and that covariance, within 5 standard errors over 40 000 draws
    samples = 40_000
    pred = la.predict(x_test, samples=samples, generator=torch.Generator().manual_seed(1))
    logits = pred.sample_logits.double()
    centred = logits - logits.mean(-1, keepdim=True)
    centre = np.eye(3) - 1 / 3
    for n, row in enumerate(phi_test.numpy()):
        jac = np.kron(np.eye(3), row[None, :])
        mean_c = torch.from_numpy(centre @ (theta @ row))
        cov_c = torch.from_numpy(centre @ jac @ covariance @ jac.T @ centre)
        draws = centred[:, n]
        assert torch.all((draws.mean(0) - mean_c).abs()
                         < 5 * (torch.diagonal(cov_c) / samples).sqrt())
        se_cov = ((torch.diagonal(cov_c)[:, None] * torch.diagonal(cov_c)[None, :]
                   + cov_c**2) / samples).sqrt()
        assert torch.all((torch.cov(draws.T) - cov_c).abs() < 5 * se_cov + 1e-12)


def test_kron_chooses_lambda_by_its_own_log_z() -> None:
    """The chosen λ beats its neighbours at ×(1 ± 0.01) and a grid over 10⁻³ … 10³ under the
    same Kronecker-factored log Z."""
    model, x, y = _classifier(seed=3)
    la = fit_last_layer_laplace(model, x, y, hessian_structure="kron")
    lam = la.prior_precision
    for other in (lam * 0.99, lam * 1.01, *np.logspace(-3, 3, 25)):
        refit = fit_last_layer_laplace(model, x, y, prior_precision=float(other),
                                       hessian_structure="kron")
        assert refit.log_marginal_likelihood <= la.log_marginal_likelihood + 1e-9


def test_kron_is_the_full_posterior_under_a_gaussian_likelihood() -> None:
    """Λ_n = I/σ² for every n, so B ⊗ A = H exactly: λ, log Z, the outputs' covariance and the
    predictive's moments equal the full posterior's."""
    torch.manual_seed(5)
    model = nn.Sequential(nn.Linear(3, 7), nn.Tanh(), nn.Linear(7, 2)).double()
    x = torch.randn(60, 3, dtype=f64)
    y = torch.randn(60, 2, dtype=f64)
    likelihood = Gaussian(noise_std=0.6)
    full = fit_last_layer_laplace(model, x, y, likelihood=likelihood)
    kron = fit_last_layer_laplace(model, x, y, likelihood=likelihood, hessian_structure="kron")
    assert kron.prior_precision == pytest.approx(full.prior_precision, rel=1e-6)
    assert kron.log_marginal_likelihood == pytest.approx(full.log_marginal_likelihood, rel=1e-10)
    phi = full.features(torch.randn(9, 3, dtype=f64))
    refit = fit_last_layer_laplace(model, x, y, likelihood=likelihood,
                                   prior_precision=kron.prior_precision)
    assert_close(kron.output_covariance(phi), refit.output_covariance(phi))
    x_test = torch.randn(4, 3, dtype=f64)
    a = kron.predict(x_test, samples=30_000, generator=torch.Generator().manual_seed(0))
    b = refit.predict(x_test, samples=30_000, generator=torch.Generator().manual_seed(1))
    var = b.epistemic
    assert torch.all((a.mean - b.mean).abs() < 5 * (2 * var / 30_000).sqrt())
    assert torch.all((a.epistemic - var).abs() < 5 * var * (4 / 30_000) ** 0.5)


def test_a_last_layer_too_wide_for_the_full_posterior_against_conjugate_gradients() -> None:
    """C·K = 120 × 101 = 12 120 > 10 000 parameters: ``"full"`` refuses, ``"kron"`` fits. Its
    outputs' covariance at a point against J_x z, z solving (B ⊗ A + λI) z = J_xᵀ e_d by
    scipy's CG with (B ⊗ A) vec V = vec(B V A); the predictive's probabilities sum to one."""
    model, x, y = _classifier(n=300, d=5, width=100, classes=120, seed=7)
    with pytest.raises(ValueError, match="12,120 parameters .*hessian_structure='kron' or 'diag'"):
        fit_last_layer_laplace(model, x, y)
    lam = 0.5
    la = fit_last_layer_laplace(model, x, y, prior_precision=lam, hessian_structure="kron")
    _, _, b, a = _numpy_factors(model, x)
    c, k = b.shape[0], a.shape[0]
    op = scipy.sparse.linalg.LinearOperator(
        (c * k, c * k), matvec=lambda v: (b @ v.reshape(c, k) @ a).reshape(-1) + lam * v,
        dtype=np.float64)
    phi = la.features(torch.randn(1, 5, dtype=f64))
    row = phi[0].numpy()
    got = la.output_covariance(phi)[0].numpy()
    for d in (0, 17, 119):
        rhs = np.zeros((c, k))
        rhs[d] = row
        z, info = scipy.sparse.linalg.cg(op, rhs.reshape(-1), rtol=1e-12, maxiter=5000)
        assert info == 0
        np.testing.assert_allclose(got[:, d], z.reshape(c, k) @ row, rtol=1e-6,
                                   atol=1e-9 * np.abs(got).max())
    probs = la.predict(torch.randn(6, 5, dtype=f64), samples=50).probs
    assert probs.shape == (6, 120)
    assert_close(probs.sum(1), torch.ones(6, dtype=f64))


@pytest.mark.parametrize(("kwargs", "match"), [
    ({"hessian_structure": "lowrank"}, r"hessian_structure='lowrank' is not valid; expected one of "
     r"\['full', 'kron', 'diag'\]"),
    ({"model": nn.Sequential(nn.Linear(4, 2), nn.Linear(2, 10_001)), "hessian_structure": "kron",
      "y": torch.zeros(80, dtype=torch.long)},
     "C = 10,001 outputs and K = 3 inputs .*each may be at most 10,000"),
])
def test_bad_structure_input_is_named(kwargs, match) -> None:
    model, x, y = _classifier()
    args = {"model": model, "x": x, "y": y, **kwargs}
    with pytest.raises(ValueError, match=match):
        fit_last_layer_laplace(args.pop("model"), args.pop("x"), args.pop("y"), **args)


@pytest.mark.parametrize("regression", [False, True])
def test_diag_against_autograds_hessian_diagonal_numpys_log_z_and_the_draws(regression) -> None:
    """h = the diagonal of autograd's Hessian of the summed NLL in θ (class by class); log Z
    with Σ log(h + λ) for the log-determinant; the outputs' variances Σ_j φ̃_j² / (h_cj + λ)
    written out, off-diagonal covariances 0; the draws' mean and variance within 5 s.e."""
    torch.manual_seed(11)
    model = nn.Sequential(nn.Linear(4, 6), nn.Tanh(), nn.Linear(6, 3)).double()
    x = torch.randn(70, 4, dtype=f64)
    lam, sigma = 0.9, 0.8
    if regression:
        y = torch.randn(70, 3, dtype=f64)
        likelihood = Gaussian(noise_std=sigma)
        sigma = float(likelihood.noise_std.detach())
        kwargs = {"likelihood": likelihood}
    else:
        y = torch.randint(0, 3, (70,))
        kwargs = {}
    la = fit_last_layer_laplace(model, x, y, prior_precision=lam, hessian_structure="diag",
                                **kwargs)
    assert la.hessian_structure == "diag" and la.covariance is None and la.kron is None
    with torch.no_grad():
        hidden = model[:-1](x)
    theta = torch.cat([model[-1].weight.detach(), model[-1].bias.detach()[:, None]], 1)

    def nll(t: torch.Tensor) -> torch.Tensor:
        params = t.reshape(3, 7)
        out = hidden @ params[:, :6].T + params[:, 6]
        if regression:
            return 0.5 * ((y - out) / sigma).square().sum()
        return torch.nn.functional.cross_entropy(out, y, reduction="sum")

    hessian = torch.autograd.functional.hessian(nll, theta.reshape(-1))
    h = torch.diagonal(hessian).numpy()
    assert_close(la.variances, torch.from_numpy(1.0 / (h + lam)))
    t = theta.reshape(-1).numpy()
    log_lik = -float(nll(theta.reshape(-1)))
    if regression:
        log_lik -= 70 * 3 * (np.log(sigma) + 0.5 * np.log(2 * np.pi))
    want = (log_lik + 0.5 * t.size * np.log(lam) - 0.5 * lam * np.sum(t**2)
            - 0.5 * np.sum(np.log(h + lam)))
    assert la.log_marginal_likelihood == pytest.approx(want, rel=1e-10)
    x_test = torch.randn(3, 4, dtype=f64)
    phi = la.features(x_test).numpy()
    v = (1.0 / (h + lam)).reshape(3, 7)
    variances = phi**2 @ v.T
    cov = la.output_covariance(torch.from_numpy(phi))
    assert_close(cov, torch.diag_embed(torch.from_numpy(variances)))
    if regression:  # the draws of the outputs: mean f(x), epistemic variance as above
        samples = 30_000
        pred = la.predict(x_test, samples=samples, generator=torch.Generator().manual_seed(2))
        with torch.no_grad():
            centre = model(x_test)
        var = torch.from_numpy(variances)
        assert torch.all((pred.mean - centre).abs() < 5 * (var / samples).sqrt())
        assert torch.all((pred.epistemic - var).abs() < 5 * var * (2 / samples) ** 0.5)
