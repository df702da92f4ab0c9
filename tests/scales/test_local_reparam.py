"""The local reparametrization of variational linear maps against explicit weight draws: the
output law, the gradient of an expectation with a closed form, and where it must not act."""

from __future__ import annotations

import copy

import pytest
import scipy.stats
import torch
from torch import nn
from torch.distributions import Normal
from torch.testing import assert_close

from dropprior import predict, scales
from dropprior.nn import NoisyConv2d, NoisyLinear, mc
from dropprior.noise import Bernoulli

f64 = torch.float64


def _layer(local_reparam: bool, seed: int = 0) -> NoisyLinear:
    torch.manual_seed(seed)
    layer = NoisyLinear(4, 3, Bernoulli(0.9, inverted=True)).double()
    scales.variational(layer, "log_uniform", init_std=0.2, local_reparam=local_reparam)
    with torch.no_grad():  # distinct σ per weight, so a wrong variance formula shows
        for p in layer.parametrizations.values():
            p[0].rho.uniform_(-2.0, 0.0)
    return layer


def _moments(layer: NoisyLinear) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    w, b = layer.parametrizations["weight"], layer.parametrizations["bias"]
    return w.original, w[0].std(), b.original, b[0].std()


def test_each_output_has_the_law_of_an_explicit_weight_draw() -> None:
    layer = _layer(True)
    layer.train()
    mw, sw, mb, sb = _moments(layer)
    x = torch.tensor([[1.0, -2.0, 0.5, 3.0], [0.0, 0.0, 0.0, 0.0]], dtype=f64)
    n = 40_000
    with torch.no_grad():
        lrt = torch.stack([layer(x) for _ in range(n)])  # (n, 2, 3)
        # the reference: one explicit weight and bias draw per sample, from torch.distributions
        w = Normal(mw, sw).sample((n,))
        b = Normal(mb, sb).sample((n,))
        ref = torch.einsum("ni,noi->no", x[0].expand(n, 4), w) + b
    for o in range(3):
        res = scipy.stats.ks_2samp(lrt[:, 0, o].numpy(), ref[:, o].numpy())
        assert res.pvalue > 1e-3, (o, res)
        # and the closed form of the mean and variance, to Monte Carlo accuracy
        mean = (x[0] * mw[o]).sum() + mb[o]
        var = (x[0].square() * sw[o].square()).sum() + sb[o].square()
        se = (var / n).sqrt()
        assert abs(lrt[:, 0, o].mean() - mean) < 4 * se
        assert abs(lrt[:, 0, o].var() / var - 1) < 0.03
    # a zero input row leaves only the bias's law
    assert_close(lrt[:, 1].var(0), sb.square(), rtol=0.03, atol=0)


def test_examples_get_independent_draws() -> None:
    layer = _layer(True)
    layer.train()
    x = torch.ones(2, 4, dtype=f64)
    with torch.no_grad():
        y = torch.stack([layer(x) for _ in range(20_000)])
    r = torch.corrcoef(torch.stack([y[:, 0, 0], y[:, 1, 0]]))[0, 1]
    assert abs(r) < 0.03  # one weight draw per minibatch would give r = 1 here
    plain = _layer(False)
    plain.train()
    with torch.no_grad():
        z = torch.stack([plain(x) for _ in range(2_000)])
    assert_close(z[:, 0], z[:, 1])


def test_gradient_is_unbiased_for_an_expectation_in_closed_form() -> None:
    # E_q[(y - t)²] = (m - t)² + v per output, with m and v the output's mean and variance
    layer = _layer(True)
    layer.train()
    x = torch.tensor([[0.3, -1.0, 2.0, 0.7]], dtype=f64)
    t = torch.tensor([[0.5, -0.2, 1.0]], dtype=f64)
    mw, sw, mb, sb = _moments(layer)
    exact = ((x @ mw.T + mb - t).square() + x.square() @ sw.square().T + sb.square()).sum()
    params = [layer.parametrizations["weight"].original, layer.parametrizations["weight"][0].rho,
              layer.parametrizations["bias"].original, layer.parametrizations["bias"][0].rho]
    want = torch.autograd.grad(exact, params)
    n, batches = 10_000, 30
    torch.manual_seed(3)
    xs, ts = x.expand(n, 4), t.expand(n, 3)  # n independent examples: n draws in one pass
    grads = [torch.autograd.grad((layer(xs) - ts).square().sum() / n, params)
             for _ in range(batches)]
    for k, w in enumerate(want):
        g = torch.stack([gr[k] for gr in grads])
        se = g.std(0) / batches**0.5
        assert ((g.mean(0) - w).abs() <= 4 * se + 1e-12).all(), (k, g.mean(0), w, se)
        assert (se < 0.05 * w.abs().clamp_min(0.1)).all()  # precise enough to catch a wrong law


def test_eval_and_mc_draw_weights_and_collapse_removes_it() -> None:
    layer = _layer(True)
    x = torch.randn(3, 4, dtype=f64)
    layer.eval()
    mw, _, mb, _ = _moments(layer)
    assert_close(layer(x), x @ mw.T + mb)
    with mc(layer), torch.no_grad():
        y = layer(torch.ones(2, 4, dtype=f64))
    assert_close(y[0], y[1])  # one network per MC sample: a weight draw shared by the examples
    layer.train()
    with mc(layer), torch.no_grad():  # mc in train mode also draws the weights
        y = layer(torch.ones(2, 4, dtype=f64))
    assert_close(y[0], y[1])
    pred = predict(nn.Sequential(layer), x, samples=3, likelihood=None, scope="function")
    again = predict(nn.Sequential(layer), x, samples=3, likelihood=None, scope="function",
                    batch_size=1)
    assert_close(pred.sample_outputs, again.sample_outputs)  # S networks, whatever the batches
    assert pred.sample_outputs.std(0).min() > 0
    point = scales.collapse(copy.deepcopy(layer))
    point.train()
    assert_close(point(x), x @ mw.T + mb)


def test_convolutions_keep_their_weight_draws() -> None:
    torch.manual_seed(0)
    model = nn.Sequential(NoisyConv2d(1, 2, 3, Bernoulli(0.9, inverted=True), "filter"),
                          nn.Flatten(), NoisyLinear(8, 2, Bernoulli(0.9, inverted=True)))
    scales.variational(model, "log_uniform", init_std=0.1, local_reparam=True)
    assert model[2].parametrizations["weight"][0].trains_by_local_reparam
    assert not model[0].parametrizations["weight"][0].trains_by_local_reparam
    model.train()
    x = torch.randn(1, 1, 4, 4).expand(2, 1, 4, 4)
    with torch.no_grad():
        h = model[0](x)
    assert_close(h[0], h[1])  # the conv's one draw per minibatch


def test_local_reparam_needs_a_bool_and_variational_weights() -> None:
    layer = NoisyLinear(4, 3, Bernoulli(0.9))
    with pytest.raises(TypeError, match="local_reparam must be True or False, got 'yes'"):
        scales.variational(layer, "log_uniform", local_reparam="yes")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="inference='map'"):
        scales.attach_scales(NoisyLinear(4, 3, Bernoulli(0.9)), "map", "log_uniform",
                             local_reparam=True)
