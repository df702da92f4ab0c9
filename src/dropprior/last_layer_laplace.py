r"""A post-hoc last-layer Laplace approximation for a trained classifier or regression net.

The network f(x) = W φ(x) + b is kept up to its last linear layer; the last layer's parameters
θ = (W, b) get the Gaussian posterior of a Laplace approximation at the trained θ* (MacKay, 1992;
Daxberger et al., 2021, "Laplace Redux", whose ``laplace-torch`` offers the same model as
``Laplace(model, "classification" | "regression", subset_of_weights="last_layer",
hessian_structure="full")``):

.. math::
    p(\theta \mid D) \approx N(\theta^*, (H + \lambda I)^{-1}), \qquad
    H = \sum_n J_n^\top \Lambda_n J_n,

with a N(0, λ⁻¹ I) prior, J_n = ∂f(x_n)/∂θ and Λ_n the Hessian of the negative log-likelihood in
the outputs: diag p_n − p_n p_nᵀ for a softmax likelihood (p_n the softmax at θ*), I/σ² for a
Gaussian one of noise std σ. The outputs are linear in θ, so this generalized Gauss–Newton H is
the exact Hessian of the summed negative log-likelihood in θ. The prior precision λ is, unless
given, the one that maximises the Laplace approximation of the log marginal likelihood

.. math::
    \log Z(\lambda) = \log p(D \mid \theta^*) + \tfrac{P}{2} \log \lambda
        - \tfrac{\lambda}{2} \lVert \theta^* \rVert^2 - \tfrac12 \log\det(H + \lambda I)

over log λ (θ* held fixed, as laplace-torch's post-hoc ``optimize_prior_precision`` with
``method="marglik"`` does). At a point x the logits are Gaussian,
N(f(x), J_x Σ J_xᵀ); the predictive is summarised from draws of them as MC dropout's draws are
(:func:`dropprior.prediction.summarise`): the softmax averaged over the draws (no probit
approximation), or for regression a mixture of N(f_s(x), σ²), so every draw-based uncertainty
measure applies alike.

Parameters are ordered output by output, θ = (W_1, b_1, …, W_C, b_C), so that J_n = I_C ⊗ φ̃_n
with φ̃_n = (φ(x_n), 1).

With ``hessian_structure="kron"`` H is replaced by its Kronecker factorisation (K-FAC; Martens
& Grosse, 2015; laplace-torch's ``hessian_structure="kron"``),

.. math::
    H \approx B \otimes A, \qquad B = \tfrac1N \sum_n \Lambda_n, \qquad
    A = \sum_n \tilde\phi_n \tilde\phi_n^\top,

which is exact for the Gaussian likelihood (Λ_n = I/σ² for every n). The bias enters A as a
constant input (Martens & Grosse's homogeneous coordinate); laplace-torch instead gives the bias
its own block, so the two agree on a last layer without bias. With the eigen-decompositions
B = Q_B diag(b) Q_Bᵀ and A = Q_A diag(a) Q_Aᵀ, the eigenvalues of H + λI are b_i a_j + λ, so
log Z needs no P × P matrix, and the outputs' covariance at x is
Q_B diag(d) Q_Bᵀ with d_i = Σ_j u_j² / (b_i a_j + λ), u = Q_Aᵀ φ̃(x). Only the C × C and K × K
factors are stored, so last layers far wider than :data:`MAX_PARAMETERS` fit.

With ``hessian_structure="diag"`` H is replaced by its diagonal, h_cj = Σ_n (Λ_n)_cc φ̃_nj²
(laplace-torch's ``"diag"``): Σ is diagonal, v = 1/(h + λ), log Z takes the h as eigenvalues,
and the outputs' covariance at x is diagonal, Σ_j φ̃_j(x)² v_cj for output c.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cached_property
from typing import Any

import torch
from torch import Tensor, nn

from dropprior._validation import check_choice, check_int, class_labels, type_name
from dropprior.likelihoods import Categorical, Gaussian, Likelihood
from dropprior.prediction import ClassificationPrediction, RegressionPrediction, summarise

__all__ = ["LastLayerLaplace", "KroneckerFactors", "fit_last_layer_laplace", "last_layer_ggn",
           "laplace_log_marginal_likelihood", "HESSIAN_STRUCTURES", "MAX_PARAMETERS"]

_LOG10_PRECISION_RANGE = (-6.0, 6.0)  # the searched range of log10 λ
MAX_PARAMETERS = 10_000
"""The most last-layer parameters P = C·K fitted with ``hessian_structure="full"`` (H and Σ are
dense P × P float64 matrices, 0.8 GB each at the limit), and the most rows of each factor,
C and K, with ``"kron"``; ``"diag"`` keeps P numbers, unbounded here."""
HESSIAN_STRUCTURES = ("full", "kron", "diag")
"""The ``hessian_structure`` values of :func:`fit_last_layer_laplace` (module docstring)."""


def _rows(n: int, batch_size: int) -> Iterator[slice]:
    return (slice(s, min(s + batch_size, n)) for s in range(0, n, batch_size))


def last_layer_ggn(features: Tensor, probs: Tensor) -> Tensor:
    r"""H = Σ_n (diag p_n − p_n p_nᵀ) ⊗ φ̃_n φ̃_nᵀ, the Hessian of the summed softmax
    cross-entropy in the last layer's parameters, ordered class by class.

    Args:
        features: φ̃_n, the last layer's inputs (with a trailing 1 for a bias).
        probs: p_n, the softmax of the logits at θ*.

    Shape:
        features: (N, K); probs: (N, C); result: (C·K, C·K).
    """
    n, k = features.shape
    c = probs.shape[1]
    # the diag p_n part is block diagonal: block c is Σ_n p_nc φ̃_n φ̃_nᵀ
    blocks = torch.einsum("nc,ni,nj->cij", probs, features, features)
    hessian = torch.block_diag(*blocks)
    # minus Σ_n g_n g_nᵀ with g_n = p_n ⊗ φ̃_n
    for rows in _rows(n, max(1, (1 << 22) // (c * k))):
        g = (probs[rows, :, None] * features[rows, None, :]).reshape(-1, c * k)
        hessian -= g.T @ g
    return hessian


def laplace_log_marginal_likelihood(log_likelihood: float, theta_norm2: float,
                                    hessian_eigenvalues: Tensor, prior_precision: float) -> float:
    """log Z(λ) of the module docstring from the eigenvalues of H (P of them)."""
    p = hessian_eigenvalues.numel()
    lam = prior_precision
    return (log_likelihood + 0.5 * p * math.log(lam) - 0.5 * lam * theta_norm2
            - 0.5 * float(torch.log(hessian_eigenvalues + lam).sum()))


@dataclass(frozen=True)
class KroneckerFactors:
    """The eigen-decompositions of the factors of H ≈ B ⊗ A (module docstring), float64.

    Attributes:
        output_values, output_vectors: b and Q_B of B, (C,) and (C, C).
        feature_values, feature_vectors: a and Q_A of A, (K,) and (K, K).
    """

    output_values: Tensor
    output_vectors: Tensor
    feature_values: Tensor
    feature_vectors: Tensor

    def eigenvalues(self) -> Tensor:
        """The C·K eigenvalues b_i a_j of B ⊗ A."""
        return (self.output_values[:, None] * self.feature_values[None, :]).reshape(-1)


@dataclass(frozen=True)
class LastLayerLaplace:
    """The Gaussian posterior of a network's last layer (module docstring); made by
    :func:`fit_last_layer_laplace`.

    Attributes:
        body: the network without its last layer (φ), used in eval mode.
        theta: θ*, the last layer's trained parameters, output by output, (C·K,) in float64.
        covariance: Σ = (H + λI)⁻¹, (C·K, C·K), float64; None with
            ``hessian_structure="kron"`` or ``"diag"``, which keep ``kron`` or ``variances``.
        prior_precision: λ.
        log_marginal_likelihood: log Z(λ).
        outputs: C, the last layer's outputs (classes, or regression targets).
        bias: whether the last layer has a bias (K = its inputs + 1 then).
        likelihood: the likelihood it was fitted under (``Categorical`` or a homoscedastic
            ``Gaussian``), which :meth:`predict` summarises the draws with.
        kron: the factors of H with ``hessian_structure="kron"``; else None.
        variances: Σ's diagonal 1/(h + λ), (C·K,), with ``hessian_structure="diag"``; else
            None.
    """

    body: nn.Module
    theta: Tensor
    covariance: Tensor | None
    prior_precision: float
    log_marginal_likelihood: float
    outputs: int
    bias: bool
    likelihood: Likelihood
    kron: KroneckerFactors | None = None
    variances: Tensor | None = None

    @cached_property
    def _cholesky(self) -> Tensor:
        """Σ's Cholesky factor, (C, K, C·K): computed once, on the first prediction."""
        assert self.covariance is not None
        return torch.linalg.cholesky(self.covariance).reshape(self.outputs, -1,
                                                              self.covariance.shape[0])

    @property
    def hessian_structure(self) -> str:
        """``"full"``, ``"kron"`` or ``"diag"``: how H was represented."""
        return "kron" if self.kron is not None else "diag" if self.variances is not None \
            else "full"

    def output_covariance(self, phi: Tensor) -> Tensor:
        """J_x Σ J_xᵀ, the outputs' covariance at each row of features φ̃(x).

        Shape:
            phi: (N, K); result: (N, C, C).
        """
        if self.variances is not None:
            return torch.diag_embed(self._diag_variances(phi))
        if self.kron is None:
            # Σ = L Lᵀ (L its Cholesky factor), so J_x Σ J_xᵀ = M Mᵀ with M_c = φ̃ L_c
            m = torch.einsum("ni,cip->ncp", phi, self._cholesky)
            return m @ m.transpose(1, 2)
        q = self.kron.output_vectors
        return torch.einsum("ci,ni,di->ncd", q, self._kron_variances(phi), q)

    def _diag_variances(self, phi: Tensor) -> Tensor:
        """The outputs' variances Σ_j φ̃_j² v_cj under ``"diag"`` (module docstring).

        Shape:
            phi: (N, K); result: (N, C).
        """
        assert self.variances is not None
        return phi**2 @ self.variances.reshape(self.outputs, -1).T

    def _kron_variances(self, phi: Tensor) -> Tensor:
        """d of the module docstring: J_x Σ J_xᵀ = Q_B diag(d) Q_Bᵀ under ``"kron"``.

        Shape:
            phi: (N, K); result: (N, C).
        """
        assert self.kron is not None
        f = self.kron
        u2 = (phi @ f.feature_vectors) ** 2
        return u2 @ (1.0 / (f.output_values[:, None] * f.feature_values[None, :]
                            + self.prior_precision)).T

    def features(self, x: Tensor, batch_size: int = 2000) -> Tensor:
        """φ̃(x) in float64: the body's output in eval mode, with a trailing 1 for a bias.

        Shape:
            x: (N, ...); result: (N, K).
        """
        return _features(self.body, x, self.bias, batch_size)

    def predict(self, x: Tensor, samples: int = 100, generator: torch.Generator | None = None,
                batch_size: int = 2000) -> ClassificationPrediction | RegressionPrediction:
        """The predictive from ``samples`` draws of the outputs from N(f(x), J_x Σ J_xᵀ):
        their softmax averaged (``Categorical``), or the mixture of N(f_s(x), σ²)
        (``Gaussian``), each summarised as :func:`dropprior.predict` summarises MC draws.

        Shape:
            x: (N, ...); per-draw tensors of the result: (samples, N, C).
        """
        check_int("samples", samples, 1)
        phi = self.features(x, batch_size)
        c, k = self.outputs, phi.shape[1]
        weights = self.theta.reshape(c, k)
        draws = []
        for rows in _rows(phi.shape[0], max(1, batch_size // 4)):
            eps = torch.randn((samples, phi[rows].shape[0], c), dtype=phi.dtype,
                              device=phi.device, generator=generator)
            mean = phi[rows] @ weights.T
            if self.variances is not None:  # independent outputs
                noise = eps * self._diag_variances(phi[rows]).sqrt()
            elif self.kron is not None:  # Q_B diag(√d) is a square root: no C × C per point
                noise = (eps * self._kron_variances(phi[rows]).sqrt()) @ self.kron.output_vectors.T
            else:
                # a square root of each C × C covariance by its eigenvectors (it may be
                # singular: a feature vector of zeros without a bias has none)
                values, vectors = torch.linalg.eigh(self.output_covariance(phi[rows]))
                root = vectors * values.clamp(min=0.0).sqrt()[:, None, :]
                noise = torch.einsum("ncd,snd->snc", root, eps)
            draws.append(mean + noise)
        with torch.no_grad():
            return summarise(torch.cat(draws, dim=1).to(x.dtype), self.likelihood)


def _features(body: nn.Module, x: Tensor, bias: bool, batch_size: int) -> Tensor:
    was_training = body.training
    body.eval()
    try:
        with torch.no_grad():
            phi = torch.cat([body(x[rows]) for rows in _rows(x.shape[0], batch_size)])
    finally:
        body.train(was_training)
    phi = phi.to(torch.float64).flatten(1)
    return torch.cat([phi, phi.new_ones(phi.shape[0], 1)], dim=1) if bias else phi


def _split(model: nn.Module) -> tuple[nn.Module, nn.Linear]:
    """(the body, the last nn.Linear) of an nn.Sequential that ends in one."""
    if not isinstance(model, nn.Sequential) or len(model) < 2:
        raise TypeError(f"fit_last_layer_laplace takes an nn.Sequential of at least two modules "
                        f"whose last is an nn.Linear, got {type(model).__name__}")
    last = model[-1]
    if type(last) is not nn.Linear:
        raise TypeError(f"fit_last_layer_laplace needs the model's last module to be an "
                        f"nn.Linear (the layer the posterior is on), got {type(last).__name__}")
    return model[:-1], last


def fit_last_layer_laplace(model: nn.Module, x: Tensor, y: Tensor,
                           prior_precision: float | None = None, batch_size: int = 2000,
                           likelihood: Likelihood | None = None,
                           hessian_structure: str = "full") -> LastLayerLaplace:
    """The last-layer Laplace posterior of a trained network (module docstring).

    Args:
        model: an ``nn.Sequential`` whose last module is the ``nn.Linear`` giving the outputs
            (logits, or regression means); its earlier modules (in eval mode) give the
            features. It is not modified.
        x: the training inputs.
        y: their class indices (``Categorical``), or targets shaped like the outputs
            (``Gaussian``).
        prior_precision: λ; None chooses it by the log marginal likelihood, over
            10⁻⁶ ≤ λ ≤ 10⁶.
        batch_size: rows per forward pass of the body.
        likelihood: ``Categorical()`` (the default: a softmax classifier) or a homoscedastic
            ``Gaussian(noise_std=σ)`` (regression; a learned σ is read at its current value).
        hessian_structure: ``"full"`` (the dense GGN), ``"kron"`` (its Kronecker
            factorisation B ⊗ A, exact for ``Gaussian``) or ``"diag"`` (its diagonal); module
            docstring.

    Shape:
        x: (N, ...); y: (N,) class indices, or (N, C) targets.

    Raises:
        TypeError: the model does not end in an ``nn.Linear``, or another likelihood.
        ValueError: y's shape or values do not fit the model's classes, λ ≤ 0, another
            ``hessian_structure``, or the last layer has more than :data:`MAX_PARAMETERS`
            parameters (``"full"``), or more than that many outputs or inputs + bias
            (``"kron"``).
    """
    from scipy.optimize import minimize_scalar

    check_int("batch_size", batch_size, 1)
    body, last = _split(model)
    if prior_precision is not None and not (isinstance(prior_precision, (int, float))
                                            and not isinstance(prior_precision, bool)
                                            and 0 < prior_precision < math.inf):
        raise ValueError(f"prior_precision must be a finite number > 0 or None (chosen by the "
                         f"marginal likelihood), got {prior_precision!r}")
    likelihood = Categorical() if likelihood is None else likelihood
    if not (isinstance(likelihood, Categorical)
            or (isinstance(likelihood, Gaussian) and not likelihood.heteroscedastic)):
        raise TypeError(f"fit_last_layer_laplace takes likelihood=Categorical() or a "
                        f"homoscedastic Gaussian(noise_std=...), got {type_name(likelihood)}"
                        + (" with noise_std=None" if isinstance(likelihood, Gaussian) else ""))
    check_choice("hessian_structure", hessian_structure, HESSIAN_STRUCTURES)
    outputs = last.out_features
    k = last.in_features + int(last.bias is not None)
    if hessian_structure == "full" and outputs * k > MAX_PARAMETERS:
        raise ValueError(f"the last layer has {outputs * k:,} parameters (C·K = {outputs} × "
                         f"{k}); the full posterior takes dense P × P matrices, so at most "
                         f"{MAX_PARAMETERS:,} are fitted with hessian_structure='full': pass "
                         "hessian_structure='kron' or 'diag', or use a narrower last layer")
    if hessian_structure == "kron" and max(outputs, k) > MAX_PARAMETERS:
        raise ValueError(f"the last layer has C = {outputs:,} outputs and K = {k:,} inputs "
                         f"(with its bias); hessian_structure='kron' takes dense C × C and K × K "
                         f"factors, so each may be at most {MAX_PARAMETERS:,}")
    if x.shape[0] == 0:
        raise ValueError("fit_last_layer_laplace needs at least one training example")
    bias = last.bias is not None
    weight = last.weight.detach().to(torch.float64)
    theta = torch.cat([weight, last.bias.detach().to(torch.float64)[:, None]], dim=1) \
        if last.bias is not None else weight
    if isinstance(likelihood, Categorical):
        y = class_labels(y, (x.shape[0],), outputs)
    else:
        likelihood.check(x.new_empty(x.shape[0], outputs), y)  # its own shape and dtype errors
    phi = _features(body, x, bias, batch_size)
    logits = phi @ theta.T
    with torch.no_grad():  # a learned σ must not attach the fit to a graph
        log_likelihood = float(likelihood.log_prob(logits, y).sum())
        if hessian_structure == "kron":
            kron = _kronecker_factors(phi, logits, likelihood)
            eigenvalues = kron.eigenvalues()
        elif hessian_structure == "diag":  # (Λ_n)_cc: σ⁻², or p_nc (1 − p_nc)
            if isinstance(likelihood, Gaussian):
                output = torch.full_like(logits, float(likelihood.noise_std)**-2)
            else:
                probs = torch.softmax(logits, dim=1)
                output = probs * (1 - probs)
            eigenvalues = (output.T @ phi**2).reshape(-1)
        else:
            if isinstance(likelihood, Gaussian):  # Λ_n = I / σ²: H = I_C ⊗ Φ̃ᵀΦ̃ / σ²
                hessian = torch.block_diag(
                    *[phi.T @ phi / float(likelihood.noise_std)**2] * outputs)
            else:
                hessian = last_layer_ggn(phi, torch.softmax(logits, dim=1))
            eigenvalues, vectors = torch.linalg.eigh(hessian)
            eigenvalues = eigenvalues.clamp(min=0.0)  # H is PSD; round-off below 0 is noise
    theta = theta.reshape(-1)
    norm2 = float(theta @ theta)

    def log_z(lam: float) -> float:
        return laplace_log_marginal_likelihood(log_likelihood, norm2, eigenvalues, lam)

    if prior_precision is None:
        best = minimize_scalar(lambda t: -log_z(10.0 ** t), bounds=_LOG10_PRECISION_RANGE,
                               method="bounded", options={"xatol": 1e-4})
        prior_precision = float(10.0 ** best.x)
    lam = float(prior_precision)
    posterior: dict[str, Any] = {"covariance": None}  # Σ in the structure's own form
    if hessian_structure == "kron":
        posterior["kron"] = kron
    elif hessian_structure == "diag":
        posterior["variances"] = 1.0 / (eigenvalues + lam)
    else:
        covariance = (vectors / (eigenvalues + lam)) @ vectors.T
        posterior["covariance"] = 0.5 * (covariance + covariance.T)
    return LastLayerLaplace(body, theta, prior_precision=lam, log_marginal_likelihood=log_z(lam),
                            outputs=outputs, bias=bias, likelihood=likelihood, **posterior)


def _kronecker_factors(phi: Tensor, logits: Tensor, likelihood: Likelihood) -> KroneckerFactors:
    """The eigen-decomposed factors B = (1/N) Σ_n Λ_n and A = Φ̃ᵀΦ̃ (module docstring).

    Shape:
        phi: (N, K); logits: (N, C).
    """
    n, c = logits.shape
    if isinstance(likelihood, Gaussian):
        output = torch.eye(c, dtype=phi.dtype, device=phi.device) \
            / float(likelihood.noise_std)**2
    else:
        probs = torch.softmax(logits, dim=1)
        output = (torch.diag(probs.sum(0)) - probs.T @ probs) / n
    b, q_b = torch.linalg.eigh(output)
    a, q_a = torch.linalg.eigh(phi.T @ phi)
    # both factors are PSD; round-off below 0 is noise
    return KroneckerFactors(b.clamp(min=0.0), q_b, a.clamp(min=0.0), q_a)

