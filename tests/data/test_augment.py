"""random_shift: each image moved by its own integer offset, as scipy.ndimage.shift moves it
(order 0, the border filled), the offsets uniform; and bad input named."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy import ndimage, stats

from dropprior.data import random_shift


@pytest.mark.parametrize("max_shift", [1, 2, 3])
def test_each_image_is_scipys_integer_shift_of_itself(max_shift: int) -> None:
    x = torch.randn(40, 2, 9, 7, generator=torch.Generator().manual_seed(0))
    gen = torch.Generator().manual_seed(5)
    state = gen.get_state()
    out = random_shift(x, max_shift, gen, fill=-0.5)
    gen.set_state(state)  # the offsets random_shift drew, in padded coordinates
    offsets = torch.randint(0, 2 * max_shift + 1, (2, 40), generator=gen)
    moved = 0
    for n in range(40):
        dy, dx = (max_shift - int(offsets[0, n]), max_shift - int(offsets[1, n]))
        want = ndimage.shift(x[n].numpy(), (0, dy, dx), order=0, mode="constant", cval=-0.5)
        np.testing.assert_array_equal(out[n].numpy(), want)
        moved += (dy, dx) != (0, 0)
    assert moved > 20


def test_offsets_are_uniform_over_the_window() -> None:
    """The displacement of a single bright pixel, over 3000 images: a χ² test against the
    uniform law on the 5 × 5 window (a law off by a pixel would fail it)."""
    x = torch.zeros(3000, 1, 11, 11)
    x[:, 0, 5, 5] = 1.0
    out = random_shift(x, 2, torch.Generator().manual_seed(1))
    where = out[:, 0].flatten(1).argmax(1)
    dy, dx = where // 11 - 5, where % 11 - 5
    counts = np.bincount(((dy + 2) * 5 + (dx + 2)).numpy(), minlength=25)
    assert counts.sum() == 3000 and len(counts) == 25
    assert stats.chisquare(counts).pvalue > 1e-3


def test_zero_shift_and_bad_input() -> None:
    x = torch.randn(3, 1, 4, 4)
    assert random_shift(x, 0) is x
    with pytest.raises(ValueError, match="max_shift must be an int >= 0, got -1"):
        random_shift(x, -1)
    with pytest.raises(ValueError, match=r"random_shift expects images of shape \(N, C, H, W\), "
                       r"got \(3, 16\)"):
        random_shift(x.reshape(3, 16), 1)
    assert random_shift(x, 3).shape == x.shape  # the largest shift that keeps a column in view
    with pytest.raises(ValueError, match=r"max_shift must be < the image's height and width "
                                         r"\(4 × 4\), got 4"):
        random_shift(x, 4)
