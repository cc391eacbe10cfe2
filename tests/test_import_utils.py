"""Tests of ds2_hf._import_utils: optional-dependency probes and install hints."""

from __future__ import annotations

import sys

import pytest

from ds2_hf._import_utils import install_hint, is_available, require


def test_require_returns_the_module():
    import json

    assert require("json") is json


def test_require_missing_module_names_the_extra():
    with pytest.raises(ImportError) as err:
        require("ds2_hf_no_such_module", extra="rate", purpose="the test backend")
    assert str(err.value) == (
        '`ds2_hf_no_such_module` is required for the test backend but is not installed. '
        'Install it with: pip install "ds2-hf[rate]"'
    )
    assert isinstance(err.value.__cause__, ModuleNotFoundError)


def test_require_known_provider_defaults_to_its_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "vllm", None)  # makes `import vllm` raise ImportError
    with pytest.raises(ImportError, match=r'Install it with: pip install "ds2-hf\[vllm\]"$'):
        require("vllm")
    monkeypatch.setitem(sys.modules, "faiss", None)
    with pytest.raises(ImportError, match=r"^`faiss` is required but is not installed\. Install it with: pip install "
                       r"faiss-cpu$"):
        require("faiss")  # a core dependency: the hint names its distribution


def test_install_hint():
    assert install_hint("sentence_transformers") == 'pip install "ds2-hf[embed]"'
    assert install_hint("trl") == 'pip install "ds2-hf[train]"'
    assert install_hint("gradio") == 'pip install "ds2-hf[space]"'
    assert install_hint("trl", extra="all") == 'pip install "ds2-hf[all]"'
    assert install_hint("somepkg") == "pip install somepkg"  # unknown module, no extra


def test_is_available():
    assert is_available("json") is True
    assert is_available("numpy") is True
    assert is_available("ds2_hf_no_such_module") is False
    assert is_available("ds2_hf_no_such_pkg.sub") is False  # parent missing: no exception
