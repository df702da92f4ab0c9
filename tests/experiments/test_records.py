"""Job keys of result records: an added setting at its default keeps the earlier key."""

from dataclasses import dataclass

from dropprior.experiments.records import (
    added_setting,
    checkpoint_file,
    record_store,
    run_recorded,
    settings_key,
)


@dataclass(frozen=True)
class _Old:
    lr: float = 0.1
    seed: int = 0


@dataclass(frozen=True)
class _New:
    lr: float = 0.1
    seed: int = 0
    schedule: str = added_setting("constant")


def test_key_lists_every_field_in_order():
    assert settings_key("exp", _Old(lr=0.5, seed=3)) == "exp/lr=0.5,seed=3"


def test_added_setting_at_its_default_keeps_the_earlier_key():
    assert settings_key("exp", _New()) == settings_key("exp", _Old())
    assert settings_key("exp", _New(schedule="cosine")) == "exp/lr=0.1,seed=0,schedule=cosine"


def test_added_setting_finds_the_earlier_record_and_checkpoint(tmp_path):
    calls = []
    run_recorded("exp", _Old(), "cmd", lambda: calls.append(1) or {"x": 1.0}, tmp_path)
    record, fresh = run_recorded("exp", _New(), "cmd", lambda: calls.append(2) or {"x": 2.0},
                                 tmp_path)
    assert (fresh, record["metrics"]["x"], calls) == (False, 1.0, [1])
    assert checkpoint_file("exp", _New(), tmp_path / "c", tmp_path) == \
        checkpoint_file("exp", _Old(), tmp_path / "c", tmp_path)
    _, fresh = run_recorded("exp", _New(schedule="cosine"), "cmd", lambda: {"x": 3.0}, tmp_path)
    assert fresh and len(record_store("exp", tmp_path).records()) == 2
