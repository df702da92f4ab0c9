"""Data readers, by path: the UCI split layout, MNIST (IDX), Penn Treebank, and scikit-learn's
bundled data sets (no download); and image augmentation for :func:`dropprior.fit`."""

from dropprior.data.augment import random_shift
from dropprior.data.mnist import load_mnist
from dropprior.data.paths import DATA_DIR_ENV, resolve_data_dir
from dropprior.data.ptb import PTB, load_ptb
from dropprior.data.sklearn import load_diabetes, load_digits
from dropprior.data.uci import UCIDataset, load_uci, uci_datasets

__all__ = [
    "DATA_DIR_ENV",
    "resolve_data_dir",
    "UCIDataset",
    "load_uci",
    "uci_datasets",
    "load_mnist",
    "PTB",
    "load_ptb",
    "load_diabetes",
    "load_digits",
    "random_shift",
]
