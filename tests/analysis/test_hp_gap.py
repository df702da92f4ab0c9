"""The HP Jensen gap (Prop. 4.2) against quadrature over the scale, and its series."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
import torch
from scipy import integrate, stats

from dropprior.analysis import hp_gap, hp_gap_from_norms, hp_series
from dropprior.nn import NoisyLinear
from dropprior.noise import Bernoulli, Gaussian, law_by_name

SIGMA0 = 0.8


def inverse_nakagami(m: float, omega: float):
    return law_by_name("inverse_nakagami")(shape=m, spread=omega)


def reference_gap(r: float, d: int, m: float, omega: float) -> float:
    """log E_ξ N(w; 0, σ0²ξ² I_D) − E_ξ log N(·) for ξ = 1/η, η ~ Nakagami(m, Ω), by quadrature
    over η (precision η²/σ0²): log N = (D/2) log(η²/(2πσ0²)) − η² r²/(2σ0²)."""
    eta = stats.nakagami(m, scale=math.sqrt(omega))

    def log_n(h: float) -> float:
        return 0.5 * d * math.log(h**2 / (2 * math.pi * SIGMA0**2)) - h**2 * r**2 / (2 * SIGMA0**2)

    # log E p: factor out the value at the mode of the integrand for stability
    grid = np.linspace(1e-3, 10 * math.sqrt(omega), 2001)
    peak = max(log_n(h) + eta.logpdf(h) for h in grid)
    e_p, _ = integrate.quad(lambda h: math.exp(log_n(h) + eta.logpdf(h) - peak), 0, np.inf,
                            epsabs=0, epsrel=1e-11, limit=400)
    e_log, _ = integrate.quad(lambda h: log_n(h) * eta.pdf(h), 0, np.inf, epsabs=0,
                              epsrel=1e-11, limit=400)
    return peak + math.log(e_p) - e_log


@pytest.mark.parametrize("d", [1, 5])
def test_hp_gap_matches_quadrature_within_reported_error(d):
    law = inverse_nakagami(3.0, 2.0)
    norms = torch.tensor([0.05, 0.4, 1.5], dtype=torch.float64)
    est = hp_gap_from_norms(norms, d, law, SIGMA0, samples=20000,
                            generator=torch.Generator().manual_seed(0))
    ref = torch.tensor([reference_gap(float(r), d, 3.0, 2.0) for r in norms], dtype=torch.float64)
    assert torch.all((est.parts - ref).abs() < 4 * est.parts_stderr + 1e-7), (est.parts, ref)
    assert abs(float(est.value - ref.sum())) < 4 * float(est.stderr) + 1e-7
    assert float(est.parts_stderr.max()) < 0.05 * float(ref.abs().max())  # informative s.e.


def test_hp_gap_is_exactly_infinite_where_inverse_square_mean_is():
    norms = torch.tensor([0.3, 0.0], dtype=torch.float64)
    for law in (Bernoulli(0.5), Gaussian(1.0, 0.3), law_by_name("rayleigh")(scale=0.5)):
        est = hp_gap_from_norms(norms, 3, law, samples=10)
        assert math.isinf(float(est.value)) and float(est.stderr) == 0.0
        assert est.parts.tolist() == [math.inf, 0.0]
        assert est.series is not None and not est.series.converges


def test_prop42_leading_term_converges_as_var_inverse_square_shrinks():
    """Var[ξ⁻²] = Ω²/m for the inverse Nakagami: at fixed E[ξ⁻²] = Ω, raising m shrinks it; the
    relative error of ½ Var[ξ⁻²] (∂ log p)² against the quadrature gap falls like 1/m."""
    r, d, omega = 1.2, 3, 1.5
    errors = []
    for m in (40.0, 160.0, 640.0):
        approx = hp_series(torch.tensor([r], dtype=torch.float64), d, inverse_nakagami(m, omega),
                           SIGMA0)
        exact = reference_gap(r, d, m, omega)
        errors.append(abs(float(approx.leading) - exact) / exact)
        assert approx.converges
    assert all(b < a / 2.5 for a, b in itertools.pairwise(errors)), errors
    assert errors[-1] < 0.05, errors


def test_prop42_derivatives_match_the_gaussian_precision_formulas():
    # log N(w; 0, σ0²/λ I_D): ∂λ = D/(2λ) − r²/(2σ0²), ∂²λ = −D/(2λ²)
    law = inverse_nakagami(4.0, 2.0)
    lam, var = 2.0, 2.0**2 / 4.0
    r, d = torch.tensor([0.5, 2.0], dtype=torch.float64), 3
    approx = hp_series(r, d, law, SIGMA0)
    a = d / (2 * lam) - r**2 / (2 * SIGMA0**2)
    b = -d / (2 * lam**2)
    torch.testing.assert_close(approx.parts_leading, 0.5 * var * a**2)
    torch.testing.assert_close(approx.parts_ratio, 0.5 * var * (a**2 + b))
    assert "E[xi^2] > 1" in approx.note


def test_hp_gap_of_a_model_sums_its_layers_groups():
    torch.manual_seed(0)
    law = inverse_nakagami(3.0, 2.0)
    model = torch.nn.Sequential(NoisyLinear(4, 6, law, dtype=torch.float64), torch.nn.Tanh(),
                                NoisyLinear(6, 1, law, dtype=torch.float64))
    est = hp_gap(model, samples=5000, sigma0=SIGMA0, generator=torch.Generator().manual_seed(1))
    assert est.parts.shape == (10,) and est.part_kind == "group"
    first = hp_gap_from_norms(model[0].group_norms(), 6, law, SIGMA0, samples=5000,
                              generator=torch.Generator().manual_seed(1))
    torch.testing.assert_close(est.parts[:4], first.parts)


def test_bad_inputs_raise_clear_errors():
    law = inverse_nakagami(3.0, 2.0)
    with pytest.raises(ValueError, match="sigma0"):
        hp_gap_from_norms(torch.ones(2), 2, law, sigma0=-1.0)
    with pytest.raises(ValueError, match="group_size"):
        hp_gap_from_norms(torch.ones(2), 0, law)
    with pytest.raises(ValueError, match="samples must be >= 2"):
        hp_gap_from_norms(torch.ones(2), 2, law, samples=1)
    with pytest.raises(ValueError, match="no dropprior noisy layers"):
        hp_gap(torch.nn.Linear(2, 2))
    norms = torch.ones(20)
    norms[13] = -0.5
    with pytest.raises(ValueError, match=r"norms must be finite and >= 0.0, got 1 of 20 entries, "
                                         r"the first -0.5 at index \(13,\)"):
        hp_gap_from_norms(norms, 2, law)
    with pytest.raises(TypeError, match="norms must be a torch.Tensor, got list"):
        hp_gap_from_norms([1.0, 2.0], 2, law)


