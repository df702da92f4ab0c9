"""The verdict columns use the combined standard error of both sides."""

from __future__ import annotations

import math

import pytest

from dropprior.experiments.anchors import UCI_DEEP_ENSEMBLES_LL, UCI_DEEP_ENSEMBLES_PUBLISHED
from dropprior.experiments.tables import beats
from dropprior.experiments.uci import anchor_verdicts


def test_beats_needs_the_combined_standard_error() -> None:
    assert beats(1.0, 0.03, 0.94, 0.04)  # 0.06 > √(0.03² + 0.04²) = 0.05
    assert not beats(1.0, 0.03, 0.96, 0.04)  # 0.04 > 0.03 (its own s.e.) but < 0.05
    assert not beats(0.0, 0.01, 0.0, 0.01)


def test_2018_verdict_counts_the_anchors_error() -> None:
    # Yacht 2018: −1.25 ± 0.01; the combined error with a row's 0.01 is √2 · 0.01 ≈ 0.0141
    assert anchor_verdicts("yacht", -1.235, 0.01)[2] == "yes"  # 0.015 > 0.0141
    # −1.238 ± 0.01: 0.012 > 0.01 (the old rule said yes) but < 0.0141 (combined): no
    assert anchor_verdicts("yacht", -1.238, 0.01)[2] == "no"


def test_deep_ensembles_verdict_uses_its_standard_error() -> None:
    mean, se = UCI_DEEP_ENSEMBLES_LL["yacht"]
    assert mean == -1.18 and se == pytest.approx(0.21 / math.sqrt(20))
    assert UCI_DEEP_ENSEMBLES_PUBLISHED["yacht"] == (-1.18, 0.21)
    # above the mean (the old rule: "yes") but within the combined error: "no"
    assert anchor_verdicts("yacht", -1.15, 0.02)[3] == "no"
    assert anchor_verdicts("yacht", -1.05, 0.02)[3] == "yes"
    assert anchor_verdicts("unknown", -1.0, 0.1)[2:] == ("—", "—")
