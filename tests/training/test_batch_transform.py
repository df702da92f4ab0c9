"""fit(batch_transform=...): every training minibatch's inputs pass through it (the validation
data do not), its draws come from fit's checkpointed generator so a resumed run equals an
uninterrupted one, and bad transforms are refused by value."""

from __future__ import annotations

import pytest
import torch

from dropprior import fit
from dropprior.likelihoods import Gaussian
from tests.training._training_models import MaskMLP, regression_data, resumed_equals_straight

_data = regression_data


def _jitter(xb: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    return xb + 0.1 * torch.randn(xb.shape, generator=generator)


def test_training_batches_pass_through_it_and_validation_does_not() -> None:
    x, y = _data()
    seen: list[torch.Tensor] = []

    def spy(xb: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        seen.append(xb.clone())
        return xb * 0.0  # the model then sees only zeros in training

    torch.manual_seed(2)
    model = MaskMLP()
    history = fit(model, Gaussian(0.5), x, y, epochs=2, batch_size=12, validation=0.25,
                  progress=False, batch_transform=spy)
    assert [b.shape[0] for b in seen] == [12, 12, 6] * 2  # 30 training rows, batches of 12
    held = {tuple(r.tolist()) for r in x} - {tuple(r.tolist()) for b in seen for r in b}
    assert len(held) == 10  # the validation rows never went through the transform
    assert len(history.val_loss) == 2
    # a model that saw only zeros: its first layer's weights had zero gradient throughout
    torch.manual_seed(2)
    reference = MaskMLP()
    torch.testing.assert_close(model.fc1.weight, reference.fc1.weight)


def test_a_resumed_run_equals_an_uninterrupted_one(tmp_path) -> None:
    x, y = _data()
    model = resumed_equals_straight(tmp_path / "ckpt.pt", x, y, batch_size=10,
                                    batch_transform=_jitter)
    torch.manual_seed(1)
    plain = MaskMLP()
    fit(plain, Gaussian(0.5), x, y, lr=0.05, epochs=4, batch_size=10, progress=False)
    assert not torch.equal(plain.fc1.weight, model.fc1.weight)


def test_bad_transforms_are_refused() -> None:
    x, y = _data()
    with pytest.raises(TypeError, match="batch_transform must be a function"):
        fit(MaskMLP(), Gaussian(0.5), x, y, epochs=1, progress=False,
            batch_transform="shift")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="batch_transform must return a tensor with the "
                       r"batch's 10 examples along dim 0, got \(9, 2\)"):
        fit(MaskMLP(), Gaussian(0.5), x, y, epochs=1, batch_size=10, progress=False,
            batch_transform=lambda xb, g: xb[1:])
