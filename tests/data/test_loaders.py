"""The data readers: a synthetic UCI layout (with malformed files) and the shared data."""

from __future__ import annotations

import gzip
import hashlib
from pathlib import Path

import numpy as np
import pytest

from dropprior.data import load_mnist, load_ptb, load_uci, resolve_data_dir, uci_datasets
from dropprior.data.ptb import batchify


def _write_uci(root: Path, name: str = "toy", n: int = 12, splits: int = 2) -> np.ndarray:
    rng = np.random.default_rng(0)
    data = rng.normal(size=(n, 4))
    folder = root / "uci" / name
    folder.mkdir(parents=True)
    np.savetxt(folder / "data.txt", data)
    (folder / "index_features.txt").write_text("0\n1\n2\n")
    (folder / "index_target.txt").write_text("3\n")
    (folder / "n_splits.txt").write_text(f"{splits}\n")
    (folder / "tau_values.txt").write_text("0.5 1.0\n")
    (folder / "dropout_rates.txt").write_text("0.01 0.05\n")
    for k in range(splits):
        perm = rng.permutation(n)
        (folder / f"index_train_{k}.txt").write_text("\n".join(map(str, perm[:9])))
        (folder / f"index_test_{k}.txt").write_text("\n".join(map(str, perm[9:])))
    return data


def test_uci_layout_round_trip(tmp_path: Path) -> None:
    data = _write_uci(tmp_path)
    ds = load_uci(tmp_path, "toy")
    assert uci_datasets(tmp_path) == ["toy"]
    np.testing.assert_array_equal(ds.X, data[:, :3])
    np.testing.assert_array_equal(ds.y, data[:, 3])
    assert len(ds.splits) == 2 and ds.tau_values == [0.5, 1.0] and ds.dropout_rates == [0.01, 0.05]
    x_tr, y_tr, x_te, y_te = ds.split(1)
    train, test = ds.splits[1]
    np.testing.assert_array_equal(x_te, data[test, :3])
    assert set(train).isdisjoint(test) and len(x_tr) == 9 and len(y_te) == 3
    # Either the data root or its uci/ folder is accepted.
    np.testing.assert_array_equal(load_uci(tmp_path / "uci", "toy").y, ds.y)


def test_uci_errors_name_the_problem(tmp_path: Path) -> None:
    _write_uci(tmp_path)
    original = (tmp_path / "uci" / "toy" / "index_test_1.txt").read_text()
    with pytest.raises(ValueError, match=r"unknown UCI data set 'nope'.*\['toy'\]"):
        load_uci(tmp_path, "nope")
    (tmp_path / "uci" / "toy" / "index_test_1.txt").write_text("1\nx\n")
    with pytest.raises(ValueError, match="index_test_1.txt"):
        load_uci(tmp_path, "toy")
    (tmp_path / "uci" / "toy" / "index_test_1.txt").write_text("1\n99\n")
    with pytest.raises(ValueError, match=r"indices must lie in \[0, 12\)"):
        load_uci(tmp_path, "toy")
    with pytest.raises(FileNotFoundError, match="does not exist"):
        resolve_data_dir(tmp_path / "missing")
    with pytest.raises(TypeError, match="the data directory must be a path .*, got 3"):
        resolve_data_dir(3)  # type: ignore[arg-type]
    (tmp_path / "a_file").write_text("")
    with pytest.raises(FileNotFoundError, match="'.*a_file' is a file; give the folder"):
        resolve_data_dir(tmp_path / "a_file")
    (tmp_path / "uci" / "toy" / "index_test_1.txt").write_text(original)
    with pytest.raises(ValueError, match="split 5 is out of range"):
        load_uci(tmp_path, "toy").split(5)
    # split(1.5) failed in list indexing, split(True) returned split 1
    for bad in (1.5, True):
        with pytest.raises(TypeError, match=f"split must be an int index, got {bad!r}"):
            load_uci(tmp_path, "toy").split(bad)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="name must be a data set's folder name"):
        load_uci(tmp_path, 3)  # type: ignore[arg-type]


def _write_idx(path: Path, array: np.ndarray) -> None:
    header = bytes([0, 0, 0x08, array.ndim]) + b"".join(d.to_bytes(4, "big") for d in array.shape)
    with gzip.open(path, "wb") as fh:
        fh.write(header + array.astype(np.uint8).tobytes())


def test_broken_mnist_and_empty_ptb_files_are_named(tmp_path: Path) -> None:
    """A truncated .gz raised gzip's EOFError without the file's name, and an empty PTB split
    loaded as a corpus of no words; both are errors naming the file. A well-formed synthetic
    IDX pair loads as written."""
    folder = tmp_path / "mnist"
    folder.mkdir()
    images = np.arange(2 * 28 * 28).reshape(2, 28, 28) % 256
    for prefix in ("train", "t10k"):
        _write_idx(folder / f"{prefix}-images-idx3-ubyte.gz", images)
        _write_idx(folder / f"{prefix}-labels-idx1-ubyte.gz", np.array([3, 7]))
    x, y = load_mnist(tmp_path, "test")
    assert y.tolist() == [3, 7] and x.shape[0] == 2
    whole = (folder / "train-images-idx3-ubyte.gz").read_bytes()
    (folder / "train-images-idx3-ubyte.gz").write_bytes(whole[: len(whole) // 2])
    with pytest.raises(ValueError, match=r"train-images-idx3-ubyte.gz' is not a complete gzip "
                                         r"file .*SHA256SUMS"):
        load_mnist(tmp_path, "train")
    ptb = tmp_path / "ptb"
    ptb.mkdir()
    for split in ("train", "valid", "test"):
        (ptb / f"ptb.{split}.txt").write_text(" a b \n b a \n")
    assert len(load_ptb(tmp_path).vocab) == 3  # a, b, <eos>
    (ptb / "ptb.valid.txt").write_text("\n\n")
    with pytest.raises(ValueError, match=r"PTB file '.*ptb.valid.txt' holds no words"):
        load_ptb(tmp_path)


def test_batchify_columns_are_contiguous() -> None:
    import torch

    out = batchify(torch.arange(10), 3)
    assert out.shape == (3, 3)
    torch.testing.assert_close(out[:, 1], torch.tensor([3, 4, 5]))
    with pytest.raises(ValueError, match="batch_size"):
        batchify(torch.arange(10), 0)


def test_shared_uci_has_standard_splits(data_dir: Path) -> None:
    expected = {"bostonHousing": (506, 13), "energy": (768, 8), "yacht": (308, 6),
                "wine-quality-red": (1599, 11), "power-plant": (9568, 4),
                "naval-propulsion-plant": (11934, 16)}
    assert set(expected) <= set(uci_datasets(data_dir))
    for name in ("yacht", "bostonHousing"):
        ds = load_uci(data_dir, name)
        assert ds.X.shape == expected[name] and len(ds.splits) == 20 and ds.n_hidden == 50


def test_shared_mnist_matches_checksums_and_stats(data_dir: Path) -> None:
    root = data_dir / "mnist"
    for line in (root / "SHA256SUMS").read_text().splitlines():
        digest, name = line.split()
        assert hashlib.sha256((root / name).read_bytes()).hexdigest() == digest
    x, y = load_mnist(data_dir, "train")
    assert x.shape == (60000, 784) and y.shape == (60000,)
    assert abs(float(x.mean()) - 0.1307) < 5e-4 and abs(float(x.std()) - 0.3081) < 5e-4
    assert sorted(y.unique().tolist()) == list(range(10))
    with gzip.open(root / "t10k-labels-idx1-ubyte.gz") as fh:
        raw = fh.read()[8:]
    assert load_mnist(data_dir, "test")[1].tolist() == list(raw)


def test_shared_ptb_token_counts(data_dir: Path) -> None:
    ptb = load_ptb(data_dir)
    assert len(ptb.vocab) == 10000
    assert (ptb.train.numel(), ptb.valid.numel(), ptb.test.numel()) == (929589, 73760, 82430)
