"""The MNIST residual CNN: its forward against a written-out reference, resuming, pruning, and
the command with its records and page."""

from __future__ import annotations

import copy
import dataclasses
import json
import re
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from dropprior.experiments.conv_resnet import (
    ConvResnetSettings,
    build_conv_resnet,
    run_conv_resnet,
)
from dropprior.nn import Residual
from dropprior.pruning import count_flops


def _reference(model: nn.Sequential, x: torch.Tensor, off: set[int] = frozenset()) -> torch.Tensor:
    """conv, ReLU, pool, h + conv(ReLU(conv(h))) per block (block k skipped if k in ``off``),
    pool, flatten, linear, from the model's parameters with torch.nn.functional."""
    stem, head = model[0], model[-1]
    h = F.max_pool2d(F.relu(F.conv2d(x, stem.weight, stem.bias, padding=1)), 2)
    for k, block in enumerate(m for m in model if isinstance(m, Residual)):
        if k in off:
            continue
        a, b = block.block[0], block.block[2]
        h = h + F.conv2d(F.relu(F.conv2d(h, a.weight, a.bias, padding=1)), b.weight, b.bias,
                         padding=1)
    return F.linear(F.max_pool2d(h, 2).flatten(1), head.weight, head.bias)


@pytest.mark.parametrize("variant", ["plain", "stochastic_depth", "add", "ard+add"])
def test_eval_forward_is_the_written_out_residual_cnn(variant: str) -> None:
    """In eval mode every variant's noise is at its mean (1): the network is the plain one."""
    torch.manual_seed(0)
    model = build_conv_resnet(variant, blocks=3, channels=4, drop=0.2).eval()
    x = torch.randn(5, 1, 28, 28)
    torch.testing.assert_close(model(x), _reference(model, x), rtol=1e-5, atol=1e-5)
    blocks = [m for m in model if isinstance(m, Residual)]
    assert len(blocks) == 3
    assert all(b.structure == ("unit+layer" if variant == "ard+add" else "layer")
               for b in blocks)


def test_stochastic_depth_drops_whole_blocks_per_example_at_rate_p() -> None:
    """Training-mode output of one block is h (dropped) or h + f(h)/(1 − p) (kept), per example,
    with the dropped fraction p: Huang et al.'s rule, torchvision's mode="row"."""
    torch.manual_seed(0)
    model = build_conv_resnet("stochastic_depth", blocks=1, channels=3, drop=0.3)
    block = model[3].train()
    h = torch.randn(4000, 3, 14, 14)
    out = block(h)
    f = block.block(h)
    dropped = torch.isclose(out, h).flatten(1).all(1)
    kept = torch.isclose(out, h + f / 0.7, atol=1e-5).flatten(1).all(1)
    assert bool((dropped ^ kept).all())
    assert float(dropped.float().mean()) == pytest.approx(0.3, abs=3 * (0.3 * 0.7 / 4000) ** 0.5)


def test_flops_of_the_default_network() -> None:
    """stem 28·28·16·9, eight blocks of two 14·14·16·16·9 convolutions, linear 784·10."""
    model = build_conv_resnet("plain")
    macs = 28 * 28 * 16 * 9 + 8 * 2 * 14 * 14 * 16 * 16 * 9 + 16 * 49 * 10
    assert count_flops(model, torch.zeros(1, 1, 28, 28)) == 2 * macs


def test_bad_settings_name_the_value() -> None:
    with pytest.raises(ValueError, match="variant='dense' is not valid"):
        ConvResnetSettings(variant="dense")
    with pytest.raises(ValueError, match="blocks must be an int >= 0, got -1"):
        ConvResnetSettings(blocks=-1)
    for variant in ("stochastic_depth", "add", "ard+add"):  # nothing to put noise or scales on
        with pytest.raises(ValueError,
                           match=rf"variant='{re.escape(variant)}' .* needs blocks >= 1, got 0"):
            ConvResnetSettings(variant=variant, blocks=0)
    assert ConvResnetSettings(variant="plain", blocks=0).blocks == 0  # the block-free baseline
    with pytest.raises(ValueError, match="drop must be a number in \\[0, 1\\), got 1.0"):
        ConvResnetSettings(drop=1.0)
    with pytest.raises(ValueError, match="rule='snr' is not valid"):
        ConvResnetSettings(rule="snr")
    with pytest.raises(ValueError, match="lr_schedule='step' is not valid"):
        ConvResnetSettings(lr_schedule="step")
    with pytest.raises(ValueError, match="validation must be an int >= 0, got -5"):
        ConvResnetSettings(validation=-5)
    with pytest.raises(ValueError, match=r"validation \(10000\) \+ train_size \(60000\) exceed "
                       "the 60000 MNIST training images; pass train_size <= 50000"):
        ConvResnetSettings(validation=10_000)


def test_new_settings_at_their_defaults_keep_the_recorded_keys() -> None:
    """Records written before ``lr_schedule`` and ``validation`` existed are still found."""
    from dropprior.experiments.records import settings_key

    assert settings_key("conv_resnet", ConvResnetSettings()) == (
        "conv_resnet/variant=add,blocks=8,channels=16,epochs=30,batch_size=128,lr=0.001,"
        "sigma0=1.0,drop=0.1,hyperprior=log_uniform,init_std=0.01,prior_weight=1.0,"
        "rule=evidence,mean_replacement=False,train_size=60000,seed=0")
    assert settings_key("conv_resnet", ConvResnetSettings(lr_schedule="cosine")).endswith(
        "seed=0,lr_schedule=cosine")


class _Stop(Exception):
    """Stands in for a job killed between two epochs."""


def _tiny(variant: str, **kw) -> ConvResnetSettings:
    return ConvResnetSettings(**{"variant": variant, "blocks": 2, "channels": 3, "epochs": 2,
                                 "train_size": 300, "batch_size": 100, **kw})


@pytest.mark.parametrize(("variant", "augment"), [("stochastic_depth", 0), ("add", 0),
                                                 ("plain", 2)])
def test_a_resumed_run_equals_an_uninterrupted_one(variant: str, augment: int, data_dir: Path,
                                                   tmp_path: Path) -> None:
    s = _tiny(variant, augment=augment)
    whole = run_conv_resnet(s, data_dir)

    def stop(progress: dict) -> None:
        if progress["epochs_run"] == 1:
            raise _Stop

    checkpoint = tmp_path / "run.pt"
    with pytest.raises(_Stop):
        run_conv_resnet(s, data_dir, checkpoint, stop)
    resumed = run_conv_resnet(s, data_dir, checkpoint)
    assert resumed["epochs_resumed"] == 1 and resumed["epochs_run"] == 2
    for key in ("test_error", "test_error_pruned", "blocks_kept", "params_after"):
        assert resumed.get(key) == whole.get(key), key


def test_the_pruned_network_is_the_point_network_without_the_removed_blocks(
        data_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The pruned error is recomputed from the trained point network (posterior means) with the
    blocks the fit switched off skipped, written out by hand."""
    import dropprior
    from dropprior import scales
    from dropprior.data.mnist import MNIST_MEAN, MNIST_STD, load_mnist

    captured: dict = {}
    original = dropprior.prune

    def spy(model, **kw):  # keeps the trained model as prune received it
        captured["model"] = copy.deepcopy(model)
        return original(model, **kw)

    monkeypatch.setattr(dropprior, "prune", spy)
    m = run_conv_resnet(_tiny("add", epochs=3), data_dir)
    point = scales.collapse(captured["model"]).eval()
    names = [n for n, b in point.named_children() if isinstance(b, Residual)]
    off = {k for k, n in enumerate(names) if n not in m["kept_blocks"]}
    x, y = load_mnist(data_dir, "test")
    x = ((x - MNIST_MEAN) / MNIST_STD).reshape(-1, 1, 28, 28)
    with torch.no_grad():
        wrong = int((_reference(point, x, off).argmax(1) != y).sum())
        whole = int((_reference(point, x).argmax(1) != y).sum())
    assert m["test_error_pruned"] == pytest.approx(wrong / x.shape[0], abs=2e-4)
    assert m["test_error"] == pytest.approx(whole / x.shape[0], abs=2e-4)
    assert m["blocks_kept"] == 2 - len(off)


def test_validation_error_is_the_point_network_on_held_out_images(
        data_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The held-out images are the last of the seeded permutation, none of them trained on; the
    validation errors (before and after pruning) are recomputed by hand from them."""
    import dropprior
    from dropprior import scales
    from dropprior.data.mnist import MNIST_MEAN, MNIST_STD, load_mnist

    captured: dict = {}
    original_prune, original_fit = dropprior.prune, dropprior.fit

    def spy_prune(model, **kw):
        captured["model"] = copy.deepcopy(model)
        return original_prune(model, **kw)

    def spy_fit(model, likelihood, x, y, **kw):
        captured["x_train"] = x
        return original_fit(model, likelihood, x, y, **kw)

    monkeypatch.setattr(dropprior, "prune", spy_prune)
    monkeypatch.setattr(dropprior, "fit", spy_fit)
    s = _tiny("add", epochs=2, validation=500, lr_schedule="cosine")
    m = run_conv_resnet(s, data_dir)
    x, y = load_mnist(data_dir, "train")
    x = ((x - MNIST_MEAN) / MNIST_STD).reshape(-1, 1, 28, 28)
    pick = torch.randperm(60_000, generator=torch.Generator().manual_seed(0))
    held = pick[-500:]
    assert not set(held.tolist()) & set(pick[:300].tolist())
    torch.testing.assert_close(captured["x_train"], x[pick[:300]], rtol=0, atol=0)
    point = scales.collapse(captured["model"]).eval()
    names = [n for n, b in point.named_children() if isinstance(b, Residual)]
    off = {k for k, n in enumerate(names) if n not in m["kept_blocks"]}
    with torch.no_grad():
        whole = int((_reference(point, x[held]).argmax(1) != y[held]).sum())
        pruned = int((_reference(point, x[held], off).argmax(1) != y[held]).sum())
    assert m["valid_error"] == pytest.approx(whole / 500, abs=1e-9)
    assert m["valid_error_pruned"] == pytest.approx(pruned / 500, abs=2.5e-3)
    assert "valid_error" not in run_conv_resnet(_tiny("plain", epochs=1), data_dir)


def test_augment_shifts_every_training_batch_at_the_background(
        data_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """With augment=k, fit gets random_shift(·, k) with the standardised background as fill,
    and applies it to every training minibatch; the run resumes exactly (its draws come from
    fit's checkpointed generator) and differs from the run without it."""
    import dropprior.data as data
    from dropprior.data.mnist import MNIST_MEAN, MNIST_STD

    calls: list[tuple[int, int, float]] = []
    real = data.random_shift

    def spy(xb, max_shift, generator=None, fill=0.0):
        calls.append((xb.shape[0], max_shift, fill))
        return real(xb, max_shift, generator, fill)

    monkeypatch.setattr(data, "random_shift", spy)
    m = run_conv_resnet(_tiny("plain", epochs=1, augment=2), data_dir)
    assert [c[0] for c in calls] == [100, 100, 100]
    assert all(c[1] == 2 and c[2] == pytest.approx(-MNIST_MEAN / MNIST_STD) for c in calls)
    assert m["test_error"] != run_conv_resnet(_tiny("plain", epochs=1), data_dir)["test_error"]
    with pytest.raises(ValueError, match="augment must be an int >= 0, got -2"):
        ConvResnetSettings(augment=-2)


def test_cosine_schedule_changes_the_run(data_dir: Path) -> None:
    constant = run_conv_resnet(_tiny("plain", epochs=2), data_dir)
    cosine = run_conv_resnet(_tiny("plain", epochs=2, lr_schedule="cosine"), data_dir)
    assert constant["epochs_run"] == cosine["epochs_run"] == 2
    assert constant["test_error"] != cosine["test_error"]


def test_the_page_marks_the_setting_chosen_on_validation(data_dir: Path,
                                                         tmp_path: Path) -> None:
    from dropprior.cli import main
    from dropprior.experiments.report import build_pages

    base = ["conv-resnet", "--blocks", "2", "--channels", "3", "--epochs", "1",
            "--train-size", "300", "--batch-size", "100", "--validation", "1000",
            "--data-dir", str(data_dir), "--results", str(tmp_path / "results")]
    for extra in (["--variant", "plain"], ["--variant", "add", "--prior-weight", "0.05"],
                  ["--variant", "add", "--prior-weight", "1"]):
        assert main([*base, *extra]) == 0
    records = [json.loads(p.read_text())["record"]
               for p in (tmp_path / "results" / "conv_resnet").glob("*.json")]
    # ADD's candidates: the runs that switched off at least a third of the 2 blocks
    adds = sorted((r for r in records if r["config"]["variant"] == "add"
                   and 3 * (2 - r["metrics"]["blocks_kept"]) >= 2),
                  key=lambda r: r["metrics"]["valid_error_pruned"])
    page = build_pages(tmp_path)[tmp_path / "docs/results/conv_resnet.md"]
    assert "300 training images (1,000 held out)" in page
    rows = {line.split(" | ")[1]: line for line in page.splitlines() if line.startswith("| add")}
    assert [line for line in page.splitlines() if line.startswith("| plain")][0].count("✔") == 1
    if not adds:  # neither switched a block off: nothing to choose, both judged
        assert not any("✔" in line or "not chosen" in line for line in rows.values())
        return
    best = adds[0]["config"]["prior_weight"]
    chosen = "log_uniform, evidence" if best == 1 else f"log_uniform, β = {best:g}, evidence"
    assert f"{100 * adds[0]['metrics']['valid_error_pruned']:.2f}% ✔" in rows[chosen]
    assert sum("✔" in line for line in rows.values()) == 1
    assert all(line.endswith("| not chosen |") for key, line in rows.items() if key != chosen)


def test_add_is_chosen_among_settings_that_switch_off_a_third() -> None:
    """On validation, ADD's choice skips a setting with a lower validation error that keeps
    more than two thirds of the blocks; rows of a variant so compared but not chosen are not
    judged. Plain (no blocks to prune) is chosen on the validation error alone."""
    from dropprior.experiments.report import _chosen_on_validation

    def row(variant: str, valid: float, kept: int | None) -> dict:
        m = {"valid_error": valid}
        if kept is not None:
            m.update(valid_error_pruned=valid, blocks=8, blocks_kept=kept)
        return {"config": {"variant": variant}, "metrics": m}

    keeps_seven = row("add", 0.0061, 7)
    keeps_five = row("add", 0.0079, 5)
    keeps_four = row("add", 0.0080, 4)
    partial = {"config": {"variant": "add"}, "metrics": {"epochs_run": 3, "partial": True}}
    plain = row("plain", 0.0052, None)
    rows = [keeps_seven, keeps_five, keeps_four, partial, plain]
    chosen, compared = _chosen_on_validation(rows)
    assert chosen == {id(keeps_five), id(plain)}
    assert compared == {id(keeps_seven), id(keeps_five), id(keeps_four), id(plain)}
    # no ADD setting selects enough: none is chosen, none is compared
    chosen, compared = _chosen_on_validation([keeps_seven, plain])
    assert chosen == compared == {id(plain)}


def test_the_command_records_resumes_and_pages(data_dir: Path, tmp_path: Path, capsys,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    """A run stopped after its first epoch leaves a partial record (listed as partial on the
    page); started again with the same checkpoint folder it resumes, and the finished record
    replaces the partial one."""
    import dropprior.experiments.conv_resnet as module
    from dropprior.cli import main
    from dropprior.experiments.report import build_pages

    argv = ["conv-resnet", "--variant", "add", "--blocks", "2", "--channels", "3",
            "--epochs", "2", "--train-size", "300", "--batch-size", "100",
            "--data-dir", str(data_dir), "--results", str(tmp_path / "results"),
            "--checkpoint-dir", str(tmp_path / "ckpt")]
    real = module.run_conv_resnet

    def stopping(s, data, checkpoint=None, report=None):
        def wrapped(progress: dict) -> None:
            report(progress)
            if progress["epochs_run"] == 1:
                raise _Stop
        return real(s, data, checkpoint, wrapped)

    with monkeypatch.context() as patch:
        patch.setattr(module, "run_conv_resnet", stopping)
        with pytest.raises(_Stop):
            main(argv)
    (partial,) = [json.loads(p.read_text())["record"]
                  for p in (tmp_path / "results" / "conv_resnet").glob("*.json")]
    assert partial["metrics"] == {"epochs_run": 1, "partial": True,
                                  "train_images_per_second":
                                      partial["metrics"]["train_images_per_second"]}
    page = build_pages(tmp_path)[tmp_path / "docs/results/conv_resnet.md"]
    assert "| add | log_uniform, evidence | 1 of 2 (partial) |" in page
    capsys.readouterr()
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert out.startswith("ran: add, 2 blocks of 3 channels, 2 epochs")
    m = json.loads(out.strip().splitlines()[-1])
    assert m["epochs_resumed"] == 1 and 0 <= m["blocks_kept"] <= 2
    (done,) = list((tmp_path / "results" / "conv_resnet").glob("*.json"))
    assert "partial" not in json.loads(done.read_text())["record"]["metrics"]
    page = build_pages(tmp_path)[tmp_path / "docs/results/conv_resnet.md"]
    assert "partial" not in page.split("## ")[1] and "| add | log_uniform, evidence | 2 |" in page
    assert main(argv) == 0 and capsys.readouterr().out.startswith("read:")
    assert main([*argv[:-2], "--blocks", "-1"]) == 2
    assert "blocks must be an int >= 0, got -1" in capsys.readouterr().err


def test_fine_tune_trains_the_pruned_network_from_the_shared_checkpoint(
        data_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A run with --fine-tune-epochs resumes the training of the run without it (one
    checkpoint), prunes the same network, and its fine-tuned error is that network's, trained
    further, recomputed by hand (written-out residual CNN)."""
    import dropprior
    from dropprior.data.mnist import MNIST_MEAN, MNIST_STD, load_mnist
    from dropprior.experiments.conv_resnet import run_and_record

    s = _tiny("add", epochs=2, augment=1)
    first, _ = run_and_record(s, "first", data_dir, tmp_path / "results", tmp_path / "ckpt")
    captured: dict = {}
    original = dropprior.prune

    def spy(model, **kw):
        result = original(model, **kw)
        captured["pruned"] = result.model  # fine-tuned in place afterwards
        captured["at_prune"] = copy.deepcopy(result.model)
        return result

    monkeypatch.setattr(dropprior, "prune", spy)
    tuned_settings = dataclasses.replace(s, fine_tune_epochs=2, fine_tune_lr=3e-3,
                                         fine_tune_schedule="cosine")
    tuned, fresh = run_and_record(tuned_settings, "tuned", data_dir, tmp_path / "results",
                                  tmp_path / "ckpt")
    m, m0 = tuned["metrics"], first["metrics"]
    assert fresh and m["epochs_resumed"] == 2 and len(list((tmp_path / "ckpt").iterdir())) == 1
    for key in ("test_error", "test_error_pruned", "kept_blocks"):
        assert m[key] == m0[key], key
    before = dict(captured["at_prune"].named_parameters())
    assert any(not torch.equal(p, before[n]) for n, p in captured["pruned"].named_parameters())
    x, y = load_mnist(data_dir, "test")
    x = ((x - MNIST_MEAN) / MNIST_STD).reshape(-1, 1, 28, 28)
    point = captured["pruned"].eval()  # removed blocks are nn.Identity: _reference skips them
    assert sum(isinstance(b, Residual) for b in point) == len(m["kept_blocks"])
    with torch.no_grad():
        wrong = int((_reference(point, x).argmax(1) != y).sum())
    assert m["test_error_fine_tuned"] == pytest.approx(wrong / x.shape[0], abs=2e-4)


def test_fine_tune_settings_name_the_bad_value() -> None:
    with pytest.raises(ValueError, match="fine_tune_schedule='cosine' applies to a fine-tune"):
        ConvResnetSettings(fine_tune_schedule="cosine")
    with pytest.raises(ValueError, match="fine_tune_lr must be >= 0"):
        ConvResnetSettings(fine_tune_epochs=1, fine_tune_lr=-1.0)
    with pytest.raises(ValueError, match="fine_tune_epochs must be an int >= 0, got -1"):
        ConvResnetSettings(fine_tune_epochs=-1)
    with pytest.raises(ValueError, match="fine_tune_epochs applies to the pruned variants"):
        ConvResnetSettings(variant="plain", fine_tune_epochs=3)


def test_a_pruned_variant_is_judged_on_its_final_network() -> None:
    """The fine-tuned error where there is one, else the pruned one: within 0.6% and within 0.1
    point of the unpruned network."""
    from dropprior.experiments.report import _conv_resnet

    def record(pruned: float, tuned: float | None, prior_weight: float) -> dict:
        config = {**dataclasses.asdict(ConvResnetSettings(prior_weight=prior_weight)),
                  **({"fine_tune_epochs": 5, "fine_tune_lr": 1e-4} if tuned else {})}
        metrics = {"epochs_run": 30, "test_error": 0.0062, "test_error_pruned": pruned,
                   "blocks": 8, "blocks_kept": 4, "kept_blocks": [], "params_before": 2,
                   "params_after": 1, "flops_before": 2, "flops_after": 1,
                   **({"test_error_fine_tuned": tuned} if tuned else {})}
        return {"config": config, "metrics": metrics, "command": "c", "commit": "x",
                "seconds": 1.0}

    page = _conv_resnet([record(0.0065, 0.0055, 0.2), record(0.0059, None, 0.3),
                         record(0.0065, None, 0.4), record(0.0065, 0.0075, 0.5)])
    rows = {line.split(" | ")[1]: line for line in page.splitlines() if line.startswith("| add")}
    assert rows["log_uniform, β = 0.2, evidence, fine-tune 5 epochs lr 0.0001"].endswith(
        "| 0.62% | 0.65% | 0.55% | 4 of 8 | 2 → 1 | 2 → 1 | — | — | yes |")
    assert rows["log_uniform, β = 0.3, evidence"].endswith("| yes |")
    assert rows["log_uniform, β = 0.4, evidence"].endswith("| no |")  # 0.65% > 0.6%
    assert rows["log_uniform, β = 0.5, evidence, fine-tune 5 epochs lr 0.0001"].endswith(
        "| no |")
