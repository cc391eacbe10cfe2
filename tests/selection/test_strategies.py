"""The registered strategies on plain arrays: the DS2 rule, the baselines, ties, null ratings and confidence tiers."""

from __future__ import annotations

import datasets
import numpy as np
import pytest
from selection_pools import DS2_ORDER, LONG_TAIL, SCORES, clustered, ids, make_pool

from ds2_hf.selection import STRATEGIES, Ranking, SelectionConfig, select, select_indices
from ds2_hf.selection.strategies import descending

def test_ds2_rule_on_hand_made_table():
    assert select_indices("ds2", k=5, scores=SCORES, long_tail=LONG_TAIL).tolist() == DS2_ORDER[:5]
    assert ids(select(make_pool(), k=5)) == DS2_ORDER[:5]


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


@pytest.mark.parametrize("strategy", ["ds2", "score", "diversity"])
def test_null_ratings_are_never_selected(strategy):
    pool = make_pool().add_column("embedding", [[float(i), 1.0] for i in range(7)])
    with pytest.warns(UserWarning, match="returning 6"):
        sub = select(pool, k=7, strategy=strategy, diversity_threshold=1.0)
    assert 4 not in ids(sub)
    assert len(sub) == 6


def test_nan_scores_count_as_null():
    assert 1 not in select_indices("score", k=None, scores=[1.0, np.nan, 2.0]).tolist()


def test_score_threshold_keeps_everything_above_it_when_k_is_none():
    sub, report = select(make_pool(), strategy="score", score_column="rating", threshold=4, return_report=True)
    assert ids(sub) == [2, 6, 0, 1]  # 5, 5, then 4, 4 (ties by index)
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


def test_random_is_seeded_reproducible_and_without_repeats():
    a = select_indices("random", k=50, n_rows=1000, seed=7)
    b = select_indices("random", k=50, n_rows=1000, seed=7)
    c = select_indices("random", k=50, n_rows=1000, seed=8)
    assert a.tolist() == b.tolist() and a.tolist() != c.tolist()
    assert len(set(a.tolist())) == 50 and a.dtype == np.int64
    # the sample does not depend on how ties would be broken
    assert select_indices("random", k=50, n_rows=1000, seed=7, tie_break="random").tolist() == a.tolist()
    pool = make_pool()
    assert ids(select(pool, k=3, strategy="random", seed=5)) == ids(select(pool, k=3, strategy="random", seed=5))


def test_random_ignores_null_ratings_unless_thresholded():
    picked = select_indices("random", k=7, scores=SCORES, seed=0)
    assert sorted(picked.tolist()) == list(range(7))


def test_length_ranks_rendered_text_and_length_column():
    pool = make_pool()
    assert ids(select(pool, k=3, strategy="length")) == [4, 1, 3]  # texts of 50, 10, 7 chars
    pool = pool.add_column("n_tokens", [1, 1, 9, 2, 0, 3, 9])
    sub, report = select(pool, k=3, strategy="length", length_column="n_tokens", return_report=True)
    assert ids(sub) == [2, 6, 5] and report.length_column == "n_tokens"


def test_knn_from_embeddings_ranks_outliers_first():
    x = clustered(outliers=3)
    n = x.shape[0]
    ds = datasets.Dataset.from_dict({"id": list(range(n)), "embedding": x.tolist()})
    sub, report = select(ds, k=3, strategy="knn", knn_k=5, return_report=True)
    assert sorted(ids(sub)) == [n - 3, n - 2, n - 1]
    assert report.embedding_column == "embedding" and "nearest" in report.details["rarity_source"]


def test_knn_prefers_an_existing_long_tail_column():
    pool = make_pool()  # no embedding column: the long-tail score must be used
    sub, report = select(pool, k=2, strategy="knn", return_report=True)
    assert ids(sub) == [4, 1] and report.long_tail_column == "long_tail_score"


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
    sub, report = select(make_pool(), 4, return_report=True)
    assert ids(sub) == DS2_ORDER[:4] and "no posterior" in report.details["confidence"]


# ---------------------------------------------------------------------------------------------------- registry


def test_every_registered_strategy_declares_what_it_reads():
    assert list(STRATEGIES)[0] == SelectionConfig().strategy == "confident"
    readable = {"scores", "long_tail", "lengths", "embeddings", "posterior"}
    for name, strategy in STRATEGIES.items():
        assert callable(strategy.rank) and strategy.summary, name
        assert {part for need in strategy.needs for part in need.split("|")} <= readable, name
        assert set(strategy.uses) <= readable, name
    assert [name for name, s in STRATEGIES.items() if s.filters] == ["diversity"]
    assert [name for name, s in STRATEGIES.items() if s.curated_rule] == ["ds2"]


def test_a_registered_strategy_is_accepted_by_the_core_the_config_and_select(monkeypatch):
    def shortest_first(inp, k, details):
        details["n_seen"] = int(inp.eligible.sum())
        return descending(inp, -inp.lengths)[:k]

    with pytest.raises(ValueError, match="unknown selection strategy 'short'"):
        SelectionConfig(strategy="short")
    monkeypatch.setitem(STRATEGIES, "short", Ranking(shortest_first, needs=("lengths",), score_based=False,
                                                     summary="shortest first"))
    assert select_indices("short", k=2, lengths=[5, 1, 3, 1], duplicates=[-1, 0, -1, 0]).tolist() == [1, 2]
    sub, report = select(make_pool(), 3, strategy="short", length_column="id", return_report=True)
    assert ids(sub) == [0, 1, 2] and report.details["n_seen"] == 7 and report.length_column == "id"
