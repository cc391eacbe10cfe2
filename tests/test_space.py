"""Tests of the Gradio Space in spaces/ds2-demo: its pure functions, then one end-to-end launch on 127.0.0.1."""

from __future__ import annotations

import importlib.util
import os
import sys
from pathlib import Path
from types import SimpleNamespace

import datasets
import numpy as np
import pytest

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
pytest.importorskip("gradio")

import ds2_hf  # noqa: E402

APP = Path(__file__).resolve().parents[1] / "spaces" / "ds2-demo" / "app.py"
K = 6


@pytest.fixture(scope="module")
def app():
    spec = importlib.util.spec_from_file_location("ds2_space_app", APP)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses resolve annotations through sys.modules
    try:
        spec.loader.exec_module(module)
        yield module
    finally:
        sys.modules.pop(spec.name, None)


def _real_curate_scores():
    try:
        return ds2_hf.curate_scores
    except (AttributeError, ImportError):
        return None


def knn_majority_curate(embeddings, ratings, *, num_classes=K, seed=0, method=None):
    """A small, honest stand-in with the ``curate_scores`` contract: k-NN majority vote of rated neighbours."""
    x = np.asarray(embeddings, dtype=np.float64)
    sims = x @ x.T
    np.fill_diagonal(sims, -np.inf)
    nbrs = np.argsort(-sims, axis=1)[:, :10]
    votes = np.zeros((len(x), num_classes))
    for j in range(10):
        y = ratings[nbrs[:, j]]
        ok = y >= 0
        votes[np.flatnonzero(ok), y[ok]] += 1
    curated = np.where(votes.sum(1) > 0, votes.argmax(1), -1)
    confidence = votes.max(1) / np.maximum(votes.sum(1), 1)
    both = (ratings >= 0) & (curated >= 0)
    T = np.full((num_classes, num_classes), 1e-9)
    np.add.at(T, (curated[both], ratings[both]), 1)
    prior = np.bincount(curated[curated >= 0], minlength=num_classes).astype(float)
    long_tail = 1 - np.take_along_axis(sims, nbrs, 1).mean(1)
    return SimpleNamespace(
        transition_matrix=T / T.sum(1, keepdims=True), true_prior=prior / prior.sum(), curated=curated,
        confidence=confidence, misrated=both & (curated != ratings), long_tail=long_tail, report={},
    )


@pytest.fixture()
def pool():
    rng = np.random.default_rng(0)
    topics = ["cats purr and sleep", "stock markets fell today", "bake bread with flour", "planets orbit the sun"]
    rows = {"instruction": [], "output": [], "rating": []}
    for i in range(80):
        t = i % 4
        rows["instruction"].append(f"Tell me about {topics[t]} ({i})")
        rows["output"].append(f"{topics[t]} " * (1 + i % 3))
        noisy = rng.random() < 0.2
        rows["rating"].append(None if i % 17 == 0 else int(rng.integers(0, K) if noisy else t + 1))
    return datasets.Dataset.from_dict(rows, features=datasets.Features(
        {"instruction": datasets.Value("string"), "output": datasets.Value("string"), "rating": datasets.Value("int8")}
    ))


def test_ratings_array_maps_nulls_and_rejects_bad_scales(app, pool):
    r = app.ratings_array(pool)
    assert r.dtype == np.int64 and r.shape == (80,)
    assert (r[::17] == -1).all() and r.max() <= 5
    bad = pool.remove_columns("rating").add_column("rating", [7.0] + [1.0] * 79)
    with pytest.raises(ValueError, match=r"integer ratings in 0..5.*rows \[0\]"):
        app.ratings_array(bad)
    with pytest.raises(ValueError, match="no rating column 'score'"):
        app.ratings_array(pool, "score")


def test_load_pool_reads_uploads_and_the_demo(app, pool, tmp_path):
    path = tmp_path / "mine.csv"
    pool.to_csv(str(path))
    assert app.load_pool(str(path)).num_rows == 80
    assert app.load_pool(None, demo_rows=120).num_rows == 120
    with pytest.raises(ValueError, match="upload one of"):
        app.load_pool(str(tmp_path / "notes.txt"))


def test_pipeline_with_a_stand_in_curator(app, pool):
    out = app.run_pipeline(pool, k=20, curate_fn=knn_majority_curate)
    assert len(out.selected) == 20
    assert list(out.selected.columns)[:2] == ["instruction", "output"]
    cur = out.selected["curated_rating"].to_numpy()
    assert np.all(np.diff(cur) <= 0)  # DS2 order: curated score descending
    assert {"curated_rating", "curation_confidence", "misrated", "long_tail_score", "embedding"} <= set(
        out.curated.column_names
    )
    assert out.flagged["misrated"].all()
    assert "80 rows" in out.summary and "Flagged as mis-rated" in out.summary
    assert out.transition_figure.axes and out.distribution_figure.axes
    assert out.composition_figure is None  # no generator / dataset / source column
    again = app.run_pipeline(out.curated, k=5, curate_fn=knn_majority_curate)  # a curated file, re-uploaded
    assert len(again.selected) == 5
    assert again.curated.column_names.count("curated_rating") == 1


def test_table_previews_any_row_format(app):
    chat = datasets.Dataset.from_dict({
        "messages": [[{"role": "user", "content": "Hi " * 200}, {"role": "assistant", "content": "Hello"}]],
        "rating": [3],
    })
    frame = app.table(chat)
    assert list(frame.columns) == ["text preview", "rating"]
    assert frame["text preview"][0].startswith("Hi Hi") and len(frame["text preview"][0]) == app.PREVIEW_CHARS


@pytest.mark.slow
def test_pipeline_on_the_demo_with_the_library_curator(app):
    curate = _real_curate_scores()
    if curate is None:
        pytest.skip("ds2_hf.curate_scores is not available in this build")
    pool = app.load_pool(None, demo_rows=600)
    out = app.run_pipeline(pool, k=50)
    assert len(out.selected) == 50
    T = np.asarray(curate(
        np.asarray(out.curated.with_format("numpy")[:]["embedding"]), app.ratings_array(pool)
    ).transition_matrix)
    assert T.shape == (K, K) and np.allclose(T.sum(1), 1, atol=1e-6)
    assert out.composition_figure is not None and "generator" in out.summary


@pytest.mark.slow
def test_app_end_to_end_over_http(app, monkeypatch):
    from gradio_client import Client

    if _real_curate_scores() is None:  # the endpoint still runs the whole app, with the stand-in curator
        monkeypatch.setattr(ds2_hf, "curate_scores", knn_majority_curate, raising=False)
    _, url, _ = app.demo.launch(server_name="127.0.0.1", prevent_thread_lock=True, quiet=True)
    try:
        client = Client(url, verbose=False)
        api = client.view_api(print_info=False, return_format="dict")
        assert "/run" in api["named_endpoints"]
        summary, transition, distribution, composition, selected, flagged = client.predict(
            None, "rating", 30, 500, "default", 0, api_name="/run"
        )
        assert "500 rows" in summary and "Selected" in summary
        assert transition and distribution and composition
        assert len(selected["data"]) == 30
        assert "curated_rating" in selected["headers"]
    finally:
        app.demo.close()
