"""Markdown table of the UCI NUTS benchmark from the job records ``scripts/nuts_uci.py`` writes
(and the ``--out`` files of ``dropprior mcmc``).

    python scripts/nuts_uci_table.py runs/nuts-uci/jobs/*.json

One row per (dataset, method, prior): test RMSE and test log-likelihood as mean ± standard error
over the splits found, the number of splits, NUTS diagnostics (median over splits of the max
R-hat over latent sites, of the R-hat of the training log-likelihood and of the noise precision;
total divergences; median seconds per split), and the published anchors beside each dataset.
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
from pathlib import Path

from dropprior.experiments.anchors import UCI_PUBLISHED

PRIOR = {"gaussian": "variance-gamma (Gaussian noise)",
         "inverse_nakagami": "Student-t (inverse-Nakagami noise)"}


def _mean_se(values: list[float]) -> str:
    mean = statistics.fmean(values)
    se = statistics.stdev(values) / math.sqrt(len(values)) if len(values) > 1 else 0.0
    return f"{mean:.2f} ± {se:.2f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("files", nargs="+", type=Path,
                        help="job records of scripts/nuts_uci.py, or --out files of "
                        "`dropprior mcmc`")
    args = parser.parse_args()
    groups: dict[tuple[str, str, str], list[dict]] = {}
    for path in args.files:
        data = json.loads(path.read_text())
        if "record" in data:  # a job record: params and result
            params, rows = data["record"]["params"], data["record"]["result"]["rows"]
        else:  # dropprior mcmc --out
            params, rows = data["args"], data["rows"]
        dataset, law = params["dataset"], params["law"]
        for row in rows:
            prior = "Bernoulli, p = 0.05" if row["method"] == "mc-dropout" else PRIOR[law]
            groups.setdefault((dataset, row["method"], prior), []).append(row)
    print("| dataset | method | prior | splits | RMSE | test LL | max R-hat (latents) "
          "| R-hat train LL | R-hat λ | divergences | s/split |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for dataset in sorted({key[0] for key in groups}):
        for (ds, method, prior), rows in sorted(groups.items()):
            if ds != dataset:
                continue
            nuts = method.startswith("nuts")
            def med(key: str, rows: list[dict] = rows, nuts: bool = nuts) -> str:
                values = [r[key] for r in rows if key in r]
                return f"{statistics.median(values):.2f}" if nuts and values else ""

            div = str(sum(r["divergences"] for r in rows)) if nuts else ""
            print(f"| {dataset} | {method} | {prior} | {len(rows)} "
                  f"| {_mean_se([r['rmse'] for r in rows])} "
                  f"| {_mean_se([r['test_ll'] for r in rows])} | {med('max_rhat')} "
                  f"| {med('rhat_train_ll')} | {med('rhat_precision')} | {div} "
                  f"| {statistics.median(r['seconds'] for r in rows):.0f} |")
        for source, ((rmse, rmse_se), (ll, ll_se)) in UCI_PUBLISHED.get(dataset, {}).items():
            print(f"| {dataset} | *{source}* (published) | | 20 | {rmse:.2f} ± {rmse_se:.2f} "
                  f"| {ll:.2f} ± {ll_se:.2f} | | | | | |")


if __name__ == "__main__":
    main()
