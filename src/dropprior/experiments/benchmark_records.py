"""Result records of the speed benchmarks (``benchmarks/bench_layers.py`` and
``benchmarks/bench_training_speed.py`` with ``--record``) and the tables of
``docs/results/benchmarks.md``.

Every run is its own record under ``results/benchmarks/`` (repeated runs are the point of a
timing), holding each case's median milliseconds and its torch baseline's, measured in the same
run. The tables show the ratio dropprior / torch of every run side by side, one table per
(benchmark, comparison, threads, commit), beside the target where the issues set one.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

__all__ = ["TARGETS", "GPU_TARGETS", "target", "record_benchmark", "ratio_tables"]

TARGETS: dict[tuple[str, str, str], float] = {
    **{("training_speed", "steps", case): 1.15
       for case in ("uci-grid", "mlp-fit", "lenet-300-100", "lenet-5-filter", "conv-resnet-sd",
                    "ptb-tied", "ptb-untied", "ptb-gal")},
    ("layers", "lstm", "untied"): 1.6,
}
"""(benchmark, comparison, case) → the largest ratio to torch the issues accept on the CPU."""

GPU_TARGETS: dict[tuple[str, str], float] = {("layers", "unit"): 1.1}
"""(benchmark, comparison) → the largest ratio the issues accept for every case on a GPU."""


def _on_gpu(device: Any) -> bool:
    return device is not None and not str(device).startswith("CPU")


def target(benchmark: str, comparison: str, case: str, device: Any = None) -> float | None:
    """The largest ratio to torch the issues accept for ``case``, on ``device`` (a record's
    ``config["device"]``: ``"CPU, …"`` or a GPU's name; None: the CPU), or None."""
    if _on_gpu(device):
        return GPU_TARGETS.get((benchmark, comparison))
    return TARGETS.get((benchmark, comparison, case))

_BASELINES = {("layers", "unit"): "F.dropout", ("layers", "dropconnect"): "nn.Linear",
              ("layers", "conv"): "nn.Conv2d", ("layers", "lstm"): "nn.LSTM",
              ("layers", "embedding"): "nn.Embedding",
              ("training_speed", "steps"): "the same model with torch's dropout or no noise"}


def record_benchmark(benchmark: str, command: str, config: Mapping[str, Any],
                     rows: Mapping[str, Sequence[Mapping[str, Any]]], started_at: str,
                     seconds: float, root: str | Path) -> Path:
    """Write one benchmark run's record, made by ``command`` from ``started_at`` (the time the
    run started, an ISO string) for ``seconds``, to ``<root>/benchmarks/``: ``rows`` maps each
    comparison to its cases, each with ``case``, ``ms`` and ``baseline_ms`` (and any other
    measured values). Returns the record's file."""
    from dropprior.experiments.records import make_record, record_store

    if benchmark not in {b for b, _ in _BASELINES}:
        raise ValueError(f"benchmark must be one of {sorted({b for b, _ in _BASELINES})}, "
                         f"got {benchmark!r}")
    for comparison, cases in rows.items():
        for case in cases:
            if not (case.get("ms", 0) > 0 and case.get("baseline_ms", 0) > 0):
                raise ValueError(f"{comparison}/{case.get('case')}: ms and baseline_ms must be "
                                 f"positive, got {case.get('ms')!r} and "
                                 f"{case.get('baseline_ms')!r}")
    store = record_store("benchmarks", root)
    key = f"benchmarks/{benchmark}/threads={config.get('threads')}/at={started_at}"
    config = {**config, "benchmark": benchmark}
    store.put(key, make_record(command, config, 0,
                               {"rows": {k: list(v) for k, v in rows.items()},
                                "started_at": started_at}, seconds))
    return store.path(key)


def ratio_tables(records: Sequence[Mapping[str, Any]]) -> str:
    """Markdown: for each (benchmark, comparison, threads or GPU, unit-noise size, commit), a
    table of every case's ratio to its baseline in each run (oldest run first), with the target
    where one is set and whether every run meets it, and, where the cases measure it, the bytes
    per element saved for backward in the last run beside the baseline's."""
    from dropprior.experiments.tables import markdown_table

    groups: dict[tuple[str, str, str, str], list[Mapping[str, Any]]] = {}
    for r in sorted(records, key=lambda r: r["metrics"]["started_at"]):
        c = r["config"]
        where = (f"{c['device']}" + (f", {c['pipelined']} steps back to back"
                                     if c.get("pipelined", 1) > 1 else "")
                 if _on_gpu(c.get("device")) else
                 f"{c.get('threads')} thread{'' if c.get('threads') == 1 else 's'}")
        for comparison in r["metrics"]["rows"]:
            size = (f", x {c['size'][0]} × {c['size'][1]}"
                    if comparison == "unit" and c.get("size") else "")
            key = (c["benchmark"], comparison, where + size, str(r["commit"]))
            groups.setdefault(key, []).append(r)
    out = []
    for (benchmark, comparison, where, commit), runs in sorted(groups.items()):
        cases = list(dict.fromkeys(case["case"] for r in runs
                                   for case in r["metrics"]["rows"][comparison]))
        memory = [c.get("baseline_bytes_per_element") for c in
                  runs[-1]["metrics"]["rows"][comparison] if "bytes_per_element" in c]
        table = []
        for name in cases:
            ratios = []
            for r in runs:
                hit = [c for c in r["metrics"]["rows"][comparison] if c["case"] == name]
                ratios.append(hit[0]["ms"] / hit[0]["baseline_ms"] if hit else None)
            limit = target(benchmark, comparison, name, runs[0]["config"].get("device"))
            seen = [x for x in ratios if x is not None]
            verdict = ("" if limit is None else
                       f"≤ {limit:g} {'✔' if seen and max(seen) <= limit else '✘'}")
            row = [name, *("—" if x is None else f"{x:.2f}" for x in ratios), verdict]
            if memory:
                last = [c for c in runs[-1]["metrics"]["rows"][comparison] if c["case"] == name]
                row.append(f"{last[0]['bytes_per_element']:.2f}" if last
                           and "bytes_per_element" in last[0] else "—")
            table.append(row)
        first = runs[0]
        out.append(f"### `{benchmark}`: {comparison} against "
                   f"{_BASELINES.get((benchmark, comparison), 'torch')}, {where}, commit "
                   f"`{commit}`\n\n"
                   f"`{first['command']}` on {first['versions'].get('cpu', '?')}, torch "
                   f"{first['versions'].get('torch', '?')}; ratio dropprior / torch, each "
                   "run's own baseline.\n\n")
        saved = ([f"saved B/element, last run (torch: {memory[0]:.2f})"] if memory else [])
        out.append(markdown_table(["case", *(f"run {k + 1}" for k in range(len(runs))),
                                   "target", *saved], table))
        out.append("\n")
    return "".join(out)
