"""The committed results pages are exactly what ``dropprior report`` writes from the records."""

from __future__ import annotations

from pathlib import Path

from dropprior.experiments.report import PAGES, build_pages

ROOT = Path(__file__).resolve().parents[2]


def test_committed_pages_equal_the_generated_ones() -> None:
    pages = build_pages(ROOT)
    assert set(pages) == {ROOT / rel for rel in PAGES}
    for path, text in pages.items():
        assert path.read_text() == text, f"{path} is stale: run `dropprior report`"


def test_pages_are_built_from_records(tmp_path) -> None:
    from dropprior.experiments.records import make_record, record_store

    store = record_store("selection", tmp_path / "results")
    metrics = {"input_scales": [0.5, 0.4, 0.3] + [0.01] * 9, "block_scales": [0.05] * 6,
               "inputs_kept": [0, 1, 2], "blocks_kept": [], "test_rmse": 0.11,
               "test_rmse_pruned": 0.105, "input_snr": [5.0] * 3 + [0.3] * 9,
               "block_snr": [0.3] * 6}
    config = {"inference": "vi", "hyperprior": "log_uniform", "objective": "mc", "samples": 1}
    store.put("k", make_record("dropprior selection", config, 0, metrics, 12.0))
    text = build_pages(tmp_path)[tmp_path / "docs/results/selection.md"]
    assert "| vi | log_uniform | mc | — | [0, 1, 2] | 0 of 6 | 0.3–0.5 | 0.01 |" in text
    assert "| yes |" in text and "`dropprior selection`" in text


def test_every_hand_written_table_is_marked_not_regenerated() -> None:
    """docs/results.md predates the records: each of its sections with a table must say so."""
    import re

    text = (ROOT / "docs" / "results.md").read_text()
    sections = re.split(r"\n(?=#{2,3} )", text)[1:]
    unmarked = [s.splitlines()[0] for s in sections
                if re.search(r"^\|", s, flags=re.M) and "**Not regenerated.**" not in s]
    assert not unmarked, unmarked


def test_cost_compares_records_of_one_commit_only() -> None:
    """The pages' cost column: the baseline's speed over the record's where both ran the same
    commit (a dirty tree counts as its commit), and — across commits or without a baseline."""
    from dropprior.experiments.report import _cost

    def record(commit: str, speed: float) -> dict:
        return {"commit": commit, "metrics": {"train_images_per_second": speed}}

    base = record("abc123", 900.0)
    assert _cost(base, record("abc123+dirty", 600.0), "train_images_per_second") == "1.50"
    assert _cost(base, record("def456", 600.0), "train_images_per_second") == "—"
    assert _cost(None, record("abc123", 600.0), "train_images_per_second") == "—"
