"""README's Python example runs as shown: the fit switches off the seven noise inputs and
prune keeps exactly the three that carry the signal, as the printed line in the README says."""

from __future__ import annotations

import contextlib
import io
import re
from pathlib import Path

README = Path(__file__).parents[1] / "README.md"


def test_readme_example_prints_what_it_shows() -> None:
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(), re.S)
    assert len(blocks) == 1
    shown = re.search(r"print\(result\.kept\)\s+# (.+)", blocks[0])
    assert shown is not None
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(compile(blocks[0], str(README), "exec"), {})
    assert out.getvalue().strip() == shown.group(1).strip()
