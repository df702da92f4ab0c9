"""``dropprior ptb``: LSTM language model on Penn Treebank with tied / untied gate noise."""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path
from typing import Any

from dropprior.cli._common import CLIError
from dropprior.cli._config import Options, resolve
from dropprior.experiments.laws import TABLE1_LAWS
from dropprior.experiments.ptb import PTB_SIZES, PTB_VARIANTS

EXAMPLE = """example:
  dropprior ptb --data-dir ../shared/data                    # small model, minutes on a CPU
  dropprior ptb --data-dir ../shared/data --size medium       # Zaremba's 2x650 (days on a CPU)"""


def register(subparsers: Any) -> None:
    small = PTB_SIZES["small"]
    tokens = ("the whole training split" if small.train_tokens == 0
              else f"the first {small.train_tokens} training tokens")
    parser = subparsers.add_parser(
        "ptb", help="Penn Treebank LSTM LM: tied/untied gate noise vs Zaremba and Gal dropout",
        description="Train a word-level LSTM language model on Penn Treebank with per-step "
        "dropout (Zaremba), per-sequence dropout on inputs and state (Gal), and dropprior's "
        "tied and untied gate noise; report validation and test perplexity. Writes ptb.md, "
        "ptb.csv and run.json into --out.",
        epilog=EXAMPLE, formatter_class=argparse.RawDescriptionHelpFormatter)
    opts = Options(parser)
    opts.add("--data-dir", default=None, kind=Path, metavar="DIR",
             help="data root holding ptb/ (or the ptb/ folder itself)",
             shown="$DROPPRIOR_DATA_DIR")
    opts.add("--variant", default=list(PTB_VARIANTS), many=True, choices=list(PTB_VARIANTS),
             help="variants to train")
    opts.add("--size", default="small", choices=list(PTB_SIZES),
             help=f"preset: small ({small.layers}x{small.hidden}, {tokens}, {small.epochs} "
             "epoch(s)) or medium (Zaremba's 2x650, 39 epochs, whole training split)")
    opts.add("--epochs", default=None, kind=int, help="override the preset's epochs",
             shown="the preset's")
    opts.add("--train-tokens", default=None, kind=int,
             help="override the preset's training tokens (0: all)", shown="the preset's")
    opts.add("--law", default=small.law, choices=list(TABLE1_LAWS),
             help="noise law of the gal / tied / untied variants")
    opts.add("--dropout", default=None, kind=float, help="dropout rate p",
             shown="the preset's: 0.3 small, 0.5 medium")
    opts.add("--seed", default=small.seed, kind=int, help="seed of weights and noise")
    opts.add("--workers", default=1, kind=int, help="parallel worker processes")
    opts.add("--out", default=Path("runs/ptb"), kind=Path, metavar="DIR",
             help="run directory (a rerun skips variants already in DIR/jobs)")
    opts.add("--progress", default=True, switch=True, help="show a progress bar")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from dropprior.data import resolve_data_dir
    from dropprior.experiments.ptb import run_ptb_variant
    from dropprior.experiments.rundir import RunDirectory
    from dropprior.experiments.runner import Job, run_jobs
    from dropprior.experiments.store import ResultStore
    from dropprior.experiments.tables import markdown_table, write_csv

    cfg = resolve(args)
    try:
        data_dir = resolve_data_dir(cfg["data_dir"], "ptb")
    except FileNotFoundError as err:
        raise CLIError(str(err)) from None
    if cfg["epochs"] is not None and cfg["epochs"] < 1:
        raise CLIError(f"--epochs={cfg['epochs']!r} must be >= 1")
    if cfg["train_tokens"] is not None and cfg["train_tokens"] < 0:
        raise CLIError(f"--train-tokens={cfg['train_tokens']!r} must be >= 0")
    if cfg["dropout"] is not None and not 0 < cfg["dropout"] < 1:
        raise CLIError(f"--dropout={cfg['dropout']!r} must lie in (0, 1)")
    if cfg["workers"] < 1:
        raise CLIError(f"--workers={cfg['workers']!r} must be >= 1")
    changes = {k: cfg[k] for k in ("epochs", "train_tokens", "dropout") if cfg[k] is not None}
    changes.update(law=cfg["law"], seed=cfg["seed"])
    settings = dataclasses.asdict(dataclasses.replace(PTB_SIZES[cfg["size"]], **changes))
    jobs = [Job(key=f"ptb/{v}/" + "-".join(f"{k}={x}" for k, x in sorted(settings.items())),
                params={"data_dir": str(data_dir), "variant": v, "settings": settings})
            for v in dict.fromkeys(cfg["variant"])]
    rundir = RunDirectory(cfg["out"], "ptb", {**cfg, "data_dir": str(data_dir)}, cfg["seed"])
    records = run_jobs(run_ptb_variant, jobs, ResultStore(rundir.path("jobs")),
                       workers=cfg["workers"], progress=cfg["progress"], desc="ptb")
    header = ["variant", "noise", "validation perplexity", "test perplexity", "time (s)"]
    noise = {"zaremba": "bernoulli, per step", "gal": f"{settings['law']}, per sequence, "
             "inputs + state", "tied": f"{settings['law']}, per sequence, tied gates",
             "untied": f"{settings['law']}, per sequence, untied gates"}
    rows = [[r["params"]["variant"], noise[r["params"]["variant"]],
             f"{r['result']['valid_ppl']:.1f}", f"{r['result']['test_ppl']:.1f}",
             f"{r['result']['seconds']:.0f}"] for r in records]
    table = markdown_table(header, rows)
    rundir.path("ptb.md").write_text(table)
    write_csv(rundir.path("ptb.csv"), header, rows)
    seconds = rundir.finish()
    print(table)
    print(f"wrote ptb.md, ptb.csv and run.json to {rundir.root} in {seconds:.0f} s")
    return 0
