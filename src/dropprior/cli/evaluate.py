"""``dropprior evaluate``: a saved classifier's uncertainty on MNIST, rotated and noisy MNIST, and
an out-of-distribution set in MNIST's IDX layout; prints the metric table and writes it with the
figures."""

from __future__ import annotations

import argparse
import pickle
from pathlib import Path

from dropprior.cli._common import CLIError, resolve_data_dir
from dropprior.cli._config import Options, resolve

_INPUTS = {"flat": "(N, 784)", "image": "(N, 1, 28, 28)"}


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "evaluate", help="a saved MNIST classifier's metrics under rotation, noise and OOD",
        description="Load a classifier saved with torch.save(model, FILE), predict with S noise "
        "draws on the MNIST test images, the same rotated by 15, 30, 45 and 60 degrees, with "
        "Gaussian pixel noise (std 0.3), and optionally an out-of-distribution set in MNIST's "
        "IDX layout (e.g. Fashion-MNIST); print accuracy, NLL, ECE, Brier, AURC and the AUROC "
        "of telling each condition from MNIST by entropy, mutual information and max "
        "probability, and write metrics.json, metrics.md and the figures into --out. The "
        "file is unpickled (torch.load with weights_only=False): load only files you trust.")
    opts = Options(parser)
    opts.add("--model", default=None, kind=Path, metavar="FILE",
             help="the saved model (a whole nn.Module, torch.save(model, FILE))", shown="required")
    opts.add("--data-dir", default=None, kind=Path, metavar="DIR",
             help="data root holding mnist/ (or the mnist/ folder itself)",
             shown="$DROPPRIOR_DATA_DIR")
    opts.add("--ood-dir", default=None, kind=Path, metavar="DIR",
             help="a folder with t10k-images-idx3-ubyte.gz and t10k-labels-idx1-ubyte.gz of an "
             "out-of-distribution set", shown="none")
    opts.add("--input", default="flat", choices=list(_INPUTS),
             help="the model's input: flat (N, 784) or image (N, 1, 28, 28), standardised with "
             "MNIST's mean and std")
    opts.add("--samples", default=100, kind=int, help="noise draws per prediction")
    opts.add("--batch-size", default=1000, kind=int, help="examples per forward pass")
    opts.add("--seed", default=0, kind=int, help="noise draws and the pixel noise")
    opts.add("--out", default=Path("evaluation"), kind=Path, metavar="DIR",
             help="output folder")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import torch

    from dropprior._validation import check_seed
    from dropprior.data.mnist import MNIST_MEAN, MNIST_STD, load_idx, load_mnist
    from dropprior.experiments.evaluate import evaluate_classifier, table, write_evaluation
    from dropprior.likelihoods import Categorical
    from dropprior.prediction import ClassificationPrediction, predict

    values = resolve(args)
    check_seed(values["seed"], low=0)
    if values["model"] is None:
        raise CLIError("--model FILE is required: a model saved with torch.save(model, FILE)")
    path = Path(values["model"])
    if not path.is_file():
        raise CLIError(f"--model {str(path)!r} is not a file")
    try:
        model = torch.load(path, weights_only=False)
    except (EOFError, RuntimeError, pickle.UnpicklingError) as err:
        raise CLIError(f"--model {str(path)!r} cannot be read by torch.load ({err}); give a "
                       "model saved with torch.save(model, FILE)") from None
    if not isinstance(model, torch.nn.Module):
        raise CLIError(f"--model {str(path)!r} holds a {type(model).__name__}, not a saved "
                       "nn.Module (a state dict needs its architecture: save the whole model)")
    x, y = load_mnist(resolve_data_dir(values["data_dir"], "mnist"), "test")
    ood = load_idx(values["ood_dir"], "test")[0] if values["ood_dir"] is not None else None
    if ood is not None and ood.shape[1] != 784:
        raise CLIError(f"--ood-dir images have {ood.shape[1]} pixels; MNIST's models take 784")
    shape = (-1, 784) if values["input"] == "flat" else (-1, 1, 28, 28)
    torch.manual_seed(values["seed"])

    def predict_fn(images: torch.Tensor) -> ClassificationPrediction:
        inputs = ((images - MNIST_MEAN) / MNIST_STD).reshape(shape)
        pred = predict(model, inputs, samples=values["samples"], likelihood=Categorical(),
                       batch_size=values["batch_size"])
        assert isinstance(pred, ClassificationPrediction)
        return pred

    rows, preds = evaluate_classifier(predict_fn, x, y, ood, values["seed"])
    print(table(rows), end="")
    for written in write_evaluation(rows, preds, y, values["out"]):
        print(f"wrote {written}")
    return 0
