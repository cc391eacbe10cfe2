"""Tests of the Gradio Space in spaces/ds2-demo: its pure functions, then one end-to-end launch on 127.0.0.1."""

from __future__ import annotations

import importlib.util
import os
import sys
from pathlib import Path

import datasets
import numpy as np
import pytest

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
pytest.importorskip("gradio")


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
    rows["rating"][1], rows["rating"][2] = 0, 5  # every class is used
    return datasets.Dataset.from_dict(rows, features=datasets.Features(
        {"instruction": datasets.Value("string"), "output": datasets.Value("string"), "rating": datasets.Value("int8")}
    ))


def test_bad_ratings_are_refused_before_embedding(app, pool, monkeypatch):
    import ds2_hf.embedding

    def no_embedding(*args, **kwargs):
        raise AssertionError("embedded before the ratings were checked")

    monkeypatch.setattr(ds2_hf.embedding, "embed", no_embedding)
    bad = pool.remove_columns("rating").add_column("rating", [7.0] + [1.0] * 79)
    with pytest.raises(ValueError, match=r"0..5.*rows \[0\]"):
        app.run_pipeline(bad, k=5)
    with pytest.raises(ValueError, match="column 'score' not found"):
        app.run_pipeline(pool, k=5, rating_column="score")
    words = pool.remove_columns("rating").add_column("rating", ["good"] * 80)
    with pytest.raises(ValueError, match="'rating' must hold integer ratings"):
        app.run_pipeline(words, k=5)


def test_load_pool_reads_uploads_and_the_demo(app, pool, tmp_path):
    path = tmp_path / "mine.csv"
    pool.to_csv(str(path))
    assert app.load_pool(str(path)).num_rows == 80
    assert app.load_pool(None, demo_rows=120).num_rows == 120
    with pytest.raises(ValueError, match="upload one of"):
        app.load_pool(str(tmp_path / "notes.txt"))


def test_pipeline_with_the_library_curator(app, pool):
    out = app.run_pipeline(pool, k=20)
    assert len(out.selected) == 20
    assert list(out.selected.columns)[:2] == ["instruction", "output"]
    cur = out.selected["curated_rating"].to_numpy()
    assert np.all(np.diff(cur) <= 0)  # curated score descending
    assert {"curated_rating", "curation_confidence", "misrated", "long_tail_score", "duplicate_group",
            "embedding"} <= set(out.curated.column_names)
    assert out.flagged["misrated"].all()
    assert "80 rows" in out.summary and "Flagged as mis-rated" in out.summary and "Curation guard" in out.summary
    assert out.transition_figure.axes and out.distribution_figure.axes
    assert out.composition_figure is None  # no generator / dataset / source column
    again = app.run_pipeline(out.curated, k=5)  # a curated file, re-uploaded
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
def test_pipeline_on_the_demo_says_why_it_keeps_the_ratings(app):
    pool = app.load_pool(None)
    out = app.run_pipeline(pool, k=500)
    assert len(out.selected) == 200  # the table shows the first 200 of the 500 selected rows
    assert "**Selected**: 500 of the requested 500 rows" in out.summary
    assert "Curation guard: withheld" in out.summary and "line up with the rating scale" in out.summary
    assert "805 copies of one answer" in out.summary
    by_generator = out.summary.split("Subset by `generator`**: ")[1]
    assert "NullModel 1." in by_generator or "NullModel" not in by_generator  # one of its 805 copies at most
    assert out.composition_figure is not None and "generator" in out.summary


@pytest.mark.slow
def test_app_end_to_end_over_http(app, monkeypatch):
    from gradio_client import Client

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
