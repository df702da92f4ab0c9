"""Every prior test runs in float64, so parameters such as 0.7 are exact to 1e-16, and on one
thread (the quadrature's many small tensor operations are slower with thread contention)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import torch


@pytest.fixture(autouse=True)
def float64_default() -> Iterator[None]:
    previous, threads = torch.get_default_dtype(), torch.get_num_threads()
    torch.set_default_dtype(torch.float64)
    torch.set_num_threads(1)
    yield
    torch.set_default_dtype(previous)
    torch.set_num_threads(threads)
