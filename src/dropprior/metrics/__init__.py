"""Evaluation metrics: point and calibration metrics (``_core``), uncertainty scores and OOD
detection (``_uncertainty``), selective prediction (``_selective``) and the coverage of a Gaussian
mixture's intervals (``_intervals``). Each is tested against an independent reference (sklearn,
torchmetrics, scipy or a closed form)."""

from dropprior.metrics._core import (
    Reliability,
    accuracy,
    adaptive_calibration_error,
    brier,
    classification_scores,
    expected_calibration_error,
    max_calibration_error,
    nll,
    reliability,
    rmse,
    test_log_likelihood,
)
from dropprior.metrics._intervals import (
    LEVELS,
    central_interval,
    coverage_calibration_error,
    coverage_curve,
    crps,
    interval_width,
    picp,
)
from dropprior.metrics._selective import aurc, risk_at_coverage, risk_coverage_curve
from dropprior.metrics._uncertainty import (
    aupr,
    auroc,
    fpr_at_tpr,
    max_probability_score,
    mutual_information,
    predictive_entropy,
    variation_ratio,
)

__all__ = [
    "classification_scores",
    "rmse", "test_log_likelihood", "accuracy", "nll", "brier", "expected_calibration_error",
    "adaptive_calibration_error", "max_calibration_error", "reliability", "Reliability",
    "predictive_entropy", "mutual_information", "max_probability_score", "variation_ratio",
    "auroc", "aupr", "fpr_at_tpr", "aurc", "risk_at_coverage", "risk_coverage_curve", "crps",
    "central_interval", "picp", "interval_width", "coverage_curve",
    "coverage_calibration_error", "LEVELS",
]
