"""Uncertainty under shift: the rotations against torch.rot90, the metrics against
dropprior.metrics and sklearn, and ``dropprior evaluate`` end to end on MNIST with an IDX OOD
folder."""

from __future__ import annotations

import gzip
import json
import struct

import numpy as np
import pytest
import torch
from sklearn.metrics import roc_auc_score
from torch import nn

from dropprior import metrics
from dropprior.cli import main
from dropprior.experiments.evaluate import evaluate_classifier, pixel_noise, rotate
from dropprior.likelihoods import Categorical
from dropprior.nn import NoisyLinear
from dropprior.noise import Bernoulli
from dropprior.prediction import predict


def _images(n: int = 6) -> torch.Tensor:
    return torch.rand(n, 784, generator=torch.Generator().manual_seed(0))


def test_rotation_by_90_degrees_is_rot90_and_by_0_is_the_identity() -> None:
    x = _images()
    torch.testing.assert_close(rotate(x, 0.0), x)
    grid = x.reshape(-1, 28, 28)
    turned = rotate(x, 90.0).reshape(-1, 28, 28)
    options = [torch.rot90(grid, k, dims=(1, 2)) for k in (1, -1)]
    assert min(float((turned - o).abs().max()) for o in options) < 1e-5


def test_pixel_noise_is_seeded_and_clipped() -> None:
    x = _images()
    a = pixel_noise(x, 0.3, seed=1)
    noise = torch.randn(x.shape, generator=torch.Generator().manual_seed(1))
    torch.testing.assert_close(a, (x + 0.3 * noise).clamp(0, 1))
    assert a.min() == 0 and a.max() == 1  # clipping happened
    assert not torch.equal(a, pixel_noise(x, 0.3, seed=2))


def _model() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(NoisyLinear(784, 10, Bernoulli(0.8, inverted=True)))


def test_rows_are_dropprior_metrics_and_sklearn_aurocs() -> None:
    model = _model()
    x, y = _images(50), torch.arange(50) % 10
    ood = _images(30).flip(1)

    def predict_fn(images):
        torch.manual_seed(1)
        return predict(model, images, samples=5, likelihood=Categorical())

    rows, preds = evaluate_classifier(predict_fn, x, y, ood)
    assert [r["condition"] for r in rows] == ["mnist", "rotate15", "rotate30", "rotate45",
                                              "rotate60", "noise", "ood"]
    first = rows[0]
    assert first["accuracy"] == pytest.approx(float(metrics.accuracy(preds["mnist"].probs, y)))
    assert first["nll"] == pytest.approx(float(metrics.nll(preds["mnist"].probs, y)))
    assert "auroc_entropy" not in first and "accuracy" not in rows[-1]
    h_in = metrics.predictive_entropy(preds["mnist"].sample_probs).numpy()
    h_out = metrics.predictive_entropy(preds["ood"].sample_probs).numpy()
    expected = roc_auc_score(np.r_[np.zeros(50), np.ones(30)], np.r_[h_in, h_out])
    assert rows[-1]["auroc_entropy"] == pytest.approx(expected, abs=1e-6)


def _write_idx(folder, images: np.ndarray, labels: np.ndarray) -> None:
    folder.mkdir()
    with gzip.open(folder / "t10k-images-idx3-ubyte.gz", "wb") as fh:
        fh.write(struct.pack(">HBB3I", 0, 8, 3, *images.shape) + images.tobytes())
    with gzip.open(folder / "t10k-labels-idx1-ubyte.gz", "wb") as fh:
        fh.write(struct.pack(">HBBI", 0, 8, 1, labels.shape[0]) + labels.tobytes())


def test_evaluate_command_writes_the_table_and_figures(data_dir, tmp_path, capsys) -> None:
    model_file = tmp_path / "model.pt"
    torch.save(_model(), model_file)
    rng = np.random.default_rng(0)
    _write_idx(tmp_path / "ood", rng.integers(0, 256, (40, 28, 28), dtype=np.uint8),
               np.zeros(40, dtype=np.uint8))
    out = tmp_path / "eval"
    status = main(["evaluate", "--model", str(model_file), "--data-dir", str(data_dir),
                   "--ood-dir", str(tmp_path / "ood"), "--samples", "2", "--out", str(out)])
    assert status == 0
    rows = json.loads((out / "metrics.json").read_text())
    assert [r["n"] for r in rows] == [10_000] * 6 + [40]
    printed = capsys.readouterr().out
    assert "| mnist | 10000 |" in printed
    for name in ("reliability.png", "risk_coverage.png", "entropy_rotate45.png",
                 "entropy_ood.png", "metrics.md"):
        assert (out / name).stat().st_size > 0


def test_evaluate_command_refuses_what_it_cannot_load(tmp_path, capsys) -> None:
    assert main(["evaluate"]) == 2
    assert "--model FILE is required" in capsys.readouterr().err
    state = tmp_path / "state.pt"
    torch.save(_model().state_dict(), state)
    assert main(["evaluate", "--model", str(state)]) == 2
    assert "not a saved nn.Module" in capsys.readouterr().err
    for name, content in (("empty.pt", b""), ("text.pt", b"not a model")):
        (tmp_path / name).write_bytes(content)  # each was an EOFError / UnpicklingError trace
        assert main(["evaluate", "--model", str(tmp_path / name)]) == 2
        err = capsys.readouterr().err
        assert f"--model {str(tmp_path / name)!r} cannot be read by torch.load" in err
        assert "Traceback" not in err
