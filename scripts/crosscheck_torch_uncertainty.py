"""Cross-check dropprior's classification uncertainty metrics and temperature scaling against
torch-uncertainty's.

torch-uncertainty is not a dependency of dropprior (its ``torchvision`` import pulls a CUDA build
of torch from PyPI), so this script is run by hand in a separate environment that has both
packages. One way there: a fresh virtual environment, ``pip install torch-uncertainty --no-deps``,
then ``pip install einops seaborn torchmetrics lightning rich torchvision scipy scikit-learn
pyro-ppl numba arviz`` and ``pip install --no-deps -e .``.

On synthetic MC predictions (S = 20 draws of softmax probabilities for N = 5 000 inputs and
C = 10 classes, float64, labels drawn from a sharper law than the predictions, so that they are
miscalibrated) it prints each metric from both libraries and their difference:

* the NLL, Brier score and ECE (15 equal-width bins, ℓ1) of the mean prediction;
* the mutual information and predictive entropy of the draws, averaged over inputs;
* FPR at 95 % TPR of telling a second, flatter set of inputs (the "out-of-distribution" set) from
  the first by predictive entropy;
* the AURC. The two differ by convention: dropprior's is the mean risk over the coverages
  k/N, k = 1..N; torch-uncertainty's is the trapezoid rule over the same points divided by
  (1 − 1/N). The script also prints dropprior's curve put through torch-uncertainty's rule, which
  must equal torch-uncertainty's value.

Then temperature scaling on held-out logits with three degrees of miscalibration: the T of
:func:`dropprior.fit_temperature` (bisection on the NLL's derivative in 1/T), of
torch-uncertainty's ``TemperatureScaler`` (L-BFGS, its defaults), and the held-out NLL at each.

Usage::

    python scripts/crosscheck_torch_uncertainty.py
"""

from __future__ import annotations

import logging
import warnings

import torch
from torch.utils.data import DataLoader, TensorDataset
from torch_uncertainty.metrics import AURC, BrierScore, CalibrationError, CategoricalNLL
from torch_uncertainty.metrics.classification import FPR95, Entropy, MutualInformation
from torch_uncertainty.post_processing import TemperatureScaler

from dropprior import fit_temperature, metrics

S, N, C = 20, 5000, 10


def _sample_probs(n: int, sharpness: float, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """S draws of softmax probabilities around per-input logits, and labels drawn from the
    logits made ``sharpness`` times sharper."""
    g = torch.Generator().manual_seed(seed)
    centre = 2.0 * torch.randn(n, C, generator=g, dtype=torch.float64)
    draws = centre + 0.7 * torch.randn(S, n, C, generator=g, dtype=torch.float64)
    labels = torch.multinomial(torch.softmax(sharpness * centre, -1), 1, generator=g)
    return torch.softmax(draws, -1), labels.squeeze(1)


def _tu(metric, *args) -> float:
    metric.update(*args)
    return float(metric.compute())


def _row(name: str, ours: float, theirs: float) -> None:
    print(f"{name:<34} {ours:>14.10f} {theirs:>14.10f} {abs(ours - theirs):>10.2e}")


def main() -> None:
    logging.getLogger().setLevel(logging.ERROR)  # "model is None": the scaler fits logits
    warnings.filterwarnings("ignore", message=".*will save all targets and predictions.*")
    sample_probs, y = _sample_probs(N, 1.5, 0)
    probs = sample_probs.mean(0)
    print(f"metrics: S = {S}, N = {N}, C = {C}, float64")
    print(f"{'metric':<34} {'dropprior':>14} {'torch-unc.':>14} {'|diff|':>10}")
    _row("NLL", float(metrics.nll(probs, y)), _tu(CategoricalNLL(), probs, y))
    _row("Brier", float(metrics.brier(probs, y)), _tu(BrierScore(num_classes=C), probs, y))
    _row("ECE (15 bins)", float(metrics.expected_calibration_error(probs, y, 15)),
         _tu(CalibrationError(task="multiclass", num_classes=C, num_bins=15), probs, y))
    _row("mutual information (mean)", float(metrics.mutual_information(sample_probs).mean()),
         _tu(MutualInformation(), sample_probs.transpose(0, 1)))
    _row("predictive entropy (mean)", float(metrics.predictive_entropy(sample_probs).mean()),
         _tu(Entropy(), probs))

    flat, _ = _sample_probs(N // 2, 1.0, 1)
    scores_in = metrics.predictive_entropy(sample_probs)
    scores_out = metrics.predictive_entropy(0.5 * flat + 0.5 / C)  # mixed with uniform
    _row("FPR at 95% TPR (entropy)", float(metrics.fpr_at_tpr(scores_in, scores_out, 0.95)),
         _tu(FPR95(pos_label=1), torch.cat([scores_in, scores_out]),
             torch.cat([torch.zeros(N), torch.ones(N // 2)]).long()))

    confidence, correct = probs.max(-1).values, probs.argmax(-1) == y
    ours = float(metrics.aurc(confidence, correct))
    theirs = _tu(AURC(), probs, y)
    _row("AURC (each library's convention)", ours, theirs)
    _, risk = metrics.risk_coverage_curve(confidence, correct)
    trapezoid = (risk.sum() - 0.5 * (risk[0] + risk[-1])) / N / (1 - 1 / N)
    _row("AURC, dropprior's curve, TU's rule", float(trapezoid), theirs)

    print("\ntemperature scaling: held-out logits, N = 5000, C = 10")
    print(f"{'logits':<22} {'T dropprior':>12} {'T torch-unc.':>13} {'NLL dropprior':>14} "
          f"{'NLL torch-unc.':>15}")
    for sharpen in (0.5, 1.0, 3.0):
        g = torch.Generator().manual_seed(2)
        z = 1.5 * torch.randn(N, C, generator=g, dtype=torch.float64)
        labels = torch.multinomial(torch.softmax(z, -1), 1, generator=g).squeeze(1)
        logits = sharpen * z
        t_ours = fit_temperature(logits, labels)
        scaler = TemperatureScaler(model=torch.nn.Identity())
        scaler.fit(DataLoader(TensorDataset(logits.float(), labels), batch_size=N),
                   progress=False)
        t_theirs = float(scaler.temperature[0].detach())
        nll_ours, nll_theirs = (float(torch.nn.functional.cross_entropy(logits / t, labels))
                                for t in (t_ours, t_theirs))
        print(f"{f'labels’ logits × {sharpen:g}':<22} {t_ours:>12.6f} {t_theirs:>13.6f} "
              f"{nll_ours:>14.8f} {nll_theirs:>15.8f}")


if __name__ == "__main__":
    main()
