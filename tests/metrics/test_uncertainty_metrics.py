"""The field's uncertainty metrics against independent references: sklearn, torchmetrics, scipy,
numpy loops and closed forms."""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.integrate
import scipy.optimize
import scipy.stats
import sklearn.metrics
import torch
from torchmetrics.functional.classification import multiclass_calibration_error

from dropprior import metrics

f64 = torch.float64
G = torch.Generator().manual_seed(0)


def _probs(n: int, c: int, scale: float = 2.0) -> torch.Tensor:
    return torch.softmax(scale * torch.randn(n, c, generator=G, dtype=f64), dim=-1)


# ---- OOD detection ---------------------------------------------------------------------------

def test_auroc_aupr_fpr_match_sklearn() -> None:
    s_in = torch.randn(300, generator=G, dtype=f64)
    s_out = 0.8 + torch.randn(200, generator=G, dtype=f64)
    s_in[:20] = torch.round(s_in[:20])  # ties
    scores = np.concatenate([s_in.numpy(), s_out.numpy()])
    labels = np.concatenate([np.zeros(300), np.ones(200)])
    assert float(metrics.auroc(s_in, s_out)) == pytest.approx(
        sklearn.metrics.roc_auc_score(labels, scores), abs=1e-6)
    assert float(metrics.aupr(s_in, s_out)) == pytest.approx(
        sklearn.metrics.average_precision_score(labels, scores), abs=1e-6)
    fpr, tpr, _ = sklearn.metrics.roc_curve(labels, scores)
    assert float(metrics.fpr_at_tpr(s_in, s_out, 0.95)) == pytest.approx(
        fpr[np.argmax(tpr >= 0.95)], abs=1e-6)


def test_uncertainty_scores_against_scipy_and_counts() -> None:
    p = torch.softmax(torch.randn(7, 5, 4, generator=G, dtype=f64), dim=-1)  # (S, N, C)
    mean = p.mean(0).numpy()
    ent = scipy.stats.entropy(mean, axis=-1)
    torch.testing.assert_close(metrics.predictive_entropy(p), torch.as_tensor(ent))
    expected_mi = ent - scipy.stats.entropy(p.numpy(), axis=-1).mean(0)
    torch.testing.assert_close(metrics.mutual_information(p), torch.as_tensor(expected_mi))
    torch.testing.assert_close(metrics.max_probability_score(p),
                               torch.as_tensor(1 - mean.max(-1)))
    votes = p.argmax(-1).numpy()
    ratio = [1 - np.bincount(votes[:, n]).max() / 7 for n in range(5)]
    torch.testing.assert_close(metrics.variation_ratio(p), torch.as_tensor(ratio, dtype=f64))
    same = p[:1].expand(6, 5, 4)
    assert float(metrics.mutual_information(same).abs().max()) < 1e-12


# ---- calibration -----------------------------------------------------------------------------

@pytest.mark.parametrize("n_bins", [5, 15])
def test_ece_and_mce_match_torchmetrics(n_bins) -> None:
    probs, y = _probs(800, 6), torch.randint(0, 6, (800,), generator=G)
    for ours, norm in ((metrics.expected_calibration_error, "l1"),
                       (metrics.max_calibration_error, "max")):
        theirs = multiclass_calibration_error(probs, y, num_classes=6, n_bins=n_bins, norm=norm)
        assert float(ours(probs, y, n_bins)) == pytest.approx(float(theirs), abs=1e-6)


def test_adaptive_ece_matches_a_numpy_equal_count_binning() -> None:
    probs, y = _probs(503, 4, scale=3.0), torch.randint(0, 4, (503,), generator=G)
    conf, pred = probs.max(1)
    order = np.argsort(conf.numpy(), kind="stable")
    gaps = (conf.numpy() - (pred == y).numpy())[order]
    expected = sum(abs(b.sum()) for b in np.array_split(gaps, 10)) / 503
    assert float(metrics.adaptive_calibration_error(probs, y, 10)) == pytest.approx(expected)


# ---- selective prediction --------------------------------------------------------------------

def test_aurc_and_risk_at_coverage_against_a_loop() -> None:
    conf = torch.rand(50, generator=G, dtype=f64)
    correct = torch.rand(50, generator=G) < 0.7
    order = np.argsort(-conf.numpy(), kind="stable")
    risks = [1 - correct.numpy()[order[:k]].mean() for k in range(1, 51)]
    assert float(metrics.aurc(conf, correct)) == pytest.approx(np.mean(risks))
    assert float(metrics.risk_at_coverage(conf, correct, 0.5)) == pytest.approx(risks[24])
    assert float(metrics.risk_at_coverage(conf, correct, 1.0)) == pytest.approx(
        1 - correct.double().mean().item())


# ---- regression intervals and CRPS -----------------------------------------------------------

def test_crps_of_one_gaussian_is_the_closed_form() -> None:
    mu, sd = torch.tensor([[0.3, -1.0, 2.0]], dtype=f64), torch.tensor([[1.0, 0.5, 2.0]],
                                                                        dtype=f64)
    y = torch.tensor([0.0, 0.2, 5.0], dtype=f64)
    z = ((y - mu[0]) / sd[0]).numpy()
    closed = sd[0].numpy() * (z * (2 * scipy.stats.norm.cdf(z) - 1)
                              + 2 * scipy.stats.norm.pdf(z) - 1 / math.sqrt(math.pi))
    torch.testing.assert_close(metrics.crps(mu, sd, y), torch.as_tensor(closed))


def test_crps_of_a_mixture_is_the_integral_of_the_squared_cdf_gap() -> None:
    mu = torch.tensor([[0.0], [1.5], [-0.7]], dtype=f64)
    sd = torch.tensor([[0.4], [1.0], [0.3]], dtype=f64)
    y = torch.tensor([0.4], dtype=f64)

    def gap(x: float) -> float:
        f = np.mean(scipy.stats.norm.cdf(x, mu[:, 0].numpy(), sd[:, 0].numpy()))
        return (f - (x >= 0.4)) ** 2

    integral = sum(scipy.integrate.quad(gap, a, b, limit=200)[0]
                   for a, b in ((-20, 0.4), (0.4, 20)))
    assert float(metrics.crps(mu, sd, y, chunk=2)) == pytest.approx(integral, abs=1e-7)


def _crps_by_quadrature(mu: np.ndarray, sd: np.ndarray, y: float) -> float:
    """∫ (F(x) − [x ≥ y])² dx for the mixture of N(mu_s, sd_s²), by scipy's quad."""
    def gap(x: float) -> float:
        return (np.mean(scipy.stats.norm.cdf(x, mu, sd)) - (x >= y)) ** 2

    return sum(scipy.integrate.quad(gap, a, b, limit=200)[0] for a, b in ((-30, y), (y, 30)))


@pytest.mark.parametrize("chunk", [1, 2, 3, None, 50])
@pytest.mark.parametrize("shared", [True, False])
def test_crps_over_component_pairs_in_any_chunks_is_the_integral(chunk: int | None,
                                                                 shared: bool) -> None:
    """Five components, two points; one std per point (the MC-dropout case, also as a stride-0
    view) or one per component: every chunking counts each component pair once."""
    mu = torch.randn(5, 2, generator=G, dtype=f64)
    sd = (torch.tensor([[0.3, 0.8]], dtype=f64).expand(5, 2) if shared
          else 0.2 + torch.rand(5, 2, generator=G, dtype=f64))
    y = torch.tensor([0.4, -1.1], dtype=f64)
    expected = [_crps_by_quadrature(mu[:, n].numpy(), sd[:, n].numpy(), float(y[n]))
                for n in range(2)]
    torch.testing.assert_close(metrics.crps(mu, sd, y, chunk=chunk),
                               torch.tensor(expected, dtype=f64), atol=1e-7, rtol=0)
    if shared:
        torch.testing.assert_close(metrics.crps(mu, sd.contiguous(), y, chunk=chunk),
                                   metrics.crps(mu, sd, y, chunk=chunk))


def test_picp_and_coverage_count_targets_between_the_mixtures_quantiles() -> None:
    """Against the quantiles of each point's mixture found by scipy's brentq on its cdf."""
    mu = torch.randn(4, 300, generator=G, dtype=f64)
    sd = 0.3 + torch.rand(4, 300, generator=G, dtype=f64)
    y = 1.5 * torch.randn(300, generator=G, dtype=f64)
    levels = (0.1, 0.5, 0.9, 0.95)

    def quantile(p: float, n: int) -> float:
        cdf = lambda x: np.mean(scipy.stats.norm.cdf(x, mu[:, n], sd[:, n])) - p  # noqa: E731
        return scipy.optimize.brentq(cdf, -50, 50, xtol=1e-13)

    inside = {a: np.mean([quantile((1 - a) / 2, n) <= y[n] <= quantile((1 + a) / 2, n)
                          for n in range(300)]) for a in levels}
    assert 0.05 < inside[0.1] < inside[0.5] < inside[0.9] < inside[0.95] < 1
    for a in levels:
        assert float(metrics.picp(mu, sd, y, a)) == inside[a]
    nominal, observed = metrics.coverage_curve(mu, sd, y, levels)
    torch.testing.assert_close(observed, torch.tensor([inside[a] for a in levels], dtype=f64))


def test_central_interval_of_one_gaussian_is_scipys() -> None:
    mu, sd = torch.tensor([[1.0, -2.0]], dtype=f64), torch.tensor([[2.0, 0.5]], dtype=f64)
    lower, upper = metrics.central_interval(mu, sd, 0.9)
    lo, hi = scipy.stats.norm.interval(0.9, mu[0].numpy(), sd[0].numpy())
    torch.testing.assert_close(lower, torch.as_tensor(lo))
    torch.testing.assert_close(upper, torch.as_tensor(hi))


def test_coverage_of_the_true_predictive_is_nominal_and_of_an_overconfident_one_is_not() -> None:
    n = 20000
    mu = torch.randn(5, n, generator=G, dtype=f64)
    sd = 0.5 + torch.rand(5, n, generator=G, dtype=f64)
    comp = torch.randint(0, 5, (n,), generator=G)
    idx = torch.arange(n)
    y = mu[comp, idx] + sd[comp, idx] * torch.randn(n, generator=G, dtype=f64)  # from the mix
    for level in (0.5, 0.9, 0.95):
        assert float(metrics.picp(mu, sd, y, level)) == pytest.approx(level, abs=0.01)
    assert float(metrics.coverage_calibration_error(mu, sd, y)) < 0.01
    assert float(metrics.coverage_calibration_error(mu, sd / 4, y)) > 0.1
    assert float(metrics.interval_width(mu, sd / 4, 0.9)) < float(metrics.interval_width(mu, sd,
                                                                                         0.9))


# ---- bad input -------------------------------------------------------------------------------

def test_bad_input_names_the_problem() -> None:
    with pytest.raises(ValueError, match="non-negative rows summing to 1"):
        metrics.predictive_entropy(torch.rand(3, 4, 5, generator=G))
    with pytest.raises(ValueError, match="non-negative rows summing to 1"):
        metrics.adaptive_calibration_error(torch.rand(4, 3, generator=G), torch.zeros(4).long())
    with pytest.raises(ValueError, match=r"scores_in holds 1 non-finite value\(s\) .*, the first "
                                         r"in example 2"):
        metrics.auroc(torch.tensor([0.1, 0.2, math.nan]), torch.rand(3))
    with pytest.raises(ValueError, match=r"scores_out must be a non-empty 1-d tensor .* \(3, 2\)"):
        metrics.auroc(torch.rand(5), torch.rand(3, 2))
    with pytest.raises(ValueError, match=r"confidence must be a non-empty 1-d tensor, got \(0,\)"):
        metrics.aurc(torch.zeros(0), torch.zeros(0, dtype=torch.bool))
    with pytest.raises(ValueError, match=r"confidence must be a non-empty 1-d tensor, got list"):
        metrics.aurc([0.5], torch.ones(1, dtype=torch.bool))
    with pytest.raises(ValueError, match=r"correct must have the confidence's shape \(5,\)"):
        metrics.aurc(torch.rand(5), torch.ones(4, dtype=torch.bool))
    with pytest.raises(ValueError, match=r"coverage level must lie in \(0, 1\), got 1.5"):
        metrics.picp(torch.zeros(2, 3), torch.ones(2, 3), torch.zeros(3), 1.5)
    with pytest.raises(ValueError, match=r"coverage must lie in \(0, 1\], got 0"):
        metrics.risk_at_coverage(torch.rand(5), torch.ones(5, dtype=torch.bool), 0)
    with pytest.raises(ValueError, match="correct must be bool or 0/1 .*, got 0.5"):
        metrics.aurc(torch.rand(3), torch.tensor([1.0, 0.5, 0.0]))
    with pytest.raises(ValueError, match=r"confidence holds 1 non-finite value\(s\)"):
        metrics.risk_coverage_curve(torch.tensor([0.1, math.nan]), torch.ones(2, dtype=torch.bool))
    means, stds, y = torch.zeros(2, 3), torch.ones(2, 3), torch.zeros(3)
    with pytest.raises(ValueError, match=r"y holds 1 non-finite value\(s\)"):
        metrics.crps(means, stds, torch.tensor([0.0, math.nan, 1.0]))
    with pytest.raises(ValueError, match=r"stds must be finite and > 0, got \[inf, inf"):
        metrics.crps(means, stds * math.inf, y)
    with pytest.raises(ValueError, match=r"means must be finite, got \[nan, nan"):
        metrics.picp(means * math.nan, stds, y, 0.5)
    wide = torch.ones(4, 5)
    wide[2, 1] = -1.0
    with pytest.raises(ValueError, match=r"stds must be finite and > 0, got 1 of 20 entries, the "
                                         r"first -1.0 at index \(2, 1\)"):
        metrics.crps(torch.zeros(4, 5), wide, torch.zeros(5))
    with pytest.raises(ValueError, match="chunk must be an int >= 1 .*, got 0"):
        metrics.crps(means, stds, y, chunk=0)
    with pytest.raises(ValueError, match="levels must hold at least one coverage level"):
        metrics.coverage_curve(means, stds, y, levels=())


def test_classification_scores_is_the_four_metrics() -> None:
    import torch

    from dropprior import metrics

    g = torch.Generator().manual_seed(0)
    probs = torch.softmax(torch.randn(50, 4, generator=g, dtype=torch.float64), -1)
    y = torch.randint(0, 4, (50,), generator=g)
    assert metrics.classification_scores(probs, y) == {
        "accuracy": float(metrics.accuracy(probs, y)), "nll": float(metrics.nll(probs, y)),
        "brier": float(metrics.brier(probs, y)),
        "ece": float(metrics.expected_calibration_error(probs, y))}
