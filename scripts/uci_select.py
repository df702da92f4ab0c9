"""UCI table of the law chosen per split on inner validation, from `dropprior uci` run directories.

    python scripts/uci_select.py runs/uci-boston-full runs/uci-boston-laws

Reads every finished job in the run directories' ``jobs/`` stores, treats each law × structure ×
objective found as a candidate, and per data set and split keeps the candidate with the highest
inner-validation log-likelihood (:func:`dropprior.experiments.uci_selection.select_on_validation`);
the test split decides nothing. Prints a Markdown table beside the published anchors.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from dropprior.experiments.store import ResultStore
from dropprior.experiments.tables import format_mean_se, markdown_table
from dropprior.experiments.uci import anchor_verdicts
from dropprior.experiments.uci_selection import select_on_validation


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run_dirs", nargs="+", type=Path,
                        help="`dropprior uci --out` directories (each holds jobs/)")
    args = parser.parse_args()
    records = []
    for run_dir in args.run_dirs:
        if not (run_dir / "jobs").is_dir():
            parser.error(f"{run_dir} has no jobs/ folder: give `dropprior uci --out` directories")
        records.extend(ResultStore(run_dir / "jobs", required=("params", "result")).records()
                       .values())
    rows = []
    for row in select_on_validation(records):
        anchor, ens, beats, beats_de = anchor_verdicts(row["dataset"], row["ll"], row["ll_se"])
        chosen = ", ".join(f"{c} {n}" for c, n in row["chosen"].items())
        rows.append([
            row["dataset"], ", ".join(row["candidates"]), chosen,
            row["n_splits"], format_mean_se(row["rmse"], row["rmse_se"]),
            f"{format_mean_se(row['ll'], row['ll_se'])} ({row['ll']:.3f})".replace("-", "−"),
            format_mean_se(*anchor[1]) if anchor else "—", beats,
            "—" if ens is None else f"{ens:.2f}".replace("-", "−"), beats_de])
    header = ["dataset", "candidates (law/structure/objective)", "chosen (splits)", "splits",
              "test RMSE", "test LL", "2018 MC dropout LL", "beats 2018 LL", "Deep Ens. LL",
              "beats DE"]
    print(markdown_table(header, rows), end="")


if __name__ == "__main__":
    main()
