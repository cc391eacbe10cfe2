"""Tests of the Gradio Space in spaces/ds2-demo: its pure functions (uploads and their errors, tables, curate once
and select again, downloads), then one end-to-end launch on 127.0.0.1. tests/browser drives it in Chromium."""

from __future__ import annotations

import dataclasses
import json
import zipfile

import datasets
import numpy as np
import pytest

pytest.importorskip("gradio")

from space_app import space_modules  # noqa: E402  (after the gradio check)

K = 6


@pytest.fixture(scope="module")
def space():
    with space_modules() as modules:
        yield modules


def make_pool(*, generator: bool = False) -> datasets.Dataset:
    """80 rows on 4 topics, rated by topic (1-4) with 20% noise and a few unrated rows; every class used."""
    rng = np.random.default_rng(0)
    topics = ["cats purr and sleep", "stock markets fell today", "bake bread with flour", "planets orbit the sun"]
    rows = {"instruction": [], "output": [], "rating": []}
    for i in range(80):
        t = i % 4
        rows["instruction"].append(f"Tell me about {topics[t]} ({i})")
        rows["output"].append(f"{topics[t]} " * (1 + i % 3) + ("" if i < 40 else f"(answer {i})"))  # some repeat
        noisy = rng.random() < 0.2
        rows["rating"].append(None if i % 17 == 0 else int(rng.integers(0, K) if noisy else t + 1))
    rows["rating"][1], rows["rating"][2] = 0, 5
    features = {"instruction": datasets.Value("string"), "output": datasets.Value("string"),
                "rating": datasets.Value("int8")}
    if generator:
        rows["generator"], features["generator"] = [f"model-{i % 3}" for i in range(80)], datasets.Value("string")
    return datasets.Dataset.from_dict(rows, features=datasets.Features(features))


@pytest.fixture()
def pool():
    return make_pool()


@pytest.fixture(scope="module")
def session(space):
    """One curated session of the pool with a generator column (k=20), shared by the tests that only read it."""
    return space.pipeline.curate(make_pool(generator=True), k=20)


def _no_curation(monkeypatch):
    """Make embedding and curation fail loudly: what runs afterwards must not need them."""
    import ds2_hf.curation
    import ds2_hf.embedding

    def fail(*args, **kwargs):
        raise AssertionError("embedded or curated again")

    monkeypatch.setattr(ds2_hf.embedding, "embed", fail)
    monkeypatch.setattr(ds2_hf.curation.Curator, "fit", fail)
    monkeypatch.setattr(ds2_hf.curation.Curator, "fit_transform", fail)


# ---------------------------------------------------------------------------------------------------- uploads


def test_bad_ratings_are_refused_before_embedding(space, pool, monkeypatch):
    _no_curation(monkeypatch)
    bad = pool.remove_columns("rating").add_column("rating", [7.0] + [1.0] * 79)
    with pytest.raises(ValueError, match=r"0..5.*rows \[0\]"):
        space.pipeline.run_pipeline(bad, k=5)
    words = pool.remove_columns("rating").add_column("rating", ["good"] * 80)
    with pytest.raises(ValueError, match=r"column 'rating' must be integers in 0..5.*hold text, e.g. 'good'"):
        space.pipeline.run_pipeline(words, k=5)


def test_mislabelled_uploads_name_the_columns_found_and_expected(space, pool, monkeypatch):
    from ds2_hf.validation import InputError

    _no_curation(monkeypatch)
    with pytest.raises(InputError, match=r"columns \['instruction', 'output', 'rating'\].*no rating column 'score'.*"
                                         r"'Rating column' field"):
        space.pipeline.run_pipeline(pool, k=5, rating_column="score")
    qa = datasets.Dataset.from_dict({"question": ["q"], "answer": ["a"], "stars": [3]})
    with pytest.raises(InputError) as err:  # both problems, in one message
        space.data.check_columns(qa)
    message = str(err.value)
    assert "columns ['question', 'answer', 'stars']" in message
    assert "`instruction` + `output`" in message and "'Row template' field" in message and "{question}" in message
    assert "no rating column 'rating'" in message and "--template" not in message
    for template, problem in [("{question} {reply}", r"names column\(s\) \['reply'\] that the file does not"),
                              ("plain words", "names no column"), ("{question", "cannot be read")]:
        with pytest.raises(InputError, match=problem):
            space.data.check_columns(qa, rating_column="stars", template=template)
    space.data.check_columns(qa, rating_column="stars", template="{question}\n\n{answer}")  # passes


def test_a_row_template_renders_other_columns(space, pool):
    qa = pool.rename_columns({"instruction": "question", "output": "answer", "rating": "stars"})
    out = space.pipeline.run_pipeline(qa, k=8, rating_column="stars", template="Q: {question}\nA: {answer}")
    assert len(out.selected) == 8
    assert list(out.selected.columns)[:2] == ["text preview", "stars"]
    assert out.selected["text preview"][0].startswith("Q: Tell me about")


def test_load_pool_reads_uploads_and_the_demo(space, pool, tmp_path):
    path = tmp_path / "mine.csv"
    pool.to_csv(str(path))
    assert space.data.load_pool(str(path)).num_rows == 80
    assert space.data.load_pool(None, demo_rows=120).num_rows == 120
    (tmp_path / "notes.txt").write_text("hello")
    with pytest.raises(ValueError, match="upload one of"):
        space.data.load_pool(str(tmp_path / "notes.txt"))


@pytest.mark.parametrize("name", ["empty.jsonl", "empty.csv", "empty.parquet", "empty.json"])
def test_an_empty_upload_says_so(space, tmp_path, name):
    from ds2_hf.validation import EmptyInputError

    (tmp_path / name).write_bytes(b"")
    with pytest.raises(EmptyInputError, match=rf"'{name}' is empty \(0 bytes\)"):
        space.data.load_pool(str(tmp_path / name))


def test_uploads_without_rows_or_unreadable_say_so(space, tmp_path):
    from ds2_hf.validation import EmptyInputError, InputError

    (tmp_path / "header.csv").write_text("instruction,output,rating\n")
    with pytest.raises(EmptyInputError, match="'header.csv' holds no rows"):
        space.data.load_pool(str(tmp_path / "header.csv"))
    (tmp_path / "broken.parquet").write_bytes(b"not a parquet file")
    with pytest.raises(InputError, match="cannot read 'broken.parquet' as .parquet.*valid JSON lines / CSV / parquet"):
        space.data.load_pool(str(tmp_path / "broken.parquet"))


def test_oversized_uploads_state_the_limit(space, pool, tmp_path, monkeypatch):
    from ds2_hf.validation import InputError

    path = tmp_path / "big.jsonl"
    pool.to_json(str(path))
    monkeypatch.setattr(space.data, "MAX_UPLOAD_ROWS", 50)
    with pytest.raises(InputError, match="'big.jsonl' has 80 rows; this Space takes up to 50 rows"):
        space.data.load_pool(str(path))
    monkeypatch.setattr(space.data, "MAX_UPLOAD_MB", 0.001)  # 1 KiB
    with pytest.raises(InputError, match=r"'big.jsonl' is 0.0 MB; this Space takes files up to 0.001 MB"):
        space.data.load_pool(str(path))


def test_the_app_shows_upload_errors_as_messages(space, session, tmp_path):
    (tmp_path / "empty.jsonl").write_bytes(b"")
    previous = dataclasses.replace(session, workdir=str(tmp_path / "previous"))
    (tmp_path / "previous").mkdir()
    summary, *results = space.app._run(str(tmp_path / "empty.jsonl"), "rating", "", 10, 500, "default", 0, False,
                                       previous)
    assert summary.startswith(f"### {space.app.ERROR_TITLE}") and "'empty.jsonl' is empty (0 bytes)" in summary
    figures_and_tables, downloads, state = results[:5], results[5:8], results[8]
    assert figures_and_tables == [None] * 5 and state is None  # the previous results are cleared, the session ends
    assert all(button.value is None and not button.interactive for button in downloads)
    assert not (tmp_path / "previous").exists()  # with its downloads
    (tmp_path / "qa.csv").write_text("question,answer\nq,a\n")
    summary, *_ = space.app._run(str(tmp_path / "qa.csv"), "rating", "", 10, 500, "default", 0)
    assert "no text columns" in summary and "no rating column 'rating'" in summary


# ------------------------------------------------------------------------------------------- curate, select


def test_pipeline_with_the_library_curator(space, pool):
    out = space.pipeline.run_pipeline(pool, k=20)
    assert len(out.selected) == 20
    assert list(out.selected.columns)[:2] == ["instruction", "output"]
    cur = out.selected["curated_rating"].to_numpy()
    assert np.all(np.diff(cur) <= 0)  # curated score descending
    assert {"curated_rating", "curation_confidence", "misrated", "long_tail_score", "duplicate_group",
            "embedding"} <= set(out.curated.column_names)
    assert out.flagged["misrated"].all()
    assert "80 rows" in out.summary and "Flagged as mis-rated" in out.summary and "Curation guard" in out.summary
    assert "curated 1 time(s), selected 1 time(s)" in out.summary
    assert out.transition_figure.axes and out.distribution_figure.axes
    assert out.composition_figure is None  # no generator / dataset / source column
    again = space.pipeline.run_pipeline(out.curated, k=5)  # a curated file, re-uploaded
    assert len(again.selected) == 5
    assert again.curated.column_names.count("curated_rating") == 1


def test_a_new_k_selects_again_without_curating(space, session, monkeypatch):
    _no_curation(monkeypatch)
    more = space.pipeline.reselect(session, k=35)
    assert more.subset.num_rows == 35 and more.k == 35 and more.report.selection.k == 35
    assert (more.curations, more.selections) == (1, 2)
    assert more.pool is session.pool  # the same curated pool, not a copy
    assert more.subset[:20]["instruction"] == session.subset["instruction"]  # the top 20 stay the top 20
    out = space.pipeline.present(more)
    assert "**Selected**: 35 of the requested 35 rows" in out.summary
    assert "curated 1 time(s), selected 2 time(s)" in out.summary
    assert out.composition_figure is not None
    lean = space.pipeline.present(more, pool_views=False)  # what a new k redraws: not the pool-only views
    assert lean.transition_figure is None and lean.flagged is None and lean.summary == out.summary
    with pytest.raises(ValueError, match="k=0 must be at least 1"):
        space.pipeline.reselect(session, k=0)


def test_changing_k_in_the_app_reselects_and_skips_until_a_run(space, session, tmp_path, monkeypatch):
    import gradio as gr

    _no_curation(monkeypatch)
    summary, *rest = space.app._reselect(12, None)  # nothing curated yet
    assert summary == space.app.NO_POOL and all(isinstance(v, type(gr.skip())) for v in rest)
    assert all(isinstance(v, type(gr.skip())) for v in space.app._reselect(20, session))  # k unchanged
    values = space.app._reselect(12, dataclasses.replace(session, workdir=str(tmp_path)))
    summary, transition, distribution, _, selected, flagged, parquet, jsonl, card, state = values
    skip = type(gr.skip())
    assert isinstance(transition, skip) and isinstance(flagged, skip)  # pool-only views stay as shown
    assert distribution.axes and len(selected.value["data"]) == 12  # what the new subset changes is redrawn
    assert state.k == 12 and state.selections == 2 and "selected 2 time(s)" in summary
    assert all(button.interactive for button in (parquet, jsonl, card))
    assert datasets.Dataset.from_parquet(parquet.value["path"]).num_rows == 12
    assert card.value["orig_name"] == "ds2-subset.zip"
    summary, *kept = space.app._reselect(-3, session)
    assert "k=-3 must be at least 1" in summary and all(isinstance(v, type(gr.skip())) for v in kept)


def test_tables_round_numbers_and_show_scores_as_integers(space, session):
    frame = space.data.table(session.subset)
    assert session.subset.features["long_tail_score"].dtype == "float32"  # the noise source: float32 -> JSON
    for col in ("curation_confidence", "long_tail_score"):
        assert frame[col].dtype == np.float64
        assert all(v == round(v, 3) for v in frame[col])
        assert all(len(repr(v).split(".")[-1]) <= 3 for v in frame[col])
    payload = json.dumps(frame.to_dict("records"))
    assert "0000" not in payload  # no float32 noise such as 0.7160000205039978
    assert all(isinstance(v, int) for v in frame["curated_rating"])
    assert all(v is None or isinstance(v, int) for v in frame["rating"])
    assert list(frame.columns) == ["instruction", "output", "generator", "rating", "curated_rating",
                                   "curation_confidence", "misrated", "long_tail_score"]
    widths = [float(w.removesuffix("%")) for w in space.data.column_widths(frame)]
    assert abs(sum(widths) - 100) < 0.5  # every column on the page
    assert widths[0] == widths[1] == 2 * widths[2] == 3 * widths[3] == 3 * widths[-1]  # text > name > number


def test_table_previews_any_row_format(space):
    chat = datasets.Dataset.from_dict({
        "messages": [[{"role": "user", "content": "Hi " * 200}, {"role": "assistant", "content": "Hello"}]],
        "rating": [3],
    })
    frame = space.data.table(chat)
    assert list(frame.columns) == ["text preview", "rating"]
    assert frame["text preview"][0].startswith("Hi Hi") and len(frame["text preview"][0]) == space.data.PREVIEW_CHARS


# ---------------------------------------------------------------------------------------------- downloads


def test_downloads_hold_the_subset_and_its_card(space, session, tmp_path, monkeypatch):
    from ds2_hf import io

    _no_curation(monkeypatch)
    parquet, jsonl, archive = space.pipeline.write_downloads(session, tmp_path)
    expected = [c for c in session.subset.column_names if c != "embedding"]
    for path in (parquet, jsonl):
        rows = io.load(path)
        assert rows.num_rows == 20 and rows.column_names == expected
        assert rows["instruction"] == session.subset["instruction"]  # best first, as selected
    with zipfile.ZipFile(archive) as zf:
        names = set(zf.namelist())
        zf.extractall(tmp_path / "unzipped")
    assert {"ds2-subset/README.md", "ds2-subset/ds2_manifest.json", "ds2-subset/ds2_report.json",
            "ds2-subset/data/train-00000-of-00001.parquet", "ds2-subset/figures/transition_matrix.png"} <= names
    assert io.load(tmp_path / "unzipped" / "ds2-subset").num_rows == 20  # the manifest check passes
    again = space.pipeline.write_downloads(space.pipeline.reselect(session, k=7), tmp_path)  # replaced, not added
    assert io.load(again[0]).num_rows == 7
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ds2-subset", "ds2-subset.jsonl", "ds2-subset.parquet",
                                                          "ds2-subset.zip", "unzipped"]


# ------------------------------------------------------------------------------------------------ the demo


@pytest.mark.slow
def test_pipeline_on_the_demo_says_why_it_keeps_the_ratings(space):
    pool = space.data.load_pool(None)
    out = space.pipeline.run_pipeline(pool, k=500)
    assert len(out.selected) == 200  # the table shows the first 200 of the 500 selected rows
    assert "**Selected**: 500 of the requested 500 rows" in out.summary
    assert "Curation guard: withheld" in out.summary and "line up with the rating scale" in out.summary
    assert "805 copies of one answer" in out.summary
    by_generator = out.summary.split("Subset by `generator`**: ")[1]
    assert "NullModel 1." in by_generator or "NullModel" not in by_generator  # one of its 805 copies at most
    assert out.composition_figure is not None and "generator" in out.summary


@pytest.mark.slow
def test_app_end_to_end_over_http(space):
    from gradio_client import Client

    _, url, _ = space.app.demo.launch(server_name="127.0.0.1", prevent_thread_lock=True, quiet=True)
    try:
        client = Client(url, verbose=False)
        api = client.view_api(print_info=False, return_format="dict")
        assert {"/run", "/reselect"} <= set(api["named_endpoints"])
        summary, transition, distribution, composition, selected, flagged, parquet, jsonl, card = client.predict(
            None, "rating", "", 30, 500, "default", 0, False, api_name="/run"
        )
        assert "500 rows" in summary and "Selected" in summary and "curated 1 time(s)" in summary
        assert transition and distribution and composition
        assert len(selected["value"]["data"]) == 30  # a table update: its value and its column widths
        assert "curated_rating" in selected["value"]["headers"] and len(selected["column_widths"]) == 9
        assert parquet["interactive"] and datasets.Dataset.from_parquet(parquet["value"]).num_rows == 30
    finally:
        space.app.demo.close()



def test_a_templated_upload_finds_its_copies(space, pool):
    """The row template renders the duplicate finder's text too (run_pipeline hands it to the curator): exact
    copies of a row are one duplicate group in the curation's evidence, not only near neighbours of each other."""
    qa = pool.rename_columns({"instruction": "question", "output": "answer", "rating": "stars"})
    copies = {"question": [qa["question"][3]] * 6, "answer": [qa["answer"][3]] * 6, "stars": [4] * 6}
    qa = datasets.concatenate_datasets([qa, datasets.Dataset.from_dict(copies, features=qa.features)])
    session = space.pipeline.curate(qa, k=20, rating_column="stars", template="Q: {question}\nA: {answer}")
    structure = session.report.curation.structure
    assert structure["duplicate_source"] == "response text"
    assert (structure["n_duplicate_groups"], structure["n_duplicate_rows"]) == (1, 7)  # row 3 and its six copies
    groups = np.asarray(session.pool["duplicate_group"])
    assert len(set(groups[[3, *range(80, 86)]])) == 1 and groups[3] >= 0
