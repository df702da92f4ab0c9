"""Cross-check ``dropprior.fit_last_layer_laplace`` against laplace-torch's last-layer Laplace.

laplace-torch is not a dependency of dropprior (installing it pulls in torchvision, whose PyPI
wheel does not load against the CPU build of torch, and torchmetrics then fails to import), so
this script is run by hand in a separate environment that has both packages. One way there:
``pip install laplace-torch torch==<the CPU build>``, then ``pip uninstall torchvision`` (neither
package imports it on this path).

On a small trained classifier (an MLP 4-16-3 on 300 points, float64) it prints, for the full
last-layer GGN with a softmax likelihood:

* the largest difference between the two Hessians (laplace-torch orders the parameters as
  (vec W, b), dropprior class by class; the script permutes);
* the two log marginal likelihoods at several prior precisions λ;
* the λ each one chooses (dropprior: a bounded scalar search of log Z; laplace-torch:
  ``optimize_prior_precision(method="marglik")``, gradient steps on log λ) and log Z there;
* the largest difference between the two posterior covariances at dropprior's λ;

and for a regression net (Gaussian likelihood) the Hessians (laplace-torch's read from its
posterior precision, since it keeps H without the 1/σ² factor), log Z at three λ and the
posterior covariances.

For the Kronecker-factored posterior (``hessian_structure="kron"`` in both) on the same classifier
with a last layer without bias, laplace-torch fitted from one batch and from three: the posterior
precisions at λ = 1, log Z at three λ, the chosen λ, and the logits' covariances J_x Σ J_xᵀ at five
test points. With a bias the two differ by construction: dropprior folds the bias into A as a
constant input (Martens & Grosse's homogeneous coordinate, exact for a Gaussian likelihood),
laplace-torch gives the bias its own block; the script prints log Z of both there, and for
reference log Z of the full GGN.

For the diagonal posterior (``hessian_structure="diag"`` in both) on the classifier of the full
check: the posterior precisions at λ = 1, log Z at three λ, the chosen λ, and the logits'
covariances at five test points.

Usage::

    python scripts/crosscheck_laplace_torch.py
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from laplace import Laplace
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from dropprior import fit_last_layer_laplace


def _trained(model: nn.Module, x: torch.Tensor, y: torch.Tensor,
             loss: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]) -> nn.Module:
    """``model`` after 300 full-batch Adam steps (learning rate 0.02) on ``loss``."""
    opt = torch.optim.Adam(model.parameters(), lr=0.02)
    for _ in range(300):
        opt.zero_grad()
        loss(model(x), y).backward()
        opt.step()
    return model


def _classification_data() -> tuple[torch.Tensor, torch.Tensor]:
    """300 points in 4 dimensions and 3 classes, after seeding torch's generator with 0."""
    torch.manual_seed(0)
    x = torch.randn(300, 4, dtype=torch.float64)
    return x, (x[:, 0] + 0.5 * x[:, 1] ** 2 > 0.5).long() + (x[:, 2] > 1).long()


def _classifier(x: torch.Tensor, y: torch.Tensor, bias: bool = True) -> nn.Module:
    """An MLP 4-16-3 trained on (x, y) by :func:`_trained`."""
    return _trained(nn.Sequential(nn.Linear(4, 16), nn.Tanh(),
                                  nn.Linear(16, 3, bias=bias)).double(),
                    x, y, nn.functional.cross_entropy)


def _to_dropprior_order(c: int, k: int) -> torch.Tensor:
    """The permutation from laplace-torch's order of a biased last layer's parameters (W
    row-major, then b) to dropprior's (W_1, b_1, …, W_C, b_C); k counts the bias."""
    return torch.tensor([cls * (k - 1) + i if i < k - 1 else c * (k - 1) + cls
                         for cls in range(c) for i in range(k)])


def main() -> None:
    x, y = _classification_data()
    model = _classifier(x, y)

    ours = fit_last_layer_laplace(model, x, y)
    theirs = Laplace(model, "classification", subset_of_weights="last_layer",
                     hessian_structure="full")
    theirs.fit(DataLoader(TensorDataset(x, y), batch_size=100))
    c, k = 3, 17
    perm = _to_dropprior_order(c, k)
    h_theirs = theirs.H[perm][:, perm].double()
    eye = torch.eye(c * k, dtype=torch.float64)
    h_ours = torch.linalg.inv(ours.covariance) - ours.prior_precision * eye
    print(f"max |H_dropprior - H_laplace-torch| = {float((h_ours - h_theirs).abs().max()):.3e}"
          f" (max |H| = {float(h_theirs.abs().max()):.3e})")
    for lam in (0.1, 1.0, ours.prior_precision, 10.0):
        refit = fit_last_layer_laplace(model, x, y, prior_precision=lam)
        theirs.prior_precision = lam
        print(f"lambda = {lam:.6g}: log Z dropprior {refit.log_marginal_likelihood:.6f}, "
              f"laplace-torch {float(theirs.log_marginal_likelihood()):.6f}")
    theirs.optimize_prior_precision(method="marglik", n_steps=500)
    lam_theirs = float(theirs.prior_precision)
    print(f"chosen lambda: dropprior {ours.prior_precision:.6g} (log Z "
          f"{ours.log_marginal_likelihood:.6f}), laplace-torch {lam_theirs:.6g} (log Z "
          f"{float(theirs.log_marginal_likelihood()):.6f})")
    theirs.prior_precision = ours.prior_precision
    cov_theirs = theirs.posterior_covariance[perm][:, perm].double()
    print(f"max |Sigma_dropprior - Sigma_laplace-torch| at dropprior's lambda = "
          f"{float((ours.covariance - cov_theirs).abs().max()):.3e} "
          f"(max |Sigma| = {float(cov_theirs.abs().max()):.3e})")


def regression() -> None:
    """The same for a regression net (MLP 3-16-2, Gaussian likelihood of σ = 0.5): the Hessians,
    log Z at three λ and the posterior covariances."""
    from dropprior.likelihoods import Gaussian

    torch.manual_seed(1)
    x = torch.randn(200, 3, dtype=torch.float64)
    y = torch.stack([x[:, 0] * x[:, 1], torch.sin(x[:, 2])], 1) + 0.5 * torch.randn(200, 2)
    model = _trained(nn.Sequential(nn.Linear(3, 16), nn.Tanh(), nn.Linear(16, 2)).double(), x, y,
                     nn.functional.mse_loss)
    likelihood = Gaussian(noise_std=0.5)
    sigma = float(likelihood.noise_std.detach())
    ours = fit_last_layer_laplace(model, x, y, prior_precision=1.0, likelihood=likelihood)
    theirs = Laplace(model, "regression", subset_of_weights="last_layer",
                     hessian_structure="full", sigma_noise=sigma)
    theirs.fit(DataLoader(TensorDataset(x, y), batch_size=100))
    c, k = 2, 17
    perm = _to_dropprior_order(c, k)
    theirs.prior_precision = 1.0
    # laplace-torch keeps H without the 1/σ² factor (its H_factor), applied in its precision
    h_theirs = (theirs.posterior_precision[perm][:, perm].double()
                - torch.eye(c * k, dtype=torch.float64))
    h_ours = torch.linalg.inv(ours.covariance) - torch.eye(c * k, dtype=torch.float64)
    print(f"regression: max |H_dropprior - H_laplace-torch| = "
          f"{float((h_ours - h_theirs).abs().max()):.3e} (max |H| = "
          f"{float(h_theirs.abs().max()):.3e})")
    for lam in (0.1, 1.0, 10.0):
        refit = fit_last_layer_laplace(model, x, y, prior_precision=lam, likelihood=likelihood)
        theirs.prior_precision = lam
        print(f"regression, lambda = {lam:g}: log Z dropprior {refit.log_marginal_likelihood:.6f}"
              f", laplace-torch {float(theirs.log_marginal_likelihood()):.6f}")
    theirs.prior_precision = 1.0
    cov_theirs = theirs.posterior_covariance[perm][:, perm].double()
    print(f"regression: max |Sigma_dropprior - Sigma_laplace-torch| at lambda = 1: "
          f"{float((ours.covariance - cov_theirs).abs().max()):.3e} (max |Sigma| = "
          f"{float(cov_theirs.abs().max()):.3e})")


def kron() -> None:
    """The Kronecker-factored posteriors of a classifier like :func:`main`'s whose last layer
    has no bias, where both packages factor H = B ⊗ A alike; then, with a bias, log Z of both,
    which differ by construction (module docstring of ``dropprior.last_layer_laplace``)."""
    x, y = _classification_data()
    x_test = torch.randn(5, 4, dtype=torch.float64)
    for bias in (False, True):
        model = _classifier(x, y, bias)
        ours = fit_last_layer_laplace(model, x, y, hessian_structure="kron")
        for batch in (300, 100):
            theirs = Laplace(model, "classification", subset_of_weights="last_layer",
                             hessian_structure="kron")
            theirs.fit(DataLoader(TensorDataset(x, y), batch_size=batch))
            name = f"kron, bias={bias}, batches of {batch}"
            for lam in (0.1, 1.0, 10.0):
                refit = fit_last_layer_laplace(model, x, y, prior_precision=lam,
                                               hessian_structure="kron")
                exact = fit_last_layer_laplace(model, x, y, prior_precision=lam)
                theirs.prior_precision = lam
                print(f"{name}, lambda = {lam:g}: log Z dropprior "
                      f"{refit.log_marginal_likelihood:.6f}, laplace-torch "
                      f"{float(theirs.log_marginal_likelihood()):.6f}; with the full GGN "
                      f"{exact.log_marginal_likelihood:.6f}")
            if bias:
                continue
            f = ours.kron
            assert f is not None
            h_ours = torch.kron(f.output_vectors * f.output_values @ f.output_vectors.T,
                                f.feature_vectors * f.feature_values @ f.feature_vectors.T)
            theirs.prior_precision = 1.0
            eye = torch.eye(h_ours.shape[0], dtype=torch.float64)
            p_theirs = theirs.posterior_precision.to_matrix().double()
            print(f"{name}: max |(H + I)_dropprior - (H + I)_laplace-torch| = "
                  f"{float((h_ours + eye - p_theirs).abs().max()):.3e} (max = "
                  f"{float(p_theirs.abs().max()):.3e})")
            theirs.optimize_prior_precision(method="marglik", n_steps=500)
            print(f"{name}: chosen lambda: dropprior {ours.prior_precision:.6g}, laplace-torch "
                  f"{float(theirs.prior_precision):.6g}")
            theirs.prior_precision = ours.prior_precision
            _, var_theirs = theirs._glm_predictive_distribution(x_test)
            var_ours = ours.output_covariance(ours.features(x_test))
            print(f"{name}: max |J Sigma J^T dropprior - laplace-torch| at dropprior's lambda = "
                  f"{float((var_ours - var_theirs.double()).abs().max()):.3e} (max = "
                  f"{float(var_theirs.abs().max()):.3e})")


def diag() -> None:
    """The diagonal posteriors of :func:`main`'s classifier: the posterior precisions at λ = 1,
    log Z at three λ, the chosen λ and the logits' covariances at five test points."""
    x, y = _classification_data()
    model = _classifier(x, y)
    ours = fit_last_layer_laplace(model, x, y, hessian_structure="diag")
    theirs = Laplace(model, "classification", subset_of_weights="last_layer",
                     hessian_structure="diag")
    theirs.fit(DataLoader(TensorDataset(x, y), batch_size=100))
    c, k = 3, 17
    perm = _to_dropprior_order(c, k)
    theirs.prior_precision = 1.0
    refit = fit_last_layer_laplace(model, x, y, prior_precision=1.0, hessian_structure="diag")
    assert refit.variances is not None
    p_theirs = theirs.posterior_precision[perm].double()
    print(f"diag: max |(h + 1)_dropprior - (h + 1)_laplace-torch| = "
          f"{float((1 / refit.variances - p_theirs).abs().max()):.3e} (max = "
          f"{float(p_theirs.abs().max()):.3e})")
    for lam in (0.1, 1.0, 10.0):
        refit = fit_last_layer_laplace(model, x, y, prior_precision=lam, hessian_structure="diag")
        theirs.prior_precision = lam
        print(f"diag, lambda = {lam:g}: log Z dropprior {refit.log_marginal_likelihood:.6f}, "
              f"laplace-torch {float(theirs.log_marginal_likelihood()):.6f}")
    theirs.optimize_prior_precision(method="marglik", n_steps=500)
    print(f"diag: chosen lambda: dropprior {ours.prior_precision:.6g}, laplace-torch "
          f"{float(theirs.prior_precision):.6g}")
    theirs.prior_precision = ours.prior_precision
    x_test = torch.randn(5, 4, dtype=torch.float64)
    _, var_theirs = theirs._glm_predictive_distribution(x_test)
    var_ours = ours.output_covariance(ours.features(x_test))
    print(f"diag: max |J Sigma J^T dropprior - laplace-torch| at dropprior's lambda = "
          f"{float((var_ours - var_theirs.double()).abs().max()):.3e} (max = "
          f"{float(var_theirs.abs().max()):.3e})")


if __name__ == "__main__":
    main()
    regression()
    kron()
    diag()
