"""Every ``Example:`` in the package's docstrings runs and prints what it shows (doctest), so a
user who copies one gets what the docstring says."""

from __future__ import annotations

import doctest
import importlib
import pkgutil

import pytest

import dropprior

MODULES = sorted(info.name for info in pkgutil.walk_packages(dropprior.__path__, "dropprior."))


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples_run(name: str) -> None:
    module = importlib.import_module(name)
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE,
                             report=False, verbose=False)
    assert result.failed == 0, f"{result.failed} of {result.attempted} examples in {name} failed " \
                               f"(python -m doctest -v on the module shows which)"
