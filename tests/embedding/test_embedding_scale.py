"""Embedding on a Ray Data actor pool (CPU actors, WordLlama) and Sentence Transformers' multi-process pool (CPU
processes, a tiny static-embedding model built here): the same column as ``ds2_hf.embed``."""

from __future__ import annotations

import datasets
import numpy as np
import pytest

from ds2_hf.columns import ColumnExistsError
from ds2_hf.embedding import embed
from ds2_hf.embedding import embed_multi_process, embed_on_ray
from ds2_hf.knn import load_embeddings

TEXTS = [f"Question {i}: how do I sort a list of {i} numbers in Python?" for i in range(40)]


def _pool():
    return datasets.Dataset.from_dict({"instruction": TEXTS, "output": [f"Use sorted() on {i} items." for i in range(40)]})


def test_ray_actor_pool_gives_the_local_column(ray_session, tmp_path):
    ds = _pool()
    local = embed(ds, backend="wordllama", dim=128)
    out = embed_on_ray(ds, actors=2, batch_size=7, out_path=tmp_path / "emb.npy", backend="wordllama", dim=128)
    assert out.features == local.features and out.column_names == local.column_names
    a = np.asarray(out.with_format("numpy")["embedding"])
    np.testing.assert_allclose(a, np.asarray(local.with_format("numpy")["embedding"]), atol=1e-6)
    np.testing.assert_allclose(np.asarray(load_embeddings(tmp_path / "emb.npy")), a, atol=1e-6)  # for ds2 curate


def test_scale_engines_refuse_before_any_work(tmp_path):
    ds = _pool()
    with pytest.raises(ValueError, match="backend='column' reads stored vectors"):
        embed_on_ray(ds, backend="column", source="instruction")
    with pytest.raises(ColumnExistsError):
        embed_on_ray(ds.add_column("embedding", [[0.0]] * 40), backend="wordllama")
    with pytest.raises(ValueError, match="the multi-process pool is Sentence Transformers'"):
        embed_multi_process(ds, backend="wordllama", devices=["cpu"])
    with pytest.raises(ValueError, match="devices= must name at least one device"):
        embed_multi_process(ds, backend="sentence-transformers", model="x", devices=[])


@pytest.fixture(scope="module")
def tiny_st(tmp_path_factory):
    st = pytest.importorskip("sentence_transformers")
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers

    tk = Tokenizer(models.WordLevel(unk_token="[UNK]"))
    tk.pre_tokenizer = pre_tokenizers.Whitespace()
    tk.train_from_iterator(TEXTS * 2 + ["Use sorted() on items ### user assistant :"],
                           trainers.WordLevelTrainer(special_tokens=["[UNK]", "[PAD]"]))
    path = str(tmp_path_factory.mktemp("tiny-st"))
    from sentence_transformers.sentence_transformer.modules import StaticEmbedding

    st.SentenceTransformer(modules=[StaticEmbedding(tk, embedding_dim=24)]).save(path)
    return path


@pytest.mark.slow
def test_multi_process_pool_gives_the_local_column(tiny_st, tmp_path):
    ds = _pool()
    local = embed(ds, backend="sentence-transformers", model=tiny_st, device="cpu")
    out = embed_multi_process(ds, backend="sentence-transformers", model=tiny_st, devices=["cpu", "cpu"],
                              chunk_size=8, out_path=tmp_path / "v.npy")
    assert out.features == local.features
    np.testing.assert_allclose(np.asarray(out.with_format("numpy")["embedding"]),
                               np.asarray(local.with_format("numpy")["embedding"]), atol=1e-5)


def test_cli_embed_on_ray(ray_session, tmp_path, capsys):
    from ds2_hf.cli import main

    _pool().to_json(str(tmp_path / "pool.jsonl"))
    rc = main(["embed", str(tmp_path / "pool.jsonl"), str(tmp_path / "out.parquet"), "--backend", "wordllama",
               "--dim", "64", "--engine", "ray", "--actors", "2", "--vectors-out", str(tmp_path / "v.npy")])
    assert rc == 0, capsys.readouterr().err
    assert load_embeddings(tmp_path / "v.npy").shape == (40, 64)
    out = datasets.load_dataset("parquet", data_files=str(tmp_path / "out.parquet"), split="train")
    assert out.features["embedding"].length == 64
