"""The UCI regression benchmark in the split layout of the MC-dropout / PBP experiments.

Per data set: ``data.txt`` (whitespace-separated rows), ``index_features.txt`` and
``index_target.txt`` (0-based columns), ``index_train_K.txt`` / ``index_test_K.txt`` (0-based rows
of split K), and the protocol files ``n_splits.txt``, ``n_hidden.txt``, ``n_epochs.txt``,
``tau_values.txt``, ``dropout_rates.txt``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from dropprior.data.paths import resolve_data_dir

__all__ = ["UCIDataset", "load_uci", "uci_datasets"]


@dataclass(frozen=True)
class UCIDataset:
    """One UCI data set with its standard splits.

    Shape:
        X: (N, D) float64; y: (N,) float64; each split is (train_idx, test_idx) int64 arrays.
    """

    name: str
    X: np.ndarray
    y: np.ndarray
    splits: list[tuple[np.ndarray, np.ndarray]]
    n_hidden: int = 50
    n_epochs: int = 40
    tau_values: list[float] = field(default_factory=list)
    dropout_rates: list[float] = field(default_factory=list)

    def split(self, k: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """(X_train, y_train, X_test, y_test) of split ``k``."""
        if not 0 <= k < len(self.splits):
            raise ValueError(f"split {k!r} is out of range; {self.name} has {len(self.splits)}")
        train, test = self.splits[k]
        return self.X[train], self.y[train], self.X[test], self.y[test]


def uci_datasets(data_dir: str | os.PathLike[str] | None = None) -> list[str]:
    """Names of the data sets (folders holding a ``data.txt``) under ``data_dir``'s ``uci/``."""
    root = resolve_data_dir(data_dir, "uci")
    return sorted(p.name for p in root.iterdir() if (p / "data.txt").is_file())


def load_uci(data_dir: str | os.PathLike[str] | None, name: str) -> UCIDataset:
    """Read data set ``name`` from ``data_dir`` (the data root, or its ``uci/`` folder).

    Raises:
        ValueError: unknown data set (the message lists the available ones) or a malformed file.
        FileNotFoundError: missing directory or file.
    """
    root = resolve_data_dir(data_dir, "uci")
    folder = root / name
    if not (folder / "data.txt").is_file():
        available = sorted(p.name for p in root.iterdir() if (p / "data.txt").is_file())
        raise ValueError(f"unknown UCI data set {name!r}; available in {str(root)!r}: {available}")
    data = _read_matrix(folder / "data.txt")
    features = _read_ints(folder / "index_features.txt", upper=data.shape[1])
    target = _read_ints(folder / "index_target.txt", upper=data.shape[1])
    if target.size != 1:
        raise ValueError(f"{folder / 'index_target.txt'}: expected one column index, got {target}")
    n_splits = _read_scalar(folder / "n_splits.txt", int, default=None)
    if n_splits is None:
        n_splits = sum(1 for _ in folder.glob("index_train_*.txt"))
    if n_splits < 1:
        raise ValueError(f"{str(folder)!r} has no index_train_K.txt split files")
    splits = []
    for k in range(n_splits):
        train = _read_ints(folder / f"index_train_{k}.txt", upper=data.shape[0])
        test = _read_ints(folder / f"index_test_{k}.txt", upper=data.shape[0])
        splits.append((train, test))
    return UCIDataset(
        name=name,
        X=np.ascontiguousarray(data[:, features]),
        y=np.ascontiguousarray(data[:, int(target[0])]),
        splits=splits,
        n_hidden=_read_scalar(folder / "n_hidden.txt", int, default=50) or 50,
        n_epochs=_read_scalar(folder / "n_epochs.txt", int, default=40) or 40,
        tau_values=_read_floats(folder / "tau_values.txt"),
        dropout_rates=_read_floats(folder / "dropout_rates.txt"),
    )


def _read_matrix(path: Path) -> np.ndarray:
    try:
        data = np.loadtxt(path, dtype=np.float64, ndmin=2)
    except ValueError as err:
        raise ValueError(f"{path}: not a whitespace-separated numeric matrix ({err})") from None
    return data


def _read_ints(path: Path, upper: int) -> np.ndarray:
    if not path.is_file():
        raise FileNotFoundError(f"missing file {str(path)!r}")
    text = path.read_text().split()
    try:
        values = np.array([int(float(t)) if float(t).is_integer() else _bad(path, t)
                           for t in text], dtype=np.int64)
    except ValueError:
        raise ValueError(f"{path}: expected whitespace-separated integer indices") from None
    if values.size and (values.min() < 0 or values.max() >= upper):
        raise ValueError(f"{path}: indices must lie in [0, {upper}), got min {values.min()} "
                         f"max {values.max()}")
    return values


def _bad(path: Path, token: str) -> int:
    raise ValueError(f"{path}: {token!r} is not an integer index")


def _read_floats(path: Path) -> list[float]:
    if not path.is_file():
        return []
    try:
        return [float(t) for t in path.read_text().split()]
    except ValueError:
        raise ValueError(f"{path}: expected whitespace-separated numbers") from None


def _read_scalar(path: Path, kind: type, default: int | None) -> int | None:
    if not path.is_file():
        return default
    values = _read_floats(path)
    if len(values) != 1:
        raise ValueError(f"{path}: expected one number, got {values}")
    return kind(values[0])
