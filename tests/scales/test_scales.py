"""Learned group scales: the group table, both parametrizations against explicit computations,
the closed-form VI sweep against scipy.optimize, the KL against torch.distributions, relevance
layouts, and pruning by the fit's own decisions."""

from __future__ import annotations

import copy
import math

import numpy as np
import pytest
import scipy.optimize
import torch
import torch.nn.functional as F
from torch import nn
from torch.distributions import Normal, kl_divergence
from torch.testing import assert_close

from dropprior import norm_relevance, relevance, scales
from dropprior.hyperpriors import GammaScale, HalfCauchyScale, InverseGammaScale, LogUniformScale
from dropprior.nn import NoisyConv2d, NoisyLinear, NoisyLSTM, Residual, mc
from dropprior.noise import Bernoulli, InverseNakagami, Rayleigh
from dropprior.objectives import ep_weight_penalty, prior_penalty
from dropprior.pruning import SelectFeatures, prune

f64 = torch.float64
LAW = InverseNakagami(2.0, 1.0)


def _model() -> nn.Sequential:
    torch.manual_seed(0)
    return nn.Sequential(
        NoisyLinear(5, 6, LAW),
        Residual(nn.Sequential(nn.Linear(6, 6), nn.ReLU(), nn.Linear(6, 6)), depth_noise=LAW,
                 unit_noise=Rayleigh(1.0)),
        Residual(nn.Sequential(nn.Linear(6, 6), nn.ReLU()), depth_noise=LAW),
        nn.Linear(6, 1)).double()


def _randomise(model: nn.Module) -> None:
    with torch.no_grad():
        for s in model.modules():
            if isinstance(s, scales.LearnedScale):
                s.log_scale.uniform_(-1.0, 1.0)


# ---- the group table -----------------------------------------------------------------------

def test_group_table_for_every_layer_kind() -> None:
    conv = NoisyConv2d(3, 4, 3, LAW, "channel+filter")
    lstm = NoisyLSTM(5, 7, noise=LAW, gates="untied")
    got = {g.name: (g.kind, g.shape, [(t.name, t.view) for t in g.targets])
           for g in scales.scale_groups(nn.ModuleDict({"c": conv, "l": lstm}))}
    assert got == {
        "c:channel": ("channel", (4, 3, 1), [("weight", (4, 3, 9))]),
        "c:filter": ("filter", (4, 1), [("weight", (4, 27)), ("bias", (4, 1))]),
        "l:untied": ("untied", (4, 1, 5), [("weight_ih_l0", (4, 7, 5))]),
    }
    groups = {g.name: g for g in scales.scale_groups(_model())}
    assert set(groups) == {"0:unit", "1:unit", "1:layer", "2:layer"}
    assert len(groups["1:layer"].targets) == 4  # both weights and both biases of the block
    assert isinstance(groups["1:unit"].law, Rayleigh)


def test_no_noisy_layer_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="no noisy layers with weights"):
        scales.scale_groups(nn.Sequential(nn.Linear(2, 2)))


# ---- type-II MAP ---------------------------------------------------------------------------

def test_map_scales_the_weights_as_w_equals_s_times_z() -> None:
    model = _model()
    reference = copy.deepcopy(model)
    scales.learn_scales(model)
    _randomise(model)
    s = scales.learned_scales(model)
    with torch.no_grad():  # the explicit model: every tensor times its groups' scales
        reference[0].weight.mul_(s["0:unit"])
        block = reference[1].block
        block[0].weight.mul_(s["1:unit"])
        for m in (block[0], block[2]):
            m.weight.mul_(s["1:layer"])
            m.bias.mul_(s["1:layer"])
        for p in reference[2].block.parameters():
            p.mul_(s["2:layer"])
    x = torch.randn(7, 5, dtype=f64)
    model.eval(), reference.eval()
    assert_close(model(x), reference(x))


def test_map_conv_filter_scale_multiplies_the_bias() -> None:
    conv = NoisyConv2d(2, 3, 3, Rayleigh(1.0), "filter").double()
    scales.learn_scales(conv, "log_uniform")
    _randomise(conv)
    s = scales.learned_scales(conv)["<root>:filter"].reshape(1, 3, 1, 1)
    x = torch.randn(2, 2, 5, 5, dtype=f64)
    z = conv.parametrizations.weight.original
    b = conv.parametrizations.bias.original
    mean = float(Rayleigh(1.0).mean)
    assert_close(conv.eval()(x), mean * s * (F.conv2d(x, z) + b.view(1, 3, 1, 1)))


def test_map_penalty_is_gaussian_on_z_plus_hyperprior_on_s() -> None:
    model = _model()
    scales.learn_scales(model, "half_cauchy")
    _randomise(model)
    raw = [p for n, p in model.named_parameters() if "log_scale" not in n]
    expected = ep_weight_penalty(raw, 0.7)
    for s in scales.learned_scales(model).values():
        expected = expected - HalfCauchyScale(1.0).log_prob(s).sum()
    assert_close(prior_penalty(model, 0.7), expected)


def test_auto_hyperprior_is_each_groups_law() -> None:
    model = _model()
    made = {s.group_name: s.hyperprior for s in scales.learn_scales(model)}
    assert isinstance(made["0:unit"], InverseGammaScale) and made["0:unit"].b == 2.0
    assert isinstance(made["1:unit"], GammaScale) and made["1:unit"].beta == 0.5


# ---- VI ------------------------------------------------------------------------------------

def test_vi_switches_the_noise_off_and_samples_weights_only_while_sampling() -> None:
    model = _model()
    scales.variational(model, "log_uniform", init_std=0.3)
    assert all(isinstance(law, Bernoulli) and float(law.keep) == 1.0
               for law in (model[0].noise, model[1].depth_noise, model[1].unit_noise))
    layer = model[0]
    mu = layer.parametrizations.weight.original
    model.eval()
    assert torch.equal(layer.weight, mu)
    with mc(model):
        draws = torch.stack([layer.weight for _ in range(4000)])
    assert_close(draws.mean(0), mu, atol=0.03, rtol=0)
    assert_close(draws.std(0), torch.full_like(mu, 0.3), atol=0.02, rtol=0)


def test_vi_kl_matches_torch_distributions() -> None:
    model = _model()
    scales.variational(model, LogUniformScale(), init_std=0.2)
    with torch.no_grad():
        for v in model.modules():
            if isinstance(v, scales.ScaleVariance):
                v.variance.uniform_(0.1, 2.0)
    sigma0 = 0.8
    total = torch.zeros((), dtype=f64)
    for module in model.modules():
        if torch.nn.utils.parametrize.is_parametrized(module):
            for _name, plist in module.parametrizations.items():
                g = plist[0]
                mu = plist.original
                prior = g.prior_variance(sigma0, mu.shape)
                total = total + kl_divergence(Normal(mu, g.std()), Normal(0.0, prior.sqrt())).sum()
                assert_close(g.kl(mu, sigma0), kl_divergence(
                    Normal(mu, g.std()), Normal(0.0, prior.sqrt())).sum())
    assert total > 0


@pytest.mark.parametrize("hyperprior", [LogUniformScale(), InverseGammaScale(3.0, 3.0),
                                        HalfCauchyScale(0.5)], ids=repr)
def test_vi_sweep_maximises_each_groups_expected_log_joint(hyperprior) -> None:
    """The sweep visits the groups in order, each given the others' current values: compare each
    with scipy.optimize on Σ E_q[log N(w; 0, σ0² v ∏ others)] + log p(v), computed explicitly."""
    model = _model()
    scales.variational(model, hyperprior, init_std=0.3)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.2 * torch.randn_like(p))
    sigma0 = 0.9
    tensors = {}  # (module id, name) -> (mu, sigma, [(variance module, view)])
    for module in model.modules():
        if torch.nn.utils.parametrize.is_parametrized(module):
            for name, plist in module.parametrizations.items():
                g = plist[0]
                tensors[(id(module), name)] = (plist.original.detach(), g.std().detach(),
                                               list(zip(g.variances, g.views, strict=True)))
    order = [v for v in dict.fromkeys(var for *_, pairs in tensors.values() for var, _ in pairs)]
    current = {id(v): v.variance.clone() for v in order}
    expected = {}
    for var in order:
        for idx in range(var.variance.numel()):
            def neg(log_v: float, var=var, idx=idx) -> float:
                trial = current[id(var)].clone().reshape(-1)
                trial[idx] = math.exp(log_v)
                total = float(hyperprior.log_prob_variance(torch.tensor(math.exp(log_v),
                                                                        dtype=f64)))
                for mu, sd, pairs in tensors.values():
                    if not any(v is var for v, _ in pairs):
                        continue
                    prior = torch.full(mu.shape, sigma0**2, dtype=f64)
                    for v, view in pairs:
                        val = trial.reshape(v.variance.shape) if v is var else current[id(v)]
                        prior = prior * val.expand(view).reshape(mu.shape)
                    total += float((-0.5 * torch.log(prior) - (mu**2 + sd**2) / (2 * prior))
                                   .sum())
                return -total
            best = scipy.optimize.minimize_scalar(neg, bounds=(-25, 5), method="bounded",
                                                  options={"xatol": 1e-9}).x
            current[id(var)].reshape(-1)[idx] = math.exp(best)
        expected[id(var)] = current[id(var)].clone()
    scales.update_scales(model, sigma0)
    for var in order:
        assert_close(torch.log(var.variance), torch.log(expected[id(var)]), atol=1e-5, rtol=0)


def test_vi_needs_a_finite_sigma0() -> None:
    model = _model()
    scales.variational(model, "log_uniform")
    with pytest.raises(ValueError, match="sigma0 must be a finite number > 0.*got inf"):
        prior_penalty(model, math.inf)


# ---- relevance and pruning -----------------------------------------------------------------

def test_relevance_layouts_match_group_norms() -> None:
    layers = nn.ModuleDict({
        "lin": NoisyLinear(4, 3, LAW), "conv": NoisyConv2d(2, 5, 3, LAW, "channel+filter"),
        "chan": NoisyConv2d(2, 5, 3, LAW, "channel"), "lstm": NoisyLSTM(3, 4, noise=LAW,
                                                                        gates="untied"),
        "res": Residual(nn.Linear(4, 4), depth_noise=LAW)})
    norms = norm_relevance(layers)
    scales.learn_scales(layers)
    got = relevance(layers)
    assert {k: v.shape for k, v in got.items()} == {k: v.shape for k, v in norms.items()}
    assert_close(got["lin"], torch.ones(4))


def test_relevance_by_scale_without_scales_is_an_error() -> None:
    with pytest.raises(ValueError, match=r"relevance\(by='scale'\) needs learned scales"):
        relevance(_model(), by="scale")


def test_auto_threshold_without_learned_scales_is_an_error() -> None:
    with pytest.raises(ValueError, match="no learned scales, so the fit sets no threshold"):
        prune(_model(), threshold="auto")


def test_learning_scales_twice_is_an_error() -> None:
    model = _model()
    scales.learn_scales(model)
    with pytest.raises(ValueError, match="already has learned scales"):
        scales.variational(model)


@pytest.mark.parametrize("inference", ["map", "vi"])
def test_auto_pruning_equals_the_zeroed_point_model(inference) -> None:
    model = _model()
    if inference == "map":
        scales.learn_scales(model, "log_uniform")
        with torch.no_grad():
            model[0].parametrizations.weight[0].scales[0].log_scale[0, [1, 3]] = -12.0
            model[2].block[0].parametrizations.weight[0].scales[0].log_scale.fill_(-12.0)
    else:
        scales.variational(model, "log_uniform", init_std=0.05)
        with torch.no_grad():  # inputs 1, 3 and block 2: posterior means buried in their spread
            model[0].parametrizations.weight.original[:, [1, 3]] = 1e-4
            for m in model[2].block.modules():
                for name in list(getattr(m, "parametrizations", {})):
                    m.parametrizations[name].original.fill_(1e-4)
    result = prune(model, threshold="auto")
    assert result.kept["0"].tolist() == [0, 2, 4]
    assert result.kept["residual_blocks"].tolist() == [1]
    assert isinstance(result.model[3], nn.Identity)  # after the SelectFeatures front
    zeroed = scales.collapse(copy.deepcopy(model))
    with torch.no_grad():
        zeroed[0].weight[:, [1, 3]] = 0.0
    zeroed[2].depth_noise = _zero_mean_law()
    x = torch.randn(9, 5, dtype=f64)
    zeroed.eval(), result.model.eval()
    assert_close(result.model(x), zeroed(x))
    assert result.params_after < result.params_before


def test_max_kept_caps_the_fits_choice_at_the_highest_scales() -> None:
    model = _model()
    scales.learn_scales(model, "log_uniform")
    logs = torch.tensor([0.5, -12.0, 0.2, -12.0, 0.3], dtype=f64)  # the fit keeps 0, 2 and 4
    with torch.no_grad():
        model[0].parametrizations.weight[0].scales[0].log_scale[0] = logs
    assert prune(model, threshold="auto").kept["0"].tolist() == [0, 2, 4]
    result = prune(model, threshold="auto", max_kept={"0": 2})
    expected = sorted(np.argsort(-logs.numpy(), kind="stable")[:2].tolist())  # 0 and 4
    assert result.kept["0"].tolist() == expected == [0, 4]
    zeroed = scales.collapse(copy.deepcopy(model))
    with torch.no_grad():
        zeroed[0].weight[:, [1, 2, 3]] = 0.0
    x = torch.randn(9, 5, dtype=f64)
    zeroed.eval(), result.model.eval()
    assert_close(result.model(x), zeroed(x))
    # a cap above what the fit keeps changes nothing
    assert prune(model, threshold="auto", max_kept={"0": 4}).kept["0"].tolist() == [0, 2, 4]


def test_max_kept_caps_conv_filters_by_their_scales() -> None:
    torch.manual_seed(1)
    model = nn.Sequential(NoisyConv2d(1, 6, 3, LAW, "filter"), nn.ReLU(), nn.Flatten(),
                          NoisyLinear(6 * 4 * 4, 3, LAW)).double()
    scales.learn_scales(model, "log_uniform")
    logs = torch.tensor([0.1, -0.4, 0.9, -12.0, 0.3, -0.2], dtype=f64)
    layer_scales = model[0].parametrizations.weight[0].scales[0].log_scale
    with torch.no_grad():
        layer_scales.copy_(logs.reshape(layer_scales.shape))
    example = torch.randn(2, 1, 6, 6, dtype=f64)
    result = prune(model, threshold="auto", layers=["0"], max_kept={"0": 3},
                   example_input=example)
    assert result.kept["0"].tolist() == sorted(np.argsort(-logs.numpy())[:3].tolist())
    zeroed = scales.collapse(copy.deepcopy(model))
    with torch.no_grad():
        zeroed[0].weight[[1, 3, 5]] = 0.0
        zeroed[0].bias[[1, 3, 5]] = 0.0
    zeroed.eval(), result.model.eval()
    assert_close(result.model(example), zeroed(example))


@pytest.mark.parametrize(("max_kept", "match"), [
    ({"0": 0}, r"max_kept\['0'\] must be an integer >= 1, got 0"),
    ({"0": 1.5}, r"max_kept\['0'\] must be an integer >= 1, got 1.5"),
    ({"9": 1}, r"layer '9' is not a noisy layer"),
    ({"2": 1}, r"max_kept names layer '2', which is an ADD block"),
])
def test_bad_max_kept_is_an_error(max_kept, match) -> None:
    model = _model()
    scales.learn_scales(model, "log_uniform")
    with pytest.raises(ValueError, match=match):
        prune(model, threshold="auto", max_kept=max_kept)


def _zero_mean_law():
    from dropprior.noise import Gaussian

    return Gaussian(0.0, 1.0)  # E[τ] = 0: the eval model with the block switched off


def test_collapsing_a_copy_leaves_the_original_parametrized() -> None:
    model = _model()
    scales.learn_scales(model)
    x = torch.randn(3, 5, dtype=f64)
    before = model.eval()(x)
    point = scales.collapse(copy.deepcopy(model))
    assert not scales.has_scales(point) and scales.has_scales(model)
    assert type(point[0]) is NoisyLinear
    assert_close(model(x), before)
    assert_close(point.eval()(x), before)


def test_auto_pruning_that_would_empty_a_layer_says_so() -> None:
    model = _model()
    scales.learn_scales(model, "log_uniform")
    with torch.no_grad():
        model[0].parametrizations.weight[0].scales[0].log_scale.fill_(-12.0)
    with pytest.raises(ValueError, match=r"fit switched off every group of layer '0' "
                                         r"\(threshold='auto'\)"):
        prune(model, threshold="auto")


def test_a_forward_pass_draws_each_variational_tensor_once() -> None:
    layer = NoisyLinear(4, 3, LAW).double()
    conv = NoisyConv2d(2, 3, 3, LAW, "filter").double()
    for module, x in ((layer, torch.randn(5, 4, dtype=f64)),
                      (conv, torch.randn(2, 2, 6, 6, dtype=f64))):
        scales.variational(module, "log_uniform")
        calls = []
        for _, plist in module.parametrizations.items():
            plist[0].register_forward_hook(lambda *_, calls=calls: calls.append(1))
        module.train()(x)
        assert len(calls) == 2  # the weight and the bias, once each


def _stream_model() -> nn.Sequential:
    torch.manual_seed(1)
    block = lambda: nn.Sequential(nn.Linear(6, 6), nn.ReLU(), nn.Linear(6, 6))  # noqa: E731
    return nn.Sequential(NoisyLinear(5, 6, LAW), nn.ReLU(),
                         Residual(block(), depth_noise=LAW), Residual(block(), depth_noise=LAW),
                         NoisyLinear(6, 1, LAW)).double()


@pytest.mark.parametrize("blocks_off", [[2], [2, 3]])
def test_pruning_the_residual_streams_units_equals_the_zeroed_model(blocks_off) -> None:
    model = _stream_model()
    scales.learn_scales(model, "log_uniform")
    with torch.no_grad():
        model[4].parametrizations.weight[0].scales[0].log_scale[0, [0, 4]] = -12.0
        for b in blocks_off:
            model[b].block[0].parametrizations.weight[0].scales[0].log_scale.fill_(-12.0)
    result = prune(model, threshold="auto")
    assert result.kept["4"].tolist() == [1, 2, 3, 5]
    zeroed = scales.collapse(copy.deepcopy(model))
    with torch.no_grad():
        zeroed[4].weight[:, [0, 4]] = 0.0
    for b in blocks_off:
        zeroed[b].depth_noise = _zero_mean_law()
    x = torch.randn(9, 5, dtype=f64)
    zeroed.eval(), result.model.eval()
    assert_close(result.model(x), zeroed(x))
    first, last = (m for m in result.model if isinstance(m, NoisyLinear))
    assert last.weight.shape == (1, 4)
    if blocks_off == [2]:  # block 3 still reads the whole stream: the layer selects its inputs
        assert isinstance(result.model[-2], SelectFeatures)
        assert first.weight.shape == (6, 5)
    else:  # no block left: the first layer's rows go
        assert not isinstance(result.model[-2], SelectFeatures)
        assert first.weight.shape == (4, 5)
    assert result.params_after < result.params_before


@pytest.mark.parametrize("structure", ["unit", "unit+layer"])
def test_pruning_a_blocks_input_units_equals_the_zeroed_model(structure) -> None:
    torch.manual_seed(2)
    block = nn.Sequential(nn.Linear(6, 6), nn.ReLU(), nn.Linear(6, 6))
    model = nn.Sequential(nn.Linear(5, 6), nn.ReLU(),
                          Residual(block, unit_noise=LAW,
                                   depth_noise=LAW if structure == "unit+layer" else None),
                          nn.Linear(6, 1)).double()
    scales.learn_scales(model, "log_uniform")
    with torch.no_grad():
        model[2].block[0].parametrizations.weight[0].scales[0].log_scale[0, [1, 2, 5]] = -12.0
    result = prune(model, threshold="auto")
    assert result.kept["2"].tolist() == [0, 3, 4]
    inner = result.model[2].block
    assert isinstance(inner[0], SelectFeatures) and inner[1].weight.shape == (6, 3)
    zeroed = scales.collapse(copy.deepcopy(model))
    with torch.no_grad():
        zeroed[2].block[0].weight[:, [1, 2, 5]] = 0.0
    x = torch.randn(9, 5, dtype=f64)
    zeroed.eval(), result.model.eval()
    assert_close(result.model(x), zeroed(x))
    assert result.params_after < result.params_before


@pytest.mark.parametrize("read", [scales.collapse, scales.has_scales, scales.learned_scales,
                                  scales.noise_off, scales.variational, scales.learn_scales])
def test_a_non_module_is_a_type_error(read) -> None:
    """collapse(3) raised "'int' object has no attribute 'modules'" from inside the loop."""
    with pytest.raises(TypeError, match="expected a torch.nn.Module, got int"):
        read(3)
