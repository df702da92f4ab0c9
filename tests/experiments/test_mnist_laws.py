"""The MNIST noise-law experiment (``dropprior.experiments.mnist_laws``) and its page."""

from __future__ import annotations

import pytest

from dropprior.experiments.mnist_laws import (
    LAWS,
    MnistLawsSettings,
    errors_table,
    law_pair,
    run_mnist_laws,
    size_table,
)
from dropprior.experiments.records import make_record, record_store
from dropprior.experiments.report import build_pages
from dropprior.noise import Bernoulli, HalfCauchy
from dropprior.truncation import Truncated


def test_settings_refuse_bad_values_naming_them() -> None:
    with pytest.raises(ValueError, match="law=.laplace. is not valid; expected one of"):
        MnistLawsSettings("laplace")
    with pytest.raises(ValueError, match="each keep fraction"):
        MnistLawsSettings("bernoulli", keep=(1.0, 0.0))
    with pytest.raises(ValueError, match="val_size must leave training images"):
        MnistLawsSettings("bernoulli", val_size=60_000)


def test_law_pairs_are_dropout_matched_or_the_named_truncation() -> None:
    law_in, law_hidden = law_pair("bernoulli")
    assert isinstance(law_in, Bernoulli) and float(law_in.keep) == pytest.approx(0.8)
    assert float(law_hidden.keep) == pytest.approx(0.5)
    law, same = law_pair("half_cauchy_truncated_3")
    assert law is same and isinstance(law, Truncated) and float(law.upper) == 3.0
    assert isinstance(law_pair("half_cauchy")[0], HalfCauchy)
    assert set(LAWS) == {"bernoulli", "gaussian", "half_cauchy", "half_cauchy_truncated_3",
                         "inverse_nakagami_m0.75", "inverse_nakagami_m0.75_truncated_5"}


def _size(width: int, n: int) -> int:
    """Parameters of 784 → n → n → 10 with biases, where n of ``width`` units are kept."""
    return 784 * n + n + n * n + n + n * 10 + 10


def test_run_scores_and_prunes_a_small_network(data_dir) -> None:
    from dropprior.data import load_mnist

    x, y = load_mnist(data_dir, "train")
    x_test, y_test = load_mnist(data_dir, "test")
    train = ((x[:3000] - 0.1307) / 0.3081, y[:3000])
    test = ((x_test[:1000] - 0.1307) / 0.3081, y_test[:1000])
    s = MnistLawsSettings("half_cauchy", width=16, epochs=1, val_size=500, keep=(1.0, 0.5),
                          test_samples=2)
    m = run_mnist_laws(s, train, test)
    assert m["test_error_mean_scaling"] is None  # half-Cauchy has no mean
    assert [c["params"] for c in m["pruning"]] == [_size(16, 16), _size(16, 8)]
    assert 0 <= m["test_error_mc"] <= 100 and m["epochs_run"] == 1
    m = run_mnist_laws(MnistLawsSettings("bernoulli", width=16, epochs=2, val_size=500,
                                         keep=(1.0,), test_samples=2), train, test)
    assert m["test_error_mean_scaling"] is not None and m["test_error_mean_scaling"] < 50


def _record(law: str, error: float, best: int | None, seed: int = 0) -> dict:
    s = MnistLawsSettings(law, keep=(1.0, 0.5), seed=seed)
    from dataclasses import asdict

    curve = [{"keep": 1.0, "params": _size(256, 256), "flops": 537600, "test_error_mc": error},
             {"keep": 0.5, "params": _size(256, 128), "flops": 236032, "test_error_mc": 9.0}]
    metrics = {"law_input": "a", "law_hidden": "b", "epochs_run": 3, "best_epoch": best,
               "diverged": False, "train_seconds": 50.0 + seed, "test_error_mc": error,
               "test_error_mean_scaling": None if law == "half_cauchy" else error - 0.1,
               "pruning": curve}
    return make_record("python scripts/mnist_laws.py --epochs 3", asdict(s), seed, metrics,
                       60.0, "abc")


def test_tables_follow_the_law_order_with_one_based_epochs(tmp_path) -> None:
    records = [_record("half_cauchy", 88.0, None), _record("bernoulli", 3.5, 2)]
    lines = errors_table(records).splitlines()
    assert lines[2] == "| bernoulli | 0 | 3 | 3 | no | 3.50 | 3.40 | 3.50 | 9.00 | 50 |  |"
    assert lines[3] == ("| half_cauchy | 0 | 3 | — | no | 88.00 | n/a (no mean) | 88.00 | "
                        "9.00 | 50 |  |")
    assert "| parameters | 269 322 | 118 282 |" in size_table(records[0])
    store = record_store("mnist_laws", tmp_path / "results")
    for k, r in enumerate(records):
        store.put(str(k), r)
    page = build_pages(tmp_path)[tmp_path / "docs/results/mnist_laws.md"]
    assert "## Width 256, at most 6 epochs, S = 2, σ0 = 0.1\n" in page
    assert "- `python scripts/mnist_laws.py --epochs 3` (commit `abc`)" in page


def test_seeds_are_averaged_and_compared_with_dropout_seed_by_seed() -> None:
    from dropprior.experiments.tables import mean_se, paired_mean_se

    dropout, truncated = [3.3, 3.1, 3.4], [2.9, 2.8, 3.0]
    records = [_record("bernoulli", e, 2, seed=k) for k, e in enumerate(dropout)]
    records += [_record("half_cauchy_truncated_3", e, 2, seed=k)
                for k, e in enumerate(truncated)]
    row = errors_table(records).splitlines()[3]
    mean, se = mean_se(truncated)
    diff, diff_se = paired_mean_se(truncated, dropout)
    assert row.startswith(f"| half_cauchy_truncated_3 | 0–2 | 3, 3, 3 | 3, 3, 3 | no | "
                          f"{mean:.2f} ± {se:.2f} |")
    assert diff < -diff_se and row.endswith(f"| 51 | −{-diff:.2f} ± {diff_se:.2f} (lower) |")
