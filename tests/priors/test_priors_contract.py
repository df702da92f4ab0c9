"""Contracts of every marginal: registry dispatch, shapes, validation, the atom, gradients."""

from __future__ import annotations

import math

import pytest
import torch

from dropprior.noise import (
    Bernoulli,
    Beta,
    Gaussian,
    HalfCauchy,
    InverseNakagami,
    LogNormal,
    Rayleigh,
    Uniform,
)
from dropprior.priors import (
    Horseshoe,
    Laplace,
    QuadratureMarginal,
    ScaleMixture,
    SpikeAndSlab,
    StudentT,
    VarianceGamma,
)

LAWS = {
    "bernoulli": (lambda: Bernoulli(0.8, inverted=True), SpikeAndSlab),
    "gaussian_mean0": (lambda: Gaussian(0.0, 0.7), VarianceGamma),
    "gaussian_dropout": (lambda: Gaussian(1.0, 0.5), QuadratureMarginal),
    "rayleigh": (lambda: Rayleigh(0.8), Laplace),
    "inverse_nakagami": (lambda: InverseNakagami(1.5, 2.0), StudentT),
    "half_cauchy": (lambda: HalfCauchy(0.6), Horseshoe),
    "beta": (lambda: Beta(2.0, 3.0), QuadratureMarginal),
    "uniform": (lambda: Uniform(0.5, 1.5), QuadratureMarginal),
    "log_normal": (lambda: LogNormal(-0.2, 0.6), QuadratureMarginal),
}
NAMES = sorted(LAWS)


@pytest.mark.parametrize("name", NAMES)
def test_registry_pairs_each_law_with_its_marginal(name):
    build, expected = LAWS[name]
    law = build()
    prior = law.marginal(1.5, group_size=2)
    assert type(prior) is expected
    assert prior.law is law and prior.group_size == 2
    torch.testing.assert_close(prior.sigma0, torch.tensor(1.5))


@pytest.mark.parametrize("dim", [1, 3])
@pytest.mark.parametrize("name", NAMES)
def test_shapes_generator_and_batch(name, dim):
    build, _ = LAWS[name]
    prior = build().marginal(torch.tensor([0.5, 1.0, 2.0]), group_size=dim)
    event = () if dim == 1 else (dim,)
    assert prior.batch_shape == (3,) and prior.event_shape == event
    w = prior.sample((4,), generator=torch.Generator().manual_seed(0))
    again = prior.sample((4,), generator=torch.Generator().manual_seed(0))
    assert w.shape == (4, 3, *event)
    torch.testing.assert_close(w, again)
    lp = prior.log_prob(w)
    assert lp.shape == (4, 3) and bool(torch.isfinite(lp).all())
    # each batch entry equals the scalar prior with that σ0
    single = build().marginal(2.0, group_size=dim)
    torch.testing.assert_close(lp[:, 2], single.log_prob(w[:, 2]))
    assert prior.expand((2, 3)).batch_shape == (2, 3)


@pytest.mark.parametrize("name", NAMES)
def test_bad_input_is_a_clear_error(name):
    build, _ = LAWS[name]
    group = build().marginal(1.0, group_size=3)
    with pytest.raises(ValueError, match="trailing dimension group_size=3"):
        group.log_prob(torch.zeros(5, 2))
    with pytest.raises(ValueError, match="nan"):
        build().marginal(1.0).log_prob(torch.tensor([0.1, math.nan]))
    with pytest.raises(TypeError, match="torch.Tensor"):
        build().marginal(1.0).log_prob([0.1])  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"sample_shape must hold sizes >= 0, got \(2, -1\)"):
        group.sample((2, -1))
    with pytest.raises(ValueError, match="group_size=1 only"):
        group.cdf(torch.zeros(5, 3))
    with pytest.raises(ValueError, match="sigma0"):
        build().marginal(-1.0)
    with pytest.raises(ValueError, match="group_size"):
        build().marginal(1.0, group_size=0)


def test_spike_and_slab_atom_convention():
    prior = SpikeAndSlab(keep=0.75, slab_scale=2.0, group_size=2)
    torch.testing.assert_close(prior.atom_mass, torch.tensor(0.25))
    torch.testing.assert_close(prior.log_prob_atom(), torch.tensor(math.log(0.25)))
    w = torch.tensor([[0.0, 0.0], [0.0, 1.0], [1e-300, 0.0]])
    slab = torch.distributions.Normal(0.0, 2.0).log_prob(w).sum(-1)
    expected = torch.stack([torch.tensor(math.log(0.25)), math.log(0.75) + slab[1],
                            math.log(0.75) + slab[2]])
    torch.testing.assert_close(prior.log_prob(w), expected)
    torch.testing.assert_close(prior.log_prob_slab(w), slab)
    one = SpikeAndSlab(keep=0.75, slab_scale=2.0)
    x = torch.tensor([-1.0, 0.0, 1.0])
    phi = torch.distributions.Normal(0.0, 2.0).cdf(x)
    torch.testing.assert_close(one.cdf(x), 0.25 * (x >= 0) + 0.75 * phi)
    # inverted Bernoulli noise: slab scale σ0/π
    torch.testing.assert_close(Bernoulli(0.5, inverted=True).marginal(3.0).slab_scale,
                               torch.tensor(6.0))


def test_poles_and_finite_values_at_zero():
    zero = torch.tensor(0.0)
    assert Horseshoe(1.0).log_prob(zero) == math.inf
    assert VarianceGamma(1.0).log_prob(zero) == math.inf
    assert Gaussian(1.0, 0.5).marginal(1.0).log_prob(zero) == math.inf  # log pole, p(0) > 0
    torch.testing.assert_close(Laplace(2.0).log_prob(zero), torch.tensor(-math.log(4.0)))
    # LogNormal noise: E[ξ^-1] finite, so p(0) = E[ξ^-1]/(σ0 √(2π))
    law = LogNormal(-0.2, 0.6)
    expected = math.exp(0.2 + 0.6**2 / 2) / math.sqrt(2 * math.pi)
    torch.testing.assert_close(law.marginal(1.0).log_prob(zero),
                               torch.tensor(math.log(expected)), rtol=1e-10, atol=1e-10)
    # Laplace group, D = 3: ν = -1/2 < 0, the density has a pole
    assert Laplace(1.0, group_size=3).log_prob(torch.zeros(3)) == math.inf


def test_no_mass_at_infinity():
    """log p(±inf) is -inf for every marginal (variance-gamma's Bessel form gave nan), the cdf
    is 1 at +inf and 0 at -inf, and a group with one infinite entry has log density -inf while
    the others keep theirs."""
    inf = torch.tensor([math.inf, -math.inf, 0.5], dtype=torch.float64)
    for prior in (Laplace(1.0), Horseshoe(1.0), VarianceGamma(1.0), StudentT(3.0),
                  SpikeAndSlab(0.5, 1.0), Gaussian(1.0, 0.5).marginal(1.0)):
        out = prior.log_prob(inf)
        assert out[:2].tolist() == [-math.inf, -math.inf], prior
        assert math.isfinite(float(out[2])), prior
        cdf = prior.cdf(inf)  # the quadrature marginals crashed sizing their panels
        assert cdf[:2].tolist() == [1.0, 0.0], prior
        assert float(cdf[2]) == pytest.approx(float(prior.cdf(inf[2:])[0])), prior
    group = torch.tensor([[0.1, math.inf, 0.2], [0.1, 0.3, 0.2]], dtype=torch.float64)
    out = VarianceGamma(1.0, group_size=3).log_prob(group)
    assert float(out[0]) == -math.inf
    torch.testing.assert_close(out[1], VarianceGamma(1.0, group_size=3).log_prob(group[1]))


@pytest.mark.parametrize("name", ["gaussian_mean0", "rayleigh", "inverse_nakagami",
                                  "half_cauchy", "gaussian_dropout", "log_normal"])
def test_gradients_flow_to_w_and_the_law(name):
    build, _ = LAWS[name]
    law = build()
    key = list(law.params())[-1]  # a scale parameter (std, scale, spread)
    param = law.params()[key].clone().requires_grad_(True)
    law = type(law)(**{**law.params(), key: param})
    w = torch.tensor([0.3, -1.2], requires_grad=True)
    law.marginal(1.0).log_prob(w).sum().backward()
    assert w.grad is not None and bool(torch.isfinite(w.grad).all())
    assert param.grad is not None and bool(torch.isfinite(param.grad))
    # the gradient in w matches a central finite difference
    prior = build().marginal(1.0)
    eps = 1e-6
    x = torch.tensor(0.7)
    fd = (prior.log_prob(x + eps) - prior.log_prob(x - eps)) / (2 * eps)
    xg = x.clone().requires_grad_(True)
    prior.log_prob(xg).backward()
    torch.testing.assert_close(xg.grad, fd, rtol=1e-6, atol=1e-8)


def test_rsample_gives_pathwise_gradients():
    scale = torch.tensor(0.8, requires_grad=True)
    prior = Rayleigh(scale).marginal(1.0)
    assert prior.has_rsample
    prior.rsample((100,), generator=torch.Generator().manual_seed(0)).abs().mean().backward()
    assert scale.grad is not None and float(scale.grad) > 0
    with pytest.raises(NotImplementedError, match="rsample"):
        Bernoulli(0.5).marginal(1.0).rsample((2,))


def test_quadrature_refuses_discrete_laws_and_wrong_pairings():
    with pytest.raises(ValueError, match="discrete"):
        QuadratureMarginal(Bernoulli(0.5))
    with pytest.raises(TypeError, match="zero-mean Gaussian"):
        VarianceGamma.from_law(Gaussian(1.0, 1.0))
    with pytest.raises(TypeError, match="Rayleigh"):
        Laplace.from_law(HalfCauchy(1.0))


def test_direct_constructors_equal_the_registry():
    w = torch.tensor([-2.0, 0.1, 3.0])
    torch.testing.assert_close(Laplace(1.6).log_prob(w), Rayleigh(0.8).marginal(2.0).log_prob(w))
    torch.testing.assert_close(StudentT(3.0, 0.5).log_prob(w),
                               InverseNakagami(1.5, 4.0).marginal(1.0).log_prob(w))
    torch.testing.assert_close(Horseshoe(0.3).log_prob(w),
                               HalfCauchy(0.1).marginal(3.0).log_prob(w))
    torch.testing.assert_close(VarianceGamma(1.4).log_prob(w),
                               Gaussian(0.0, 0.7).marginal(2.0).log_prob(w))
    assert isinstance(Laplace(1.0), ScaleMixture)


def test_variance_is_sigma0_squared_times_second_moment():
    prior = Gaussian(1.0, 0.5).marginal(2.0, group_size=2)
    torch.testing.assert_close(prior.variance, torch.full((2,), 4.0 * 1.25))
    assert Horseshoe(1.0).variance == math.inf


@pytest.mark.parametrize("build, match", [
    (lambda: SpikeAndSlab(keep=1.5), "keep"),
    (lambda: SpikeAndSlab(keep=0.5, slab_scale=0.0), "slab_scale"),
    (lambda: Laplace(-1.0), "scale"),
    (lambda: Horseshoe(math.inf), "scale"),
    (lambda: VarianceGamma(0.0), "scale"),
    (lambda: StudentT(0.5, 1.0), "df"),
    (lambda: StudentT(3.0, -2.0), "scale"),
])
def test_direct_constructors_name_the_bad_parameter(build, match):
    with pytest.raises(ValueError, match=match):
        build()
