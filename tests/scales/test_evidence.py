"""The evidence rule: each variational group's ELBO change when it is switched off, against an
explicit computation (the point model's Gaussian log-likelihood with the group's weights zeroed by
hand, and torch.distributions' KL), and the decisions it gives where the SNR rule fails."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.distributions import Normal, kl_divergence
from torch.testing import assert_close

from dropprior import scales
from dropprior.likelihoods import Gaussian
from dropprior.nn import NoisyLinear, Residual
from dropprior.noise import InverseNakagami
from dropprior.pruning import prune

f64 = torch.float64
LAW = InverseNakagami(2.0, 1.0)
NOISE = 0.5


def _vi_model() -> nn.Sequential:
    torch.manual_seed(3)
    model = nn.Sequential(NoisyLinear(4, 5, LAW), nn.ReLU(),
                          Residual(nn.Sequential(nn.Linear(5, 5), nn.ReLU(), nn.Linear(5, 5)),
                                   depth_noise=LAW),
                          NoisyLinear(5, 1, LAW)).double()
    scales.variational(model, "log_uniform", init_std=0.2)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, scales.ScaleVariance):
                m.variance.uniform_(0.5, 2.0)
    return model


def _params(model: nn.Sequential) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    """name → (μ, σ) of every variational tensor, read from the parametrizations by hand."""
    out = {}
    for name, module in model.named_modules():
        for pname, plist in getattr(module, "parametrizations", {}).items():
            out[f"{name}.{pname}"] = (plist.original.detach(), plist[0].std().detach())
    return out


def _stream(p: dict, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The first layer's output h and the block's contribution, written out."""
    h = F.relu(F.linear(x, p["0.weight"], p["0.bias"]))
    inner = F.linear(F.relu(F.linear(h, p["2.block.0.weight"], p["2.block.0.bias"])),
                     p["2.block.2.weight"], p["2.block.2.bias"])
    return h, inner


def _point_loglik(p: dict, x: torch.Tensor, y: torch.Tensor,
                  block: torch.Tensor | None = None) -> float:
    """Σ_n log N(y_n | f(x_n; μ), NOISE²) of the point network, written out (``block``: the
    block's contribution held at this value instead)."""
    h, inner = _stream(p, x)
    h = h + (inner if block is None else block)
    out = F.linear(h, p["3.weight"], p["3.bias"])
    return float(Normal(out, NOISE).log_prob(y).sum())


def _prior_std(model: nn.Sequential, name: str, sigma0: float) -> torch.Tensor:
    """σ0 √(∏ v) for the tensor ``name``: ARD columns on the noisy linears, the block's v."""
    v = {m.group_name: m.variance.detach() for m in model.modules()
         if isinstance(m, scales.ScaleVariance)}
    if name.startswith("2."):
        return sigma0 * v["2:layer"].sqrt()
    layer = name.split(".")[0]
    if name.endswith("weight"):
        return sigma0 * v[f"{layer}:unit"].sqrt()
    return torch.tensor(sigma0, dtype=f64)


@pytest.mark.parametrize("beta", [1.0, 0.1])
def test_evidence_matches_an_explicit_elbo_difference(beta) -> None:
    model = _vi_model()
    sigma0 = 0.7
    x = torch.randn(40, 4, dtype=f64)
    y = torch.randn(40, 1, dtype=f64)
    delta = scales.group_evidence(model, Gaussian(NOISE), x, y, sigma0, prior_weight=beta)
    p = {k: mu for k, (mu, _) in _params(model).items()}
    base = _point_loglik(p, x, y)
    kl = {k: kl_divergence(Normal(mu, sd), Normal(torch.zeros_like(mu),
                                                   _prior_std(model, k, sigma0)))
          for k, (mu, sd) in _params(model).items()}
    for j in range(4):  # input j of layer 0: its weight column
        q = dict(p)
        q["0.weight"] = p["0.weight"].clone()
        q["0.weight"][:, j] = 0.0
        expected = base - _point_loglik(q, x, y) - beta * float(kl["0.weight"][:, j].sum())
        assert_close(float(delta["0:unit"][0, j]), expected)
    block = {k: v for k, v in p.items() if k.startswith("2.")}  # the ADD group: all of it
    q = dict(p, **{k: torch.zeros_like(v) for k, v in block.items()})
    expected = base - _point_loglik(q, x, y) - beta * sum(float(kl[k].sum()) for k in block)
    assert_close(float(delta["2:layer"].reshape(())), expected)
    for j in range(5):  # the last layer's units, behind the residual stream
        q = dict(p)
        q["3.weight"] = p["3.weight"].clone()
        q["3.weight"][:, j] = 0.0
        expected = base - _point_loglik(q, x, y) - beta * float(kl["3.weight"][:, j].sum())
        assert_close(float(delta["3:unit"][0, j]), expected)
    assert_close(scales.group_kl(model, sigma0)["0:unit"],
                 kl["0.weight"].sum(0, keepdim=True))


def test_mean_replacement_evidence_holds_each_group_at_its_mean() -> None:
    """Each group switched off by holding its contribution at its mean over the examples: an
    input's column zeroed and its mean contribution added to the bias, the block's output held
    at its mean, written out by hand."""
    model = _vi_model()
    sigma0 = 0.7
    x = torch.randn(40, 4, dtype=f64) + 1.5  # inputs far from zero: the means matter
    y = torch.randn(40, 1, dtype=f64)
    delta = scales.group_evidence(model, Gaussian(NOISE), x, y, sigma0, mean_replacement=True)
    zeroed = scales.group_evidence(model, Gaussian(NOISE), x, y, sigma0)
    p = {k: mu for k, (mu, _) in _params(model).items()}
    kl = scales.group_kl(model, sigma0)
    base = _point_loglik(p, x, y)
    for j in range(4):
        q = dict(p)
        q["0.weight"] = p["0.weight"].clone()
        q["0.weight"][:, j] = 0.0
        q["0.bias"] = p["0.bias"] + p["0.weight"][:, j] * x[:, j].mean()
        expected = base - _point_loglik(q, x, y) - float(kl["0:unit"][0, j])
        assert_close(float(delta["0:unit"][0, j]), expected)
    h, inner = _stream(p, x)
    expected = base - _point_loglik(p, x, y, block=inner.mean(0)) - float(kl["2:layer"].sum())
    assert_close(float(delta["2:layer"].reshape(())), expected)
    stream = h + inner
    for j in range(5):
        q = dict(p)
        q["3.weight"] = p["3.weight"].clone()
        q["3.weight"][:, j] = 0.0
        q["3.bias"] = p["3.bias"] + p["3.weight"][:, j] * stream[:, j].mean()
        expected = base - _point_loglik(q, x, y) - float(kl["3:unit"][0, j])
        assert_close(float(delta["3:unit"][0, j]), expected)
    assert (delta["0:unit"] != zeroed["0:unit"]).all()  # the means changed the scores
    with pytest.raises(ValueError, match="mean_replacement=True applies to the per-group"):
        scales.kept_groups(model, (Gaussian(NOISE), x, y), sigma0, joint=True,
                           mean_replacement=True)


def test_a_subsample_is_scaled_to_all_examples() -> None:
    model = _vi_model()
    x = torch.randn(30, 4, dtype=f64).repeat(4, 1)  # 120 rows, 30 distinct, each 4 times
    y = torch.randn(30, 1, dtype=f64).repeat(4, 1)
    full = scales.group_evidence(model, Gaussian(NOISE), x[:30], y[:30], 1.0)
    kl = scales.group_kl(model, 1.0)
    whole = scales.group_evidence(model, Gaussian(NOISE), x, y, 1.0)
    for name in full:  # N·ℓ̄ over 120 rows is 4 × the likelihood term of the 30 distinct rows
        assert_close(whole[name] + kl[name], 4 * (full[name] + kl[name]))
    part = scales.group_evidence(model, Gaussian(NOISE), x, y, 1.0, max_examples=50)
    assert not torch.allclose(part["0:unit"], whole["0:unit"])  # a subsample, scaled by 120/50


def _wide_model(n: int = 2_000) -> tuple[nn.Sequential, torch.Tensor, torch.Tensor]:
    """Input 0 feeds 40 hidden units with small weights (μ = 0.1, σ = 0.3: SNR 1/3) that jointly
    carry the signal; input 1 is unused (μ = 0)."""
    torch.manual_seed(0)
    model = nn.Sequential(NoisyLinear(2, 40, LAW), nn.ReLU(), nn.Linear(40, 1)).double()
    scales.variational(model, "log_uniform", init_std=0.3)
    with torch.no_grad():
        model[0].parametrizations.weight.original.zero_()
        model[0].parametrizations.weight.original[:, 0] = 0.1
        model[0].parametrizations.bias.original.zero_()
        model[2].parametrizations.weight.original.fill_(0.25)
        model[2].parametrizations.bias.original.zero_()
    x = torch.randn(n, 2, dtype=f64).abs()
    y = model.eval()(x).detach() + NOISE * torch.randn(n, 1, dtype=f64)
    return model, x, y


def test_a_wide_useful_group_is_kept_by_evidence_where_its_snr_drops_it() -> None:
    model, x, y = _wide_model()
    snr = scales.group_snr(model)["0:unit"].reshape(-1)
    assert snr[0] < 1  # the SNR rule would switch off the input that carries the signal
    assert scales.kept_groups(model)["0:unit"].reshape(-1).tolist() == [False, False]
    kept = scales.kept_groups(model, data=(Gaussian(NOISE), x, y))["0:unit"].reshape(-1)
    assert kept.tolist() == [True, False]
    result = prune(model, threshold="auto", data=(Gaussian(NOISE), x, y), layers=["0"])
    assert result.kept["0"].tolist() == [0]
    decided = scales.kept_groups(model, data=(Gaussian(NOISE), x, y))
    again = prune(model, threshold="auto", decisions=decided, layers=["0"])
    assert again.kept["0"].tolist() == [0]
    assert torch.equal(again.model.eval()(x), result.model.eval()(x))
    with pytest.raises(ValueError, match="not both"):
        prune(model, threshold="auto", decisions=decided, data=(Gaussian(NOISE), x, y))
    with pytest.raises(ValueError, match="decisions= serves threshold='auto'"):
        prune(model, keep=0.5, decisions=decided)


def test_evidence_needs_a_variational_model_and_matching_data() -> None:
    model = nn.Sequential(NoisyLinear(2, 3, LAW), nn.ReLU(), nn.Linear(3, 1)).double()
    scales.learn_scales(model, "log_uniform")
    x, y = torch.randn(5, 2, dtype=f64), torch.randn(5, 1, dtype=f64)
    with pytest.raises(ValueError, match="type-II MAP model is decided by its scales"):
        scales.kept_groups(model, data=(Gaussian(NOISE), x, y))
    with pytest.raises(ValueError, match="needs a variational model"):
        scales.group_kl(model, 1.0)
    vi, x, y = _wide_model(20)
    with pytest.raises(ValueError, match="matching non-empty data, got x with 20 and y with 19"):
        scales.group_evidence(vi, Gaussian(NOISE), x, y[:19], 1.0)
    with pytest.raises(ValueError, match="data= serves threshold='auto'"):
        prune(vi, keep=0.5, data=(Gaussian(NOISE), x, y))
    # each of these switched every group off (nan data, sigma0 = 0) or failed deep inside
    bad = y.clone()
    bad[3] = math.nan
    with pytest.raises(ValueError, match=r"y holds 1 non-finite value\(s\) .* example 3"):
        scales.kept_groups(vi, data=(Gaussian(NOISE), x, bad))
    with pytest.raises(ValueError, match="sigma0 must be a finite number > 0 .*, got 0.0"):
        scales.kept_groups(vi, data=(Gaussian(NOISE), x, y), sigma0=0.0)
    with pytest.raises(ValueError, match="max_examples must be an int >= 1, got 0"):
        scales.group_evidence(vi, Gaussian(NOISE), x, y, 1.0, max_examples=0)
    with pytest.raises(ValueError, match="batch_size must be an int >= 1, got 0"):
        scales.joint_evidence_kept(vi, Gaussian(NOISE), x, y, 1.0, batch_size=0)
    with pytest.raises(TypeError, match="likelihood must be a dropprior Likelihood, got str"):
        scales.group_evidence(vi, "gaussian", x, y, 1.0)
    with pytest.raises(ValueError, match=r"data must be the fit's \(likelihood, x, y\), got "
                                         r"tuple of 2"):
        scales.kept_groups(vi, data=(x, y))


def test_evidence_leaves_the_model_as_it_was() -> None:
    model, x, y = _wide_model(50)
    model.train()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    scales.group_evidence(model, Gaussian(NOISE), x, y, 1.0)
    assert model.training and scales.has_scales(model)
    for k, v in model.state_dict().items():
        assert torch.equal(v, before[k]), k
    assert math.isfinite(float(scales.group_kl(model, 1.0)["0:unit"].sum()))


def _zero(p: dict, entry: tuple[str, int]) -> dict:
    """The point parameters with one group entry zeroed by hand."""
    name, j = entry
    q = dict(p)
    if name == "2:layer":
        return dict(q, **{k: torch.zeros_like(v) for k, v in p.items() if k.startswith("2.")})
    key = "0.weight" if name == "0:unit" else "3.weight"
    q[key] = p[key].clone()
    q[key][:, j] = 0.0
    return q


@pytest.mark.parametrize("beta", [1.0, 0.05])
def test_joint_rule_removes_the_best_prefix_by_exhaustive_search(beta) -> None:
    model = _vi_model()
    sigma0 = 0.7
    g = torch.Generator().manual_seed(5)
    x = torch.randn(60, 4, dtype=f64, generator=g)
    y = torch.randn(60, 1, dtype=f64, generator=g)
    p = {k: mu for k, (mu, _) in _params(model).items()}
    kl = {k: kl_divergence(Normal(mu, sd), Normal(torch.zeros_like(mu),
                                                   _prior_std(model, k, sigma0)))
          for k, (mu, sd) in _params(model).items()}

    def entry_kl(entry: tuple[str, int]) -> float:
        name, j = entry
        if name == "2:layer":
            return sum(float(v.sum()) for k, v in kl.items() if k.startswith("2."))
        return float(kl["0.weight" if name == "0:unit" else "3.weight"][:, j].sum())

    def joint_delta(entries: list[tuple[str, int]]) -> float:
        q = dict(p)
        for e in entries:
            q = _zero(q, e)
        return (_point_loglik(p, x, y) - _point_loglik(q, x, y)
                - beta * sum(entry_kl(e) for e in entries))

    entries = [("0:unit", j) for j in range(4)] + [("2:layer", 0)] + \
        [("3:unit", j) for j in range(5)]
    single = {e: joint_delta([e]) for e in entries}
    # cheapest likelihood cost first: Δ_g + β KL_g
    candidates = sorted((e for e in entries if single[e] <= 0),
                        key=lambda e: single[e] + beta * entry_kl(e))
    best_k = min(range(len(candidates) + 1),
                 key=lambda k: (joint_delta(candidates[:k]), k))
    removed = set(candidates[:best_k])
    kept = scales.kept_groups(model, (Gaussian(NOISE), x, y), sigma0, prior_weight=beta,
                              joint=True)
    got = {(name, j) for name, mask in kept.items()
           for j, on in enumerate(mask.reshape(-1).tolist()) if not on}
    assert got == removed
    assert len(candidates) >= 2  # the case is not trivial
    per_group = scales.kept_groups(model, (Gaussian(NOISE), x, y), sigma0, prior_weight=beta)
    dropped = {(name, j) for name, mask in per_group.items()
               for j, on in enumerate(mask.reshape(-1).tolist()) if not on}
    assert removed <= dropped  # the joint rule removes a subset of the per-group candidates
    assert joint_delta(sorted(removed)) <= min(0.0, joint_delta(sorted(dropped))) + 1e-9


def test_joint_rule_needs_data() -> None:
    with pytest.raises(ValueError, match="joint=True decides variational groups by the evidence "
                                         "rule: pass data="):
        scales.kept_groups(_vi_model(), None, 0.7, joint=True)
