"""The datasets face: select() reads the columns, keeps every column, reports, warns at the caller, and the CLI."""

from __future__ import annotations

import json
import logging
import warnings

import datasets
import numpy as np
import pytest
from selection_pools import DS2_ORDER, LONG_TAIL, SCORES, ids, make_pool

from ds2_hf.selection import STRATEGIES, TIE_BREAKS, SelectionConfig, select, select_indices

def test_select_keeps_all_columns_and_respects_an_indices_mapping():
    pool = make_pool()
    shuffled = pool.select([6, 5, 4, 3, 2, 1, 0])  # an indices mapping over the same table
    sub = select(shuffled, k=3)
    assert sub.column_names == pool.column_names
    assert ids(sub) == [6, 2, 3]  # ties broken by position in the (reversed) view
    assert sub[0] == pool[6]


def test_fallback_to_raw_rating_is_logged(caplog):
    pool = make_pool().remove_columns(["curated_rating"])
    with caplog.at_level(logging.INFO, logger="ds2_hf.selection"):
        sub, report = select(pool, k=2, strategy="score", return_report=True)
    assert report.score_column == "rating"
    assert ids(sub) == [2, 6]
    assert "curated_rating" in caplog.text and "raw 'rating'" in caplog.text


def test_fraction_budget_and_report_is_json_serialisable():
    sub, report = select(make_pool(), fraction=0.5, return_report=True)
    assert len(sub) == 4 and report.k == 4
    d = json.loads(json.dumps(report.to_dict()))
    assert d["strategy"] == "confident" and d["n_pool"] == 7 and d["n_eligible"] == 6
    assert d["pool_score_counts"] == {"3": 1, "4": 1, "5": 4, "null": 1}
    assert d["score_counts"] == {"5": 4} and d["score_mean"] == 5.0


def test_k_larger_than_pool_returns_all_eligible_with_a_warning():
    with pytest.warns(UserWarning, match="asked for k=100"):
        sub = select(make_pool(), k=100)
    assert ids(sub) == DS2_ORDER


def test_k_within_pool_does_not_warn():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        select(make_pool(), k=6)


def test_config_object_and_overrides():
    cfg = SelectionConfig(strategy="score", k=2, score_column="rating")
    assert ids(select(make_pool(), config=cfg)) == [2, 6]
    assert ids(select(make_pool(), 1, config=cfg, strategy="ds2")) == [2]


def test_missing_columns_name_the_column_and_the_step_that_writes_it():
    pool = make_pool()
    with pytest.raises(ValueError, match=r"'long_tail_score'.*ds2_hf\.curate"):
        select(pool.remove_columns(["long_tail_score"]), k=2)
    with pytest.raises(ValueError, match=r"'embedding'.*Embedder"):
        select(pool, k=2, strategy="diversity")
    with pytest.raises(ValueError, match=r"'long_tail_score'.*'embedding'"):
        select(pool.remove_columns(["long_tail_score"]), k=2, strategy="knn")
    with pytest.raises(ValueError, match=r"neither 'curated_rating' nor 'rating'"):
        select(pool.remove_columns(["curated_rating", "rating"]), k=2, strategy="score")
    with pytest.raises(ValueError, match=r"score column 'quality' not found"):
        select(pool, k=2, strategy="score", score_column="quality")



def test_cli_select_writes_subset_and_report(tmp_path, capsys):
    from ds2_hf.cli import main

    src = tmp_path / "pool.jsonl"
    make_pool().to_json(str(src), lines=True)
    out, rep = tmp_path / "subset.parquet", tmp_path / "report.json"
    assert main(["select", str(src), str(out), "-k", "3", "--report", str(rep)]) == 0
    sub = datasets.load_dataset("parquet", data_files=str(out), split="train")
    assert sub["id"][:] == DS2_ORDER[:3] and "source" in sub.column_names
    assert json.loads(rep.read_text())["selection"]["n_selected"] == 3
    assert "selected 3 of 7 rows" in capsys.readouterr().out

    assert main(["select", str(src), str(tmp_path / "a.jsonl"), "--strategy", "score", "--threshold", "5"]) == 0
    assert main(["select", str(src), str(tmp_path / "b.jsonl"), "-k", "0"]) == 2
    assert "k=0 must be >= 1" in capsys.readouterr().err


def test_warnings_point_at_the_caller_and_options_are_validated_in_the_core():
    with pytest.warns(UserWarning) as record:
        select(make_pool(), k=50)
    assert record[0].filename == __file__
    with pytest.raises(ValueError, match="knn_k"):
        select_indices("knn", k=2, long_tail=LONG_TAIL, knn_k=0)
    with pytest.raises(ValueError, match="diversity_threshold"):
        select_indices("diversity", k=2, scores=SCORES, embeddings=np.ones((7, 2)), diversity_threshold=1.5)
    with pytest.raises(ValueError, match="score column 'quality' not found"):
        select(make_pool(), k=2, strategy="random", score_column="quality")


def test_formatted_datasets_are_read_the_same():
    pool = make_pool()
    for fmt in ("numpy", "pandas"):
        assert ids(select(pool.with_format(fmt), k=3).with_format(None)) == DS2_ORDER[:3]
    assert len(select(pool.with_format("numpy"), k=2, strategy="length")) == 2


def test_report_records_the_config_for_the_dataset_card():
    _, report = select(make_pool(), k=2, strategy="score", threshold=4, seed=3, return_report=True)
    cfg = json.loads(json.dumps(report.to_dict()))["config"]
    assert cfg["strategy"] == "score" and cfg["threshold"] == 4 and cfg["seed"] == 3 and cfg["k"] == 2


def test_a_dataset_dict_asks_for_a_split():
    with pytest.raises(TypeError, match=r"ds\['train'\]"):
        select(datasets.DatasetDict({"train": make_pool()}), k=2)


def test_length_counts_unrenderable_rows_as_zero_but_fails_on_an_unknown_format(caplog):
    pool = make_pool()
    texts = pool["text"][:]
    texts[1] = ""
    pool = pool.remove_columns(["text"]).add_column("text", texts)
    with caplog.at_level(logging.WARNING, logger="ds2_hf.selection"):
        assert ids(select(pool, k=2, strategy="length")) == [4, 3]
    assert "1 row(s) could not be rendered" in caplog.text
    with pytest.raises(ValueError, match="cannot tell how to render rows"):
        select(pool.remove_columns(["text"]), k=2, strategy="length")


def test_exact_duplicates_enter_a_subset_once():
    long_answer = "This is the same long answer, given again and again to different questions."
    ds = datasets.Dataset.from_dict({
        "instruction": [f"q{i}" for i in range(6)],
        "output": [long_answer, "unique answer one", long_answer, "unique answer two", long_answer, "yes"],
        "curated_rating": [5, 5, 5, 4, 5, 4],
        "long_tail_score": [0.9, 0.1, 0.8, 0.5, 0.7, 0.4],
    })
    sub, report = select(ds, 4, strategy="ds2", return_report=True)
    assert sub["output"][:].count(long_answer) == 1 and len(sub) == 4
    assert report.details["n_duplicates_skipped"] == 2 and report.details["duplicate_source"].startswith("response")
    kept = select(ds, 4, strategy="ds2", deduplicate=False)
    assert kept["output"][:].count(long_answer) == 3
    # the diversity strategy drops them as it walks
    emb = np.eye(6, dtype=np.float32)
    div = select(ds.add_column("embedding", list(emb)), 4, strategy="diversity")
    assert div["output"][:].count(long_answer) == 1


def test_the_duplicate_group_column_is_used_when_present():
    ds = make_pool().add_column("duplicate_group", [-1, -1, 3, -1, -1, -1, 3])  # rows 2 and 6 are copies
    sub = select(ds, 4, strategy="ds2")
    assert ids(sub) == [2, 0, 3, 1]
    with pytest.raises(ValueError, match="confidence_tiers"):
        select(ds, 2, confidence_tiers=(0.99, 1.5))


def test_bad_input_raises_the_typed_errors_of_the_validation_boundary():
    from ds2_hf.validation import EmbeddingError, EmptyInputError, InputTypeError, UnknownOptionError

    with pytest.raises(UnknownOptionError, match=r"unknown selection option\(s\) \['treshold'\]") as err:
        select(make_pool(), k=2, treshold=4)
    assert isinstance(err.value, TypeError) and isinstance(err.value, ValueError)
    with pytest.raises(InputTypeError, match="config must be a SelectionConfig"):
        select(make_pool(), k=2, config={"strategy": "ds2"})
    with pytest.raises(InputTypeError, match=r"ds\['train'\]"):
        select(datasets.DatasetDict({"train": make_pool()}), k=2)
    with pytest.raises(EmptyInputError, match="nothing to select"):
        select(make_pool().select([]), k=2)
    vectors = [[1.0, 0.0], [0.0, 1.0], [1.0, 1.0], None, [0.5, 0.5], [0.2, 0.1], [0.3, 0.9]]
    with pytest.raises(EmbeddingError, match=r"column 'embedding'.*rows \[3\] \(1 in all\) have no vector"):
        select(make_pool().add_column("embedding", vectors), k=2, strategy="diversity")
    with pytest.raises(ValueError, match=r"scores must be numeric; rows \[1\]"):
        select_indices("score", k=1, scores=[1, "high", 2])


def test_a_variable_length_embedding_column_with_equal_lengths_is_read():
    x = np.array([[1, 0], [1, 0.01], [0, 1], [0.7, 0.7], [-1, 0], [0, -1], [0.1, 0.99]], dtype=np.float32)
    features = datasets.Features({"embedding": datasets.List(datasets.Value("float32"))})  # no fixed length
    emb = datasets.Dataset.from_dict({"embedding": x.tolist()}, features=features)
    ds = datasets.concatenate_datasets([make_pool(), emb], axis=1)
    assert ids(select(ds, 3, strategy="diversity", diversity_threshold=0.5)) == ids(
        select(make_pool().add_column("embedding", list(x)), 3, strategy="diversity", diversity_threshold=0.5))
