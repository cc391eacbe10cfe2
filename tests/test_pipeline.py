"""The one pipeline (ds2_hf.pipeline): what it records, what it checks first, and that a subset made stage by stage
on the command line gets the same dataset card as one made by ``run_pipeline``."""

from __future__ import annotations

import re
from pathlib import Path

import datasets
import numpy as np
import pytest
from hub_server import DEFAULT_TOKEN

import ds2_hf
from ds2_hf.cli import main
from ds2_hf.demo import demo_report, load_demo
from ds2_hf.embedding import EmbeddingConfig
from ds2_hf.report import Report


@pytest.fixture(scope="module")
def pool_file(tmp_path_factory) -> Path:
    """600 demo rows (AlpacaEval answers with real judge ratings) as a local parquet file, no embeddings."""
    path = tmp_path_factory.mktemp("pool") / "pool.parquet"
    load_demo(num_rows=600, seed=3).to_parquet(str(path))
    return path


def _section(card: str, title: str) -> str:
    """The text of a card from ``## title`` to the next ``## ``."""
    start = card.index(f"## {title}")
    end = card.find("\n## ", start + 1)
    return card[start:end if end >= 0 else None]


def _without(card: str, *titles: str) -> str:
    for title in titles:
        card = card.replace(_section(card, title), "")
    return card


@pytest.mark.slow
def test_cli_stages_give_the_card_of_the_python_pipeline(pool_file, tmp_path, stub, monkeypatch, capsys):
    """ds2 embed -> curate --report -> select -> push (and report) == run_pipeline(..., push_to=...)."""
    d = tmp_path
    monkeypatch.setenv("HF_TOKEN", DEFAULT_TOKEN)
    monkeypatch.setenv("HF_ENDPOINT", stub.endpoint)
    result = ds2_hf.run_pipeline(str(pool_file), embedding=EmbeddingConfig(backend="wordllama"),
                                 selection=ds2_hf.SelectionConfig(k=30), output=d / "py", push_to="org/py")
    assert result.pushed.changed and result.subset.num_rows == 30

    steps = [
        ["embed", str(pool_file), str(d / "emb.parquet"), "--backend", "wordllama", "--report", str(d / "e.json")],
        ["curate", str(d / "emb.parquet"), str(d / "cur.parquet"), "--report", str(d / "c.json")],
        ["select", str(d / "cur.parquet"), str(d / "sub.parquet"), "-k", "30", "--report", str(d / "s.json")],
    ]
    for argv in steps:
        assert main(argv) == 0, capsys.readouterr().err
    reports = [arg for name in ("e", "c", "s") for arg in ("--report", str(d / f"{name}.json"))]
    assert main(["push", str(d / "sub.parquet"), "org/cli", *reports, "--pool", str(d / "cur.parquet")]) == 0
    assert main(["report", str(d / "sub.parquet"), "-o", str(d / "cli.html"), *reports,
                 "--pool", str(d / "cur.parquet")]) == 0

    py, cli = (stub.files(repo) for repo in ("org/py", "org/cli"))
    py_card, cli_card = (files["README.md"].decode().replace(repo, "REPO") for files, repo in
                         ((py, "org/py"), (cli, "org/cli")))
    # Everything but the reproducing commands is the same: provenance, options, guard, matrix, distributions,
    # long tail, composition, duplicates, examples, the YAML metadata; and every figure byte for byte.
    assert _without(cli_card, "Reproduce") == _without(py_card, "Reproduce")
    assert "ds2 embed " in cli_card and "ds2 curate " in cli_card and "ds2 select " in cli_card
    assert "| Embedder | wordllama / l2_supercat |" in cli_card and "transition matrix is unknown" not in cli_card
    assert "k-NN | exact, k = " in cli_card and "| Curation method | joint" in cli_card
    figures = sorted(p for p in py if p.startswith("figures/"))
    assert figures and figures == sorted(p for p in cli if p.startswith("figures/"))
    assert all(py[p] == cli[p] for p in figures)
    assert [p for p in py if p.startswith("data/")] == [p for p in cli if p.startswith("data/")]

    from ds2_hf.publish import write_report_html

    py_html = write_report_html(d / "py", d / "py.html").read_text()
    py_html = py_html.replace(" · <code>org/py</code>", "")
    import shutil; shutil.copy(d / "cli.html", "/tmp/cli.html"); open("/tmp/py.html", "w").write(py_html)  # the folder's card names the repository it went to
    strip = lambda html: re.sub(r"<h2>Reproduce</h2>.*?<h2>", "<h2>", html, flags=re.S)  # noqa: E731
    assert strip((d / "cli.html").read_text()) == strip(py_html)


def test_pipeline_records_every_stage_and_reads_its_own_report(tmp_path):
    pool = load_demo(num_rows=400, seed=1)
    result = ds2_hf.run_pipeline(pool, embedding=EmbeddingConfig(backend="wordllama", dim=64),
                                 curator=ds2_hf.Curator(progress=False), selection=ds2_hf.SelectionConfig(k=12),
                                 report=demo_report(), output=tmp_path / "out")
    report = result.report
    assert report.source.hub_id == "tatsu-lab/alpaca_eval" and report.rating.origin == "judge"
    assert (report.embedding.backend, report.embedding.dim) == ("wordllama", 64)
    assert report.curation.n == 400 and report.curation.clusterability.status in ("trusted", "shrunk", "withheld")
    assert report.selection.n_selected == 12 == result.subset.num_rows
    assert "embedding" in result.pool.column_names and "curated_rating" in result.pool.column_names
    assert Report.read(result.folder) == report  # the folder's ds2_report.json holds the same typed report
    assert datasets.load_dataset(str(result.folder), split="train").num_rows == 12


def test_pipeline_checks_everything_before_embedding(tmp_path, monkeypatch):
    import ds2_hf.embedding

    def no_embedding(*args, **kwargs):
        raise AssertionError("embedded before the inputs were checked")

    monkeypatch.setattr(ds2_hf.embedding, "embed", no_embedding)
    pool = datasets.Dataset.from_dict({"text": ["a", "b", "c"], "rating": [1, 2, 9]})
    with pytest.raises(ValueError, match="rows \\[2\\]"):
        ds2_hf.run_pipeline(pool)
    with pytest.raises(ValueError, match="column 'stars' not found"):
        ds2_hf.run_pipeline(pool, curator=ds2_hf.Curator(rating_column="stars"))
    with pytest.raises(ValueError, match="has no rows"):
        ds2_hf.run_pipeline(pool.select([]))
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "mine.txt").write_text("keep")
    with pytest.raises(ValueError, match="not empty.*--overwrite-output"):
        ds2_hf.run_pipeline(pool, output=tmp_path / "busy")
    with pytest.raises(ValueError, match="repo id"):
        ds2_hf.run_pipeline(pool, push_to="bad name")
    assert (tmp_path / "busy" / "mine.txt").read_text() == "keep"


def test_pipeline_default_budget_is_the_papers_share():
    rng = np.random.default_rng(0)
    n = 300
    emb = rng.normal(size=(n, 8)).astype(np.float32)
    pool = datasets.Dataset.from_dict({"embedding": emb, "rating": rng.integers(0, 6, n)})
    result = ds2_hf.run_pipeline(pool, curator=ds2_hf.Curator(progress=False))
    assert result.subset.num_rows == n // 30 and result.report.embedding is None  # nothing was embedded
    assert result.folder is None and result.pushed is None
