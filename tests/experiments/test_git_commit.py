"""git_commit names the commit of the code that ran (the dropprior package's checkout), whatever
folder the command runs from, and marks it dirty only for changes below the folder it reads
(tracked files changed, or files git neither tracks nor ignores)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

import dropprior
from dropprior.experiments.records import git_commit

pytestmark = pytest.mark.skipif(shutil.which("git") is None, reason="git is not installed")


def _git(cwd: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True,
                          check=True).stdout.strip()


def _repo(root: Path) -> str:
    """A repository with tracked files code/a.py and results/r.json; returns its commit."""
    (root / "code").mkdir(parents=True)
    (root / "results").mkdir()
    (root / "code" / "a.py").write_text("x = 1\n")
    (root / "results" / "r.json").write_text("{}\n")
    _git(root, "init", "-q")
    _git(root, "add", ".")
    _git(root, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-q", "-m", "first")
    return _git(root, "rev-parse", "HEAD")


def test_commit_and_dirty_mark_of_a_folder(tmp_path: Path) -> None:
    head = _repo(tmp_path)
    assert git_commit(tmp_path / "code") == head
    (tmp_path / "results" / "r.json").write_text('{"a": 1}\n')  # outside code/: still clean
    assert git_commit(tmp_path / "code") == head
    assert git_commit(tmp_path) == head + "+dirty"
    (tmp_path / "code" / "a.py").write_text("x = 2\n")
    assert git_commit(tmp_path / "code") == head + "+dirty"
    _git(tmp_path / "code", "checkout", "--", "a.py")
    assert git_commit(tmp_path / "code") == head
    (tmp_path / "code" / "new.py").write_text("")  # a new module the run may have imported
    assert git_commit(tmp_path / "code") == head + "+dirty"
    (tmp_path / ".gitignore").write_text("code/new.py\n")  # ignored files do not count
    assert git_commit(tmp_path / "code") == head
    (tmp_path / "results" / "new.json").write_text("{}\n")  # nor new files outside code/
    assert git_commit(tmp_path / "code") == head


def test_outside_a_work_tree_is_none(tmp_path: Path) -> None:
    plain = tmp_path / "plain"
    plain.mkdir()
    assert git_commit(plain) is None


def test_default_is_the_package_checkout_not_the_working_folder(tmp_path: Path,
                                                               monkeypatch) -> None:
    other = _repo(tmp_path / "elsewhere")
    monkeypatch.chdir(tmp_path / "elsewhere")
    package = Path(dropprior.__file__).resolve().parent
    assert git_commit() == git_commit(package)
    assert git_commit() != other
