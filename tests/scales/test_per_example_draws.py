"""MC prediction of a variational network trained by the local reparametrization: with
scope="example" and no seed each input's output is drawn from its own law, the one a whole
weight draw gives it (two-sample KS against scope="batch"), independently across inputs, in
one vectorised pass; other scopes and seeded draws still draw whole weights."""

from __future__ import annotations

import scipy.stats
import torch
from torch import nn

from dropprior import predict, scales
from dropprior.nn import NoisyLinear
from dropprior.noise import Bernoulli


def _model() -> nn.Sequential:
    torch.manual_seed(0)
    law = Bernoulli(0.9, inverted=True)
    model = nn.Sequential(NoisyLinear(3, 6, law), nn.ReLU(), NoisyLinear(6, 1, law))
    scales.variational(model, "log_uniform", init_std=0.4, local_reparam=True)
    return model


def test_each_input_draws_its_own_output_from_the_weight_draw_law() -> None:
    model = _model()
    x = torch.tensor([[0.5, -1.0, 2.0], [0.5, -1.0, 2.0], [-1.5, 0.2, 0.3]])
    torch.manual_seed(1)
    own = predict(model, x, samples=20_000, likelihood=None).sample_means.squeeze(-1)
    torch.manual_seed(2)
    whole = predict(model, x, samples=20_000, likelihood=None,
                    scope="batch").sample_means.squeeze(-1)
    for n in range(3):  # the same law per input (a 10%-wider law fails this at S = 20 000)
        assert scipy.stats.ks_2samp(own[:, n].numpy(), whole[:, n].numpy()).pvalue > 1e-3
        assert scipy.stats.ks_2samp(own[:, n].numpy(), 1.1 * whole[:, n].numpy()).pvalue < 1e-3
    # the two copies of one input: independent here, one network under scope="batch"
    corr = torch.corrcoef(own[:, :2].T)[0, 1]
    assert abs(float(corr)) < 4 / 20_000 ** 0.5
    torch.testing.assert_close(whole[:, 0], whole[:, 1])


def test_the_draws_run_in_one_vectorised_pass_and_modes_come_back() -> None:
    model = _model()
    calls: list[int] = []
    model.register_forward_hook(lambda m, args, out: calls.append(args[0].shape[0]))
    x = torch.randn(4, 3)
    predict(model, x, samples=300, likelihood=None)
    assert calls == [4 * 300]
    calls.clear()
    predict(model, x, samples=300, likelihood=None, seed=5)  # seeded: one network per pass
    assert len(calls) == 300
    tensors = [m for m in model.modules() if isinstance(m, scales.GaussianTensor)]
    assert tensors and all(t.granularity == "batch" for t in tensors)
    model.eval()
    assert not any(t.local_reparam_active() for t in tensors)
    model.train()
    assert all(t.local_reparam_active() for t in tensors)  # training outside mc, as before
