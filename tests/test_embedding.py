"""Tests of ds2_hf.embedding: backends, validation, the datasets.map contract, caching, the CLI."""

from __future__ import annotations

import pickle
from pathlib import Path

import datasets
import numpy as np
import pytest

from ds2_hf.columns import ColumnExistsError
from ds2_hf.embedding import (
    EmbeddingBackend,
    EmbeddingConfig,
    EmbeddingError,
    Embedder,
    SentenceTransformerBackend,
    WordLlamaBackend,
    embed,
    embed_texts,
    finalize,
)
from ds2_hf.formats import Formatter

ROWS = {
    "instruction": ["Add 2 and 3.", "Name a primary colour.", "Translate 'cat' to French.", "Summarise the news."],
    "input": ["", "", "", "Stocks fell sharply today."],
    "output": ["5", "Blue.", "Chat.", "Markets dropped."],
}


@pytest.fixture(scope="module")
def wordllama():
    return WordLlamaBackend()


@pytest.fixture()
def alpaca():
    return datasets.Dataset.from_dict(ROWS)


# ---------------------------------------------------------------------------------------------------------------- config


def test_config_validates_options(tmp_path):
    with pytest.raises(ValueError, match="backend='nope'"):
        EmbeddingConfig(backend="nope")
    with pytest.raises(ValueError, match="needs source"):
        EmbeddingConfig(backend="column")
    with pytest.raises(FileNotFoundError, match="missing.npy"):
        EmbeddingConfig(backend="npy", source=str(tmp_path / "missing.npy"))
    with pytest.raises(ValueError, match="dim=100 is not available for WordLlama"):
        EmbeddingConfig(backend="wordllama", dim=100)
    with pytest.raises(ValueError, match="pooling='avg'"):
        EmbeddingConfig(pooling="avg")
    with pytest.raises(ValueError, match="not a WordLlama config"):
        EmbeddingConfig(backend="wordllama", model="BAAI/bge-large-en-v1.5")
    with pytest.raises(ValueError, match=r"unknown embedding option\(s\) \['dims'\]; valid options: .*'dim'"):
        Embedder(backend="wordllama", dims=64)


def test_auto_resolves_from_the_model_name_and_offline_to_wordllama(monkeypatch):
    assert EmbeddingConfig(model="l2_supercat").resolved().backend == "wordllama"
    assert EmbeddingConfig(model="some/st-model").resolved().backend == "sentence-transformers"
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    cfg = EmbeddingConfig().resolved()
    assert (cfg.backend, cfg.model, cfg.dim) == ("wordllama", "l2_supercat", 256)
    assert EmbeddingConfig(backend="sentence-transformers").resolved().model == "BAAI/bge-large-en-v1.5"


# --------------------------------------------------------------------------------------------------------------- wordllama


def test_wordllama_loads_offline_and_matches_upstream_pooling(wordllama):
    import wordllama as wl

    assert isinstance(wordllama, EmbeddingBackend)
    upstream = wl.WordLlama.load(cache_dir=Path(wl.__file__).parent, disable_download=True)
    texts = ["a short text", "a somewhat longer text about cats and dogs " * 5, "x"]
    ours = wordllama.encode(texts)
    assert ours.dtype == np.float32 and ours.shape == (3, 256)
    np.testing.assert_allclose(ours, upstream.embed(texts), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("dim", [64, 128])
def test_wordllama_matryoshka_truncation(wordllama, dim):
    full = wordllama.encode(["hello world"])
    short = WordLlamaBackend(dim=dim).encode(["hello world"])
    assert short.shape == (1, dim)
    np.testing.assert_allclose(short, full[:, :dim], rtol=1e-6)


def test_embed_texts_unit_norm_and_semantics():
    x = embed_texts(["a cat sat on the mat", "a kitten sat on a rug", "quarterly revenue rose 4%"], backend="wordllama")
    assert x.shape == (3, 256) and x.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(x, axis=1), 1.0, rtol=1e-5)
    assert x[0] @ x[1] > x[0] @ x[2]
    assert embed_texts([], backend="wordllama").shape == (0, 256)
    raw = embed_texts(["a cat"], backend="wordllama", normalize=False)
    assert not np.isclose(np.linalg.norm(raw), 1.0)


def test_empty_text_is_a_named_zero_vector_error():
    with pytest.raises(EmbeddingError, match=r"rows \[2\].*zero embedding"):
        embed_texts(["fine", "also fine", ""], backend="wordllama")


# ------------------------------------------------------------------------------------------------------------- validation


def test_finalize_names_nan_and_zero_rows():
    x = np.ones((4, 3), np.float32)
    x[2, 1] = np.nan
    with pytest.raises(EmbeddingError, match=r"NaN or inf in rows \[12\]"):
        finalize(x, rows=[10, 11, 12, 13])
    x[2, 1] = 0
    x[3] = 0
    with pytest.raises(EmbeddingError, match=r"rows \[3\] .*zero embedding"):
        finalize(x)
    out = finalize(np.array([[3.0, 4.0]]))
    np.testing.assert_allclose(out, [[0.6, 0.8]])
    assert out.dtype == np.float32


# ------------------------------------------------------------------------------------------------------ datasets.map API


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


def test_embedder_callable_with_features_in_plain_map(alpaca):
    emb = Embedder(backend="wordllama", dim=128, column="vec")
    out = alpaca.map(emb, batched=True, batch_size=3, features=emb.features(alpaca))
    assert out.features["vec"].length == 128
    batch = emb(alpaca[:2])
    assert batch["vec"].dtype == np.float32 and batch["vec"].shape == (2, 128)


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
    assert Hasher.hash(Embedder(backend="wordllama", dim=128)) != Hasher.hash(fresh)

    alpaca.save_to_disk(str(tmp_path / "ds"))
    ds = datasets.load_from_disk(str(tmp_path / "ds"))
    first = embed(ds, backend="wordllama", dim=64)
    second = embed(ds, Embedder(backend="wordllama", dim=64).config)
    assert first._fingerprint == second._fingerprint
    assert first.cache_files == second.cache_files


# ------------------------------------------------------------------------------------------------- column and npy sources


def test_column_backend_normalises_and_rejects_mixed_dimensions(alpaca):
    vecs = np.arange(1, 13, dtype=np.float64).reshape(4, 3)
    ds = alpaca.add_column("my_vecs", vecs.tolist())
    out = embed(ds, backend="column", source="my_vecs")
    x = np.asarray(out.with_format("numpy")[:]["embedding"])
    np.testing.assert_allclose(x, vecs / np.linalg.norm(vecs, axis=1, keepdims=True), rtol=1e-6)
    assert out.features["embedding"].length == 3

    ragged = alpaca.add_column("my_vecs", [[1.0, 0.0], [0.0, 1.0], [1.0, 1.0, 1.0], [1.0, 2.0]])
    with pytest.raises(EmbeddingError, match=r"mixes vector lengths \(found \[2, 3\]\): rows \[2\]"):
        embed(ragged, backend="column", source="my_vecs")
    with pytest.raises(ValueError, match="no column 'nope'"):
        embed(ds, backend="column", source="nope")


def test_npy_backend_reads_rows_in_order_and_fingerprints_the_file(tmp_path, alpaca):
    path = tmp_path / "vecs.npy"
    vecs = np.random.default_rng(0).normal(size=(4, 8)).astype(np.float32)
    np.save(path, vecs)
    emb = Embedder(backend="npy", source=str(path))
    out = embed(alpaca, emb.config)
    x = np.asarray(out.with_format("numpy")[:]["embedding"])
    np.testing.assert_allclose(x, vecs / np.linalg.norm(vecs, axis=1, keepdims=True), rtol=1e-6)
    with pytest.raises(ValueError, match="with_indices=True"):
        alpaca.map(emb, batched=True)
    from datasets.fingerprint import Hasher

    before = Hasher.hash(emb)
    np.save(path, vecs[::-1].copy())
    import os

    os.utime(path, ns=(1, 1))  # a different file identity even on coarse-mtime file systems
    assert Hasher.hash(Embedder(backend="npy", source=str(path))) != before
    short = tmp_path / "short.npy"
    np.save(short, vecs[:2])
    with pytest.raises(EmbeddingError, match="holds 2 vectors but the dataset has 4 rows"):
        embed(alpaca, backend="npy", source=str(short))
    with pytest.raises(EmbeddingError, match="has 2 rows but the dataset has row 3"):  # plain map, no bind()
        alpaca.map(Embedder(backend="npy", source=str(short)), batched=True, with_indices=True)


# --------------------------------------------------------------------------------------------------- sentence-transformers


@pytest.fixture(scope="module")
def tiny_st_model(tmp_path_factory):
    """A random-weight BERT + mean pooling Sentence Transformer with a locally trained tokenizer (no download)."""
    torch = pytest.importorskip("torch")
    pytest.importorskip("sentence_transformers")
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.sentence_transformer.modules import Normalize, Pooling, Transformer
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers
    from transformers import BertConfig, BertModel, PreTrainedTokenizerFast

    torch.set_num_threads(1)
    torch.manual_seed(0)
    root = tmp_path_factory.mktemp("st")
    tok = Tokenizer(models.WordLevel(unk_token="[UNK]"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    corpus = [" ".join(ROWS[c][i] for c in ROWS) for i in range(4)] + ["###user: ###assistant: a cat dog"]
    tok.train_from_iterator(corpus, trainers.WordLevelTrainer(special_tokens=["[PAD]", "[UNK]", "[CLS]", "[SEP]"]))
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, unk_token="[UNK]", pad_token="[PAD]", cls_token="[CLS]",
                                   sep_token="[SEP]")
    bert = BertModel(BertConfig(vocab_size=fast.vocab_size, hidden_size=16, num_hidden_layers=1,
                                num_attention_heads=2, intermediate_size=32, max_position_embeddings=64))
    base = root / "bert"
    bert.save_pretrained(base)
    fast.save_pretrained(base)
    model = SentenceTransformer(
        modules=[Transformer(str(base), max_seq_length=32), Pooling(16, pooling_mode="cls"), Normalize()],
        device="cpu",
    )
    model.prompts = {"query": "query: "}
    model.default_prompt_name = "query"  # a model-declared default prompt must NOT be applied to documents
    out = root / "st"
    model.save(str(out))
    return str(out)


@pytest.mark.slow
def test_sentence_transformers_backend_pooling_and_prompt(tiny_st_model, alpaca):
    from sentence_transformers import SentenceTransformer

    texts = ["a cat", "a dog", "Add 2 and 3."]
    ref = SentenceTransformer(tiny_st_model, device="cpu")
    assert ref.default_prompt_name == "query"  # the fixture really declares a default prompt
    assert not np.allclose(ref.encode(texts), ref.encode(texts, prompt=""), atol=1e-4)
    backend = SentenceTransformerBackend(tiny_st_model, device="cpu")
    assert backend.dim == 16
    docs = backend.encode(texts)
    np.testing.assert_allclose(docs, ref.encode(texts, prompt=""), atol=1e-5)  # no default "query: " prefix
    with_prompt = SentenceTransformerBackend(tiny_st_model, device="cpu", prompt="query: ").encode(texts)
    assert not np.allclose(docs, with_prompt, atol=1e-4)
    mean = SentenceTransformerBackend(tiny_st_model, device="cpu", pooling="mean").encode(texts)
    tokens = ref.encode(texts, prompt="", output_value="token_embeddings")
    expected = np.stack([t.numpy().mean(axis=0) for t in tokens])
    expected /= np.linalg.norm(expected, axis=1, keepdims=True)
    np.testing.assert_allclose(mean, expected, atol=1e-5)

    out = embed(alpaca, backend="sentence-transformers", model=tiny_st_model, device="cpu", pooling="mean")
    assert out.features["embedding"].length == 16
    x = np.asarray(out.with_format("numpy")[:]["embedding"])
    np.testing.assert_allclose(np.linalg.norm(x, axis=1), 1.0, rtol=1e-5)


# --------------------------------------------------------------------------------------------------------------------- CLI


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
