"""Data sets that ship with scikit-learn (no download): diabetes (regression), digits (classes)."""

from __future__ import annotations

import numpy as np
from sklearn import datasets

__all__ = ["load_diabetes", "load_digits", "DIABETES_FEATURES"]

DIABETES_FEATURES = ["age", "sex", "bmi", "bp", "s1", "s2", "s3", "s4", "s5", "s6"]


def load_diabetes() -> tuple[np.ndarray, np.ndarray, list[str]]:
    """scikit-learn's diabetes data: X (442, 10) float64, y (442,) float64, feature names."""
    bunch = datasets.load_diabetes()
    return bunch.data.astype(np.float64), bunch.target.astype(np.float64), list(bunch.feature_names)


def load_digits() -> tuple[np.ndarray, np.ndarray]:
    """scikit-learn's 8×8 digits: X (1797, 64) float64 in [0, 1], y (1797,) int64."""
    bunch = datasets.load_digits()
    return bunch.data.astype(np.float64) / 16.0, bunch.target.astype(np.int64)
