"""``ds2 curate RATINGS OUT --embeddings FILE.npy``: embeddings from a memory-mapped .npy beside a ratings file."""

from __future__ import annotations

import json

import datasets
import numpy as np
import pytest

from ds2_hf.cli import main


@pytest.fixture(scope="module")
def split_pool(tmp_path_factory):
    """A simulated pool split into a ratings parquet (no embedding column) and a float16 .npy of its embeddings."""
    folder = tmp_path_factory.mktemp("npy")
    assert main(["simulate", str(folder / "pool.parquet"), "--n", "1500", "--dim", "16"]) == 0
    ds = datasets.load_dataset("parquet", data_files=str(folder / "pool.parquet"), split="train")
    np.save(folder / "emb.npy", np.asarray(ds["embedding"], dtype=np.float16))
    ds.remove_columns("embedding").to_parquet(str(folder / "ratings.parquet"))
    return folder


def test_curate_takes_embeddings_from_a_npy_file(split_pool, capsys):
    f = split_pool
    rc = main(["curate", str(f / "ratings.parquet"), str(f / "out.parquet"), "--embeddings", str(f / "emb.npy"),
               "--report", str(f / "r.json"), "--knn-max-seconds", "0"])
    assert rc == 0, capsys.readouterr().err
    out = datasets.load_dataset("parquet", data_files=str(f / "out.parquet"), split="train")
    assert "embedding" not in out.column_names and "curated_rating" in out.column_names
    true, rated, cur = (np.array(out[c]) for c in ("true_rating", "rating", "curated_rating"))
    assert (cur == true).mean() > (rated == true).mean() + 0.1
    # the same curation as from the embedding column (float16 rounding aside)
    assert main(["curate", str(f / "pool.parquet"), str(f / "ref.parquet")]) == 0
    ref = datasets.load_dataset("parquet", data_files=str(f / "ref.parquet"), split="train")
    assert (np.array(ref["curated_rating"]) == cur).mean() > 0.98
    report = json.loads((f / "r.json").read_text())["curation"]
    assert report["n_rated"] == 1500 and report["config"]["knn"]["max_seconds"] is None


def test_curate_npy_errors(split_pool, tmp_path, capsys):
    f = split_pool
    np.save(tmp_path / "short.npy", np.ones((10, 16), dtype=np.float16))
    assert main(["curate", str(f / "ratings.parquet"), str(tmp_path / "o.parquet"), "--embeddings",
                 str(tmp_path / "short.npy")]) == 2
    assert "holds 10 rows but the input has 1500" in capsys.readouterr().err
    assert main(["curate", str(f / "ratings.parquet"), str(tmp_path / "o.parquet"), "--embeddings",
                 str(tmp_path / "none.npy")]) == 2
    assert "no such embeddings file" in capsys.readouterr().err
    assert main(["curate", str(f / "ratings.parquet"), str(tmp_path / "o.parquet"), "--embeddings",
                 str(f / "emb.npy"), "--rating-column", "score"]) == 2
    assert "column 'score' not found" in capsys.readouterr().err
    assert not (tmp_path / "o.parquet").exists()
