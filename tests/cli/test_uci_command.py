"""``dropprior uci``: end to end on a tiny data set, config files, and clear user errors."""

from __future__ import annotations

import csv
import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from dropprior.cli import build_parser, main

FAST = ["--epochs", "3", "--test-samples", "20", "--validation-samples", "10", "--no-progress"]


def _run(argv, capsys):
    code = main(argv)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_end_to_end_writes_tables_plot_and_run_record(tiny_uci, tmp_path, capsys):
    out = tmp_path / "run"
    code, stdout, _ = _run(["uci", "--data-dir", str(tiny_uci), "--dataset", "tiny",
                            "--splits", "0", "1", "--out", str(out), *FAST], capsys)
    assert code == 0
    for name in ("uci.md", "uci.csv", "uci.png", "run.json", "config.toml"):
        assert (out / name).is_file(), name
    info = json.loads((out / "run.json").read_text())
    assert info["seed"] == 0 and info["seconds"] > 0 and "torch" in info["versions"]
    assert info["versions"]["cpu"]
    assert info["config"]["epochs"] == 3
    csv_lines = (out / "uci.csv").read_text().splitlines()
    assert csv_lines[0].startswith("dataset,law,structure,variant,objective,n_splits")
    assert csv_lines[1].startswith("tiny,bernoulli,unit,,mc,2,3,")  # no variant: batched
    assert "| tiny | bernoulli | unit | mc | 2 | 3 |" in stdout
    # the recorded config.toml reproduces the run: everything is already in the store
    code, stdout, _ = _run(["uci", "--config", str(out / "config.toml")], capsys)
    assert code == 0 and "1 jobs (1 already finished" in stdout


def test_baselines_without_noise_run_and_come_first(tiny_uci, tmp_path, capsys):
    code, stdout, _ = _run(["uci", "--data-dir", str(tiny_uci), "--dataset", "tiny",
                            "--splits", "0", "--law", "none", "--objective", "map", "laplace",
                            "--out", str(tmp_path / "run"), *FAST], capsys)
    assert code == 0
    assert "| tiny | none | unit | laplace | 1 | 3 |" in stdout
    assert stdout.index("| none | unit | laplace |") < stdout.index("| none | unit | map |")
    code, _, err = _run(["uci", "--data-dir", str(tiny_uci), "--dataset", "tiny", "--law",
                         "none", "bernoulli", "--objective", "map", "--out",
                         str(tmp_path / "bad")], capsys)
    assert code == 2 and "got laws ['none', 'bernoulli'] and objectives ['map']" in err


def test_config_file_sets_options_and_flags_override_it(tiny_uci, tmp_path, capsys):
    config = tmp_path / "uci.toml"
    config.write_text(f'data-dir = "{tiny_uci}"\ndataset = "tiny"\nsplits = [0]\nepochs = 2\n'
                      f'test_samples = 10\nvalidation-samples = 5\nprogress = false\n'
                      f'out = "{tmp_path / "a"}"\n')
    assert main(["uci", "--config", str(config)]) == 0
    assert json.loads((tmp_path / "a" / "run.json").read_text())["config"]["epochs"] == 2
    assert main(["uci", "--config", str(config), "--epochs", "4", "--out",
                 str(tmp_path / "b")]) == 0
    assert json.loads((tmp_path / "b" / "run.json").read_text())["config"]["epochs"] == 4
    capsys.readouterr()


@pytest.mark.parametrize("text, message", [
    ("epochs = 2\nbogus = 1\n", "unknown key 'bogus'"),
    ('epochs = "many"\n', "expected a number"),
    ('objective = "bayes"\n', "'bayes' is not valid"),
    ("epochs = [\n", "not valid TOML"),
])
def test_bad_config_file_is_a_clear_error(tmp_path, capsys, text, message):
    config = tmp_path / "bad.toml"
    config.write_text(text)
    code, _, err = _run(["uci", "--config", str(config)], capsys)
    assert code == 2 and message in err and "Traceback" not in err


def test_missing_data_dir(tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("DROPPRIOR_DATA_DIR", raising=False)
    code, _, err = _run(["uci", "--data-dir", str(tmp_path / "nowhere")], capsys)
    assert code == 2
    assert err.startswith("dropprior: error:") and "does not exist" in err
    assert "Traceback" not in err
    code, _, err = _run(["uci"], capsys)
    assert code == 2 and "--data-dir" in err and "DROPPRIOR_DATA_DIR" in err


def test_unknown_dataset_lists_the_available_ones(tiny_uci, capsys):
    code, _, err = _run(["uci", "--data-dir", str(tiny_uci), "--dataset", "boston"], capsys)
    assert code == 2
    assert "unknown data set(s) ['boston']" in err and "'tiny'" in err
    assert "Traceback" not in err


@pytest.mark.parametrize("content", ["0 1 x 3\n", "1.5 2\n", "0 999\n"])
def test_malformed_index_file(tiny_uci, tmp_path, capsys, content):
    (tiny_uci / "uci" / "tiny" / "index_train_1.txt").write_text(content)
    code, _, err = _run(["uci", "--data-dir", str(tiny_uci), "--dataset", "tiny", "--out",
                         str(tmp_path / "run"), *FAST], capsys)
    assert code == 2
    assert "index_train_1.txt" in err and "Traceback" not in err


def test_invalid_numeric_option(tiny_uci, tmp_path, capsys):
    code, _, err = _run(["uci", "--data-dir", str(tiny_uci), "--workers", "0"], capsys)
    assert code == 2 and "--workers=0" in err


def test_every_option_of_my_commands_documents_its_default():
    parser = build_parser()
    commands = parser._subparsers._group_actions[0].choices  # type: ignore[union-attr]
    for name in ("uci", "demo", "resnet", "cnn", "ptb"):
        if name not in commands:
            continue
        for action in commands[name]._actions:
            if action.dest in ("help",):
                continue
            assert "(default:" in (action.help or ""), (name, action.dest)


def test_console_script_reports_a_missing_data_dir_without_traceback(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "DROPPRIOR_DATA_DIR"}
    script = Path(sys.executable).with_name("dropprior")
    command = [str(script)] if script.exists() else [sys.executable, "-m", "dropprior.cli"]
    proc = subprocess.run([*command, "uci", "--data-dir", str(tmp_path / "missing")],
                          capture_output=True, text=True, env=env, timeout=120)
    assert proc.returncode == 2
    assert "dropprior: error:" in proc.stderr and "does not exist" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_learned_scale_path_runs_and_reports_what_the_fit_kept(tiny_uci, tmp_path, capsys):
    out = tmp_path / "run"
    code = main(["uci", "--data-dir", str(tiny_uci), "--dataset", "tiny", "--law", "bernoulli",
                 "--depth", "2", "--structure", "ard+add", "--hyperprior", "log_uniform",
                 "--inference", "vi", "--epochs", "5", "--test-samples", "20", "--splits", "0",
                 "1", "--out", str(out), "--no-progress"])
    assert code == 0
    rows = list(csv.DictReader((out / "uci.csv").read_text().splitlines()))
    assert len(rows) == 1 and rows[0]["variant"] == "depth 2, vi, log_uniform"
    assert rows[0]["n_splits"] == "2"
    assert 0 <= float(rows[0]["inputs_kept"]) <= 3 and 0 <= float(rows[0]["blocks_kept"]) <= 2
    assert 0 <= float(rows[0]["units_kept"]) <= 8  # n_hidden.txt of the tiny set
    assert "| inputs kept | units kept | blocks kept |" in capsys.readouterr().out
    assert 0 <= float(rows[0]["picp90"]) <= float(rows[0]["picp95"]) <= 1
    assert float(rows[0]["crps"]) > 0 and 0 <= float(rows[0]["coverage_error"]) <= 1


def test_interval_metrics_of_one_gaussian_against_scipy():
    """A deterministic network's predictive is one Gaussian: its coverage and CRPS in closed
    form (scipy), in the target's units."""
    import numpy as np
    from scipy.stats import norm

    from dropprior.experiments.uci_scales import _test_scores
    from dropprior.likelihoods import Gaussian

    g = torch.Generator().manual_seed(0)
    x = torch.randn(200, 2, generator=g)
    model = torch.nn.Linear(2, 1)
    y = model(x).detach() + 0.7 * torch.randn(200, 1, generator=g)
    intervals = {}
    _test_scores(model, Gaussian(0.5), x, y, samples=1, y_std=3.0, intervals=intervals)
    mu, obs = model(x).detach().numpy().ravel(), y.numpy().ravel()
    for level, name in ((0.9, "picp90"), (0.95, "picp95")):
        half = norm.ppf(0.5 + level / 2) * 0.5
        assert intervals[name] == pytest.approx(np.mean(np.abs(obs - mu) <= half), abs=1e-6)
    z = (obs - mu) / 0.5
    crps = 0.5 * (z * (2 * norm.cdf(z) - 1) + 2 * norm.pdf(z) - 1 / np.sqrt(np.pi))
    assert intervals["crps"] == pytest.approx(3.0 * crps.mean(), rel=1e-4)
    # its spread is the likelihood's alone: noise std 0.5 (× y_std), no spread between draws
    assert intervals["noise_std"] == pytest.approx(1.5) and intervals["draw_std"] == 0.0


def test_draw_spread_is_the_draws_standard_deviation():
    from dropprior import predict
    from dropprior.experiments.uci_scales import _test_scores
    from dropprior.likelihoods import Gaussian
    from dropprior.nn import NoisyLinear
    from dropprior.noise import Bernoulli

    torch.manual_seed(0)
    model = torch.nn.Sequential(NoisyLinear(3, 1, Bernoulli(0.7, inverted=True)))
    x, y = torch.randn(50, 3), torch.randn(50, 1)
    intervals = {}
    torch.manual_seed(1)
    _test_scores(model, Gaussian(0.2), x, y, samples=40, y_std=2.0, intervals=intervals)
    torch.manual_seed(1)
    draws = predict(model, x, samples=40, likelihood=None).sample_outputs[..., 0].numpy()
    assert intervals["draw_std"] == pytest.approx(2.0 * draws.std(axis=0).mean(), rel=1e-5)


@pytest.mark.parametrize(("argv", "message"), [
    (["--depth", "-1"], "--depth=-1 must be an integer >= 0"),
    (["--inference", "vi"], "--inference vi learns the group scales in closed form and needs"),
    (["--inference", "vi", "--hyperprior", "log_uniform", "--structure", "weight"],
     "--structure 'weight' is not supported with --depth"),
    (["--structure", "add"], "--structure 'add' needs residual blocks: pass --depth >= 1"),
])
def test_learned_scale_path_bad_input(tiny_uci, tmp_path, capsys, argv, message):
    code = main(["uci", "--data-dir", str(tiny_uci), "--dataset", "tiny", "--out",
                 str(tmp_path / "run"), *argv])
    assert code == 2
    assert message in capsys.readouterr().err


def test_depth_zero_is_the_standard_network_and_add_needs_blocks():
    from dropprior.experiments.uci_scales import build_uci_network
    from dropprior.nn import NoisyLinear, Residual

    standard = build_uci_network(3, 8, 0, "unit", "bernoulli", 0.05)
    assert [type(m) for m in standard] == [NoisyLinear, torch.nn.ReLU, NoisyLinear]
    deep = build_uci_network(3, 8, 4, "ard+add", "bernoulli", 0.05)
    blocks = [m for m in deep if isinstance(m, Residual)]
    assert len(blocks) == 4 and all(b.structure == "unit+layer" for b in blocks)
    assert all(b.structure == "layer" for b in build_uci_network(3, 8, 2, "add", "bernoulli", 0.05)
               if isinstance(b, Residual))
    with pytest.raises(ValueError, match="needs residual blocks"):
        build_uci_network(3, 8, 0, "add", "bernoulli", 0.05)


def test_validated_candidates_are_chosen_split_by_split(tiny_uci, tmp_path, capsys):
    from dropprior.experiments.report import _uci_scales_chosen
    from dropprior.experiments.store import ResultStore
    from dropprior.experiments.uci import summarise_uci
    from dropprior.experiments.uci_selection import select_on_validation

    records = []
    for hyperprior in ("inverse_gamma", "log_uniform"):
        out = tmp_path / hyperprior
        assert main(["uci", "--data-dir", str(tiny_uci), "--dataset", "tiny", "--depth", "0",
                     "--hyperprior", hyperprior, "--inference", "vi", "--validate",
                     "--epochs", "5", "--test-samples", "20", "--splits", "0", "1", "2",
                     "--out", str(out), "--no-progress"]) == 0
        records += list(ResultStore(out / "jobs").records().values())
    assert all(len(s["validation"]) == 1 for r in records for s in r["result"]["splits"])
    (row,) = select_on_validation(records)
    assert row["n_splits"] == 3 and sum(row["chosen"].values()) == 3
    for k in range(3):  # the chosen candidate has the best validation LL of the split
        by_hp = {r["params"]["hyperprior"]: r["result"]["splits"][0] for r in records
                 if r["params"]["split"] == k}
        best = max(by_hp, key=lambda h: by_hp[h]["validation"][0]["ll"])
        assert any(best in name for name in row["chosen"])
    text = "".join(_uci_scales_chosen(records, summarise_uci(records)))
    assert "## Chosen on inner validation" in text and "| tiny | 2 | 3 |" in text
    # a partial candidate (split 0 only), however good its validation, does not compete
    import copy

    partial = copy.deepcopy(next(r for r in records if r["params"]["split"] == 0))
    partial["params"]["variant"] = "partial"
    partial["result"]["splits"][0]["validation"][0]["ll"] = 1e9
    text = "".join(_uci_scales_chosen([*records, partial], summarise_uci(records)))
    assert "| tiny | 2 | 3 |" in text and "partial" not in text.split("|---|")[-1]


def test_validate_enters_the_job_key_only_when_set(tiny_uci):
    from dropprior.experiments.uci import uci_scales_jobs

    common = {"depth": 0, "hyperprior": "inverse_gamma", "inference": "vi", "dropout": 0.05,
              "splits": [0], "epochs": 5}
    plain = uci_scales_jobs(str(tiny_uci / "uci"), ["tiny"], ["bernoulli"], ["unit"], ["mc"],
                            **common)
    checked = uci_scales_jobs(str(tiny_uci / "uci"), ["tiny"], ["bernoulli"], ["unit"], ["mc"],
                              validate=True, **common)
    assert "validate" not in plain[0].key and "validate=True" in checked[0].key


def test_library_path_flags_on_the_batched_network_are_errors(tiny_uci, capsys):
    for flags in (["--prior-weight", "0.5"], ["--local-reparam"], ["--validate"],
                  ["--joint-rule"], ["--init-std", "0.001"], ["--dropout", "0.2"],
                  ["--sigma0", "0.5"]):
        assert main(["uci", "--data-dir", str(tiny_uci), "--dataset", "tiny", *flags]) == 2
        assert "applies to the learned-scale path" in capsys.readouterr().err


def test_local_reparam_is_a_variant_of_vi_only(tiny_uci):
    from dropprior.experiments.uci import uci_scales_jobs
    from dropprior.experiments.uci_scales import run_uci_scales_split

    common = {"depth": 0, "hyperprior": "inverse_gamma", "dropout": 0.05, "splits": [0],
              "epochs": 3, "test_samples": 20, "hidden": 4, "lr": 1e-2, "batch_size": 32,
              "sigma0": 1.0, "train_samples": None}
    plain = uci_scales_jobs(str(tiny_uci / "uci"), ["tiny"], ["bernoulli"], ["unit"], ["mc"],
                            inference="vi", **common)
    lrt = uci_scales_jobs(str(tiny_uci / "uci"), ["tiny"], ["bernoulli"], ["unit"], ["mc"],
                          inference="vi", local_reparam=True, **common)
    assert "local_reparam" not in plain[0].key and "local_reparam=True" in lrt[0].key
    assert lrt[0].params["variant"] == "depth 0, vi, inverse_gamma, lrt"
    assert "prior_weight" not in plain[0].key
    tempered = uci_scales_jobs(str(tiny_uci / "uci"), ["tiny"], ["bernoulli"], ["unit"], ["mc"],
                               inference="vi", prior_weight=0.05, **common)
    assert "prior_weight=0.05" in tempered[0].key
    assert tempered[0].params["variant"] == "depth 0, vi, inverse_gamma, β=0.05"
    with pytest.raises(ValueError, match="prior_weight must be a finite number > 0"):
        uci_scales_jobs(str(tiny_uci / "uci"), ["tiny"], ["bernoulli"], ["unit"], ["mc"],
                        inference="vi", prior_weight=-1.0, **common)
    joint = uci_scales_jobs(str(tiny_uci / "uci"), ["tiny"], ["bernoulli"], ["unit"], ["mc"],
                            inference="vi", joint_rule=True, **common)
    assert "joint_rule=True" in joint[0].key and "joint_rule" not in plain[0].key
    assert joint[0].params["variant"] == "depth 0, vi, inverse_gamma, joint"
    split = run_uci_scales_split(dict(joint[0].params))["splits"][0]
    assert 0 <= split["inputs_kept"] <= 3 and 0 <= split["units_kept"] <= 4
    with pytest.raises(ValueError, match="--joint-rule decides variational groups: it needs "
                                         "--inference vi"):
        uci_scales_jobs(str(tiny_uci / "uci"), ["tiny"], ["bernoulli"], ["unit"], ["mc"],
                        inference="map", joint_rule=True, **common)
    split = run_uci_scales_split(lrt[0].params)["splits"][0]
    assert math.isfinite(split["ll"]) and math.isfinite(split["rmse"])
    with pytest.raises(ValueError, match="--local-reparam .* needs --inference vi, got "
                                         "--inference map"):
        uci_scales_jobs(str(tiny_uci / "uci"), ["tiny"], ["bernoulli"], ["unit"], ["mc"],
                        inference="map", local_reparam=True, **common)


def test_init_std_is_a_variant_of_vi_only(tiny_uci, monkeypatch):
    """--init-std enters the key and the variant only off its default, reaches the weights'
    initial posterior std, and is refused for MAP and for a non-positive value."""
    from dropprior import scales
    from dropprior.experiments.uci import uci_scales_jobs
    from dropprior.experiments.uci_scales import VI_INIT_STD, run_uci_scales_split

    common = {"depth": 1, "hyperprior": "log_uniform", "dropout": 0.05, "splits": [0],
              "epochs": 1, "test_samples": 20, "hidden": 4, "lr": 1e-2, "batch_size": 32,
              "sigma0": 1.0, "train_samples": None}
    args = (str(tiny_uci / "uci"), ["tiny"], ["bernoulli"], ["add"], ["mc"])
    plain = uci_scales_jobs(*args, inference="vi", **common)
    same = uci_scales_jobs(*args, inference="vi", init_std=VI_INIT_STD, **common)
    small = uci_scales_jobs(*args, inference="vi", init_std=1e-3, **common)
    assert plain[0].key == same[0].key and "init_std" not in plain[0].key
    assert "init_std=0.001" in small[0].key
    assert small[0].params["variant"] == "depth 1, vi, log_uniform, init 0.001"
    seen: list[float] = []
    real = scales.attach_scales

    def spy(model, inference, hyperprior, init_std=1e-3, local_reparam=False):
        seen.append(init_std)
        return real(model, inference, hyperprior, init_std, local_reparam)

    monkeypatch.setattr(scales, "attach_scales", spy)
    for job in (plain[0], small[0]):
        run_uci_scales_split(dict(job.params))
    assert seen == [VI_INIT_STD, 1e-3]
    with pytest.raises(ValueError, match="--init-std sets variational weights' initial "
                                         "posterior std: it needs --inference vi"):
        uci_scales_jobs(*args, inference="map", init_std=1e-3, **common)
    with pytest.raises(ValueError, match="--init-std must be a finite number > 0, got -0.1"):
        uci_scales_jobs(*args, inference="vi", init_std=-0.1, **common)


def test_per_weight_prior_weight_is_rows_over_weights(tiny_uci, capsys):
    from dropprior.data import load_uci
    from dropprior.experiments.uci import uci_scales_jobs
    from dropprior.experiments.uci_scales import run_uci_scales_split

    common = {"depth": 1, "hyperprior": "log_uniform", "dropout": 0.05, "splits": [0],
              "epochs": 2, "test_samples": 20, "hidden": 4, "lr": 1e-2, "batch_size": 32,
              "sigma0": 1.0, "train_samples": None}
    job = uci_scales_jobs(str(tiny_uci / "uci"), ["tiny"], ["bernoulli"], ["add"], ["mc"],
                          inference="vi", prior_weight="per-weight", **common)[0]
    assert job.params["variant"] == "depth 1, vi, log_uniform, β=N/W"
    split = run_uci_scales_split(dict(job.params))["splits"][0]
    n_train = len(load_uci(tiny_uci / "uci", "tiny").split(0)[1])
    d = 3  # tiny's inputs: 3 -> 4 (ReLU), one block 4 -> 4 -> 4, 4 -> 1; weights and biases
    weights = (d * 4 + 4) + 2 * (4 * 4 + 4) + (4 + 1)
    assert split["prior_weight"] == pytest.approx(n_train / weights)
    with pytest.raises(SystemExit):
        main(["uci", "--data-dir", str(tiny_uci), "--dataset", "tiny", "--depth", "1",
              "--prior-weight", "per-weights"])
    assert "'per-weights' is neither a number nor 'per-weight'" in capsys.readouterr().err
