"""The full UCI table's job time per cell: measured, scaled from a partial run, or estimated,
checked against the arithmetic done by hand on made-up summary rows."""

from __future__ import annotations

import pytest

from dropprior.experiments.laws import TABLE1_LAWS
from dropprior.experiments.uci_cost import cost_cells, marginal_ratios, median_ratio


def _row(dataset: str, law: str, objective: str, splits: int, seconds: float,
         structure: str = "unit", variant: str = "") -> dict:
    return {"dataset": dataset, "law": law, "structure": structure, "objective": objective,
            "variant": variant, "n_splits": splits, "seconds": seconds}


SUMMARIES = [
    _row("a", "bernoulli", "mc", 20, 100.0), _row("a", "bernoulli", "marginal", 20, 300.0),
    _row("a", "gaussian", "mc", 20, 200.0), _row("a", "gaussian", "marginal", 20, 1000.0),
    _row("a", "rayleigh", "mc", 5, 50.0),
    _row("a", "half_cauchy", "mc", 20, 90.0), _row("a", "half_cauchy", "marginal", 4, 10.0),
    _row("b", "bernoulli", "mc", 10, 400.0),
    # a data set outside the table still gives its ratio
    _row("d", "bernoulli", "mc", 20, 100.0), _row("d", "bernoulli", "marginal", 20, 1000.0),
    # a second, shorter run of a cell does not replace the complete one
    _row("a", "bernoulli", "mc", 5, 1e6),
    # none of these is a cell of the table
    _row("a", "inverse_nakagami", "mc", 20, 1e6, structure="weight"),
    _row("a", "inverse_nakagami", "mc", 20, 1e6, variant="vi"),
    _row("a", "none", "map", 20, 1e6),
    _row("c", "bernoulli", "laplace", 20, 1e6),
]


def _cells() -> dict[tuple[str, str, str], dict]:
    cells = cost_cells(SUMMARIES, ["a", "b", "c"])
    assert len(cells) == 3 * len(TABLE1_LAWS) * 2
    return {(c["dataset"], c["law"], c["objective"]): c for c in cells}


def test_ratios_only_of_pairs_with_both_objectives_complete() -> None:
    # half-Cauchy's marginal row is partial, Rayleigh has no marginal row
    assert marginal_ratios(SUMMARIES) == [("a", "bernoulli", 3.0), ("a", "gaussian", 5.0),
                                          ("d", "bernoulli", 10.0)]
    assert median_ratio(marginal_ratios(SUMMARIES)) == 5.0
    assert median_ratio(marginal_ratios([_row("a", "bernoulli", "mc", 20, 100.0)])) is None


def test_measured_and_scaled_cells() -> None:
    cells = _cells()
    assert cells["a", "bernoulli", "mc"] == {
        "dataset": "a", "law": "bernoulli", "objective": "mc", "seconds": 100.0,
        "source": "measured", "splits": 20}
    assert (cells["a", "rayleigh", "mc"]["seconds"], cells["a", "rayleigh", "mc"]["source"],
            cells["a", "rayleigh", "mc"]["splits"]) == (200.0, "scaled", 5)
    assert (cells["a", "half_cauchy", "marginal"]["seconds"],
            cells["a", "half_cauchy", "marginal"]["source"]) == (50.0, "scaled")
    assert (cells["b", "bernoulli", "mc"]["seconds"],
            cells["b", "bernoulli", "mc"]["source"]) == (800.0, "scaled")


def test_estimated_cells_use_the_data_sets_mc_mean_and_the_median_ratio() -> None:
    cells = _cells()
    # a's MC cells with a time: 100, 200, 200 (scaled), 90; the median of ratios 3, 5, 10 is 5
    mean_a = (100.0 + 200.0 + 200.0 + 90.0) / 4
    inverse = cells["a", "inverse_nakagami", "mc"]
    assert inverse["source"] == "MC mean" and inverse["splits"] == 0
    assert inverse["seconds"] == pytest.approx(mean_a)
    assert cells["a", "inverse_nakagami", "marginal"]["seconds"] == pytest.approx(5 * mean_a)
    assert cells["a", "rayleigh", "marginal"]["seconds"] == pytest.approx(1000.0)
    assert cells["a", "rayleigh", "marginal"]["source"] == "MC × ratio"
    for law in TABLE1_LAWS[1:]:
        assert cells["b", law, "mc"]["seconds"] == pytest.approx(800.0)
        assert cells["b", law, "mc"]["source"] == "MC mean"
        assert cells["b", law, "marginal"]["seconds"] == pytest.approx(4000.0)


def test_data_set_without_an_mc_row_and_no_ratio_leave_cells_without_a_time() -> None:
    cells = _cells()
    assert all(cells["c", law, objective]["seconds"] is None
               and cells["c", law, objective]["source"] is None
               for law in TABLE1_LAWS for objective in ("mc", "marginal"))
    # without any pair of both objectives measured, a marginal cell without a row has no time
    only_mc = cost_cells([_row("a", "bernoulli", "mc", 20, 100.0)], ["a"])
    assert [c["seconds"] for c in only_mc if c["objective"] == "marginal"] == [None] * 5
    assert [c["seconds"] for c in only_mc if c["objective"] == "mc"] == [100.0] * 5
