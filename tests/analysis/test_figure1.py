"""Every value drawn in Figure 1 against numerical integration of scipy's densities.

The moments E[ξ^k] of each law on each path are integrated with ``scipy.integrate.quad_vec`` of
``scipy.stats`` densities (in log-space, t = log ξ, for laws on ξ > 0, so that laws concentrated
near 0 integrate accurately). Whether Var[ξ⁻²] exists is decided independently from the density's
behaviour at 0: E[ξ⁻⁴] < ∞ iff p(ξ) = o(ξ³) as ξ → 0, read off as the local power-law exponent
of scipy's ``logpdf`` (or an atom at 0).
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from numpy.testing import assert_allclose
from scipy import integrate, special, stats

from dropprior.analysis import figure1_curves, figure1_paths, write_figure1


def scipy_law(law_name: str, params: dict[str, np.ndarray]):
    """(frozen scipy distribution of ξ or η, transform) for the law's parameters.

    For the inverse Nakagami, scipy has no law of ξ = 1/η; we return η's law and integrate η^{-k}.
    """
    if law_name == "gaussian":
        return stats.norm(loc=params["mean"], scale=params["std"]), 1
    if law_name == "rayleigh":
        return stats.rayleigh(scale=params["scale"]), 1
    if law_name == "inverse_nakagami":
        return stats.nakagami(params["shape"], scale=np.sqrt(params["spread"])), -1
    if law_name == "uniform":
        return stats.uniform(loc=params["low"], scale=params["high"] - params["low"]), 1
    if law_name == "log_normal":
        return stats.lognorm(s=params["scale"], scale=np.exp(params["loc"])), 1
    if law_name == "beta":
        return stats.beta(params["concentration1"], params["concentration0"]), 1
    raise AssertionError(law_name)


def expect(dist, power: int, k: float, centre: np.ndarray | None = None,
           real_line: bool = False, breaks: np.ndarray | None = None) -> np.ndarray:
    """E[(ξ^k − centre)²] if centre is given, else E[ξ^k], where ξ = X^power, X ~ dist.

    ``quad_vec`` controls the error of the whole vector, so a second pass integrates each
    component divided by its first-pass magnitude: every entry then has its own relative
    accuracy. ``breaks`` are the points (in ξ) where a density with bounded support jumps (the
    largest is the end of the support); positive moments of such laws are integrated in ξ, the
    rest in t = log ξ.
    """

    def g(x: np.ndarray) -> np.ndarray:
        v = np.abs(x) ** (power * k) if k < 0 else (x ** (power * k))
        return v if centre is None else (v - centre) ** 2

    def integral(scale: np.ndarray) -> np.ndarray:
        if breaks is not None and k > 0:  # bounded support [0, max(breaks)]: QUADPACK's qags,
            # whose extrapolation handles the Beta(α<1) endpoint singularity, one entry at a time
            top = float(np.max(breaks))
            shape = np.broadcast(dist.mean(), scale).shape
            out = np.empty(shape)
            c = np.broadcast_to(centre if centre is not None else 0.0, shape)
            for i in np.ndindex(shape):
                one = dist.dist(*(np.broadcast_to(a, shape)[i] for a in dist.args),
                                **{kk: np.broadcast_to(v, shape)[i]
                                   for kk, v in dist.kwds.items()})
                out[i] = _quad_bounded(one, k, None if centre is None else c[i], top)
            return out
        if real_line:  # density on R: split at 0, plain quadrature on each side
            f = lambda x: g(x) * dist.pdf(x) / scale  # noqa: E731
            neg, _ = integrate.quad_vec(f, -np.inf, 0.0, epsrel=1e-11, epsabs=0)
            pos, _ = integrate.quad_vec(f, 0.0, np.inf, epsrel=1e-11, epsabs=0)
            return (neg + pos) * scale
        # positive support: t = log x, dx = x dt
        f = lambda t: g(np.exp(t)) * np.exp(dist.logpdf(np.exp(t)) + t) / scale  # noqa: E731
        pts = None if breaks is None else sorted(set(np.log(breaks).tolist()))
        val, _ = integrate.quad_vec(f, -80.0, 25.0, epsrel=1e-11, epsabs=0, limit=2000,
                                    points=pts)
        return val * scale

    first = integral(np.ones(1))
    if breaks is not None and k > 0:  # entry-wise quadrature: already relative per entry
        return first
    return integral(np.where(first > 0, first, 1.0))


def _quad_bounded(one, k: float, centre: float | None, top: float) -> float:
    """E[ξ^k] or E[(ξ^k − centre)²] of one frozen law with support in [0, top], by QUADPACK."""

    def g(x: float) -> float:
        return x**k if centre is None else (x**k - centre) ** 2

    if one.dist.name == "beta":  # QUADPACK's algebraic weight x^(a-1) (1-x)^(b-1)
        a, b = one.args
        norm = special.beta(a, b)
        val, _ = integrate.quad(lambda x: g(x) / norm, 0.0, 1.0, weight="alg",
                                wvar=(a - 1, b - 1), epsabs=0, epsrel=1e-10, limit=500)
        return val
    end = min(top, float(one.support()[1]))
    val, _ = integrate.quad(lambda x: g(x) * np.exp(one.logpdf(x)), 0.0, end,
                            epsabs=0, epsrel=1e-10, limit=500)
    return val


def inverse_fourth_moment_exists(dist, power: int) -> np.ndarray:
    """E[ξ⁻⁴] < ∞ iff the density of ξ is o(ξ³) at 0: the local log-log slope of the density."""
    if power == -1:  # ξ = 1/η, η > 0 with all positive moments: ξ⁻⁴ = η⁴ integrable
        return np.isfinite(expect(dist, 1, 4.0))
    x1, x2 = 1e-7, 1e-8
    slope = (dist.logpdf(x1) - dist.logpdf(x2)) / math.log(x1 / x2)
    density_at_zero = np.exp(dist.logpdf(x2))
    return (slope > 3.0 + 1e-3) | (density_at_zero == 0)


@pytest.mark.parametrize("path", figure1_paths(), ids=lambda p: p.key)
def test_every_plotted_value_matches_quadrature(path):
    (curve,) = figure1_curves([path])
    e = curve.second_moment.numpy()
    params = {k: v.numpy() for k, v in path.params(curve.second_moment).items()}
    if path.law_name == "bernoulli":
        keep = params["keep"]
        assert_allclose(e, keep, rtol=1e-12)  # E[ξ²] = Σ ξ² P(ξ) over {0, 1}
        mean = keep
        assert_allclose(curve.variance.numpy(), (0 - mean) ** 2 * (1 - keep)
                        + (1 - mean) ** 2 * keep, rtol=1e-10)
        assert torch.isinf(curve.inverse_square_variance).all()  # atom at ξ = 0
        return
    dist, power = scipy_law(path.law_name, params)
    real = path.law_name == "gaussian"
    breaks = {"uniform": params.get("high"), "beta": np.ones(1)}.get(path.law_name)
    kw = {"real_line": real, "breaks": breaks}
    second = expect(dist, power, 2.0, **kw)
    assert_allclose(second, e, rtol=1e-7)
    mean = expect(dist, power, 1.0, **kw)
    assert_allclose(curve.variance.numpy(), expect(dist, power, 1.0, mean, **kw), rtol=1e-6)

    exists = inverse_fourth_moment_exists(dist, power) if not real else np.zeros_like(e, bool)
    inv_var = curve.inverse_square_variance.numpy()
    assert_allclose(np.isfinite(inv_var), exists)
    if exists.any():
        inv_mean = expect(dist, power, -2.0, **kw)
        ref = expect(dist, power, -2.0, inv_mean, **kw)
        # rtol 1e-5: the log-space integral stops at ξ = e^-80, which leaves ~5e-6 of E[ξ⁻⁴]
        # for Beta(α≈4.15, 1), whose ξ⁻⁴ tail decays only like ξ^(α-4)
        assert_allclose(inv_var[exists], ref[exists], rtol=1e-5)
        assert_allclose(curve.inverse_square_mean.numpy()[exists], inv_mean[exists], rtol=1e-7)


def test_paths_reject_second_moments_outside_their_range():
    bern = next(p for p in figure1_paths() if p.key == "bernoulli")
    with pytest.raises(ValueError, match=r"bernoulli.*\(0.0, 1.0\)"):
        bern.law(torch.tensor([0.5, 1.0]))
    dropout = next(p for p in figure1_paths() if p.key == "gaussian_dropout")
    with pytest.raises(ValueError, match="gaussian_dropout"):
        dropout.law(torch.tensor([0.5]))


def test_write_figure1_writes_png_svg_and_csv_with_infinite_rows(tmp_path):
    files = write_figure1(tmp_path, points=5)
    assert files["png"].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "<svg" in files["svg"].read_text()[:500]
    rows = files["csv"].read_text().splitlines()
    assert rows[0].startswith("path,law,parameter,swept_value,second_moment,variance")
    n_paths = len(figure1_paths())
    assert len(rows) == 1 + 5 * n_paths
    rayleigh = [r for r in rows if r.startswith("rayleigh,")]
    assert len(rayleigh) == 5 and all(r.endswith(",inf,inf") for r in rayleigh)


@pytest.mark.parametrize("points", [1, 2.5, "5", None, True])
def test_figure1_refuses_a_points_that_is_not_an_int_of_at_least_two(points):
    with pytest.raises(ValueError, match=r"points must be an int >= 2, got "):
        figure1_curves(points=points)
