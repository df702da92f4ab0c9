"""fit(): loss decreases, early stopping, seeding, checkpoint/resume; predict(): MC summaries
against explicit computations; relevance/prune on a model with Residual blocks; bad input."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn
from torch.testing import assert_close

from dropprior._relevance import noise_scale, relevance
from dropprior.likelihoods import Categorical, Gaussian
from dropprior.nn import NoisyLinear, Residual
from dropprior.noise import Bernoulli, HalfCauchy, Rayleigh
from dropprior.objectives import output_samples
from dropprior.prediction import mc_mode, predict
from dropprior.pruning import count_flops, prune
from dropprior.training import fit


def _data(n: int = 64):
    g = torch.Generator().manual_seed(0)
    x = torch.randn(n, 3, generator=g)
    y = x[:, 0] - 2 * x[:, 1] + 0.1 * torch.randn(n, generator=g)
    return x, y


def _model(law=None) -> nn.Sequential:
    torch.manual_seed(0)
    law = law if law is not None else Bernoulli(0.8, inverted=True)
    return nn.Sequential(NoisyLinear(3, 16, law), nn.Tanh(), NoisyLinear(16, 1, law),
                         nn.Flatten(0))


def test_fit_decreases_loss_and_is_seeded() -> None:
    x, y = _data()
    a, b = _model(), _model()
    ha = fit(a, Gaussian(0.5), x, y, epochs=30, lr=0.02, batch_size=16, progress=False, seed=3)
    hb = fit(b, Gaussian(0.5), x, y, epochs=30, lr=0.02, batch_size=16, progress=False, seed=3)
    assert ha.train_loss[-1] < ha.train_loss[0] - 0.5
    assert ha.train_loss == hb.train_loss
    for pa, pb in zip(a.parameters(), b.parameters(), strict=True):
        assert_close(pa, pb)


def test_early_stopping_restores_best() -> None:
    x, y = _data()
    model = _model()
    h = fit(model, Gaussian(0.5), x, y, epochs=200, lr=0.05, validation=0.25, patience=3,
            progress=False, objective="marginal", samples=4)
    assert h.stopped_early and h.epochs_run < 200
    assert h.best_epoch == int(torch.tensor(h.val_loss).argmin())
    assert len(h.val_loss) == h.epochs_run


def test_checkpoint_resume_equals_straight_run(tmp_path) -> None:
    x, y = _data()
    straight = _model()
    fit(straight, Gaussian(0.5), x, y, epochs=6, batch_size=16, progress=False, seed=1)
    resumed = _model()
    path = tmp_path / "ckpt.pt"
    fit(resumed, Gaussian(0.5), x, y, epochs=3, batch_size=16, progress=False, seed=1,
        checkpoint=path)
    h = fit(resumed, Gaussian(0.5), x, y, epochs=6, batch_size=16, progress=False, seed=1,
            checkpoint=path, resume=True)
    assert h.epochs_run == 6 and len(h.train_loss) == 6
    for pa, pb in zip(straight.parameters(), resumed.parameters(), strict=True):
        assert_close(pa, pb)


def test_checkpoint_restores_layer_generators(tmp_path) -> None:
    """A restarted process rebuilds its layer generator from the same seed; resuming must put it
    back where the first run left it, or the noise draws after the resume differ."""
    x, y = _data()

    def model_with_generator() -> nn.Sequential:
        torch.manual_seed(0)
        gen = torch.Generator().manual_seed(123)
        law = Bernoulli(0.8, inverted=True)
        return nn.Sequential(NoisyLinear(3, 16, law, generator=gen), nn.Tanh(),
                             NoisyLinear(16, 1, law, generator=gen), nn.Flatten(0))

    straight = model_with_generator()
    fit(straight, Gaussian(0.5), x, y, epochs=4, batch_size=16, progress=False, seed=1)
    path = tmp_path / "ckpt.pt"
    fit(model_with_generator(), Gaussian(0.5), x, y, epochs=2, batch_size=16, progress=False,
        seed=1, checkpoint=path)
    resumed = model_with_generator()  # fresh generator at its initial state
    fit(resumed, Gaussian(0.5), x, y, epochs=4, batch_size=16, progress=False, seed=1,
        checkpoint=path, resume=True)
    for pa, pb in zip(straight.parameters(), resumed.parameters(), strict=True):
        assert_close(pa, pb)
    other = nn.Sequential(NoisyLinear(3, 16, Bernoulli(0.8, inverted=True)), nn.Tanh(),
                          NoisyLinear(16, 1, Bernoulli(0.8, inverted=True)), nn.Flatten(0))
    with pytest.raises(ValueError, match="layer generator"):
        fit(other, Gaussian(0.5), x, y, epochs=4, progress=False, checkpoint=path, resume=True)


def test_predict_regression_matches_explicit_mixture() -> None:
    x, _ = _data(10)
    model = _model()
    lik = Gaussian(0.3)
    torch.manual_seed(5)
    pred = predict(model, x, samples=50, likelihood=lik)
    torch.manual_seed(5)
    with torch.no_grad(), mc_mode(model):
        draws = output_samples(model, x, 50)
    assert_close(pred.mean, draws.mean(0))
    assert_close(pred.epistemic, draws.var(0, unbiased=False))
    assert_close(pred.variance, draws.var(0, unbiased=False) + 0.09)
    y = torch.zeros(10)
    ref = torch.logsumexp(torch.distributions.Normal(draws, 0.3).log_prob(y), 0) - math.log(50)
    assert_close(pred.log_density(y), ref)
    assert model.training  # modes restored
    scaled = predict(model, x, likelihood=lik, method="mean_scaling")
    model.eval()
    assert_close(scaled.mean, model(x).detach())


def test_predict_classification_probabilities() -> None:
    torch.manual_seed(0)
    model = nn.Sequential(NoisyLinear(4, 3, Bernoulli(0.5, inverted=True)))
    pred = predict(model, torch.randn(7, 4), samples=20, likelihood=Categorical())
    assert pred.probs.shape == (7, 3)
    assert_close(pred.probs.sum(1), torch.ones(7))


def test_bad_inputs_raise_clear_errors() -> None:
    x, y = _data(8)
    model = _model(HalfCauchy(1.0))
    with pytest.raises(ValueError, match="mean-scaling prediction needs E"):
        predict(model, x, method="mean_scaling", likelihood=None)
    with pytest.raises(ValueError, match="samples must be >= 1"):
        predict(model, x, samples=0, likelihood=None)
    with pytest.raises(ValueError, match="samples must be >= 1"):
        fit(model, Gaussian(1.0), x, y, samples=0, progress=False)
    with pytest.raises(ValueError, match=r"y has shape \(8, 1\)"):
        fit(model, Gaussian(1.0), x, y.unsqueeze(1), progress=False)
    with pytest.raises(TypeError, match="labels y must be integers"):
        fit(nn.Sequential(NoisyLinear(3, 2, Bernoulli(0.5))), Categorical(), x, y,
            progress=False)
    with pytest.raises(ValueError, match="objective='elbo' is not valid"):
        fit(model, Gaussian(1.0), x, y, objective="elbo", progress=False)
    with pytest.raises(ValueError, match=r"same number of examples .* got x \(8, 3\) and y "
                                         r"\(7,\)"):
        fit(model, Gaussian(1.0), x, y[:7], progress=False)
    with pytest.raises(ValueError, match=r"got x \(8, 3\) and y list"):
        fit(model, Gaussian(1.0), x, y.tolist(), progress=False)
    with pytest.raises(ValueError, match=r"a pair \(x_val, y_val\), got a tuple of 3"):
        fit(model, Gaussian(1.0), x, y, validation=(x, y, y), progress=False)
    with pytest.raises(ValueError, match="patience .* needs validation"):
        fit(model, Gaussian(1.0), x, y, patience=3, progress=False)
    with pytest.raises(ValueError, match="method='median' is not valid"):
        predict(model, x, method="median")
    with pytest.raises(TypeError, match="predict.. takes a torch.nn.Module, got int"):
        predict(3, x, likelihood=None)
    with pytest.raises(ValueError, match="batch_size must be an int >= 1 or None, got 2.5"):
        predict(model, x, likelihood=None, batch_size=2.5)
    with pytest.raises(ValueError, match="patience must be an int >= 0, got -1"):
        fit(model, Gaussian(1.0), x, y, validation=0.25, patience=-1, progress=False)
    with pytest.raises(TypeError, match="seed must be an int, got 1.5"):
        fit(model, Gaussian(1.0), x, y, seed=1.5, progress=False)
    with pytest.raises(TypeError, match="restore_best must be True or False, got 'no'"):
        fit(model, Gaussian(1.0), x, y, restore_best="no", progress=False)
    with pytest.raises(TypeError, match="vectorize must be True or False, got 'yes'"):
        fit(model, Gaussian(1.0), x, y, vectorize="yes", progress=False)
    with pytest.raises(ValueError, match=r"resume=True needs checkpoint=<path>"):
        fit(model, Gaussian(1.0), x, y, resume=True, progress=False)
    # an infinite lr trained to nan ("diverged"), lr=True trained at 1
    with pytest.raises(ValueError, match="lr must be a finite number > 0, got inf"):
        fit(model, Gaussian(1.0), x, y, lr=math.inf, progress=False)
    with pytest.raises(TypeError, match="lr must be a number, got True"):
        fit(model, Gaussian(1.0), x, y, lr=True, progress=False)
    with pytest.raises(ValueError, match=r"grad_clip must be a number in \(0, inf\], got 0"):
        fit(model, Gaussian(1.0), x, y, grad_clip=0, progress=False)
    with pytest.raises(TypeError, match="grad_clip must be a number, got '1'"):
        fit(model, Gaussian(1.0), x, y, grad_clip="1", progress=False)  # was Python's '>' error
    one_logit = nn.Sequential(NoisyLinear(3, 1, Bernoulli(0.5)))
    with pytest.raises(ValueError, match=r"C >= 2 classes, got shape \(8, 1\).*Bernoulli"):
        fit(one_logit, Categorical(), x, torch.zeros(8, dtype=torch.long), progress=False)
    with pytest.raises(ValueError, match=r"C >= 2 classes, got shape \(8, 1\)"):
        predict(one_logit, x, likelihood=Categorical())


def test_patience_zero_stops_at_the_first_epoch_without_improvement(tmp_path) -> None:
    """patience=0 stops at the first epoch whose validation loss is not a new best (as Keras'
    and Lightning's early stopping do), not after the first epoch, which is always a best;
    patience=p stops p epochs in a row after the best. Checked against the recorded losses."""
    x, y = _data(40)
    for patience in (0, 2):
        h = fit(_model(), Gaussian(1.0), x, y, validation=0.25, patience=patience, epochs=60,
                lr=0.3, progress=False, checkpoint=tmp_path / "new" / "dir" / "fit.pt")
        assert h.stopped_early and h.epochs_run < 60
        best = [i for i, v in enumerate(h.val_loss) if v < min(h.val_loss[:i], default=math.inf)]
        assert h.best_epoch == best[-1]
        assert h.epochs_run - 1 - h.best_epoch == max(patience, 1)
    assert (tmp_path / "new" / "dir" / "fit.pt").exists()  # the folder was created


def test_nonfinite_loss_raises_or_stops() -> None:
    x, y = _data(8)
    model = _model()
    with torch.no_grad():
        model[0].weight.fill_(math.inf)
    with pytest.raises(FloatingPointError, match="non-finite training loss"):
        fit(model, Gaussian(1.0), x, y, epochs=2, progress=False)
    assert fit(model, Gaussian(1.0), x, y, epochs=2, progress=False,
               on_nonfinite="stop").diverged


@pytest.mark.parametrize(("where", "value"), [("x", math.nan), ("y", math.inf),
                                              ("x_val", -math.inf), ("y_val", math.nan)])
def test_nonfinite_data_is_an_error_naming_where(where, value) -> None:
    """nan or ±inf in the data is refused before training or predicting, with how many and the
    first example that holds one (not a nan prediction, nor a diverged-loss error)."""
    x, y = _data(12)
    x_val, y_val = x[:4].clone(), y[:4].clone()
    data = {"x": x, "y": y, "x_val": x_val, "y_val": y_val}
    data[where].view(data[where].shape[0], -1)[2, 0] = value
    data[where].view(data[where].shape[0], -1)[3, -1] = value
    name = where if where in ("x", "y") else f"validation {where}"
    message = rf"^{name} holds 2 non-finite value\(s\) \(nan or ±inf\), the first in example 2"
    model = _model()
    before = [q.detach().clone() for q in model.parameters()]
    with pytest.raises(ValueError, match=message):
        fit(model, Gaussian(1.0), x, y, validation=(x_val, y_val), epochs=1, progress=False)
    assert all(torch.equal(a, b) for a, b in zip(before, model.parameters(), strict=True))
    if where == "x":
        with pytest.raises(ValueError, match=message):
            predict(model, x, likelihood=Gaussian(1.0))
    # integer inputs (token ids) are not checked: isfinite has nothing to say about them
    assert predict(nn.Sequential(nn.Embedding(5, 1), nn.Flatten(0)), torch.tensor([[1], [4]]),
                   likelihood=Gaussian(1.0)).mean.shape == (2,)


def test_relevance_scale_and_residual_block_pruning(tmp_path) -> None:
    torch.manual_seed(0)
    law = Rayleigh(1.0)
    blocks = [Residual(nn.Sequential(nn.Linear(6, 6), nn.ReLU()), depth_noise=law)
              for _ in range(3)]
    with torch.no_grad():
        blocks[1].block[0].weight.mul_(1e-3)  # a block the prior has switched off
    model = nn.Sequential(NoisyLinear(4, 6, law), nn.ReLU(), *blocks, nn.Linear(6, 1))
    scores = relevance(model)
    assert set(scores) == {"0", "2", "3", "4"}
    assert_close(scores["0"], model[0].weight.detach().norm(dim=0) * law.second_moment.sqrt())
    assert_close(noise_scale(HalfCauchy(2.0)), torch.tensor(2.0))  # its median is its scale
    res = prune(model, keep=2 / 3, layers=["2", "3", "4"])
    assert res.kept["residual_blocks"].tolist() == [2, 4]
    assert isinstance(res.model[3], nn.Identity)
    assert res.params_after == res.params_before - 42
    assert res.flops_after == res.flops_before - 72
    assert count_flops(model, torch.zeros(5, 4)) == res.flops_before
    from dropprior.plotting import relevance_plot

    relevance_plot(scores, path=tmp_path / "rel.png")
    assert (tmp_path / "rel.png").stat().st_size > 1000
    with pytest.raises(ValueError, match="exactly one of keep"):
        prune(model)
    with pytest.raises(ValueError, match="removes every group"):
        prune(model, threshold=1e9, layers=["0"])


def test_fit_takes_torchs_seed_range_and_names_a_seed_outside_it() -> None:
    x, y = torch.randn(8, 3), torch.randn(8, 1)
    model = nn.Sequential(NoisyLinear(3, 4, Bernoulli(0.8, inverted=True)), nn.Linear(4, 1))
    for seed in (2**64, -(2**63) - 1):  # past either end: named, not torch's overflow error
        with pytest.raises(ValueError, match=rf"seed must be an int in \[-2\*\*63, 2\*\*64 - 1\], "
                                             rf"got {seed}"):
            fit(model, Gaussian(1.0), x, y, seed=seed, epochs=1, progress=False)
    for seed in (2**64 - 1, -(2**63)):  # torch's own ends train
        fit(model, Gaussian(1.0), x, y, seed=seed, epochs=1, progress=False)


def test_a_checkpoint_that_cannot_be_written_is_refused_before_training(tmp_path) -> None:
    x, y = torch.randn(8, 3), torch.randn(8, 1)
    model = nn.Sequential(NoisyLinear(3, 4, Bernoulli(0.8, inverted=True)), nn.Linear(4, 1))
    before = [p.detach().clone() for p in model.parameters()]
    with pytest.raises(ValueError, match=rf"checkpoint='{tmp_path}' is a folder; give a file"):
        fit(model, Gaussian(1.0), x, y, checkpoint=tmp_path, epochs=1, progress=False)
    (tmp_path / "taken").write_text("")
    below_a_file = tmp_path / "taken" / "ck.pt"
    with pytest.raises(ValueError, match=rf"checkpoint='{below_a_file}': its folder cannot be "
                                         r"made \(File exists\)"):
        fit(model, Gaussian(1.0), x, y, checkpoint=below_a_file, epochs=1, progress=False)
    # nothing trained
    assert all(torch.equal(a, b) for a, b in zip(before, model.parameters(), strict=True))
    fit(model, Gaussian(1.0), x, y, checkpoint=tmp_path / "new" / "ck.pt", epochs=1,
        progress=False)
    assert (tmp_path / "new" / "ck.pt").is_file()
