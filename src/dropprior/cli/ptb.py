"""``dropprior ptb``: LSTM language model on Penn Treebank with tied / untied gate noise."""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path
from typing import Any

from dropprior.cli._common import CLIError
from dropprior.cli._config import Options, command_line, resolve
from dropprior.experiments.laws import TABLE1_LAWS
from dropprior.experiments.ptb import PTB_SIZES, PTB_VARIANTS, SEQUENCE_NOISE

EXAMPLE = """example:
  dropprior ptb --data-dir ../shared/data                       # 1x128, one epoch: minutes
  dropprior ptb --data-dir ../shared/data --size zaremba-small  # Zaremba's 2x200, 13 epochs
  dropprior ptb --data-dir ../shared/data --size zaremba-small --variant gal \\
      --checkpoint-dir runs/ptb                                   # resumable after a stop
  dropprior ptb --data-dir ../shared/data --size medium         # Zaremba's 2x650 (days on a CPU)"""


def register(subparsers: Any) -> None:
    from dropprior.experiments.records import RESULTS_DIR

    small = PTB_SIZES["small"]
    parser = subparsers.add_parser(
        "ptb", help="Penn Treebank LSTM LM: tied/untied gate noise vs Zaremba and Gal dropout",
        description="Train a word-level LSTM language model on Penn Treebank without noise, "
        "with per-step dropout (Zaremba), per-sequence dropout on inputs and state (Gal), and "
        "dropprior's tied and untied gate noise; report validation and test perplexity "
        "(mean-scaling, and MC-averaged with --mc-samples) and training tokens per second. "
        "Each variant's result record (JSON) goes to RESULTS/ptb/; a variant whose record "
        "exists is read, not rerun. A partial record (epochs done) is rewritten after every "
        "epoch, so a stopped run stays in the results as partial.",
        epilog=EXAMPLE, formatter_class=argparse.RawDescriptionHelpFormatter)
    opts = Options(parser)
    opts.add("--data-dir", default=None, kind=Path, metavar="DIR",
             help="data root holding ptb/ (or the ptb/ folder itself)",
             shown="$DROPPRIOR_DATA_DIR")
    opts.add("--variant", default=list(PTB_VARIANTS), many=True, choices=list(PTB_VARIANTS),
             help="variants to train, one after the other")
    opts.add("--size", default="small", choices=list(PTB_SIZES),
             help="preset: small (1x128, one epoch), zaremba-small (Zaremba's 2x200, 13 "
             "epochs, their schedule) or medium (Zaremba's 2x650, 39 epochs); see "
             "dropprior.experiments.ptb.PTB_SIZES")
    opts.add("--epochs", default=None, kind=int, help="override the preset's epochs",
             shown="the preset's")
    opts.add("--train-tokens", default=None, kind=int,
             help="override the preset's training tokens (0: all)", shown="the preset's")
    opts.add("--law", default=small.law, choices=list(TABLE1_LAWS),
             help="noise law of the gal / tied / untied variants")
    opts.add("--dropout", default=None, kind=float, help="dropout rate p",
             shown="the preset's")
    opts.add("--mc-samples", default=None, kind=int,
             help="S passes of the MC-averaged perplexity (0: none)", shown="the preset's")
    opts.add("--output-noise", default=False, switch=True,
             help="gal / tied / untied: the law on the last LSTM layer's output too, one draw "
             "per sequence (Gal and Ghahramani's model drops it; zaremba drops it per step "
             "either way)")
    opts.add("--recurrent-noise", default=False, switch=True,
             help="untied: the law on the state h_{t-1} too, one draw per sequence and hidden "
             "unit shared by the four gates (as gal)")
    opts.add("--weight-noise", default=False, switch=True,
             help="gal / tied / untied: the law on every entry of each layer's recurrent "
             "weights U too, one draw per batch (DropConnect on U, AWD-LSTM's WeightDrop for "
             "bernoulli)")
    opts.add("--embedding-dropout", default=0.0, kind=float, metavar="P",
             help="gal / tied / untied: the law, set from rate P, on the embedding too, one "
             "draw per word type and sequence (Gal and Ghahramani's embedding dropout; "
             "dropprior.nn.NoisyEmbedding); 0: none")
    opts.add("--mc-mean-embedding", default=False, switch=True,
             help="with --embedding-dropout: the MC passes hold the embedding at its mean and "
             "draw the rest of the noise (Gal and Ghahramani's MC test turns the embedding "
             "dropout off); a finished run's checkpoint is evaluated again, not retrained")
    opts.add("--seed", default=small.seed, kind=int, help="seed of weights and noise")
    opts.add("--device", default="cpu", help="where to train: cpu, cuda or cuda:N")
    opts.add("--checkpoint-dir", default=None, kind=Path, metavar="DIR",
             help="keep each variant's training state here after every epoch, and resume "
             "from it when the run is started again (a finished run started again with "
             "another --mc-samples or --mc-mean-embedding is evaluated again, not retrained)",
             shown="none: no checkpoints")
    parser.add_argument("--results", type=Path, default=RESULTS_DIR,
                        help=f"folder of result records (default: {RESULTS_DIR})")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from dropprior.data import resolve_data_dir
    from dropprior.experiments.ptb import run_and_record

    cfg = resolve(args)
    try:
        data_dir = resolve_data_dir(cfg["data_dir"], "ptb")
    except FileNotFoundError as err:
        raise CLIError(str(err)) from None
    changes = {k: cfg[k] for k in ("epochs", "train_tokens", "dropout", "mc_samples")
               if cfg[k] is not None}
    # (the embedding options are checked here, on the preset's tied variant, before any
    # training)
    changes.update(law=cfg["law"], seed=cfg["seed"], device=cfg["device"],
                   embedding_dropout=cfg["embedding_dropout"],
                   mc_mean_embedding=bool(cfg["mc_mean_embedding"]))
    try:
        preset = dataclasses.replace(PTB_SIZES[cfg["size"]], **changes)
    except ValueError as err:
        raise CLIError(str(err)) from None
    import torch

    if torch.device(preset.device).type == "cuda" and not torch.cuda.is_available():
        raise CLIError(f"--device {preset.device}: CUDA is not available on this machine; "
                       "use --device cpu")
    variants = list(dict.fromkeys(cfg["variant"]))
    # the options of the per-sequence variants
    for flag in ("output_noise", "weight_noise", "embedding_dropout"):
        if cfg[flag] and not set(variants) & set(SEQUENCE_NOISE):
            raise CLIError(f"--{flag.replace('_', '-')} applies to the "
                           f"{', '.join(SEQUENCE_NOISE)} variants, got --variant "
                           f"{' '.join(variants)}")
    if cfg["recurrent_noise"] and "untied" not in variants:
        raise CLIError(f"--recurrent-noise applies to the untied variant (gal has it already), "
                       f"got --variant {' '.join(variants)}")
    print("variant | valid ppl | test ppl | MC valid | MC test | tokens/s | seconds")
    for variant in variants:
        sequence = variant in SEQUENCE_NOISE
        try:
            record, fresh = run_and_record(dataclasses.replace(
                preset, variant=variant, output_noise=bool(cfg["output_noise"]) and sequence,
                weight_noise=bool(cfg["weight_noise"]) and sequence,
                embedding_dropout=cfg["embedding_dropout"] if sequence else 0.0,
                mc_mean_embedding=bool(cfg["mc_mean_embedding"]) and sequence,
                recurrent_noise=bool(cfg["recurrent_noise"]) and variant == "untied"),
                                           command_line(), data_dir, args.results,
                                           cfg["checkpoint_dir"])
        except ValueError as err:  # a checkpoint of other settings
            raise CLIError(str(err)) from None
        m = record["metrics"]
        mc = [f"{m[k]:.1f}" if k in m else "—" for k in ("valid_ppl_mc", "test_ppl_mc")]
        print(f"{variant} | {m['valid_ppl']:.1f} | {m['test_ppl']:.1f} | {' | '.join(mc)} | "
              f"{m['train_tokens_per_second']:.0f} | {record['seconds']:.0f}"
              + ("" if fresh else " (read from its record)"))
    return 0
