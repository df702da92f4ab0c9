"""Peak memory of MC prediction at S = 1000 draws on the MNIST test set.

Run:  python benchmarks/bench_predict_memory.py --data-dir ../shared/data [--samples 1000]
      [--max-rows 65536 8192] [--seed 0]

Each configuration runs in its own child process (so each peak is its own): a LeNet-300-100 MLP
(784-300-100-10) with Bernoulli(0.8) unit noise on every layer's inputs, ``predict`` with S
draws on the 10 000 test images in batches of 1000, one vectorised pass at most ``max_rows``
rows. Prints the child's peak resident set size (``ru_maxrss``), the floor set by the stored
draws (the probabilities, S × N × 10 float32), the peak of importing alone (``--samples 0``
skips the prediction), and the wall time (not comparable between runs on a shared machine).
``--seed`` runs the seeded prediction (``predict(..., seed=...)``, chunk-invariant draws).
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time


def _child(data_dir: str, samples: int, max_rows: int, seed: int | None) -> None:
    import torch
    from torch import nn

    from dropprior import predict
    from dropprior.data.mnist import MNIST_MEAN, MNIST_STD, load_mnist
    from dropprior.likelihoods import Categorical
    from dropprior.nn import NoisyLinear
    from dropprior.noise import Bernoulli

    x, _ = load_mnist(data_dir, "test")
    x = (x - MNIST_MEAN) / MNIST_STD
    torch.manual_seed(0)
    law = Bernoulli(0.8, inverted=True)
    model = nn.Sequential(NoisyLinear(784, 300, law), nn.ReLU(), NoisyLinear(300, 100, law),
                          nn.ReLU(), NoisyLinear(100, 10, law))
    start = time.perf_counter()
    floor = 0
    if samples:
        pred = predict(model, x, samples=samples, likelihood=Categorical(), batch_size=1000,
                       max_rows=max_rows, seed=seed)
        floor = pred.sample_probs.numel() * 4
    seconds = time.perf_counter() - start
    peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(json.dumps({"samples": samples, "max_rows": max_rows, "seed": seed,
                      "peak_rss_mib": peak_kib / 1024,
                      "stored_draws_mib": floor / 2**20, "seconds": round(seconds, 1)}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", required=True)
    parser.add_argument("--samples", type=int, default=1000)
    parser.add_argument("--max-rows", type=int, nargs="+", default=[65536, 8192])
    parser.add_argument("--seed", type=int, default=None,
                        help="seeded prediction: the same draws at any --max-rows")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        _child(args.data_dir, args.samples, args.max_rows[0], args.seed)
        return
    runs = [(0, args.max_rows[0])] + [(args.samples, rows) for rows in args.max_rows]
    for samples, rows in runs:
        out = subprocess.run([sys.executable, __file__, "--child", "--data-dir", args.data_dir,
                              "--samples", str(samples), "--max-rows", str(rows)]
                             + ([] if args.seed is None else ["--seed", str(args.seed)]),
                             capture_output=True, text=True, check=True)
        print(out.stdout.strip())


if __name__ == "__main__":
    main()
