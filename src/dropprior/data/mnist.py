"""MNIST in the original IDX format (gzip), read by path."""

from __future__ import annotations

import gzip
import os
import struct
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from dropprior._validation import check_choice
from dropprior.data.paths import resolve_data_dir

__all__ = ["load_mnist", "load_idx", "MNIST_MEAN", "MNIST_STD", "MNIST_TRAIN",
           "check_held_out"]

MNIST_MEAN = 0.1307
MNIST_STD = 0.3081
MNIST_TRAIN = 60_000  # images in the training file


def check_held_out(train_size: int, validation: int) -> None:
    """Raise ValueError unless ``validation`` held-out images and ``train_size`` training
    images, drawn disjointly from the MNIST training file, fit in it."""
    if validation + train_size > MNIST_TRAIN:
        raise ValueError(
            f"validation ({validation}) + train_size ({train_size}) exceed the "
            f"{MNIST_TRAIN} MNIST training images; pass train_size <= "
            f"{max(MNIST_TRAIN - validation, 0)}")


_FILES = {"train": "train", "test": "t10k"}


def load_mnist(
    data_dir: str | os.PathLike[str] | None, split: str = "train"
) -> tuple[Tensor, Tensor]:
    """Images and labels of one MNIST split.

    Args:
        data_dir: the data root (holding ``mnist/``) or the ``mnist/`` folder itself.
        split: ``"train"`` (60,000 images) or ``"test"`` (10,000).

    Shape:
        images: (N, 784) float32 in [0, 1]; labels: (N,) int64.
    """
    check_choice("split", split, list(_FILES))
    return load_idx(resolve_data_dir(data_dir, "mnist"), split)


def load_idx(folder: str | os.PathLike[str], split: str = "test") -> tuple[Tensor, Tensor]:
    """Images and labels of any data set in MNIST's IDX layout (e.g. Fashion-MNIST): the files
    ``{train,t10k}-{images-idx3,labels-idx1}-ubyte.gz`` in ``folder`` itself.

    Shape:
        images: (N, H·W) float32 in [0, 1]; labels: (N,) int64.
    """
    check_choice("split", split, list(_FILES))
    root = Path(folder)
    if not root.is_dir():
        raise FileNotFoundError(f"IDX folder {str(root)!r} does not exist")
    prefix = _FILES[split]
    images = _read_idx(root / f"{prefix}-images-idx3-ubyte.gz")
    labels = _read_idx(root / f"{prefix}-labels-idx1-ubyte.gz")
    if images.ndim != 3 or labels.ndim != 1 or images.shape[0] != labels.shape[0]:
        raise ValueError(f"{str(root)!r} {split}: images {images.shape} and labels "
                         f"{labels.shape} disagree")
    x = torch.from_numpy(images.reshape(images.shape[0], -1).astype(np.float32) / 255.0)
    return x, torch.from_numpy(labels.astype(np.int64))


def _read_idx(path: os.PathLike[str]) -> np.ndarray:
    if not os.path.isfile(path):
        raise FileNotFoundError(f"missing MNIST file {str(path)!r}")
    try:
        with gzip.open(path, "rb") as fh:
            raw = fh.read()
    except (EOFError, OSError) as err:  # a truncated download, or not gzip at all
        raise ValueError(f"{str(path)!r} is not a complete gzip file ({err}); fetch it again "
                         "(the folder's SHA256SUMS lists each file's checksum)") from err
    if len(raw) < 4:
        raise ValueError(f"{path}: not an unsigned-byte IDX file ({len(raw)} bytes)")
    zero, dtype_code, ndim = struct.unpack(">HBB", raw[:4])
    if zero != 0 or dtype_code != 0x08:
        raise ValueError(f"{path}: not an unsigned-byte IDX file")
    dims = struct.unpack(f">{ndim}I", raw[4 : 4 + 4 * ndim])
    data = np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim)
    if data.size != int(np.prod(dims)):
        raise ValueError(f"{path}: header says {dims} but holds {data.size} bytes")
    return data.reshape(dims)
