"""Bad UCI data files are named with the row or value at fault (exit 2 from the command, no
record written); the data's digest keys the jobs."""

from __future__ import annotations

import os
import time

import numpy as np
import pytest
from conftest import write_tiny_uci

from dropprior.cli import main
from dropprior.data import load_uci
from dropprior.experiments.store import ResultStore


@pytest.fixture
def root(tmp_path):
    return write_tiny_uci(tmp_path / "data")


def _folder(root):
    return root / "uci" / "tiny"


def test_empty_data_file_is_named(root) -> None:
    (_folder(root) / "data.txt").write_text("")
    with pytest.raises(ValueError, match=r"data.txt: the file holds no rows"):
        load_uci(root, "tiny")


def test_nan_in_a_used_row_names_row_and_column(root) -> None:
    data = np.loadtxt(_folder(root) / "data.txt")
    data[3, 1] = np.nan
    np.savetxt(_folder(root) / "data.txt", data)
    with pytest.raises(ValueError, match=r"data.txt: row 3 \(0-based\), column 1 is nan"):
        load_uci(root, "tiny")


@pytest.mark.parametrize(("name", "text", "match"), [
    ("index_features.txt", "0\n1\n3\n", "target column 3 .* is also listed as a feature"),
    ("n_hidden.txt", "0\n", r"n_hidden.txt: expected an integer >= 1, got 0"),
    ("n_epochs.txt", "0\n", r"n_epochs.txt: expected an integer >= 1, got 0"),
    ("tau_values.txt", "5.0\n-1.0\n", r"τ must be > 0, got \[-1.0\]"),
    ("dropout_rates.txt", "0.1\n1.0\n", r"dropout rates must lie in \[0, 1\), got \[1.0\]"),
    ("index_train_1.txt", "", "index_train_1.txt: the split has no rows"),
])
def test_bad_protocol_files_are_named(root, name, text, match) -> None:
    (_folder(root) / name).write_text(text)
    with pytest.raises(ValueError, match=match):
        load_uci(root, "tiny")


def test_overlapping_split_is_refused(root) -> None:
    test_rows = (_folder(root) / "index_test_0.txt").read_text().split()
    train = (_folder(root) / "index_train_0.txt").read_text().split()
    (_folder(root) / "index_train_0.txt").write_text("\n".join(train + test_rows[:2]))
    with pytest.raises(ValueError, match=r"index_test_0.txt: 2 test row\(s\) are also training"):
        load_uci(root, "tiny")


def test_the_digest_follows_the_data(root) -> None:
    before = load_uci(root, "tiny").digest
    data = np.loadtxt(_folder(root) / "data.txt")
    data[0, 0] += 1.0
    np.savetxt(_folder(root) / "data.txt", data)
    assert len(before) == 12 and load_uci(root, "tiny").digest != before


def test_command_exits_2_and_writes_no_record(root, tmp_path, capsys) -> None:
    data = np.loadtxt(_folder(root) / "data.txt")
    data[5, 3] = np.inf
    np.savetxt(_folder(root) / "data.txt", data)
    out = tmp_path / "run"
    code = main(["uci", "--data-dir", str(root), "--dataset", "tiny", "--law", "bernoulli",
                 "--out", str(out), "--no-progress"])
    assert code == 2
    assert "row 5 (0-based), column 3 is inf" in capsys.readouterr().err
    assert not list(out.rglob("*.json")) or not list((out / "jobs").glob("*.json"))


# ---- the job store ---------------------------------------------------------------------------

def test_a_truncated_record_is_quarantined_and_redone(tmp_path) -> None:
    store = ResultStore(tmp_path, required=("params",))
    store.put("job", {"params": {"a": 1}})
    path = store.path("job")
    path.write_text(path.read_text()[:20])  # killed mid-write by another tool
    with pytest.warns(UserWarning, match=r"is invalid \(not readable JSON.*moved to .*corrupt"):
        assert not store.has("job")
    assert path.with_name(path.name + ".corrupt").is_file()
    assert store.put("job", {"params": {"a": 1}})  # the job can be recorded again


@pytest.mark.parametrize(("content", "reason"), [
    ('{"key": "job", "record": {"result": 1}}', r"missing \['params'\]"),
    ('{"key": "other", "record": {"params": 1}}', "holds job 'other'"),
    ("[]", "no 'key' and 'record'"),
])
def test_invalid_records_are_named(tmp_path, content, reason) -> None:
    store = ResultStore(tmp_path, required=("params",))
    store.path("job").write_text(content)
    with pytest.warns(UserWarning, match=reason):
        assert store.records() == {} or not store.has("job")


def test_stale_temporaries_are_removed_and_fresh_ones_kept(tmp_path) -> None:
    stale, fresh = tmp_path / ".tmp-old.json", tmp_path / ".tmp-new.json"
    stale.write_text("{")
    fresh.write_text("{")
    old = time.time() - 3600
    os.utime(stale, (old, old))
    ResultStore(tmp_path)
    assert not stale.exists() and fresh.exists()
