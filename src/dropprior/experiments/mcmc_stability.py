"""EP against HP sampling efficiency under strong shrinkage (the paper's Section 4 stability
claim), over several seeds.

Sparse linear regression: N = 50 rows of D = 10 standard-normal inputs, three non-zero
coefficients (2, −1.5, 1), unit Gaussian noise, one ξ per coefficient, σ0 = 1 and a known noise
scale of 1 (:class:`~dropprior.inference.LinearRegression`). Three noise laws scaled for strong
shrinkage (:data:`LAWS`): Rayleigh (Laplace prior), inverse Nakagami (Student-t) and half-Cauchy
(horseshoe). NUTS in the EP (non-centred) and HP (centred) forms on the same data with the same
chain seed; seed k draws the data from seed k and the chains from seed k + 1. Recorded per run:
the smallest bulk ESS over the coefficients w per gradient evaluation spent sampling, the
divergences after warm-up, the largest split R-hat over w, and the seconds. One result record
per (law, form, seed) under ``results/mcmc_stability/``; ``dropprior report`` builds
``docs/results/mcmc_stability.md``, where EP and HP are compared seed by seed.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import torch

from dropprior._validation import check_choice, check_int, check_seed, offset_seed
from dropprior.noise import HalfCauchy, InverseNakagami, NoiseLaw, Rayleigh

__all__ = ["LAWS", "FORMS", "StabilitySettings", "regression_data", "run_stability",
           "stability_table"]

LAWS: dict[str, tuple[str, Callable[[], NoiseLaw]]] = {
    "rayleigh": ("Rayleigh s = 0.05 (Laplace)", lambda: Rayleigh(0.05)),
    "inverse_nakagami": ("inverse Nakagami m = 2, Ω = 400 (Student-t)",
                         lambda: InverseNakagami(2.0, 400.0)),
    "half_cauchy": ("half-Cauchy s = 0.01 (horseshoe)", lambda: HalfCauchy(0.01)),
}
"""Law name → (its label with the prior it gives, the law): E[ξ²] = 0.005 for the first two."""

FORMS = ("ep", "hp")


@dataclass(frozen=True)
class StabilitySettings:
    """One NUTS run: the law (a key of :data:`LAWS`), the form (``"ep"`` or ``"hp"``), the
    seed, and the warm-up steps, draws and chains."""

    law: str
    form: str
    seed: int = 0
    warmup: int = 150
    samples: int = 150
    chains: int = 2

    def __post_init__(self) -> None:
        check_choice("law", self.law, list(LAWS))
        check_choice("form", self.form, FORMS)
        check_seed(self.seed, low=0)
        check_int("warmup", self.warmup, 1)
        check_int("samples", self.samples, 4)
        check_int("chains", self.chains, 2)


def regression_data(seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The sparse regression of seed ``seed`` (module docstring), float64: X (50, 10), y (50,)."""
    g = torch.Generator().manual_seed(seed)
    X = torch.randn(50, 10, generator=g, dtype=torch.float64)
    w = torch.zeros(10, dtype=torch.float64)
    w[:3] = torch.tensor([2.0, -1.5, 1.0], dtype=torch.float64)
    return X, X @ w + torch.randn(50, generator=g, dtype=torch.float64)


def run_stability(s: StabilitySettings) -> dict[str, Any]:
    """Run NUTS for ``s`` and return the diagnostics over the coefficients w
    (:meth:`~dropprior.inference.MCMCResult.summary`) with E[ξ²] (``inf`` as a string)."""
    from dropprior.inference import LinearRegression, run_mcmc

    X, y = regression_data(s.seed)
    law = LAWS[s.law][1]().to(dtype=torch.float64)
    result = run_mcmc(LinearRegression(X, y, law, 1.0, 1.0, s.form), num_samples=s.samples,
                      warmup=s.warmup, num_chains=s.chains,
                      generator=torch.Generator().manual_seed(offset_seed(s.seed, 1)))
    second = float(law.second_moment)
    return {**result.summary(["w.w"]),
            "second_moment": second if second < float("inf") else "inf"}


def _by_seed(records: Sequence[Mapping[str, Any]], law: str, form: str,
             schedule: tuple[Any, ...]) -> dict[int, Mapping[str, Any]]:
    return {r["config"]["seed"]: r["metrics"] for r in records
            if r["config"]["law"] == law and r["config"]["form"] == form
            and _schedule(r) == schedule}


def _schedule(record: Mapping[str, Any]) -> tuple[Any, ...]:
    c = record["config"]
    return c["warmup"], c["samples"], c["chains"]


def stability_table(records: Sequence[Mapping[str, Any]]) -> str:
    """One Markdown table per schedule (warm-up, draws, chains): per law and form, ESS per
    gradient (mean ± standard error over seeds), divergences (mean ± s.e.) and the median of the
    max R-hat; then, per law, HP − EP over the seeds both forms ran (paired mean ± s.e.) with
    the verdict: a form is better only where the difference exceeds its standard error."""
    import numpy as np

    from dropprior.experiments.tables import format_spread, markdown_table

    out = []
    for schedule in sorted({_schedule(r) for r in records}):
        warmup, samples, chains = schedule
        rows, diffs = [], []
        for law, (label, _) in LAWS.items():
            runs = {form: _by_seed(records, law, form, schedule) for form in FORMS}
            for form in FORMS:
                m = [runs[form][k] for k in sorted(runs[form])]
                if not m:
                    continue
                ess = [x["min_ess_per_gradient"] for x in m]
                div = [float(x["divergences"]) for x in m]
                rows.append([label, form.upper(), len(m), format_spread(ess, "{:.2e}", "{:.1e}"),
                             format_spread(div, "{:.1f}"),
                             f"{float(np.median([x['max_rhat'] for x in m])):.3f}"])
            both = sorted(set(runs["ep"]) & set(runs["hp"]))
            if len(both) >= 2:
                diffs.append([label, len(both), *_paired(runs, both)])
        out.append(f"### {warmup} warm-up steps and {samples} draws per chain, {chains} "
                   "chains\n\n")
        out.append(markdown_table(["law (prior)", "form", "seeds", "min ESS / gradient",
                                   "divergences", "median max R-hat"], rows))
        if diffs:
            out.append("\nHP − EP, paired over the seeds both forms ran (mean ± standard "
                       "error):\n\n")
            out.append(markdown_table(["law (prior)", "seeds", "ESS / gradient", "more "
                                       "efficient", "divergences", "fewer divergences"],
                                      diffs))
        out.append("\n")
    return "".join(out)


def _paired(runs: Mapping[str, Mapping[int, Mapping[str, Any]]], seeds: Sequence[int]
            ) -> list[str]:
    """HP − EP over ``seeds`` (paired mean ± s.e.) of the ESS per gradient (higher is better)
    and the divergences (lower is better), each with the form that is better beyond the s.e."""
    from dropprior.experiments.tables import beats, minus, paired_mean_se

    cells = []
    for key, higher_better, fmt in (("min_ess_per_gradient", True, "{:.2e} ± {:.1e}"),
                                    ("divergences", False, "{:.1f} ± {:.1f}")):
        mean, se = paired_mean_se([float(runs["hp"][k][key]) for k in seeds],
                                  [float(runs["ep"][k][key]) for k in seeds])
        above, below = beats(mean, se, 0.0, 0.0), beats(0.0, 0.0, mean, se)
        hp_better, ep_better = (above, below) if higher_better else (below, above)
        verdict = "HP" if hp_better else "EP" if ep_better else "neither (within 1 s.e.)"
        text = fmt.format(mean, se)
        cells += [minus(text), verdict]
    return cells
