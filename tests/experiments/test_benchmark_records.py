"""Benchmark result records and the ratio tables of docs/results/benchmarks.md."""

from __future__ import annotations

import json

import pytest

from dropprior.experiments.benchmark_records import ratio_tables, record_benchmark
from dropprior.experiments.records import record_store
from dropprior.experiments.report import build_pages


def test_a_record_keeps_every_case_and_refuses_a_missing_time(tmp_path) -> None:
    rows = {"lstm": [{"case": "untied", "ms": 12.0, "baseline_ms": 10.0}]}
    path = record_benchmark("layers", "python benchmarks/bench_layers.py --only lstm",
                            {"threads": 1, "repeats": 10}, rows, "2026-01-01T00:00:00+00:00",
                            3.0, tmp_path)
    record = json.loads(path.read_text())["record"]
    assert record["metrics"]["rows"] == rows and record["config"]["benchmark"] == "layers"
    assert record["metrics"]["started_at"] == "2026-01-01T00:00:00+00:00"
    assert record["versions"]["torch"]
    with pytest.raises(ValueError, match="lstm/untied: ms and baseline_ms must be positive"):
        record_benchmark("layers", "c", {"threads": 1},
                         {"lstm": [{"case": "untied", "ms": 0.0, "baseline_ms": 1.0}]}, "t",
                         1.0, tmp_path)
    with pytest.raises(ValueError, match="benchmark must be one of"):
        record_benchmark("gpu", "c", {}, {}, "t", 1.0, tmp_path)


def _record(stamp: str, untied: float, fit: float | None = None) -> dict:
    rows = {"lstm": [{"case": "tied", "ms": 10.0, "baseline_ms": 10.0},
                     {"case": "untied", "ms": untied, "baseline_ms": 10.0}]}
    return {"command": "python benchmarks/bench_layers.py", "commit": "abc", "seconds": 1.0,
            "versions": {"cpu": "X", "torch": "2"}, "config": {"benchmark": "layers",
                                                               "threads": 2},
            "metrics": {"rows": rows, "started_at": stamp}}


def test_tables_show_each_runs_ratio_oldest_first_and_judge_every_run(tmp_path) -> None:
    records = [_record("2026-01-02", 17.0), _record("2026-01-01", 15.0)]
    table = ratio_tables(records)
    assert "### `layers`: lstm against nn.LSTM, 2 threads, commit `abc`" in table
    assert "| untied | 1.50 | 1.70 | ≤ 1.6 ✘ |" in table
    assert "| tied | 1.00 | 1.00 |  |" in table
    assert "| untied | 1.50 | 1.55 | ≤ 1.6 ✔ |" in ratio_tables(
        [_record("2026-01-01", 15.0), _record("2026-01-02", 15.5)])
    store = record_store("benchmarks", tmp_path / "results")
    for k, r in enumerate(records):
        store.put(str(k), r)
    page = build_pages(tmp_path)[tmp_path / "docs/results/benchmarks.md"]
    assert "| untied | 1.50 | 1.70 | ≤ 1.6 ✘ |" in page


def test_memory_is_shown_beside_the_baselines_where_measured() -> None:
    record = _record("2026-01-01", 15.0)
    record["metrics"]["rows"]["unit"] = [
        {"case": "rayleigh", "ms": 2.0, "baseline_ms": 8.0, "bytes_per_element": 4.0,
         "baseline_bytes_per_element": 1.0}]
    table = ratio_tables([record]).split("unit against F.dropout")[1]
    assert "| case | run 1 | target | saved B/element, last run (torch: 1.00) |" in table
    assert "| rayleigh | 0.25 |  | 4.00 |" in table


def test_a_gpu_run_is_its_own_table_judged_by_the_gpu_target() -> None:
    from dropprior.experiments.benchmark_records import target

    rows = {"unit": [{"case": "rayleigh", "ms": 1.05, "baseline_ms": 1.0},
                     {"case": "beta_2_2", "ms": 1.2, "baseline_ms": 1.0}]}
    record = {"command": "python benchmarks/bench_layers.py --device cuda", "commit": "abc",
              "seconds": 1.0, "versions": {"cpu": "X", "torch": "2"},
              "config": {"benchmark": "layers", "threads": 1, "device": "NVIDIA H200",
                         "pipelined": 10},
              "metrics": {"rows": rows, "started_at": "2026-01-01"}}
    table = ratio_tables([record, _record("2026-01-02", 15.0)])
    gpu = table.split("unit against F.dropout, NVIDIA H200, 10 steps back to back")[1]
    assert "| rayleigh | 1.05 | ≤ 1.1 ✔ |" in gpu and "| beta_2_2 | 1.20 | ≤ 1.1 ✘ |" in gpu
    assert "lstm against nn.LSTM, 2 threads, commit `abc`" in table
    assert target("layers", "unit", "rayleigh", "CPU, 1 thread(s)") is None
    assert target("layers", "lstm", "untied") == 1.6


def test_unit_noise_runs_at_different_sizes_are_separate_tables() -> None:
    def unit(size: list[int], ratio: float) -> dict:
        record = _record("2026-01-01", 15.0)
        record["config"].update(device="NVIDIA H200", pipelined=10, size=size)
        record["metrics"]["rows"] = {"unit": [{"case": "rayleigh", "ms": ratio,
                                               "baseline_ms": 1.0}]}
        return record

    table = ratio_tables([unit([8192, 8192], 1.05), unit([2048, 1024], 1.3)])
    big = table.split("NVIDIA H200, 10 steps back to back, x 8192 × 8192")[1].split("###")[0]
    small = table.split("NVIDIA H200, 10 steps back to back, x 2048 × 1024")[1].split("###")[0]
    assert "| rayleigh | 1.05 | ≤ 1.1 ✔ |" in big and "1.30" not in big
    assert "| rayleigh | 1.30 | ≤ 1.1 ✘ |" in small and "1.05" not in small
