"""Tests of the embedding backends: WordLlama (offline, against upstream pooling), Sentence Transformers (a tiny
local model), a vector column and an aligned ``.npy`` file."""

from __future__ import annotations

import os
from pathlib import Path

import datasets
import numpy as np
import pytest
from datasets.fingerprint import Hasher

from ds2_hf.embedding import (
    EmbeddingBackend,
    EmbeddingError,
    Embedder,
    SentenceTransformerBackend,
    WordLlamaBackend,
    embed,
    embed_texts,
    load_backend,
)

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


# --------------------------------------------------------------------------------------------------------- wordllama


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


def test_load_backend_builds_text_encoders_only(tmp_path):
    assert isinstance(load_backend(Embedder(backend="wordllama", dim=64).config), WordLlamaBackend)
    np.save(tmp_path / "v.npy", np.ones((2, 3)))
    from ds2_hf.embedding import EmbeddingConfig

    with pytest.raises(ValueError, match="backend='npy' reads stored vectors, it does not encode text"):
        load_backend(EmbeddingConfig(backend="npy", source=str(tmp_path / "v.npy")))


# ------------------------------------------------------------------------------------------- column and npy sources


def test_column_backend_normalises_and_rejects_mixed_dimensions(alpaca):
    vecs = np.arange(1, 13, dtype=np.float64).reshape(4, 3)
    ds = alpaca.add_column("my_vecs", vecs.tolist())
    out = embed(ds, backend="column", source="my_vecs")
    x = np.asarray(out.with_format("numpy")[:]["embedding"])
    np.testing.assert_allclose(x, vecs / np.linalg.norm(vecs, axis=1, keepdims=True), rtol=1e-6)
    assert out.features["embedding"].length == 3
    in_place = embed(ds, backend="column", source="my_vecs", column="my_vecs")  # normalised where it stands
    np.testing.assert_allclose(np.asarray(in_place.with_format("numpy")["my_vecs"]), x, rtol=1e-6)

    ragged = alpaca.add_column("my_vecs", [[1.0, 0.0], [0.0, 1.0], [1.0, 1.0, 1.0], [1.0, 2.0]])
    with pytest.raises(EmbeddingError, match=r"rows \[2\] \(1 in all\) do not have length 2 .*found: \[2, 3\]"):
        embed(ragged, backend="column", source="my_vecs")
    nulls = alpaca.add_column("my_vecs", [[1.0, 0.0], None, [1.0, 1.0], None])
    with pytest.raises(EmbeddingError, match=r"no vector \(null\) in rows \[1, 3\] \(2 in all\)"):
        embed(nulls, backend="column", source="my_vecs")
    with pytest.raises(ValueError, match="no column 'nope'"):
        embed(ds, backend="column", source="nope")


def test_column_backend_names_a_batch_of_another_dimension(alpaca):
    emb = Embedder(backend="column", source="v")
    emb(alpaca.add_column("v", [[1.0, 0.0]] * 4)[:2], [0, 1])  # learns d = 2
    with pytest.raises(EmbeddingError, match=r"dimension 3 for rows \[2, 3\].*output dimension is 2"):
        emb({"v": [[1.0, 0.0, 0.0]] * 2}, [2, 3])


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

    before = Hasher.hash(emb)
    np.save(path, vecs[::-1].copy())
    os.utime(path, ns=(1, 1))  # a different file identity even on coarse-mtime file systems
    assert Hasher.hash(Embedder(backend="npy", source=str(path))) != before
    short = tmp_path / "short.npy"
    np.save(short, vecs[:2])
    with pytest.raises(EmbeddingError, match="holds 2 vectors but the dataset has 4 rows"):
        embed(alpaca, backend="npy", source=str(short))
    with pytest.raises(EmbeddingError, match="has 2 rows but the dataset has row 3"):  # plain map, no bind()
        alpaca.map(Embedder(backend="npy", source=str(short)), batched=True, with_indices=True)
    flat = tmp_path / "flat.npy"
    np.save(flat, np.ones(4))
    with pytest.raises(EmbeddingError, match=r"2-D array of shape \(N, d\); got shape \(4,\)"):
        embed(alpaca, backend="npy", source=str(flat))
    nan = vecs.copy()
    nan[2, 0] = np.nan
    np.save(path, nan)
    with pytest.raises(EmbeddingError, match=r"NaN or inf in 1 row\(s\), e.g. rows \[2\]"):
        embed(alpaca, backend="npy", source=str(path))


# --------------------------------------------------------------------------------------------- sentence-transformers


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
    np.testing.assert_allclose(embed_texts(texts, backend="sentence-transformers", model=tiny_st_model,
                                           device="cpu", pooling="mean"), mean, atol=1e-5)
