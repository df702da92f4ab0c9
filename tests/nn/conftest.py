"""Fixture: the name of every registered noise law (instances in ``_nn_laws.LAWS``)."""

from __future__ import annotations

import pytest
from _nn_laws import LAWS


@pytest.fixture(params=sorted(LAWS))
def law_name(request: pytest.FixtureRequest) -> str:
    return request.param
