"""Every Python block on the documentation pages runs as shown: each page's blocks in order, in
one namespace (a later block may use an earlier one's names, as a reader would), on a fresh
interpreter state for torch's default dtype."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import torch

DOCS = Path(__file__).parents[1] / "docs"
BLOCK = re.compile(r"```python\n(.*?)```", re.S)
PAGES = sorted(p for p in DOCS.rglob("*.md") if BLOCK.search(p.read_text()))


def test_the_pages_have_examples() -> None:
    names = {p.relative_to(DOCS).as_posix() for p in PAGES}
    assert {"index.md", "scales.md", "training.md", "inference.md", "layers/lstm.md"} <= names


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.relative_to(DOCS).as_posix())
def test_page_examples_run(page: Path) -> None:
    namespace: dict[str, object] = {}
    dtype = torch.get_default_dtype()
    try:
        for i, block in enumerate(BLOCK.findall(page.read_text())):
            exec(compile(block, f"{page.relative_to(DOCS)} (block {i})", "exec"), namespace)
    finally:
        torch.set_default_dtype(dtype)
