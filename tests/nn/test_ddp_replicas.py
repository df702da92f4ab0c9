"""DistributedDataParallel on CPU (gloo, two processes): every rank is seeded alike, as DDP
scripts do, yet draws its own noise; a rerun with the same seed draws the same noise again; and
backward through the replayed draw synchronises gradients across ranks."""

from __future__ import annotations

import os
import tempfile

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from dropprior.nn import NoisyLinear
from dropprior.noise import Bernoulli, InverseNakagami

WORLD = 2

pytestmark = pytest.mark.skipif(not dist.is_available() or not dist.is_gloo_available(),
                                reason="torch.distributed with gloo is not available")


def _worker(rank: int, init_file: str, out_dir: str) -> None:
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank,
                            world_size=WORLD)
    torch.set_num_threads(1)
    results = {}
    for name, law in (("bernoulli", Bernoulli(0.5, inverted=True)),
                      ("inverse_nakagami", InverseNakagami(shape=2.0, spread=1.0))):
        outs = []
        for _ in range(2):  # the same seed twice: the same draws
            torch.manual_seed(0)
            model = DistributedDataParallel(nn.Sequential(NoisyLinear(16, 4, law)))
            x = torch.ones(8, 16)
            y = model(x)
            y.sum().backward()
            outs.append((y.detach(), model.module[0].weight.grad.clone()))
        results[name] = outs
    torch.save(results, os.path.join(out_dir, f"rank{rank}.pt"))
    dist.barrier()  # neither rank tears gloo down while the other still uses it
    dist.destroy_process_group()


def test_ddp_ranks_draw_independent_reproducible_noise_and_sync_gradients() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        init_file = os.path.join(tmp, "init")
        mp.spawn(_worker, args=(init_file, tmp), nprocs=WORLD, join=True)
        ranks = [torch.load(os.path.join(tmp, f"rank{r}.pt")) for r in range(WORLD)]
    for name in ("bernoulli", "inverse_nakagami"):
        (y0, g0), (y0_again, g0_again) = ranks[0][name]
        (y1, g1), (y1_again, _) = ranks[1][name]
        # same seed, same input, same weights: only the noise can make the outputs differ
        assert not torch.equal(y0, y1), name
        # reproducible under torch.manual_seed on every rank
        assert torch.equal(y0, y0_again) and torch.equal(y1, y1_again), name
        # DDP all-reduces gradients: both ranks hold the same averaged gradient
        torch.testing.assert_close(g0, g1)
        assert torch.equal(g0, g0_again)
