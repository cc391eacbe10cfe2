"""The exact greedy diversity filter and the k-NN rarity baseline."""

from __future__ import annotations

import datasets
import numpy as np
import pytest
from selection_pools import clustered, ids

from ds2_hf.selection import mean_knn_distance, select, select_indices
from ds2_hf.selection.diversity import greedy_diverse

def _naive_diverse(order, x, k, threshold):
    x = x / np.linalg.norm(x, axis=1, keepdims=True)
    kept = []
    for i in order:
        if all(float(x[i] @ x[j]) <= threshold for j in kept):
            kept.append(int(i))
            if k is not None and len(kept) == k:
                break
    return kept


def test_mean_knn_distance_matches_brute_force():
    x = clustered()
    u = x / np.linalg.norm(x, axis=1, keepdims=True)
    sims = u @ u.T
    np.fill_diagonal(sims, -np.inf)
    expected = 1 - np.sort(sims, axis=1)[:, ::-1][:, :5].mean(axis=1)
    np.testing.assert_allclose(mean_knn_distance(x, k=5), expected, atol=1e-5)
    assert mean_knn_distance(x[:1], k=5).tolist() == [0.0]


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
    x = clustered(n_per=150, outliers=50, d=6, seed=1)
    rng = np.random.default_rng(2)
    x += 0.3 * rng.normal(size=x.shape).astype(np.float32)
    order = rng.permutation(x.shape[0])
    kept, considered = greedy_diverse(order, x, k, threshold, block=64, chunk=40, capacity=8)
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
    assert ids(sub) == [1, 3, 4]  # 0 duplicates 1, 2 duplicates 3 (lower long-tail)
    assert report.details["n_considered"] == 5 and report.details["n_rejected"] == 2


def test_diversity_warns_when_the_filter_leaves_fewer_than_k():
    x = np.ones((10, 4), dtype=np.float32)
    with pytest.warns(UserWarning, match="diversity filter kept only 1"):
        assert select_indices("diversity", k=5, scores=np.arange(10), embeddings=x).tolist() == [9]
