"""``dropprior uncertainty --validate``: each tuned predictor's value is the one of the lowest
held-out NLL, scored against sklearn's log loss, on the last sixth of the training images."""

from __future__ import annotations

from dataclasses import replace

import pytest
import torch
from sklearn.metrics import log_loss
from torch import nn

from dropprior.experiments import uncertainty
from dropprior.experiments.report import _uncertainty_choices
from dropprior.experiments.uncertainty import UncertaintySettings, choose_on_validation


def _problem(n: int = 1200, d: int = 5, classes: int = 3, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, d, generator=g, dtype=torch.float64)
    weight = torch.randn(classes, d, generator=g, dtype=torch.float64)
    logits = 2.0 * x @ weight.T  # the labels' own temperature is 2
    y = torch.multinomial(torch.softmax(logits, -1), 1, generator=g).squeeze(1)
    return x, y, weight


def test_the_choice_is_the_lowest_held_out_log_loss(monkeypatch) -> None:
    x, y, weight = _problem()
    seen = []

    def fake_train(variant, s, fit_x, fit_y):
        """A linear classifier whose temperature is the tried value: no training, no noise."""
        seen.append((variant, fit_x, fit_y))
        model = nn.Linear(x.shape[1], weight.shape[0], bias=False).double()
        with torch.no_grad():
            model.weight.copy_(weight * 10 * s.dropout)
        return [model]

    monkeypatch.setattr(uncertainty, "_train", fake_train)
    grid = (0.05, 0.1, 0.2, 0.4)
    s = UncertaintySettings(samples=2, validate=True)
    record = choose_on_validation("bernoulli", s, x, y, "dropout", grid)

    held = x.shape[0] // 6  # 200 of 1200
    for variant, fit_x, fit_y in seen:
        assert variant == "bernoulli"
        assert torch.equal(fit_x, x[:-held]) and torch.equal(fit_y, y[:-held])
    reference = [log_loss(y[-held:].numpy(),
                          torch.softmax(x[-held:] @ (weight * 10 * t).T, -1).numpy(),
                          labels=[0, 1, 2]) for t in grid]
    assert record["nll"] == pytest.approx(reference, rel=1e-9)
    assert record["values"] == list(grid) and record["setting"] == "dropout"
    assert record["chosen"] == grid[min(range(len(grid)), key=reference.__getitem__)]
    # the temperature of the labels (10 · 0.2 = 2) fits the held-out labels best
    assert record["chosen"] == 0.2


def test_the_tried_values_reach_the_trained_settings(monkeypatch) -> None:
    x, y, weight = _problem()
    tried = []

    def fake_train(variant, s, fit_x, fit_y):
        tried.append(s.vi_prior_weight)
        model = nn.Linear(x.shape[1], weight.shape[0], bias=False).double()
        with torch.no_grad():
            model.weight.copy_(weight * s.vi_prior_weight)
        return [model]

    monkeypatch.setattr(uncertainty, "_train", fake_train)
    record = choose_on_validation("learned_scales", UncertaintySettings(samples=2), x, y,
                                  "vi_prior_weight", (1.0, 0.3, 0.1))
    assert tried == [1.0, 0.3, 0.1]
    assert record["chosen"] in tried and len(record["nll"]) == 3


def test_the_page_marks_the_chosen_value_per_seed() -> None:
    choice = {"setting": "dropout", "values": [0.1, 0.2], "nll": [0.31, 0.29], "chosen": 0.2}
    records = [{"config": {"seed": seed}, "metrics": {"validation": {"heavy": choice}}}
               for seed in (1, 0)]
    text = "".join(_uncertainty_choices(records))
    assert text.count("| heavy | dropout | 0.1: 0.3100, **0.2: 0.2900** |") == 2
    assert text.index("| 0 | heavy") < text.index("| 1 | heavy")
    assert _uncertainty_choices([{"config": {"seed": 0}, "metrics": {}}]) == []


def test_validate_needs_images_to_hold_out() -> None:
    with pytest.raises(ValueError, match="needs train_size >= 12, got 6"):
        UncertaintySettings(train_size=6, validate=True)
    UncertaintySettings(train_size=6)  # without validate, no images are held out
    with pytest.raises(TypeError, match="validate must be True or False, got 'yes'"):
        replace(UncertaintySettings(), validate="yes")


def test_a_record_chosen_over_another_grid_is_refused(tmp_path) -> None:
    """The grids are not in a record's key: a record whose values differ from the code's is an
    error, not a result read back; one whose values match is read."""
    from dataclasses import asdict

    from dropprior.experiments.records import make_record, record_store, settings_key
    from dropprior.experiments.uncertainty import TUNED, run_and_record

    s = UncertaintySettings(validate=True)
    store = record_store("uncertainty", tmp_path)

    def write(values: list[float]) -> None:
        choice = {"setting": "dropout", "values": values, "nll": [0.1] * len(values),
                  "chosen": values[0]}
        store.put(settings_key("uncertainty", s),
                  make_record("cmd", asdict(s), 0, {"validation": {"bernoulli": choice}}, 1.0,
                              "abc"), replace=True)

    write(list(TUNED["bernoulli"][1]))
    record, fresh = run_and_record(s, "cmd", None, tmp_path)
    assert not fresh and record["metrics"]["validation"]["bernoulli"]["values"] == list(
        TUNED["bernoulli"][1])
    write([0.1, 0.2, 0.3, 0.5])
    with pytest.raises(ValueError, match=r"chose bernoulli's dropout from \[0.1, 0.2, 0.3, 0.5\], "
                                         r"but this code tries \[0.05, 0.1"):
        run_and_record(s, "cmd", None, tmp_path)
