"""Choosing the law per split on inner validation (never on the test split)."""

import pytest

from dropprior.experiments.tables import mean_se
from dropprior.experiments.uci_selection import select_on_validation


def _record(law: str, splits: dict[int, tuple[list[float], float, float]],
            dataset: str = "toy", objective: str = "mc") -> dict:
    """splits: k -> (validation LLs over the grid, test RMSE, test LL)."""
    return {"params": {"dataset": dataset, "law": law, "structure": "unit",
                       "objective": objective},
            "result": {"epochs": 10, "splits": [
                {"split": k, "rmse": rmse, "ll": ll, "p": 0.1, "tau": 1.0,
                 "validation": [{"p": 0.1, "tau": 1.0, "rmse": 1.0, "ll": v} for v in val]}
                for k, (val, rmse, ll) in splits.items()]}}


def test_chooses_by_validation_not_by_test() -> None:
    # split 0: "a" validates better (−1.0 > −1.5) although "b" tests better; split 1: "b"
    a = _record("a", {0: ([-2.0, -1.0], 1.0, -3.0), 1: ([-2.0], 2.0, -2.5)})
    b = _record("b", {0: ([-1.5, float("nan")], 0.5, -0.5), 1: ([-1.9, -1.8], 3.0, -4.0)})
    (row,) = select_on_validation([a, b])
    assert row["chosen"] == {"a/unit/mc": 1, "b/unit/mc": 1}
    assert row["n_splits"] == 2
    assert (row["ll"], row["ll_se"]) == pytest.approx(mean_se([-3.0, -4.0]))
    assert (row["rmse"], row["rmse_se"]) == pytest.approx(mean_se([1.0, 3.0]))


def test_objectives_are_candidates_and_only_common_splits_count() -> None:
    mc = _record("a", {0: ([-1.0], 1.0, -1.0), 1: ([-1.0], 1.0, -1.0), 2: ([-9.0], 1.0, -9.0)})
    marginal = _record("a", {0: ([-0.5], 2.0, -2.0), 1: ([-2.0], 1.0, -1.5)},
                       objective="marginal")
    (row,) = select_on_validation([mc, marginal])
    assert row["n_splits"] == 2  # split 2 has no marginal run
    assert row["chosen"] == {"a/unit/marginal": 1, "a/unit/mc": 1}
    assert row["ll"] == pytest.approx(-1.5)


def test_data_sets_are_kept_apart_and_duplicates_are_refused() -> None:
    rows = select_on_validation([_record("a", {0: ([-1.0], 1.0, -1.0)}, dataset="x"),
                                 _record("a", {0: ([-1.0], 2.0, -2.0)}, dataset="y")])
    assert [r["dataset"] for r in rows] == ["x", "y"]
    assert [r["ll"] for r in rows] == [-1.0, -2.0]
    with pytest.raises(ValueError, match="split 0 of a/unit/mc appears in two records"):
        select_on_validation([_record("a", {0: ([-1.0], 1.0, -1.0)})] * 2)
    with pytest.raises(ValueError, match="share no split"):
        select_on_validation([_record("a", {0: ([-1.0], 1.0, -1.0)}),
                              _record("b", {1: ([-1.0], 1.0, -1.0)})])
