"""The result store: each finished job recorded once, atomically, readable back."""

from __future__ import annotations

import json

import pytest

from dropprior.experiments.store import ResultStore


def test_put_get_has_round_trip(tmp_path):
    store = ResultStore(tmp_path / "jobs")
    assert not store.has("a/b")
    assert store.put("a/b", {"rmse": 0.5, "splits": [1, 2]})
    assert store.has("a/b")
    assert store.get("a/b") == {"rmse": 0.5, "splits": [1, 2]}
    assert store.keys() == ["a/b"] and len(store) == 1


def test_a_job_is_recorded_once(tmp_path):
    store = ResultStore(tmp_path)
    assert store.put("job", {"value": 1})
    assert not store.put("job", {"value": 2})
    assert store.get("job") == {"value": 1}
    assert len(store) == 1


def test_no_temporary_files_left_and_files_are_json(tmp_path):
    store = ResultStore(tmp_path)
    for i in range(3):
        store.put(f"job/{i}", {"i": i})
    names = sorted(p.name for p in tmp_path.iterdir())
    assert len(names) == 3 and not any(n.startswith(".tmp-") for n in names)
    for path in tmp_path.iterdir():
        assert json.loads(path.read_text())["record"]["i"] in (0, 1, 2)


def test_distinct_keys_that_sanitise_alike_do_not_collide(tmp_path):
    store = ResultStore(tmp_path)
    store.put("a/b", {"v": 1})
    store.put("a_b", {"v": 2})
    assert store.get("a/b") == {"v": 1} and store.get("a_b") == {"v": 2}


def test_missing_key_and_bad_key(tmp_path):
    store = ResultStore(tmp_path)
    with pytest.raises(KeyError, match="no finished record"):
        store.get("nope")
    with pytest.raises(ValueError, match="non-empty string"):
        store.put("", {})
