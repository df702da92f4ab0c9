"""``dropprior mnist``: the LeNets with learned scales, the record it writes, and bad input."""

from __future__ import annotations

import json

import pytest
import torch

from dropprior.cli import main
from dropprior.experiments.lenet import LenetSettings, build_lenet
from dropprior.pruning import count_flops


@pytest.mark.parametrize(("arch", "shape", "macs"), [
    ("lenet-300-100", (784,), 784 * 300 + 300 * 100 + 100 * 10),
    # conv1 24·24·20·25, conv2 8·8·50·500, fc 800·500 + 500·10
    ("lenet-5-caffe", (1, 28, 28), 24 * 24 * 20 * 25 + 8 * 8 * 50 * 500 + 800 * 500 + 5000),
])
def test_architectures_and_their_flops(arch, shape, macs) -> None:
    model = build_lenet(arch)
    x = torch.zeros(2, *shape)
    assert model(x).shape == (2, 10)
    assert count_flops(model, x) == 2 * macs


def test_lenet5_trains_prunes_and_records(data_dir, tmp_path, capsys) -> None:
    argv = ["mnist", "--arch", "lenet-5-caffe", "--epochs", "1", "--train-size", "1000",
            "--rule", "snr",  # one epoch on 1000 images: nothing yet pays for its KL
            "--data-dir", str(data_dir), "--results", str(tmp_path)]
    assert main(argv) == 0
    out = capsys.readouterr().out
    m = json.loads(out.strip().splitlines()[-1])
    assert 0.0 <= m["test_error"] < 0.9
    assert m["params_after"] <= m["params_before"] and m["flops_after"] <= m["flops_before"]
    f1, f2, fc_in, units = map(int, m["kept_architecture"].split("-"))
    assert fc_in == 16 * f2 and 1 <= f1 <= 20 and 1 <= units <= 500
    records = list((tmp_path / "lenet").glob("*.json"))
    assert len(records) == 1
    assert main(argv) == 0 and capsys.readouterr().out.startswith("read:")


def test_bad_settings_name_the_value() -> None:
    with pytest.raises(ValueError, match=r"arch='lenet-4' is not valid"):
        LenetSettings(arch="lenet-4")
    with pytest.raises(ValueError, match="epochs must be an int >= 1, got 0"):
        LenetSettings(epochs=0)


def test_fine_tune_with_early_stopping_on_held_out_images(data_dir, tmp_path, capsys) -> None:
    """--fine-tune-patience holds out a tenth of the training images and records how many
    fine-tune epochs ran and the best one; the page says so."""
    from dropprior.experiments.report import build_pages

    argv = ["mnist", "--arch", "lenet-300-100", "--epochs", "1", "--train-size", "600",
            "--rule", "snr", "--fine-tune-epochs", "4", "--fine-tune-patience", "1",
            "--fine-tune-lr", "1e-4", "--data-dir", str(data_dir), "--results",
            str(tmp_path / "results")]
    assert main(argv) == 0
    m = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    if "prune_error" in m:
        pytest.skip(f"the one-epoch fit switched a layer off: {m['prune_error']}")
    assert 1 <= m["fine_tune_epochs_run"] <= 4
    assert 0 <= m["fine_tune_best_epoch"] < m["fine_tune_epochs_run"]
    page = build_pages(tmp_path)[tmp_path / "docs/results/lenet.md"]
    assert (f"epochs on held-out images: epoch {m['fine_tune_best_epoch'] + 1}, patience 1, "
            "lr 0.0001") in page


def test_fine_tune_settings_name_the_bad_value() -> None:
    with pytest.raises(ValueError, match="fine_tune_patience applies to a fine-tune"):
        LenetSettings(fine_tune_patience=3)
    with pytest.raises(ValueError, match="fine_tune_lr must be >= 0"):
        LenetSettings(fine_tune_lr=-1.0)
    with pytest.raises(ValueError, match="fine_tune_schedule='cosine' applies to a fine-tune"):
        LenetSettings(fine_tune_schedule="cosine")
    with pytest.raises(ValueError, match="fine_tune_schedule='step' is not valid"):
        LenetSettings(fine_tune_epochs=2, fine_tune_schedule="step")


def test_fine_tune_settings_are_chosen_on_the_held_out_loss(data_dir, tmp_path, capsys) -> None:
    """Two fine-tunes of the same pruned network that differ only in their learning rate: each
    record holds its best held-out loss, and the page marks the lower one ✔ and calls the
    other "not chosen", whatever their test errors."""
    from dropprior.experiments.report import build_pages

    base = ["mnist", "--arch", "lenet-300-100", "--epochs", "1", "--train-size", "600",
            "--rule", "snr", "--fine-tune-epochs", "3", "--fine-tune-patience", "2",
            "--fine-tune-schedule", "cosine", "--data-dir", str(data_dir), "--results",
            str(tmp_path / "results")]
    metrics = {}
    for lr in ("1e-4", "3e-3"):
        assert main([*base, "--fine-tune-lr", lr]) == 0
        out = capsys.readouterr().out
        metrics[lr] = json.loads(out.strip().splitlines()[-1])
        if "prune_error" in metrics[lr]:
            pytest.skip(f"the one-epoch fit switched a layer off: {metrics[lr]['prune_error']}")
        assert f"(held-out loss {metrics[lr]['fine_tune_valid_loss']:.4f})" in out
    assert metrics["1e-4"]["fine_tune_valid_loss"] != metrics["3e-3"]["fine_tune_valid_loss"]
    best = min(metrics, key=lambda lr: metrics[lr]["fine_tune_valid_loss"])
    page = build_pages(tmp_path)[tmp_path / "docs/results/lenet.md"]
    rows = [line for line in page.splitlines() if line.startswith("| lenet-300-100")]
    chosen = [line for line in rows if "✔" in line]
    assert len(rows) == 2 and len(chosen) == 1
    assert f"lr {float(best):g}, cosine, held-out loss" in chosen[0]
    assert "| not chosen |" in [line for line in rows if "✔" not in line][0]


def test_validation_images_are_held_out_and_beta_is_chosen_on_them(data_dir, tmp_path,
                                                                   capsys) -> None:
    """--validation N records the error on N training images the fit never saw (the error of
    the recorded point network on exactly those images, recomputed here); the page marks, among
    records that differ only in β, the one with the lowest final validation error that is small
    enough, and calls the other "not chosen"."""
    from dropprior.data.mnist import load_mnist
    from dropprior.experiments.report import build_pages

    results = tmp_path / "results"
    metrics = []
    for beta in ("30", "100"):
        argv = ["mnist", "--arch", "lenet-300-100", "--inference", "map", "--epochs", "1",
                "--train-size", "500", "--validation", "300", "--prior-weight", beta,
                "--data-dir", str(data_dir), "--results", str(results)]
        assert main(argv) == 0
        out = capsys.readouterr().out
        assert "validation error" in out
        metrics.append(json.loads(out.strip().splitlines()[-1]))
    for m in metrics:
        # errors on 300 images are multiples of 1/300
        for key in ("valid_error", "valid_error_pruned"):
            assert 0.0 <= m[key] <= 1.0 and abs(m[key] * 300 - round(m[key] * 300)) < 1e-6
    # the held-out images: the last 300 of the seeded permutation, none of the first 500
    order = torch.randperm(60_000, generator=torch.Generator().manual_seed(0))
    assert not set(order[-300:].tolist()) & set(order[:500].tolist())
    x, _ = load_mnist(data_dir, "train")
    assert x[order[-300:]].shape[0] == 300
    page = build_pages(tmp_path)[tmp_path / "docs/results/lenet.md"]
    rows = [line for line in page.splitlines() if line.startswith("| lenet-300-100 | map")]
    assert len(rows) == 2
    # a 1-epoch fit on 500 images keeps more than a third of the units: nothing is small
    # enough, so neither is chosen and both are compared
    assert all("not chosen" in row and "✔" not in row for row in rows)


def test_validation_and_train_size_must_fit_in_the_training_file() -> None:
    with pytest.raises(ValueError, match=r"validation \(10000\) \+ train_size \(60000\) exceed "
                                         r"the 60000 MNIST training images; pass train_size "
                                         r"<= 50000"):
        LenetSettings(validation=10_000)
    with pytest.raises(ValueError, match="validation must be an int >= 0, got -1"):
        LenetSettings(validation=-1)


def test_lr_schedule_anneals_the_training_as_torch_cosine_annealing(data_dir, tmp_path,
                                                                   capsys, monkeypatch) -> None:
    """--lr-schedule cosine gives the training fit the learning rates of torch's
    CosineAnnealingLR (T_max = epochs, eta_min = 0), epoch by epoch; the record keeps the
    setting and the page shows it; a bad name is refused naming it."""
    import dropprior
    from dropprior.experiments.report import build_pages

    seen = []

    def recording_fit(*args, **kwargs):
        seen.append(kwargs.get("lr_lambda"))
        return fit(*args, **kwargs)

    fit = dropprior.fit
    monkeypatch.setattr(dropprior, "fit", recording_fit)
    argv = ["mnist", "--arch", "lenet-300-100", "--inference", "map", "--epochs", "4",
            "--train-size", "300", "--lr-schedule", "cosine", "--data-dir", str(data_dir),
            "--results", str(tmp_path / "results")]
    assert main(argv) == 0
    m = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert m["epochs_run"] == 4
    param = torch.nn.Parameter(torch.zeros(1))
    opt = torch.optim.SGD([param], lr=1e-3)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=4, eta_min=0.0)
    expected = []
    for _ in range(4):
        expected.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    assert [1e-3 * seen[0](e) for e in range(4)] == pytest.approx(expected, rel=1e-12)
    record = json.loads(next((tmp_path / "results/lenet").glob("*.json")).read_text())
    assert record["record"]["config"]["lr_schedule"] == "cosine"
    page = build_pages(tmp_path)[tmp_path / "docs/results/lenet.md"]
    assert "| 4, cosine lr |" in page
    with pytest.raises(ValueError, match="lr_schedule='step' is not valid"):
        LenetSettings(lr_schedule="step")


@pytest.mark.parametrize("noise", [True, False])
def test_fine_tune_noise_switch(data_dir, tmp_path, capsys, monkeypatch, noise) -> None:
    """The fine-tune trains the pruned network with the layers' Bernoulli noise on (its
    train-mode outputs differ from eval mode) unless --no-fine-tune-noise, which makes train
    mode equal eval mode; the page says "noise off". Without a fine-tune the switch is refused."""
    import dropprior
    from dropprior.experiments.report import build_pages

    fit = dropprior.fit
    checks = []

    def recording_fit(model, *args, **kwargs):
        if not checks:  # the training fit, then the fine-tune
            checks.append(None)
            return fit(model, *args, **kwargs)
        x = torch.rand(50, 784)
        torch.manual_seed(1)
        train_out = model.train()(x)
        model.eval()
        checks.append(torch.equal(train_out, model(x)))
        model.train()
        return fit(model, *args, **kwargs)

    monkeypatch.setattr(dropprior, "fit", recording_fit)
    argv = ["mnist", "--arch", "lenet-300-100", "--inference", "map", "--epochs", "1",
            "--train-size", "300", "--fine-tune-epochs", "1", "--data-dir", str(data_dir),
            "--results", str(tmp_path / "results")]
    assert main([*argv, "--fine-tune-noise" if noise else "--no-fine-tune-noise"]) == 0
    m = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    if "prune_error" in m:
        pytest.skip(f"the one-epoch fit switched a layer off: {m['prune_error']}")
    assert checks == [None, not noise]
    page = build_pages(tmp_path)[tmp_path / "docs/results/lenet.md"]
    assert ("noise off" in page) is not noise
    with pytest.raises(ValueError, match="fine_tune_noise=False applies to a fine-tune"):
        LenetSettings(inference="map", fine_tune_noise=False)
    with pytest.raises(ValueError, match="applies to inference='map'; inference='vi' trains "
                                         "without noise"):
        LenetSettings(fine_tune_epochs=1, fine_tune_noise=False)


def test_max_kept_caps_each_layer_and_joins_the_validation_choice(data_dir, tmp_path,
                                                                  capsys) -> None:
    """--max-kept a,b,c keeps, per pruned layer, min(what the fit kept, the cap): the same
    training (same seed) pruned with and without it. The capped record is small enough for the
    target and the uncapped one is not, so among the two (they differ only in the budget) the
    page chooses the capped one on validation, and its rule names the budget."""
    from dropprior.experiments.report import build_pages

    results = tmp_path / "results"
    base = ["mnist", "--arch", "lenet-300-100", "--inference", "map", "--epochs", "1",
            "--train-size", "500", "--validation", "300", "--data-dir", str(data_dir),
            "--results", str(results)]
    kept = {}
    for cap in ("", "200,90,30"):
        assert main([*base, *(["--max-kept", cap] if cap else [])]) == 0
        m = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
        kept[cap] = [int(n) for n in m["kept_architecture"].split("-")]
    assert kept[""][1] > 100  # one epoch keeps most units: the cap binds
    assert kept["200,90,30"] == [min(a, b) for a, b in zip(kept[""], (200, 90, 30), strict=True)]
    page = build_pages(tmp_path)[tmp_path / "docs/results/lenet.md"]
    rows = [line for line in page.splitlines() if line.startswith("| lenet-300-100 | map")]
    capped = [row for row in rows if "scale, at most 200-90-30" in row]
    assert len(rows) == 2 and len(capped) == 1 and "✔" in capped[0]
    assert "not chosen" in [row for row in rows if row not in capped][0]


@pytest.mark.parametrize(("arch", "cap"), [
    ("lenet-300-100", "261,100"), ("lenet-300-100", "261,101,33,1"),
    ("lenet-300-100", "785,100,33"), ("lenet-5-caffe", "0,10,50"), ("lenet-5-caffe", "a,b,c")])
def test_bad_max_kept_names_the_value(arch, cap) -> None:
    with pytest.raises(ValueError, match=f"max_kept must be 3 comma-separated counts for "
                                         f"{arch}'s pruned layers, each between 1 and its groups "
                                         rf"\(.*\), got '{cap}'"):
        LenetSettings(arch=arch, max_kept=cap)
