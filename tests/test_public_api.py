"""The package root's public surface: every name of ``__all__`` resolves (the lazy subpackages
on first access), ``dir(dropprior)`` lists exactly those names, and ``import dropprior`` alone
does not load the lazy subpackages' heavy dependencies (Pyro)."""

from __future__ import annotations

import subprocess
import sys
import types

import dropprior


def test_every_public_name_resolves_and_dir_lists_exactly_them() -> None:
    assert len(set(dropprior.__all__)) == len(dropprior.__all__)
    for name in dropprior.__all__:
        value = getattr(dropprior, name)
        assert value is not None, name
    for name in dropprior._LAZY:
        module = getattr(dropprior, name)
        assert isinstance(module, types.ModuleType) and module.__name__ == f"dropprior.{name}"
    assert dir(dropprior) == sorted(dropprior.__all__)
    assert not {"importlib", "Any", "annotations"} & set(dir(dropprior))


def test_import_leaves_the_lazy_subpackages_unloaded() -> None:
    code = ("import sys, dropprior; "
            "print(sorted(m for m in sys.modules if m == 'pyro' or m in "
            "{'dropprior.' + n for n in dropprior._LAZY}))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout.strip()
    assert out == "[]", out
