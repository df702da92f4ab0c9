"""The UCI regression benchmark in the split layout of the MC-dropout / PBP experiments.

Per data set: ``data.txt`` (whitespace-separated rows), ``index_features.txt`` and
``index_target.txt`` (0-based columns), ``index_train_K.txt`` / ``index_test_K.txt`` (0-based rows
of split K), and the protocol files ``n_splits.txt``, ``n_hidden.txt``, ``n_epochs.txt``,
``tau_values.txt``, ``dropout_rates.txt``.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from dropprior.data.paths import resolve_data_dir

__all__ = ["UCIDataset", "load_uci", "uci_datasets"]


@dataclass(frozen=True)
class UCIDataset:
    """One UCI data set with its standard splits.

    ``digest`` is a SHA-1 of every file the data set was read from, so a result keyed by it
    changes when the data does.

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
    digest: str = ""

    def split(self, k: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """(X_train, y_train, X_test, y_test) of split ``k``."""
        if isinstance(k, bool) or not isinstance(k, (int, np.integer)):
            raise TypeError(f"split must be an int index, got {k!r}")
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
        ValueError: unknown data set (the message lists the available ones) or a malformed file,
            named with the row or value at fault: an empty ``data.txt``, NaN or ±inf in a used
            row, the target column among the features, a split whose train and test rows overlap
            or that is empty, a hidden width or epoch count below 1, τ ≤ 0, a dropout rate
            outside [0, 1).
        FileNotFoundError: missing directory or file.
    """
    if not isinstance(name, str):
        raise TypeError(f"name must be a data set's folder name (a str), got {name!r}")
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
    if int(target[0]) in set(features.tolist()):
        raise ValueError(f"{folder / 'index_features.txt'}: the target column {int(target[0])} "
                         "(index_target.txt) is also listed as a feature")
    _check_finite(folder / "data.txt", data, [*features.tolist(), int(target[0])])
    n_splits = _read_scalar(folder / "n_splits.txt", int, default=None)
    if n_splits is None:
        n_splits = sum(1 for _ in folder.glob("index_train_*.txt"))
    if n_splits < 1:
        raise ValueError(f"{str(folder)!r} has no index_train_K.txt split files")
    splits = []
    for k in range(n_splits):
        train_path, test_path = folder / f"index_train_{k}.txt", folder / f"index_test_{k}.txt"
        train = _read_ints(train_path, upper=data.shape[0])
        test = _read_ints(test_path, upper=data.shape[0])
        for path, index in ((train_path, train), (test_path, test)):
            if index.size == 0:
                raise ValueError(f"{path}: the split has no rows")
        overlap = np.intersect1d(train, test)
        if overlap.size:
            raise ValueError(f"{test_path}: {overlap.size} test row(s) are also training rows of "
                             f"{train_path.name} (first: row {int(overlap[0])})")
        splits.append((train, test))
    tau_values = _read_floats(folder / "tau_values.txt")
    if any(not t > 0 for t in tau_values):
        raise ValueError(f"{folder / 'tau_values.txt'}: τ must be > 0, got "
                         f"{[t for t in tau_values if not t > 0]}")
    dropout_rates = _read_floats(folder / "dropout_rates.txt")
    if any(not 0 <= p < 1 for p in dropout_rates):
        raise ValueError(f"{folder / 'dropout_rates.txt'}: dropout rates must lie in [0, 1), "
                         f"got {[p for p in dropout_rates if not 0 <= p < 1]}")
    return UCIDataset(
        name=name,
        X=np.ascontiguousarray(data[:, features]),
        y=np.ascontiguousarray(data[:, int(target[0])]),
        splits=splits,
        n_hidden=_positive(folder / "n_hidden.txt", default=50),
        n_epochs=_positive(folder / "n_epochs.txt", default=40),
        tau_values=tau_values,
        dropout_rates=dropout_rates,
        digest=_digest(folder),
    )


def _digest(folder: Path) -> str:
    """SHA-1 of every file of the data set, in name order."""
    sha = hashlib.sha1()
    for path in sorted(p for p in folder.iterdir() if p.is_file()):
        sha.update(path.name.encode())
        sha.update(path.read_bytes())
    return sha.hexdigest()[:12]


def _check_finite(path: Path, data: np.ndarray, columns: list[int]) -> None:
    used = data[:, columns]
    bad = ~np.isfinite(used)
    if bad.any():
        row, col = (int(v) for v in np.argwhere(bad)[0])
        raise ValueError(f"{path}: row {row} (0-based), column {columns[col]} is "
                         f"{float(used[row, col])}; every used value must be finite")


def _positive(path: Path, default: int) -> int:
    value = _read_scalar(path, int, default=default)
    assert value is not None
    if value < 1:
        raise ValueError(f"{path}: expected an integer >= 1, got {value}")
    return value


def _read_matrix(path: Path) -> np.ndarray:
    if not path.read_text().strip():
        raise ValueError(f"{path}: the file holds no rows")
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
