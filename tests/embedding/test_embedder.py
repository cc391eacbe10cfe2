"""Tests of ds2_hf.embedding.embedder: the datasets.map contract, caching, finalize, embed_texts, the CLI."""

from __future__ import annotations

import pickle

import datasets
import numpy as np
import pytest

from ds2_hf.columns import ColumnExistsError
from ds2_hf.embedding import EmbeddingError, Embedder, embed, embed_texts, finalize
from ds2_hf.formats import Formatter
from ds2_hf.validation import EmptyInputError, InputTypeError

ROWS = {
    "instruction": ["Add 2 and 3.", "Name a primary colour.", "Translate 'cat' to French.", "Summarise the news."],
    "input": ["", "", "", "Stocks fell sharply today."],
    "output": ["5", "Blue.", "Chat.", "Markets dropped."],
}


@pytest.fixture()
def alpaca():
    return datasets.Dataset.from_dict(ROWS)


def test_embed_texts_unit_norm_and_semantics():
    x = embed_texts(["a cat sat on the mat", "a kitten sat on a rug", "quarterly revenue rose 4%"], backend="wordllama")
    assert x.shape == (3, 256) and x.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(x, axis=1), 1.0, rtol=1e-5)
    assert x[0] @ x[1] > x[0] @ x[2]
    assert embed_texts([], backend="wordllama").shape == (0, 256)
    raw = embed_texts(["a cat"], backend="wordllama", normalize=False)
    assert not np.isclose(np.linalg.norm(raw), 1.0)
    with pytest.raises(TypeError, match="sequence of strings"):
        embed_texts(["a cat", 3], backend="wordllama")


def test_empty_text_is_a_named_zero_vector_error():
    with pytest.raises(EmbeddingError, match=r"all-zero row\(s\), e.g. rows \[2\]"):
        embed_texts(["fine", "also fine", ""], backend="wordllama")


def test_finalize_names_nan_and_zero_rows():
    x = np.ones((4, 3), np.float32)
    x[2, 1] = np.nan
    with pytest.raises(EmbeddingError, match=r"NaN or inf in 1 row\(s\), e.g. rows \[12\]"):
        finalize(x, rows=[10, 11, 12, 13])
    with pytest.raises(EmbeddingError, match=r"NaN or inf"):
        finalize(x, normalize=False)
    x[2, 1] = 0
    x[3] = 0
    with pytest.raises(EmbeddingError, match=r"rows \[3\] .*zero embedding"):
        finalize(x)
    np.testing.assert_array_equal(finalize(x, normalize=False), x)  # zero rows are fine unnormalised
    out = finalize(np.array([[3.0, 4.0]]))
    np.testing.assert_allclose(out, [[0.6, 0.8]])
    assert out.dtype == np.float32 and out.flags.c_contiguous


def test_embed_writes_fixed_size_float32_unit_column(alpaca):
    out = embed(alpaca, backend="wordllama", dim=64)
    assert out.features["embedding"] == datasets.List(datasets.Value("float32"), length=64)
    assert str(out.data.schema.field("embedding").type) == "fixed_size_list<item: float>[64]"
    x = np.asarray(out.with_format("numpy")[:]["embedding"])
    assert x.shape == (4, 64) and x.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(x, axis=1), 1.0, rtol=1e-5)
    # the same as embedding the reference-style text directly
    texts = [Formatter().text(r) for r in alpaca]
    np.testing.assert_allclose(x, embed_texts(texts, backend="wordllama", dim=64), rtol=1e-5, atol=1e-6)
    assert out.column_names == alpaca.column_names + ["embedding"]


def test_embed_refuses_an_empty_dataset_and_a_dataset_dict(alpaca):
    with pytest.raises(EmptyInputError, match="the dataset has no rows, so there is nothing to embed"):
        embed(alpaca.select([]), backend="wordllama")
    with pytest.raises(InputTypeError, match=r"Pick one split first"):
        embed(datasets.DatasetDict({"train": alpaca}), backend="wordllama")


def test_embedder_callable_with_features_in_plain_map(alpaca):
    emb = Embedder(backend="wordllama", dim=128, column="vec")
    out = alpaca.map(emb, batched=True, batch_size=3, features=emb.features(alpaca))
    assert out.features["vec"].length == 128
    batch = emb(alpaca[:2])
    assert batch["vec"].dtype == np.float32 and batch["vec"].shape == (2, 128)
    assert repr(emb) == "Embedder(backend='wordllama', model='l2_supercat', dim=128, column='vec')"


def test_refuses_to_overwrite_unless_asked(alpaca):
    out = embed(alpaca, backend="wordllama", dim=64)
    with pytest.raises(ColumnExistsError, match="column=..."):
        embed(out, backend="wordllama", dim=64)
    again = embed(out, backend="wordllama", dim=128, overwrite=True)
    assert again.features["embedding"].length == 128


def test_embedder_is_config_only_and_hits_the_cache(tmp_path, alpaca):
    from datasets.fingerprint import Hasher

    fresh = Embedder(backend="wordllama", dim=64)
    used = Embedder(backend="wordllama", dim=64)
    used(alpaca[:2])  # loads the model
    assert used._source is not None
    assert Hasher.hash(fresh) == Hasher.hash(used)
    assert len(pickle.dumps(used)) < 5_000  # the 32k x 256 table is never pickled
    assert pickle.loads(pickle.dumps(used))._source is None
    assert Hasher.hash(Embedder(backend="wordllama", dim=128)) != Hasher.hash(fresh)

    alpaca.save_to_disk(str(tmp_path / "ds"))
    ds = datasets.load_from_disk(str(tmp_path / "ds"))
    first = embed(ds, backend="wordllama", dim=64)
    second = embed(ds, Embedder(backend="wordllama", dim=64).config)
    assert first._fingerprint == second._fingerprint
    assert first.cache_files == second.cache_files


def test_cli_embed_round_trip(tmp_path, alpaca, capsys):
    from ds2_hf.cli import main

    src = tmp_path / "pool.jsonl"
    alpaca.to_json(str(src))
    dest = tmp_path / "pool_emb.parquet"
    assert main(["embed", str(src), str(dest), "--backend", "wordllama", "--dim", "64", "--batch-size", "2"]) == 0
    assert "wrote 4 rows" in capsys.readouterr().out
    out = datasets.load_dataset("parquet", data_files=str(dest), split="train")
    x = np.asarray(out.with_format("numpy")[:]["embedding"])
    assert x.shape == (4, 64)
    np.testing.assert_allclose(np.linalg.norm(x, axis=1), 1.0, rtol=1e-5)
    assert main(["embed", str(dest), str(tmp_path / "again.parquet"), "--backend", "wordllama"]) == 2
    assert "already exist" in capsys.readouterr().err
