"""A truthful card: every sentence and tag of ds2_hf.publish.card says what the report and the rows support."""

from __future__ import annotations

import logging
import warnings

from huggingface_hub import DatasetCard

from ds2_hf import plots, publish
from ds2_hf.cli import main
from ds2_hf.demo import demo_report
from ds2_hf.report import RatingInfo, Report, SourceInfo

try:
    from test_publish import K, ds2_select, make_pool
except ImportError:  # tests/ imported as a package
    from .test_publish import K, ds2_select, make_pool


def _card(subset, report, **options) -> DatasetCard:
    return publish.build_card(subset, report=report, **options)


def test_the_long_tail_cut_at_the_top_score_says_so():
    pool, report = make_pool()
    top = _card(ds2_select(pool, 10), report, pool=pool).text  # every selected row has curated score 5
    assert "above 5" not in top
    assert f"Every selected row has the top curated score, {K - 1}; among those rows, only the ones" in top
    lower = _card(ds2_select(pool, 50), report, pool=pool).text
    assert "Every row with a curated score above 4 was selected (each duplicate group once)" in lower


def test_options_show_the_values_used_not_null():
    pool, report = make_pool()
    curation = {**report["curation"], "config": {"backoff": None, "confidence_threshold": None, "seed": 0},
                "backoff": True, "confidence_threshold": 0.0}
    text = _card(ds2_select(pool, 20), {**report, "curation": curation}).text
    assert "| `curation.backoff` | `true` |" in text and "| `curation.confidence_threshold` | `0.0` |" in text
    assert "`null`" not in text.split("Curation and selection options")[1].split("</details>")[0]


def test_tags_and_words_follow_where_the_ratings_came_from():
    pool, report = make_pool()
    subset = ds2_select(pool, 20)
    llm = _card(subset, report)  # rated for this selection by an LLM (ds2 rate)
    assert "synthetic-ratings" in llm.data.tags and "every sample was rated by an LLM" in llm.text
    judge = _card(subset, {**report, "rating": demo_report().rating.to_dict()})
    assert "synthetic-ratings" not in judge.data.tags and "llm-judge-ratings" in judge.data.tags
    assert "an LLM judge's rating from an existing evaluation" in judge.text
    assert "| Prompt-template hash | none: these ratings were not made with the DS2 prompt |" in judge.text
    supplied = _card(subset, {k: v for k, v in report.items() if k != "rating"})
    assert not {"synthetic-ratings", "llm-judge-ratings"} & set(supplied.data.tags)
    assert "rated by an LLM" not in supplied.text and "a rating supplied with the data" in supplied.text
    assert "raw rating (the supplied rating)" in supplied.text
    assert supplied.data.ds2["rating_origin"] == "supplied" and judge.data.ds2["rating_origin"] == "judge"


def test_a_local_file_is_never_a_source_dataset(tmp_path):
    pool, report = make_pool()
    path = tmp_path / "my_pool.parquet"
    pool.to_parquet(str(path))
    local = {**report, "source": SourceInfo.of(path).to_dict()}
    card = _card(ds2_select(pool, 20), local)
    assert card.data.source_datasets is None
    assert f"| Source dataset | {path} (a local file or folder) |" in card.text
    assert "huggingface.co/datasets/" + str(path) not in card.text
    hub = _card(ds2_select(pool, 20), report)
    assert hub.data.source_datasets == ["org/pool"] and "(https://huggingface.co/datasets/org/pool)" in hub.text


def test_the_composition_column_is_an_option(tmp_path, capsys):
    pool, report = make_pool()
    pool = pool.add_column("generator", [f"model-{i % 3}" for i in range(len(pool))])
    subset = ds2_select(pool, 30)
    assert "Rows per `source`" in _card(subset, report, pool=pool).text  # auto: the first candidate column
    chosen = _card(subset, report, pool=pool, composition_column="generator").text
    assert "Rows per `generator`" in chosen and "| model-0 |" in chosen
    assert "## Composition\n\nNot recorded" in _card(subset, report, composition_column=None).text
    subset.to_parquet(str(tmp_path / "subset.parquet"))
    assert main(["report", str(tmp_path / "subset.parquet"), "-o", str(tmp_path / "r.html"),
                 "--composition-column", "generator"]) == 0
    assert "<code>generator</code>" in (tmp_path / "r.html").read_text()


def test_cjk_labels_render_with_a_cjk_font(caplog):
    labels = {"中文数据": 5, "日本語のデータ": 3, "한국어 데이터": 2}
    assert len(plots.font_families()) > 1, "no CJK font found: pip install 'ds2-hf[cjk]'"
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # matplotlib warns "Glyph ... missing from font(s)" for boxes
        with caplog.at_level(logging.WARNING, logger="ds2_hf.plots"):
            png = plots.png_bytes(plots.plot_composition(labels, labels))
    assert png[:4] == b"\x89PNG" and not caplog.records


def test_a_glyph_no_font_has_is_reported_with_the_fix(monkeypatch, caplog):
    monkeypatch.setattr(plots, "font_families", lambda: ("DejaVu Sans",))
    with caplog.at_level(logging.WARNING, logger="ds2_hf.plots"):
        plots.png_bytes(plots.plot_composition({"中文": 1}, {"中文": 1}))
    assert 'pip install "ds2-hf[cjk]"' in caplog.text


def test_an_older_report_layout_still_makes_the_card(tmp_path):
    """0.1.0's `ds2 curate --report` wrote the curation report flat; `ds2 push --report` reads it as curation."""
    import json

    pool, report = make_pool()
    (tmp_path / "cur.json").write_text(json.dumps(report["curation"]))  # the flat layout
    merged = Report.read_many([tmp_path / "cur.json"])
    card = _card(ds2_select(pool, 20), merged, pool=pool).text
    assert "transition matrix is unknown" not in card and "| k-NN | exact, k = 10, recall@k = 0.987 |" in card
    assert "| Curation method | faithful |" in card


def test_a_report_file_that_is_not_a_report_is_one_clear_error(tmp_path, capsys):
    pool, _ = make_pool()
    ds2_select(pool, 10).to_parquet(str(tmp_path / "s.parquet"))
    (tmp_path / "bad.json").write_text('{"rows": 3}')
    assert main(["report", str(tmp_path / "s.parquet"), "-o", str(tmp_path / "r.html"),
                 "--report", str(tmp_path / "bad.json")]) == 2
    err = capsys.readouterr().err
    assert "is not a ds2 report" in err and "bad.json" in err and "Traceback" not in err
    (tmp_path / "new.json").write_text('{"schema_version": 99}')
    assert main(["report", str(tmp_path / "s.parquet"), "-o", str(tmp_path / "r.html"),
                 "--report", str(tmp_path / "new.json")]) == 2
    assert "upgrade ds2-hf" in capsys.readouterr().err


def test_rating_info_of_an_llm_run_records_the_prompt():
    from ds2_hf.rating import RatingConfig

    info = RatingInfo.from_config(RatingConfig(model="gpt-4o-mini", backend="openai"))
    assert info.origin == "llm" and info.model == "gpt-4o-mini" and len(info.template_hash) == 16
    assert Report.from_dict({"rating": info.to_dict()}).rating == info
