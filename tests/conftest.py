"""Shared fixtures: the data directory (skips cleanly when absent)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def data_dir() -> Path:
    """``$DROPPRIOR_DATA_DIR`` (CI points it at ../shared/data); skips the test when absent."""
    value = os.environ.get("DROPPRIOR_DATA_DIR")
    if not value or not Path(value).is_dir():
        pytest.skip("DROPPRIOR_DATA_DIR is not set to an existing directory")
    return Path(value)
