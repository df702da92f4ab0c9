"""Published reference numbers the benchmark tables are printed beside.

Copied from ``../shared/data/README.md`` and the issue that specifies the benchmark; these are the
cited papers' numbers, not measurements of this package. UCI entries are (mean, standard error)
over the 20 splits of (test RMSE, test log-likelihood).
"""

from __future__ import annotations

__all__ = ["UCI_PUBLISHED", "UCI_DEEP_ENSEMBLES_LL", "UCI_DEEP_ENSEMBLES_PUBLISHED",
           "UCI_CALIBRATION", "MNIST_PUBLISHED", "PTB_PUBLISHED"]

#: dataset folder → source → ((RMSE mean, s.e.), (LL mean, s.e.)).
UCI_PUBLISHED: dict[str, dict[str, tuple[tuple[float, float], tuple[float, float]]]] = {
    "bostonHousing": {
        "MC dropout 2016": ((2.97, 0.19), (-2.46, 0.06)),
        "MC dropout 2018 (grid-searched)": ((2.90, 0.18), (-2.40, 0.04)),
        "PBP": ((3.01, 0.18), (-2.57, 0.09)),
    },
    "energy": {
        "MC dropout 2016": ((1.66, 0.04), (-1.99, 0.02)),
        "MC dropout 2018 (grid-searched)": ((0.54, 0.06), (-1.21, 0.01)),
        "PBP": ((1.80, 0.05), (-2.04, 0.02)),
    },
    "yacht": {
        "MC dropout 2016": ((1.11, 0.09), (-1.55, 0.03)),
        "MC dropout 2018 (grid-searched)": ((0.67, 0.05), (-1.25, 0.01)),
        "PBP": ((1.02, 0.05), (-1.63, 0.02)),
    },
    "wine-quality-red": {
        "MC dropout 2016": ((0.62, 0.01), (-0.93, 0.01)),
        "MC dropout 2018 (grid-searched)": ((0.62, 0.01), (-0.93, 0.01)),
        "PBP": ((0.64, 0.01), (-0.97, 0.01)),
    },
    "power-plant": {
        "MC dropout 2016": ((4.02, 0.04), (-2.80, 0.01)),
        "MC dropout 2018 (grid-searched)": ((4.01, 0.04), (-2.80, 0.01)),
        "PBP": ((4.12, 0.03), (-2.84, 0.01)),
    },
    "naval-propulsion-plant": {
        "MC dropout 2016": ((0.01, 0.00), (3.80, 0.01)),
        "MC dropout 2018 (grid-searched)": ((0.00, 0.00), (4.45, 0.00)),
        "PBP": ((0.01, 0.00), (3.73, 0.01)),
    },
}

#: Deep Ensembles (Lakshminarayanan et al. 2017, 5 networks): the published test NLL and its ±,
#: as (test LL mean, ± as published). The ± is a standard deviation over the 20 splits: the
#: paper's MC-dropout column reproduces Gal & Ghahramani (2016)'s ± (Boston NLL 2.46 ± 0.25), which
#: the data README lists as the standard error 0.06 = 0.25/√20.
UCI_DEEP_ENSEMBLES_PUBLISHED: dict[str, tuple[float, float]] = {
    "bostonHousing": (-2.41, 0.25), "energy": (-1.38, 0.22), "yacht": (-1.18, 0.21),
    "wine-quality-red": (-0.94, 0.12), "power-plant": (-2.79, 0.04),
    "naval-propulsion-plant": (5.63, 0.05),
}

#: Deep Ensembles' test LL as (mean, standard error = published ± / √20).
UCI_DEEP_ENSEMBLES_LL: dict[str, tuple[float, float]] = {
    name: (mean, sd / 20**0.5) for name, (mean, sd) in UCI_DEEP_ENSEMBLES_PUBLISHED.items()
}

#: The issue's calibration run of a plain PyTorch MC-dropout script, 4000 epochs:
#: (RMSE mean, s.e.), (LL mean, s.e.), seconds for 20 splits.
UCI_CALIBRATION: dict[str, tuple[tuple[float, float], tuple[float, float], float]] = {
    "yacht": ((0.659, 0.045), (-1.248, 0.019), 132.0),
    "energy": ((0.543, 0.019), (-1.215, 0.007), 330.0),
    "bostonHousing": ((2.883, 0.181), (-2.411, 0.046), 190.0),
}

#: MNIST test errors (%) from the data README.
MNIST_PUBLISHED: dict[str, float] = {
    "standard net (Srivastava et al. 2014)": 1.60,
    "dropout ReLU 3×1024 (Srivastava et al. 2014)": 1.25,
    "Bernoulli dropout 2×1024 (Srivastava et al. 2014)": 1.08,
    "Gaussian dropout 2×1024 (Srivastava et al. 2014)": 0.95,
    "sparse VD LeNet-300-100 (Molchanov et al. 2017)": 1.92,
    "sparse VD LeNet-5 (Molchanov et al. 2017)": 0.75,
}

#: Penn Treebank test perplexities from the data README.
PTB_PUBLISHED: dict[str, float] = {
    "Zaremba et al. 2014, medium (650)": 82.7,
    "Zaremba et al. 2014, large (1500)": 78.4,
    "Gal & Ghahramani 2016, medium": 79.7,
    "Gal & Ghahramani 2016, medium, MC averaging": 78.6,
    "Gal & Ghahramani 2016, large": 75.2,
    "Gal & Ghahramani 2016, large, MC averaging": 73.4,
}
