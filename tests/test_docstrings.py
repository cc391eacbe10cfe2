"""Every runnable example in the package's docstrings runs and prints what it shows."""

import doctest
import importlib
import pkgutil
import re
import tomllib
from pathlib import Path

import pytest

import ds2_hf
from ds2_hf._import_utils import _PROVIDERS

MODULES = sorted(m.name for m in pkgutil.walk_packages(ds2_hf.__path__, "ds2_hf.") if not m.name.endswith("__main__"))


def _optional_distributions() -> set[str]:
    """Distribution names listed in pyproject's extras (``vllm``, ``lm-eval``, ...), normalised."""
    pyproject = tomllib.loads((Path(__file__).parents[1] / "pyproject.toml").read_text(encoding="utf-8"))
    extras = pyproject["project"]["optional-dependencies"].values()
    names = {re.split(r"[\[<>=!~ ;]", req, maxsplit=1)[0].lower().replace("_", "-") for reqs in extras for req in reqs}
    return names - {pyproject["project"]["name"]}


def _missing_optional(err: ImportError) -> str | None:
    """The optional distribution whose absence caused ``err`` (a chain ending in ModuleNotFoundError), else None."""
    while err is not None:
        if isinstance(err, ModuleNotFoundError) and err.name:
            top = err.name.split(".")[0]
            dist = _PROVIDERS.get(top, (top.replace("_", "-"),))[0].split("[")[0]
            return dist if dist in _optional_distributions() else None
        err = err.__cause__ or err.__context__
    return None


def test_a_missing_module_of_the_package_is_not_optional():
    try:
        import ds2_hf.no_such_module  # noqa: F401
    except ImportError as err:
        assert _missing_optional(err) is None
    try:
        import vllm._surely_missing  # noqa: F401
    except ImportError as err:
        assert _missing_optional(err) == "vllm"


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # an example that writes files writes them here
    try:
        module = importlib.import_module(name)
    except ImportError as err:
        dist = _missing_optional(err)
        if dist is None:  # a broken import of the package itself, or of a core dependency: a failure
            raise
        pytest.skip(f"{name} needs the optional package {dist}, which is not installed: {err}")
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE, report=False)
    assert result.failed == 0, f"{result.failed} of {result.attempted} docstring examples of {name} failed"
