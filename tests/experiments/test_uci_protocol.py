"""The UCI protocol pieces against independent references, and its known-answer behaviour."""

from __future__ import annotations

import math

import numpy as np
import pytest
import tomllib
import torch
from scipy import special, stats

from dropprior._validation import offset_seed
from dropprior.experiments.batched_mlp import score_batched, train_batched
from dropprior.experiments.laws import TABLE1_LAWS, dropout_law
from dropprior.experiments.rundir import to_toml
from dropprior.experiments.tables import format_mean_se, mean_se, paired_mean_se
from dropprior.experiments.uci import run_uci_split, uci_jobs, uci_scales_jobs
from dropprior.experiments.uci_scales import run_uci_scales_split
from dropprior.noise import Bernoulli


def test_score_matches_the_reference_formula_with_scipy():
    rng = np.random.default_rng(0)
    draws = rng.normal(size=(2, 7, 5))  # (G, T, N), standardised
    y = rng.normal(size=5) * 3 + 1
    tau = np.array([0.5, 2.0])
    mean, std = 1.0, 3.0
    chunks = [torch.tensor(draws[:, :3]), torch.tensor(draws[:, 3:])]
    got = score_batched(chunks, torch.tensor(y), torch.tensor(mean), torch.tensor(std),
                        torch.tensor(tau))
    for g in range(2):
        pred = draws[g] * std + mean
        ll = (special.logsumexp(-0.5 * tau[g] * (y - pred) ** 2, axis=0) - math.log(7)
              - 0.5 * math.log(2 * math.pi) + 0.5 * math.log(tau[g]))
        np.testing.assert_allclose(got.log_likelihood[g].item(), ll.mean(), rtol=1e-12)
        rmse = math.sqrt(((pred.mean(axis=0) - y) ** 2).mean())
        np.testing.assert_allclose(got.rmse[g].item(), rmse, rtol=1e-12)


def test_mean_se_matches_scipy_sem():
    values = [0.3, 0.7, 0.1, 0.9, 0.45]
    mean, se = mean_se(values)
    assert mean == pytest.approx(np.mean(values))
    assert se == pytest.approx(stats.sem(values))
    assert format_mean_se(-1.2481, 0.0193) == "−1.25±0.02"
    assert format_mean_se(0.0031, 0.0002).startswith("0.0031")


def test_format_spread_gives_scipys_sem_or_numpys_sample_sd():
    from dropprior.experiments.tables import format_spread

    values = [0.3, 0.7, 0.1, 0.9, 0.45]
    mean = np.mean(values)
    assert format_spread(values, "{:.4f}") == f"{mean:.4f} ± {stats.sem(values):.4f}"
    assert (format_spread(values, "{:.4f}", "{:.1e}", spread="sd")
            == f"{mean:.4f} ± {np.std(values, ddof=1):.1e}")
    assert format_spread([2.5], "{:.2f}") == "2.50"  # one value: no spread
    with pytest.raises(ValueError, match="spread must be 'se' or 'sd', got 'iqr'"):
        format_spread(values, spread="iqr")


def test_format_seeds_lists_every_seed_once_with_runs_of_three_as_ranges():
    from dropprior.experiments.tables import format_seeds

    assert format_seeds([4, 0, 1, 2, 7, 8, 2]) == "0–2, 4, 7, 8"
    assert format_seeds(range(10)) == "0–9" and format_seeds([3]) == "3"

    def expand(text: str) -> list[int]:
        out: list[int] = []
        for part in text.split(", "):
            first, _, last = part.partition("–")
            out += range(int(first), int(last or first) + 1)
        return out

    rng = np.random.default_rng(0)
    for _ in range(200):
        seeds = rng.choice(30, size=int(rng.integers(1, 20)), replace=False).tolist()
        text = format_seeds(seeds)
        assert expand(text) == sorted(seeds)
        # a range only where three or more seeds follow each other
        for part in text.split(", "):
            if "–" in part:
                first, last = map(int, part.split("–"))
                assert last - first >= 2


def test_paired_mean_se_matches_scipys_paired_t_test():
    """The paired difference's mean ± standard error: scipy's related-samples t statistic is
    their ratio (the mean over the standard error of the per-pair differences)."""
    mine = [99.5, 103.4, 101.6, 100.2]
    theirs = [100.0, 104.1, 102.0, 100.5]
    mean, se = paired_mean_se(mine, theirs)
    assert mean == pytest.approx(np.mean(mine) - np.mean(theirs), rel=1e-12)
    assert mean / se == pytest.approx(stats.ttest_rel(mine, theirs).statistic, rel=1e-12)
    # the unpaired standard error is far larger here: the pairs move together
    assert se < 0.2 * math.hypot(stats.sem(mine), stats.sem(theirs))
    for bad in ([1.0, 2.0], [[1.0, 2.0, 3.0]]):
        with pytest.raises(ValueError, match="equally long"):
            paired_mean_se([1.0, 2.0, 3.0], bad)


def test_batched_networks_are_independent():
    """Network g's training does not depend on the other networks in the batch."""
    x = torch.randn(40, 3, generator=torch.Generator().manual_seed(1))
    y = x.sum(dim=1)
    law = Bernoulli(keep=1.0, inverted=True)  # no noise: deterministic given the init
    common = dict(hidden=(6,), epochs=5, batch_size=16)
    both = train_batched(x, y, [law, law], torch.tensor([1.0, 1.0]), torch.tensor([1e-3, 1.0]),
                         seed=0, **common)
    one = train_batched(x, y, [law, law], torch.tensor([1.0, 1.0]), torch.tensor([1e-3, 1e-3]),
                        seed=0, **common)
    torch.testing.assert_close(both.layers[0].weight[0], one.layers[0].weight[0])
    assert not torch.allclose(both.layers[0].weight[1], one.layers[0].weight[1])


def test_protocol_beats_the_mean_predictor_on_a_linear_problem(tiny_uci):
    job = uci_jobs(str(tiny_uci), ["tiny"], ["bernoulli"], ["unit"], ["mc"], splits=[0],
                   epochs=300, batch_size=16, test_samples=50, validation_samples=20)[0]
    result = run_uci_split(dict(job.params))["splits"][0]
    data = np.loadtxt(tiny_uci / "uci" / "tiny" / "data.txt")
    assert result["rmse"] < 0.5 * data[:, 3].std()
    assert (result["p"], result["tau"]) in [(p, t) for p in (0.01, 0.1) for t in (5.0, 50.0)]
    assert len(result["validation"]) == 4


def test_test_targets_are_not_seen_before_the_final_evaluation(tiny_uci):
    job = uci_jobs(str(tiny_uci), ["tiny"], ["bernoulli"], ["unit"], ["mc"], splits=[1],
                   epochs=3, test_samples=10, validation_samples=10)[0]
    before = run_uci_split(dict(job.params))["splits"][0]
    folder = tiny_uci / "uci" / "tiny"
    data = np.loadtxt(folder / "data.txt")
    test_rows = np.loadtxt(folder / "index_test_1.txt", dtype=int)
    data[test_rows, :] = 1e6  # corrupt every test row, inputs and targets
    np.savetxt(folder / "data.txt", data)
    from dropprior.experiments import uci

    uci._load.cache_clear()
    after = run_uci_split(dict(job.params))["splits"][0]
    assert after["validation"] == before["validation"]
    assert (after["p"], after["tau"]) == (before["p"], before["tau"])
    assert after["rmse"] != before["rmse"]


def test_marginal_and_weight_structure_run(tiny_uci):
    for structure, objective in (("weight", "mc"), ("unit", "marginal")):
        job = uci_jobs(str(tiny_uci), ["tiny"], ["gaussian"], [structure], [objective],
                       splits=[0], epochs=2, test_samples=5, validation_samples=5,
                       train_samples=3)[0]
        result = run_uci_split(dict(job.params))["splits"][0]
        assert math.isfinite(result["ll"]) and math.isfinite(result["rmse"])


@pytest.mark.parametrize("name", TABLE1_LAWS)
def test_every_table1_law_is_set_from_a_dropout_rate(name):
    law = dropout_law(name, 0.1)
    if name in ("bernoulli", "gaussian", "inverse_nakagami"):
        np.testing.assert_allclose(float(law.mean), 1.0, rtol=1e-6)
        np.testing.assert_allclose(float(law.variance), 0.1 / 0.9, rtol=1e-5)
    elif name == "rayleigh":
        np.testing.assert_allclose(float(law.mean), 1.0, rtol=1e-6)
    else:
        assert math.isinf(float(law.mean))


def test_bad_grid_arguments(tiny_uci):
    with pytest.raises(ValueError, match="law='laplace'"):
        uci_jobs(str(tiny_uci), ["tiny"], ["laplace"], ["unit"], ["mc"])
    with pytest.raises(ValueError, match="split 7 is out of range"):
        uci_jobs(str(tiny_uci), ["tiny"], ["bernoulli"], ["unit"], ["mc"], splits=[7])
    with pytest.raises(ValueError, match="unknown UCI settings"):
        uci_jobs(str(tiny_uci), ["tiny"], ["bernoulli"], ["unit"], ["mc"], epoch=3)
    with pytest.raises(ValueError, match="dropout rate p=1.0"):
        dropout_law("bernoulli", 1.0)


def test_to_toml_round_trips_through_tomllib():
    config = {"epochs": 3, "lr": 0.001, "law": ["bernoulli", "rayleigh"], "out": "runs/x",
              "progress": False, "splits": None}
    assert tomllib.loads(to_toml(config)) == {k: v for k, v in config.items() if v is not None}




def test_versions_name_the_cpu(monkeypatch):
    """The CPU model is /proc/cpuinfo's "model name" where there is one, else
    platform.processor(), else "unknown"."""
    import builtins
    import platform
    from pathlib import Path

    from dropprior.experiments.rundir import cpu_model, versions

    assert versions()["cpu"] == cpu_model()
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists() and "model name" in cpuinfo.read_text():
        names = [line.split(":", 1)[1].strip() for line in cpuinfo.read_text().splitlines()
                 if line.startswith("model name")]
        assert cpu_model() == names[0]

    def no_file(*args, **kwargs):
        raise OSError("no /proc here")

    monkeypatch.setattr(builtins, "open", no_file)
    monkeypatch.setattr(platform, "processor", lambda: "")
    assert cpu_model() == "unknown"
    monkeypatch.setattr(platform, "processor", lambda: "arm")
    assert cpu_model() == "arm"


def test_minus_writes_every_sign_as_the_typographic_minus_and_keeps_exponents():
    from dropprior.experiments.tables import minus

    rng = np.random.default_rng(1)
    for _ in range(300):
        a, b = rng.normal(scale=10.0 ** rng.integers(-5, 4), size=2)
        for text in (f"{a:+.2f} ± {b:.2f}, level", f"{a:.3f}±{b:.3f}", f"{a:.2e} ± {abs(b):.1e}",
                     f"| {a:.2f} | ({b:.4f}) |"):
            written = minus(text)
            # the same numbers once the typographic minus is read back as a sign
            assert written.replace("−", "-") == text
            # no sign left as a hyphen; an exponent's hyphen kept
            assert not any(tok.startswith(("-", "(-")) for tok in written.split())
            assert written.count("e-") == text.count("e-")
            assert written.count("−") == text.count("-") - text.count("e-")
    assert minus("beta_2.5-1.7, inverse-Nakagami, -inf") == "beta_2.5-1.7, inverse-Nakagami, −inf"


def test_derived_seeds_wrap_modulo_2_64_into_torchs_range():
    assert offset_seed(5, 3) == 8
    top = 2**64 - 1
    assert offset_seed(top, 1) == 0 and offset_seed(top, 1000) == 999
    wrapped = torch.rand(4, generator=torch.Generator().manual_seed(offset_seed(top, 2)))
    assert torch.equal(wrapped, torch.rand(4, generator=torch.Generator().manual_seed(1)))


def test_the_largest_seed_runs_its_jobs_and_their_refits(tiny_uci):
    """Job seeds are seed + first split and refits use the job's seed + 1, both modulo 2**64: at
    seed 2**64 - 1 split 0's refit and split 1's job would otherwise pass torch's largest seed."""
    jobs = uci_jobs(str(tiny_uci), ["tiny"], ["bernoulli"], ["unit"], ["mc"], seed=2**64 - 1,
                    splits=[0, 1], splits_per_job=1, epochs=2, test_samples=5,
                    validation_samples=5)
    assert [job.params["seed"] for job in jobs] == [2**64 - 1, 0]
    for job in jobs:
        result = run_uci_split(dict(job.params))["splits"][0]
        assert math.isfinite(result["ll"]) and math.isfinite(result["rmse"])
    scales = uci_scales_jobs(str(tiny_uci), ["tiny"], ["bernoulli"], ["unit"], ["mc"],
                             depth=0, hyperprior="inverse_gamma", inference="map", dropout=0.05,
                             seed=2**64 - 2, splits=[0, 1, 2], epochs=2, test_samples=5,
                             hidden=4, lr=1e-2, batch_size=32, sigma0=1.0, train_samples=None)
    assert [job.params["seed"] for job in scales] == [2**64 - 2, 2**64 - 1, 0]
    assert math.isfinite(run_uci_scales_split(dict(scales[2].params))["splits"][0]["ll"])
