"""The figures draw what the metrics compute: bar heights, curve points and the numbers in the
titles, against dropprior.metrics and sklearn."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.metrics import roc_auc_score

from dropprior import metrics
from dropprior.plotting import (
    coverage_plot,
    ood_histogram,
    relevance_plot,
    reliability_diagram,
    risk_coverage_plot,
)


def _classifier(n: int = 400) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    probs = torch.softmax(2 * torch.randn(n, 3, generator=g, dtype=torch.float64), -1)
    y = torch.multinomial(probs, 1, generator=g).reshape(-1)
    return probs, y


def test_reliability_diagram_shows_the_bin_counts(tmp_path) -> None:
    probs, y = _classifier()
    rel = metrics.reliability(probs, y, n_bins=10)
    fig = reliability_diagram(rel, path=tmp_path / "rel.png")
    top, below = fig.axes
    heights = [p.get_height() for p in below.patches]
    assert heights == rel.counts.tolist() and sum(heights) == 400
    accuracy = [p.get_height() for p in top.patches[:10]]
    np.testing.assert_allclose(accuracy, np.nan_to_num(rel.accuracy.numpy()))
    assert (tmp_path / "rel.png").stat().st_size > 0


def test_coverage_plot_draws_the_coverage_curve() -> None:
    g = torch.Generator().manual_seed(1)
    means = torch.randn(20, 300, generator=g, dtype=torch.float64)
    stds = torch.full_like(means, 0.5)
    y = torch.randn(300, generator=g, dtype=torch.float64) * 1.5
    nominal, observed = metrics.coverage_curve(means, stds, y)
    fig = coverage_plot(nominal, observed)
    x_drawn, y_drawn = fig.axes[0].lines[0].get_data()
    np.testing.assert_allclose(x_drawn, nominal.numpy())
    np.testing.assert_allclose(y_drawn, observed.numpy())
    gap = float(metrics.coverage_calibration_error(means, stds, y))
    assert fig.axes[0].get_title() == f"mean |gap| = {gap:.4f}"


def test_ood_histogram_reports_sklearns_auroc() -> None:
    g = torch.Generator().manual_seed(2)
    inside = torch.randn(200, generator=g, dtype=torch.float64)
    shifted = torch.randn(150, generator=g, dtype=torch.float64) + 1.0
    fig = ood_histogram(inside, shifted, score_name="entropy")
    labels = np.r_[np.zeros(200), np.ones(150)]
    expected = roc_auc_score(labels, np.r_[inside.numpy(), shifted.numpy()])
    assert fig.axes[0].get_title() == f"AUROC = {expected:.4f}"
    assert len(fig.axes[0].patches) == 60  # 30 bins, twice


def test_risk_coverage_plot_reports_the_aurc() -> None:
    probs, y = _classifier()
    confidence = probs.max(-1).values
    correct = probs.argmax(-1) == y
    coverage, risk = metrics.risk_coverage_curve(confidence, correct)
    fig = risk_coverage_plot(coverage, risk)
    drawn = fig.axes[0].lines[0].get_data()
    np.testing.assert_allclose(drawn[1], risk.numpy())
    assert fig.axes[0].get_title() == f"AURC = {float(metrics.aurc(confidence, correct)):.4f}"


@pytest.mark.parametrize("bad", [torch.zeros(0), torch.tensor([[1.0, 2.0]])])
def test_ood_histogram_rejects_bad_scores(bad) -> None:
    with pytest.raises(ValueError):
        ood_histogram(bad, torch.ones(3))


def test_predictions_draw_their_own_figures() -> None:
    from torch import nn

    from dropprior import predict
    from dropprior.likelihoods import Categorical, Gaussian
    from dropprior.nn import NoisyLinear
    from dropprior.noise import Bernoulli

    torch.manual_seed(0)
    x = torch.randn(200, 3, dtype=torch.float64)
    labels = (x[:, 0] > 0).long()
    clf = nn.Sequential(NoisyLinear(3, 2, Bernoulli(0.8, inverted=True))).double()
    pred = predict(clf, x, samples=8, likelihood=Categorical())
    fig = pred.plot_reliability(labels, n_bins=10)
    counts = [p.get_height() for p in fig.axes[1].patches]
    assert counts == metrics.reliability(pred.probs, labels, 10).counts.tolist()
    reg = nn.Sequential(NoisyLinear(3, 1, Bernoulli(0.8, inverted=True))).double()
    y = x[:, :1] + 0.3 * torch.randn(200, 1, dtype=torch.float64)
    rpred = predict(reg, x, samples=8, likelihood=Gaussian(0.3))
    drawn = rpred.plot_coverage(y).axes[0].lines[0].get_data()[1]
    s = rpred.sample_means.shape[0]
    expected = metrics.coverage_curve(rpred.sample_means.reshape(s, -1),
                                      rpred.sample_stds.reshape(s, -1), y.reshape(-1))[1]
    np.testing.assert_allclose(drawn, expected.numpy())
    with pytest.raises(ValueError, match="needs a Gaussian likelihood"):
        predict(reg, x, samples=2, likelihood=None).plot_coverage(y)


def test_bad_figure_input_names_the_problem() -> None:
    """reliability_diagram(3) raised "'int' object has no attribute 'edges'"; labels of the
    wrong length were dropped without a word."""
    with pytest.raises(TypeError, match="rel must be the Reliability of .*, got int"):
        reliability_diagram(3)
    with pytest.raises(ValueError, match=r"labels\['0'\] names 1 group\(s\) but layer '0' has 3"):
        relevance_plot({"0": torch.rand(3)}, labels={"0": ["x"]})
