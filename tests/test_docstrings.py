"""Every runnable example in the package's docstrings runs and prints what it shows."""

import doctest
import importlib
import pkgutil

import pytest

import ds2_hf

MODULES = sorted(m.name for m in pkgutil.walk_packages(ds2_hf.__path__, "ds2_hf.") if not m.name.endswith("__main__"))


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # an example that writes files writes them here
    try:
        module = importlib.import_module(name)
    except ImportError as err:  # an optional extra that is not installed
        pytest.skip(f"{name} needs an optional dependency: {err}")
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE, report=False)
    assert result.failed == 0, f"{result.failed} of {result.attempted} docstring examples of {name} failed"
