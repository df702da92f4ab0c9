"""Shared fixtures: the data directory (skips cleanly when absent), a tiny UCI-layout set, and the
name of every registered noise law (instances: ``dropprior.noise.example_laws()``)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from dropprior.noise import example_laws


@pytest.fixture(params=sorted(example_laws()))
def law_name(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture(scope="session")
def data_dir() -> Path:
    """``$DROPPRIOR_DATA_DIR`` (CI points it at ../shared/data); skips the test when absent."""
    value = os.environ.get("DROPPRIOR_DATA_DIR")
    if not value or not Path(value).is_dir():
        pytest.skip("DROPPRIOR_DATA_DIR is not set to an existing directory")
    return Path(value)


def write_tiny_uci(root: Path, name: str = "tiny", n: int = 60, n_splits: int = 3,
                   seed: int = 0) -> Path:
    """Write ``root/uci/name`` (y = x·w + noise, 3 features) and return ``root``."""
    rng = np.random.default_rng(seed)
    folder = root / "uci" / name
    folder.mkdir(parents=True)
    x = rng.normal(size=(n, 3))
    y = x @ np.array([1.5, -2.0, 0.5]) + 3.0 + 0.1 * rng.normal(size=n)
    np.savetxt(folder / "data.txt", np.column_stack([x, y]))
    (folder / "index_features.txt").write_text("0\n1\n2\n")
    (folder / "index_target.txt").write_text("3\n")
    for k in range(n_splits):
        perm = rng.permutation(n)
        n_test = n // 5
        np.savetxt(folder / f"index_train_{k}.txt", perm[n_test:], fmt="%d")
        np.savetxt(folder / f"index_test_{k}.txt", perm[:n_test], fmt="%d")
    (folder / "n_splits.txt").write_text(f"{n_splits}\n")
    (folder / "n_hidden.txt").write_text("8\n")
    (folder / "n_epochs.txt").write_text("2\n")
    (folder / "tau_values.txt").write_text("5.0\n50.0\n")
    (folder / "dropout_rates.txt").write_text("0.01\n0.1\n")
    return root


@pytest.fixture
def tiny_uci(tmp_path: Path) -> Path:
    """A data root holding ``uci/tiny`` with 3 splits of 48 / 12 rows."""
    return write_tiny_uci(tmp_path / "data")
