"""Tests of ds2_hf.selection and the `ds2 select` command, on small synthetic pools with known answers."""

from __future__ import annotations

import json
import logging
import warnings

import datasets
import numpy as np
import pytest

from ds2_hf.selection import (
    STRATEGIES,
    TIE_BREAKS,
    SelectionConfig,
    _greedy_diverse,
    mean_knn_distance,
    select,
    select_indices,
)

# A hand-made pool: the DS2 rule orders it 2, 6, 0, 3 (score 5, long-tail desc, ties by index), 1 (4), 5 (3);
# row 4 is unrated and never chosen by a score-based strategy.
SCORES = [5, 4, 5, 5, None, 3, 5]
LONG_TAIL = [0.2, 0.9, 0.7, 0.2, 1.0, 0.5, 0.7]
DS2_ORDER = [2, 6, 0, 3, 1, 5]


def _pool(n_extra_cols: bool = True) -> datasets.Dataset:
    data = {
        "id": list(range(7)),
        "text": ["a" * n for n in (3, 10, 1, 7, 50, 2, 5)],
        "curated_rating": SCORES,
        "long_tail_score": LONG_TAIL,
    }
    if n_extra_cols:
        data["rating"] = [4, 4, 5, 2, None, 3, 5]
        data["source"] = ["x"] * 7
    features = datasets.Features(
        {
            **{c: datasets.Value("string") for c in ("text", "source") if c in data},
            "id": datasets.Value("int64"),
            "curated_rating": datasets.Value("int8"),
            "long_tail_score": datasets.Value("float32"),
            **({"rating": datasets.Value("int8")} if "rating" in data else {}),
        }
    )
    return datasets.Dataset.from_dict(data, features=features)


def _ids(ds: datasets.Dataset) -> list[int]:
    return ds["id"][:]


def _naive_diverse(order, x, k, threshold):
    x = x / np.linalg.norm(x, axis=1, keepdims=True)
    kept = []
    for i in order:
        if all(float(x[i] @ x[j]) <= threshold for j in kept):
            kept.append(int(i))
            if k is not None and len(kept) == k:
                break
    return kept


# ---------------------------------------------------------------------------------------------------- ds2 rule


def test_ds2_rule_on_hand_made_table():
    assert select_indices("ds2", k=5, scores=SCORES, long_tail=LONG_TAIL).tolist() == DS2_ORDER[:5]
    assert _ids(select(_pool(), k=5)) == DS2_ORDER[:5]


def test_ds2_matches_reference_group_loop_as_a_set():
    """The reference fills the budget score group by score group (5, 4, ... 0), taking a partial group's top
    rows by long-tail score; as a set that equals sorting by (score desc, long-tail desc)."""
    rng = np.random.default_rng(3)
    scores = rng.integers(0, 6, 400)
    long_tail = rng.permutation(400) / 400.0  # distinct, so the reference's arbitrary tie order cannot matter
    for k in (1, 37, 150, 399):
        ref: list[int] = []
        for s in range(5, -1, -1):
            group = np.flatnonzero(scores == s)
            room = k - len(ref)
            if room <= 0:
                break
            ref += group.tolist() if room >= group.size else group[np.argsort(long_tail[group])[::-1][:room]].tolist()
        ours = select_indices("ds2", k=k, scores=scores, long_tail=long_tail)
        assert sorted(ours.tolist()) == sorted(ref)
        assert np.all(np.diff(scores[ours]) <= 0)  # best first


def test_select_keeps_all_columns_and_respects_an_indices_mapping():
    pool = _pool()
    shuffled = pool.select([6, 5, 4, 3, 2, 1, 0])  # an indices mapping over the same table
    sub = select(shuffled, k=3)
    assert sub.column_names == pool.column_names
    assert _ids(sub) == [6, 2, 3]  # ties broken by position in the (reversed) view
    assert sub[0] == pool[6]


# ------------------------------------------------------------------------------------------------ null ratings


@pytest.mark.parametrize("strategy", ["ds2", "score", "diversity"])
def test_null_ratings_are_never_selected(strategy):
    pool = _pool().add_column("embedding", [[float(i), 1.0] for i in range(7)])
    with pytest.warns(UserWarning, match="returning 6"):
        sub = select(pool, k=7, strategy=strategy, diversity_threshold=1.0)
    assert 4 not in _ids(sub)
    assert len(sub) == 6


def test_nan_scores_count_as_null():
    assert 1 not in select_indices("score", k=None, scores=[1.0, np.nan, 2.0]).tolist()


# ----------------------------------------------------------------------------------------------- score / AlpaGasus


def test_score_threshold_keeps_everything_above_it_when_k_is_none():
    sub, report = select(_pool(), strategy="score", score_column="rating", threshold=4, return_report=True)
    assert _ids(sub) == [2, 6, 0, 1]  # 5, 5, then 4, 4 (ties by index)
    assert report.n_eligible == 4 and report.score_column == "rating"
    assert report.score_counts == {"4": 2, "5": 2}


def test_score_threshold_with_k_and_warning_when_too_few():
    assert select_indices("score", k=1, scores=[3, 5, 4], threshold=4).tolist() == [1]
    with pytest.warns(UserWarning, match="only 2 of 3 rows are eligible"):
        assert select_indices("score", k=3, scores=[3, 5, 4], threshold=4).tolist() == [1, 2]


def test_threshold_restricts_other_strategies_too():
    scores = np.array([5, 1, 5, 1, 5, 1, 5, 1])
    picked = select_indices("random", k=4, scores=scores, threshold=5, seed=3)
    assert sorted(picked.tolist()) == [0, 2, 4, 6]


def test_tie_break_random_is_seeded_and_differs_from_index_order():
    scores = np.ones(200)
    by_index = select_indices("score", k=10, scores=scores)
    assert by_index.tolist() == list(range(10))
    a = select_indices("score", k=10, scores=scores, tie_break="random", seed=1)
    b = select_indices("score", k=10, scores=scores, tie_break="random", seed=1)
    c = select_indices("score", k=10, scores=scores, tie_break="random", seed=2)
    assert a.tolist() == b.tolist() and a.tolist() != by_index.tolist() and a.tolist() != c.tolist()


def test_fallback_to_raw_rating_is_logged(caplog):
    pool = _pool().remove_columns(["curated_rating"])
    with caplog.at_level(logging.INFO, logger="ds2_hf.selection"):
        sub, report = select(pool, k=2, strategy="score", return_report=True)
    assert report.score_column == "rating"
    assert _ids(sub) == [2, 6]
    assert "curated_rating" in caplog.text and "raw 'rating'" in caplog.text


# ------------------------------------------------------------------------------------------------------ random


def test_random_is_seeded_reproducible_and_without_repeats():
    a = select_indices("random", k=50, n_rows=1000, seed=7)
    b = select_indices("random", k=50, n_rows=1000, seed=7)
    c = select_indices("random", k=50, n_rows=1000, seed=8)
    assert a.tolist() == b.tolist() and a.tolist() != c.tolist()
    assert len(set(a.tolist())) == 50 and a.dtype == np.int64
    # the sample does not depend on how ties would be broken
    assert select_indices("random", k=50, n_rows=1000, seed=7, tie_break="random").tolist() == a.tolist()
    pool = _pool()
    assert _ids(select(pool, k=3, strategy="random", seed=5)) == _ids(select(pool, k=3, strategy="random", seed=5))


def test_random_ignores_null_ratings_unless_thresholded():
    picked = select_indices("random", k=7, scores=SCORES, seed=0)
    assert sorted(picked.tolist()) == list(range(7))


# ------------------------------------------------------------------------------------------------------ length


def test_length_ranks_rendered_text_and_length_column():
    pool = _pool()
    assert _ids(select(pool, k=3, strategy="length")) == [4, 1, 3]  # texts of 50, 10, 7 chars
    pool = pool.add_column("n_tokens", [1, 1, 9, 2, 0, 3, 9])
    sub, report = select(pool, k=3, strategy="length", length_column="n_tokens", return_report=True)
    assert _ids(sub) == [2, 6, 5] and report.length_column == "n_tokens"


# --------------------------------------------------------------------------------------------------------- knn


def _clustered(n_per=20, outliers=3, d=8, seed=0):
    rng = np.random.default_rng(seed)
    centers = rng.normal(size=(3, d))
    x = np.concatenate([c + 0.05 * rng.normal(size=(n_per, d)) for c in centers] + [rng.normal(size=(outliers, d)) * 3])
    return x.astype(np.float32)


def test_mean_knn_distance_matches_brute_force():
    x = _clustered()
    u = x / np.linalg.norm(x, axis=1, keepdims=True)
    sims = u @ u.T
    np.fill_diagonal(sims, -np.inf)
    expected = 1 - np.sort(sims, axis=1)[:, ::-1][:, :5].mean(axis=1)
    np.testing.assert_allclose(mean_knn_distance(x, k=5), expected, atol=1e-5)
    assert mean_knn_distance(x[:1], k=5).tolist() == [0.0]


def test_knn_from_embeddings_ranks_outliers_first():
    x = _clustered(outliers=3)
    n = x.shape[0]
    ds = datasets.Dataset.from_dict({"id": list(range(n)), "embedding": x.tolist()})
    sub, report = select(ds, k=3, strategy="knn", knn_k=5, return_report=True)
    assert sorted(_ids(sub)) == [n - 3, n - 2, n - 1]
    assert report.embedding_column == "embedding" and "nearest" in report.details["rarity_source"]


def test_knn_prefers_an_existing_long_tail_column():
    pool = _pool()  # no embedding column: the long-tail score must be used
    sub, report = select(pool, k=2, strategy="knn", return_report=True)
    assert _ids(sub) == [4, 1] and report.long_tail_column == "long_tail_score"


# --------------------------------------------------------------------------------------------------- diversity


def test_diversity_never_keeps_two_near_duplicates():
    rng = np.random.default_rng(0)
    base = rng.normal(size=(30, 16))
    x = np.concatenate([base, base + 1e-3 * rng.normal(size=base.shape), base + 1e-3 * rng.normal(size=base.shape)])
    scores = rng.integers(0, 6, x.shape[0])
    kept = select_indices("diversity", k=None, scores=scores, embeddings=x, diversity_threshold=0.9)
    u = x[kept] / np.linalg.norm(x[kept], axis=1, keepdims=True)
    sims = u @ u.T
    np.fill_diagonal(sims, -1)
    assert sims.max() <= 0.9
    assert len(kept) == 30  # exactly one copy of each triplet
    assert sorted(np.asarray(kept) % 30) == list(range(30))
    # the copy kept is the best-scored one of its triplet
    for i in kept:
        assert scores[i] == max(scores[i % 30], scores[i % 30 + 30], scores[i % 30 + 60])


@pytest.mark.parametrize("k", [None, 25, 300])
@pytest.mark.parametrize("threshold", [0.3, 0.8])
def test_blocked_greedy_equals_the_one_row_at_a_time_loop(k, threshold):
    x = _clustered(n_per=150, outliers=50, d=6, seed=1)
    rng = np.random.default_rng(2)
    x += 0.3 * rng.normal(size=x.shape).astype(np.float32)
    order = rng.permutation(x.shape[0])
    kept, considered = _greedy_diverse(order, x, k, threshold, block=64, chunk=40, capacity=8)
    expected = _naive_diverse(order, x, k, threshold)
    assert kept.tolist() == expected
    assert considered == (order.size if k is None or len(expected) < k else order.tolist().index(expected[-1]) + 1)


def test_diversity_orders_by_score_then_long_tail_and_reports():
    x = np.array([[1, 0], [1, 0.001], [0, 1], [0.001, 1], [-1, 0]], dtype=np.float32)
    ds = datasets.Dataset.from_dict(
        {
            "id": list(range(5)),
            "curated_rating": [3, 5, 4, 4, 1],
            "long_tail_score": [0.0, 0.0, 0.1, 0.9, 0.0],
            "embedding": x.tolist(),
        }
    )
    sub, report = select(ds, k=3, strategy="diversity", return_report=True)
    assert _ids(sub) == [1, 3, 4]  # 0 duplicates 1, 2 duplicates 3 (lower long-tail)
    assert report.details["n_considered"] == 5 and report.details["n_rejected"] == 2


def test_diversity_warns_when_the_filter_leaves_fewer_than_k():
    x = np.ones((10, 4), dtype=np.float32)
    with pytest.warns(UserWarning, match="diversity filter kept only 1"):
        assert select_indices("diversity", k=5, scores=np.arange(10), embeddings=x).tolist() == [9]


# ------------------------------------------------------------------------------------------- budget and report


def test_fraction_budget_and_report_is_json_serialisable():
    sub, report = select(_pool(), fraction=0.5, return_report=True)
    assert len(sub) == 4 and report.k == 4
    d = json.loads(json.dumps(report.to_dict()))
    assert d["strategy"] == "confident" and d["n_pool"] == 7 and d["n_eligible"] == 6
    assert d["pool_score_counts"] == {"3": 1, "4": 1, "5": 4, "null": 1}
    assert d["score_counts"] == {"5": 4} and d["score_mean"] == 5.0


def test_k_larger_than_pool_returns_all_eligible_with_a_warning():
    with pytest.warns(UserWarning, match="asked for k=100"):
        sub = select(_pool(), k=100)
    assert _ids(sub) == DS2_ORDER


def test_k_within_pool_does_not_warn():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        select(_pool(), k=6)


def test_config_object_and_overrides():
    cfg = SelectionConfig(strategy="score", k=2, score_column="rating")
    assert _ids(select(_pool(), config=cfg)) == [2, 6]
    assert _ids(select(_pool(), 1, config=cfg, strategy="ds2")) == [2]


# ------------------------------------------------------------------------------------------------------ errors


@pytest.mark.parametrize("k", [0, -3, 2.5, True])
def test_bad_k_is_rejected(k):
    with pytest.raises(ValueError, match="k="):
        select(_pool(), k=k)
    with pytest.raises(ValueError, match="k="):
        select_indices("ds2", k=k, scores=SCORES, long_tail=LONG_TAIL)


def test_unknown_strategy_lists_valid_ones():
    with pytest.raises(ValueError, match="valid strategies: .*'ds2'.*'diversity'"):
        select(_pool(), k=2, strategy="best")
    with pytest.raises(ValueError, match="valid strategies"):
        select_indices("best", k=2, scores=SCORES)


def test_missing_columns_name_the_column_and_the_step_that_writes_it():
    pool = _pool()
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


def test_other_bad_options():
    with pytest.raises(ValueError, match="unknown selection option"):
        select(_pool(), k=2, treshold=4)
    with pytest.raises(ValueError, match="either k"):
        SelectionConfig(k=3, fraction=0.1)
    with pytest.raises(ValueError, match="fraction"):
        SelectionConfig(fraction=1.5)
    with pytest.raises(ValueError, match="diversity_threshold"):
        SelectionConfig(diversity_threshold=2)
    with pytest.raises(ValueError, match="tie_break"):
        SelectionConfig(tie_break="first")
    with pytest.raises(ValueError, match="must be numeric"):
        select(_pool(), k=2, strategy="score", score_column="source")
    with pytest.raises(ValueError, match="expected 7"):
        select_indices("ds2", k=2, scores=SCORES, long_tail=LONG_TAIL[:-1])
    with pytest.raises(ValueError, match="needs `long_tail`"):
        select_indices("ds2", k=2, scores=SCORES)


# --------------------------------------------------------------------------------------------------------- CLI


def test_cli_constants_match_the_library():
    from ds2_hf.cli import select as cli_select

    assert cli_select._STRATEGIES == STRATEGIES
    assert cli_select._TIE_BREAKS == TIE_BREAKS


def test_cli_select_writes_subset_and_report(tmp_path, capsys):
    from ds2_hf.cli import main

    src = tmp_path / "pool.jsonl"
    _pool().to_json(str(src), lines=True)
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
        select(_pool(), k=50)
    assert record[0].filename == __file__
    with pytest.raises(ValueError, match="knn_k"):
        select_indices("knn", k=2, long_tail=LONG_TAIL, knn_k=0)
    with pytest.raises(ValueError, match="diversity_threshold"):
        select_indices("diversity", k=2, scores=SCORES, embeddings=np.ones((7, 2)), diversity_threshold=1.5)
    with pytest.raises(ValueError, match="score column 'quality' not found"):
        select(_pool(), k=2, strategy="random", score_column="quality")


def test_formatted_datasets_are_read_the_same():
    pool = _pool()
    for fmt in ("numpy", "pandas"):
        assert _ids(select(pool.with_format(fmt), k=3).with_format(None)) == DS2_ORDER[:3]
    assert len(select(pool.with_format("numpy"), k=2, strategy="length")) == 2


def test_report_records_the_config_for_the_dataset_card():
    _, report = select(_pool(), k=2, strategy="score", threshold=4, seed=3, return_report=True)
    cfg = json.loads(json.dumps(report.to_dict()))["config"]
    assert cfg["strategy"] == "score" and cfg["threshold"] == 4 and cfg["seed"] == 3 and cfg["k"] == 2


def test_a_dataset_dict_asks_for_a_split():
    with pytest.raises(TypeError, match=r"ds\['train'\]"):
        select(datasets.DatasetDict({"train": _pool()}), k=2)


def test_length_counts_unrenderable_rows_as_zero_but_fails_on_an_unknown_format(caplog):
    pool = _pool()
    texts = pool["text"][:]
    texts[1] = ""
    pool = pool.remove_columns(["text"]).add_column("text", texts)
    with caplog.at_level(logging.WARNING, logger="ds2_hf.selection"):
        assert _ids(select(pool, k=2, strategy="length")) == [4, 3]
    assert "1 row(s) could not be rendered" in caplog.text
    with pytest.raises(ValueError, match="cannot tell how to render rows"):
        select(pool.remove_columns(["text"]), k=2, strategy="length")


# ------------------------------------------------------------------------------------- confident and duplicates


def test_confident_ranks_the_rows_curation_is_sure_of_first_within_a_score():
    scores = np.array([5, 5, 5, 4, 4])
    long_tail = np.array([0.9, 0.5, 0.1, 0.8, 0.2])
    post = np.zeros((5, 6))
    post[np.arange(5), scores] = [0.6, 0.95, 0.99, 0.5, 0.97]
    post[np.arange(5), scores - 1] = 1 - post[np.arange(5), scores]
    order = select_indices("confident", k=None, scores=scores, long_tail=long_tail, posterior=post,
                           confidence_tiers=(0.9,))
    assert order.tolist() == [1, 2, 0, 4, 3]  # sure 5s by long-tail, unsure 5, then the 4s the same way
    default = select_indices("confident", k=None, scores=scores, long_tail=long_tail, posterior=post)
    assert default.tolist() == [2, 1, 0, 4, 3]  # tiers 0.99, then 0.9: row 2 (0.99), row 1 (0.95), row 0 (0.6)
    assert select_indices("ds2", k=None, scores=scores, long_tail=long_tail).tolist() == [0, 1, 2, 3, 4]
    # a lower tier makes every row "sure": the paper's order
    assert select_indices("confident", k=None, scores=scores, long_tail=long_tail, posterior=post,
                          confidence_tiers=(0.5,)).tolist() == [0, 1, 2, 3, 4]


def test_confident_without_a_posterior_column_ranks_as_ds2():
    sub, report = select(_pool(), 4, return_report=True)
    assert _ids(sub) == DS2_ORDER[:4] and "no posterior" in report.details["confidence"]


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
    ds = _pool().add_column("duplicate_group", [-1, -1, 3, -1, -1, -1, 3])  # rows 2 and 6 are copies
    sub = select(ds, 4, strategy="ds2")
    assert _ids(sub) == [2, 0, 3, 1]
    with pytest.raises(ValueError, match="confidence_tiers"):
        select(ds, 2, confidence_tiers=(0.99, 1.5))
