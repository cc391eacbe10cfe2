"""Tests of ds2_hf.embedding.config and the backend registry: options, defaults, "auto", and that a registered
class (not a branch on its name) decides what a backend does."""

from __future__ import annotations

import dataclasses

import datasets
import numpy as np
import pytest

from ds2_hf.embedding import (
    BACKENDS,
    Backend,
    EmbeddingConfig,
    Embedder,
    config_dict,
    embed,
    get_backend,
)
from ds2_hf.embedding.text import TextBackend
from ds2_hf.validation import InputError, UnknownOptionError


def test_config_validates_options(tmp_path):
    with pytest.raises(InputError, match="backend='nope' is not supported; expected one of .*'wordllama'"):
        EmbeddingConfig(backend="nope")
    with pytest.raises(ValueError, match="needs source"):
        EmbeddingConfig(backend="column")
    with pytest.raises(FileNotFoundError, match="missing.npy"):
        EmbeddingConfig(backend="npy", source=str(tmp_path / "missing.npy"))
    with pytest.raises(ValueError, match="dim=100 is not available for WordLlama"):
        EmbeddingConfig(backend="wordllama", dim=100)
    with pytest.raises(ValueError, match="dim=0 must be a positive integer"):
        EmbeddingConfig(dim=0)
    with pytest.raises(ValueError, match="batch_size=0 must be a positive integer"):
        EmbeddingConfig(batch_size=0)
    with pytest.raises(ValueError, match="pooling='avg'"):
        EmbeddingConfig(pooling="avg")
    with pytest.raises(ValueError, match="not a WordLlama config"):
        EmbeddingConfig(backend="wordllama", model="BAAI/bge-large-en-v1.5")
    with pytest.raises(InputError, match="skip_empty=True skips rows with no text, but backend='column'"):
        EmbeddingConfig(backend="column", source="vec", skip_empty=True)
    with pytest.raises(UnknownOptionError, match=r"unknown embedding option\(s\) \['dims'\]; valid options: .*'dim'"):
        Embedder(backend="wordllama", dims=64)
    with pytest.raises(TypeError, match="config must be a EmbeddingConfig"):
        Embedder({"backend": "wordllama"})


def test_defaults_are_the_papers_and_every_field_is_documented():
    cfg = EmbeddingConfig()
    assert (cfg.backend, cfg.batch_size, cfg.normalize, cfg.column, cfg.skip_empty) == (
        "auto", 64, True, "embedding", False)
    assert EmbeddingConfig(backend="sentence-transformers").resolved().model == "BAAI/bge-large-en-v1.5"
    doc = EmbeddingConfig.__doc__
    missing = [f.name for f in dataclasses.fields(EmbeddingConfig) if f"\n    {f.name} :" not in doc]
    assert not missing, f"EmbeddingConfig fields without a docstring entry: {missing}"


def test_auto_resolves_from_the_model_name_and_offline_to_wordllama(monkeypatch):
    assert EmbeddingConfig(model="l2_supercat").resolved().backend == "wordllama"
    assert EmbeddingConfig(model="some/st-model").resolved().backend == "sentence-transformers"
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    cfg = EmbeddingConfig().resolved()
    assert (cfg.backend, cfg.model, cfg.dim) == ("wordllama", "l2_supercat", 256)
    assert cfg.resolved() == cfg  # resolving is idempotent
    with pytest.raises(ValueError, match="dim=100 is not available for WordLlama"):
        EmbeddingConfig(dim=100).resolved()  # auto -> wordllama, then checked as wordllama


def test_registry_names_every_backend_value():
    assert list(BACKENDS) == ["auto", "wordllama", "sentence-transformers", "column", "npy"]
    for name, cls in BACKENDS.items():
        assert issubclass(cls, Backend) and cls.name == name and get_backend(name) is cls
    assert [n for n, c in BACKENDS.items() if not c.encodes_text] == ["column", "npy"]
    with pytest.raises(InputError, match="expected one of"):
        get_backend("bge")


class _CharCounts(TextBackend):
    """A toy text backend: letter counts a..d (enough to tell texts apart, no model)."""

    name = "char-counts"

    def __init__(self, dim: int = 4):
        self.dim = dim

    @classmethod
    def resolve(cls, config):
        return dataclasses.replace(config, model=config.model or "counts", dim=config.dim or 4)

    @classmethod
    def from_config(cls, config):
        return cls(config.dim)

    def encode(self, texts):
        return np.array([[t.count(c) for c in "abcd"[: self.dim]] for t in texts], dtype=np.float32)


def test_a_registered_backend_runs_through_every_stage(monkeypatch):
    monkeypatch.setitem(BACKENDS, "char-counts", _CharCounts)
    ds = datasets.Dataset.from_dict({"text": ["aab", "cdd", "   "]})
    out = embed(ds, backend="char-counts", skip_empty=True)
    x = np.asarray(out.with_format("numpy")["embedding"])
    assert out.num_rows == 2 and x.shape == (2, 4)
    np.testing.assert_allclose(x[0], np.array([2, 1, 0, 0]) / np.sqrt(5), rtol=1e-6)
    assert "model='counts'" in repr(Embedder(backend="char-counts"))


def test_config_dict_is_json_friendly():
    import json

    d = config_dict(EmbeddingConfig(backend="wordllama", formatter="sharegpt"))
    assert json.loads(json.dumps(d))["formatter"]["format"] == "sharegpt"
    assert d["skip_empty"] is False
