"""Tests of ds2_hf.knn: exact and IVF graphs against brute force, the exact fallback, and input validation."""

from __future__ import annotations

import numpy as np
import pytest

from ds2_hf.knn import (
    KnnConfig,
    KnnGraph,
    build_knn_graph,
    knn_config_dict,
    validate_embeddings,
)
from ds2_hf.simulate import simulate


def _unit(n, d, seed=0):
    x = np.random.default_rng(seed).standard_normal((n, d)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def _brute_force(x, k):
    s = x.astype(np.float64) @ x.astype(np.float64).T
    np.fill_diagonal(s, -np.inf)
    order = np.argsort(-s, axis=1, kind="stable")[:, :k]
    return order, np.take_along_axis(s, order, axis=1)


def test_exact_matches_brute_force():
    x = _unit(300, 12, seed=1)
    g = build_knn_graph(x, 7, config=KnnConfig(method="exact"), progress=False)
    ids, sims = _brute_force(x, 7)
    assert g.method == "exact" and g.recall is None
    assert g.indices.shape == (300, 7) and g.indices.dtype == np.int32  # int32 ids below 2**31 rows
    assert g.similarities.shape == (300, 7) and g.similarities.dtype == np.float32
    np.testing.assert_array_equal(g.indices, ids)  # continuous random data: no ties
    np.testing.assert_allclose(g.similarities, sims, atol=1e-5)
    assert (g.indices != np.arange(300)[:, None]).all()
    assert (np.diff(g.similarities, axis=1) <= 1e-7).all()
    assert len(g) == 300 and g.k == 7
    assert "seconds" in g.info


def test_auto_uses_exact_for_small_data_and_normalises_input():
    x = _unit(200, 8, seed=2)
    scaled = x * np.random.default_rng(3).uniform(0.1, 10, size=(200, 1)).astype(np.float32)
    g = build_knn_graph(scaled.tolist(), 5, progress=False)  # lists are accepted; rows get unit-normalised
    ids, sims = _brute_force(x, 5)
    assert g.method == "exact"
    np.testing.assert_array_equal(g.indices, ids)
    np.testing.assert_allclose(g.similarities, sims, atol=1e-5)
    assert np.abs(g.similarities).max() <= 1 + 1e-5


def test_auto_switches_to_ivf_above_the_work_threshold():
    x = simulate(2000, 16, seed=0).embeddings
    g = build_knn_graph(x, 5, config=KnnConfig(exact_max_work=1.0), progress=False)
    assert g.method == "ivf"


def test_ivf_on_clustered_data_reaches_recall():
    x = simulate(6000, 32, seed=0).embeddings
    k = 10
    g = build_knn_graph(x, k, config=KnnConfig(method="ivf", min_recall=0.95), progress=False)
    assert g.method == "ivf"
    assert 0.95 <= g.recall <= 1.0
    assert {"nlist", "nprobe", "train_size", "recall_sample"} <= set(g.info)
    assert g.info["recall_sample"] == 1000
    assert g.info["nlist"] >= 153  # min(2 sqrt(N), N // 39) cells, more where oversized cells were split
    assert (g.indices >= 0).all() and (g.indices != np.arange(6000)[:, None]).all()
    assert (np.diff(g.similarities, axis=1) <= 1e-6).all()
    # the reported recall is honest: measure it on all rows against brute force
    q = np.random.default_rng(1).choice(6000, 1500, replace=False)  # other queries than the built-in sample
    s = x[q] @ x.T
    s[np.arange(len(q)), q] = -np.inf
    ids = np.argpartition(-s, k, axis=1)[:, :k]
    hits = sum(len(np.intersect1d(a, b)) for a, b in zip(g.indices[q], ids))
    assert hits / ids.size >= 0.93
    assert abs(hits / ids.size - g.recall) < 0.03
    summary = g.summary()
    assert summary["method"] == "ivf" and summary["k"] == k and summary["recall"] == g.recall


def test_ivf_probing_every_cell_is_exact():
    x = simulate(3000, 16, seed=3).embeddings
    cfg = KnnConfig(method="ivf", nlist=20, nprobe=10_000, max_nprobe=10_000)
    g = build_knn_graph(x, 8, config=cfg, progress=False)
    ids, sims = _brute_force(x, 8)
    assert g.method == "ivf" and g.info["nprobe"] == g.info["nlist"] and g.recall == 1.0
    np.testing.assert_allclose(g.similarities, sims, atol=1e-5)
    assert (g.indices == ids).mean() > 0.999  # identical up to float ties


def test_ivf_splits_oversized_cells():
    # 40 tight clusters plus a diffuse cloud around their common direction, the shape that makes k-means
    # gather thousands of points into one cell
    rng = np.random.default_rng(0)
    d = 128
    g_dir = rng.standard_normal(d)
    centres = g_dir + 1.5 * rng.standard_normal((40, d))
    tight = np.repeat(centres, 100, axis=0) + 0.05 * rng.standard_normal((4000, d))
    diffuse = g_dir + rng.standard_normal((4000, d))
    x = np.concatenate([tight, diffuse]).astype(np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    balanced = build_knn_graph(x, 10, config=KnnConfig(method="ivf", nlist=40), progress=False)
    unsplit = build_knn_graph(x, 10, config=KnnConfig(method="ivf", nlist=40, max_cell_factor=np.inf),
                              progress=False)
    assert unsplit.info["largest_cell"] > 4 * unsplit.info["mean_cell"]
    assert balanced.info["nlist"] > 40
    assert balanced.info["largest_cell"] < 0.7 * unsplit.info["largest_cell"]
    assert balanced.method == "ivf" and balanced.recall >= 0.95


def test_ivf_duplicates_exclude_self():
    base = simulate(1500, 16, seed=6).embeddings
    x = np.concatenate([base, base])
    g = build_knn_graph(x, 5, config=KnnConfig(method="ivf", nlist=20), progress=False)
    n = len(x)
    assert g.method == "ivf"
    assert (g.indices != np.arange(n)[:, None]).all() and (g.indices >= 0).all()
    twin = (np.arange(n) + 1500) % n
    assert (g.indices == twin[:, None]).any(axis=1).mean() > 0.99


def test_ivf_falls_back_to_exact_on_unclusterable_data(caplog):
    x = _unit(2000, 64, seed=4)
    cfg = KnnConfig(method="ivf", nprobe=1, max_nprobe=1, min_recall=0.99, recall_sample=200)
    with caplog.at_level("WARNING", logger="ds2_hf.knn"):
        g = build_knn_graph(x, 5, config=cfg, progress=False)
    assert g.method == "exact" and g.recall is None
    assert 0 <= g.info["fallback_from_ivf_recall"] < 0.99
    assert "falling back to exact search" in caplog.text
    ids, _ = _brute_force(x, 5)
    np.testing.assert_array_equal(g.indices, ids)


def test_exact_duplicates_exclude_self():
    base = _unit(40, 6, seed=5)
    x = np.concatenate([base, base, base])  # every point has two exact copies
    g = build_knn_graph(x, 4, config=KnnConfig(method="exact"), progress=False)
    n = len(x)
    assert (g.indices != np.arange(n)[:, None]).all()
    # the two copies are the two nearest neighbours, at similarity 1
    for i in range(n):
        copies = {j for j in (i % 40, i % 40 + 40, i % 40 + 80) if j != i}
        assert set(g.indices[i, :2].tolist()) == copies
    np.testing.assert_allclose(g.similarities[:, :2], 1.0, atol=1e-5)
    assert (g.indices >= 0).all()


def test_many_identical_rows_still_exclude_self():
    x = np.ones((12, 4), dtype=np.float32)  # every pair ties at similarity 1; self may fall out of the top k+1
    g = build_knn_graph(x, 3, config=KnnConfig(method="exact"), progress=False)
    assert (g.indices != np.arange(12)[:, None]).all()
    assert (g.indices >= 0).all()
    assert all(len(set(row)) == 3 for row in g.indices.tolist())
    np.testing.assert_allclose(g.similarities, 1.0, atol=1e-5)


@pytest.mark.parametrize("k", [10, 11, 50])
def test_k_must_be_below_n(k):
    with pytest.raises(ValueError, match=f"k={k} neighbours need at least k\\+1={k + 1} rows, but there are 10"):
        build_knn_graph(_unit(10, 4), k, progress=False)


def test_k_zero_rejected():
    with pytest.raises(ValueError, match="k=0"):
        build_knn_graph(_unit(10, 4), 0, progress=False)


def test_k_equal_n_minus_one_works():
    g = build_knn_graph(_unit(10, 4), 9, progress=False)
    assert all(sorted(row + [i]) == list(range(10)) for i, row in enumerate(g.indices.tolist()))


def test_validate_embeddings_errors():
    x = _unit(10, 4)
    bad = x.copy()
    bad[3, 1] = np.nan
    bad[7, 0] = np.inf
    with pytest.raises(ValueError, match=r"NaN or inf in 2 row\(s\), e.g. rows \[3, 7\]"):
        validate_embeddings(bad)
    only_inf = x.copy()
    only_inf[2, 2] = -np.inf
    with pytest.raises(ValueError, match=r"rows \[2\]"):
        validate_embeddings(only_inf)
    zero = x.copy()
    zero[[1, 5]] = 0
    with pytest.raises(ValueError, match=r"2 all-zero row\(s\), e.g. rows \[1, 5\]"):
        validate_embeddings(zero)
    with pytest.raises(ValueError, match="mixed dimensions"):
        validate_embeddings([[1.0, 0.0], [1.0, 0.0, 0.0]])
    with pytest.raises(ValueError, match=r"2-D array of shape \(N, d\); got shape \(4,\)"):
        validate_embeddings(np.ones(4))
    with pytest.raises(ValueError, match=r"got shape \(2, 2, 2\)"):
        validate_embeddings(np.ones((2, 2, 2)))
    with pytest.raises(ValueError, match=r"empty \(0 rows\)"):
        validate_embeddings(np.zeros((0, 4)))
    with pytest.raises(ValueError, match="^vectors have"):
        validate_embeddings(zero, name="vectors")


def test_validate_embeddings_output():
    x = np.asfortranarray(np.array([[3.0, 4.0], [0.0, 2.0]], dtype=np.float64))
    out = validate_embeddings(x)
    assert out.dtype == np.float32 and out.flags["C_CONTIGUOUS"]
    np.testing.assert_allclose(out, [[0.6, 0.8], [0.0, 1.0]], atol=1e-7)
    np.testing.assert_allclose(validate_embeddings(x, normalize=False), x)


def test_build_rejects_bad_embeddings():
    x = _unit(10, 4)
    x[0] = 0
    with pytest.raises(ValueError, match=r"rows \[0\]"):
        build_knn_graph(x, 3, progress=False)


def test_truncate():
    x = _unit(100, 8, seed=6)
    g = build_knn_graph(x, 10, progress=False)
    t = g.truncate(4)
    assert t.k == 4 and len(t) == 100 and t.method == g.method
    np.testing.assert_array_equal(t.indices, g.indices[:, :4])
    np.testing.assert_array_equal(t.similarities, g.similarities[:, :4])
    direct = build_knn_graph(x, 4, progress=False)
    np.testing.assert_array_equal(t.indices, direct.indices)
    t.info["x"] = 1
    assert "x" not in g.info  # info is copied
    with pytest.raises(ValueError, match="cannot truncate a 10-NN graph to k=11"):
        g.truncate(11)


def test_config_validation():
    with pytest.raises(ValueError, match="knn method='annoy'"):
        KnnConfig(method="annoy")
    with pytest.raises(ValueError, match="min_recall=0"):
        KnnConfig(min_recall=0)
    with pytest.raises(ValueError, match="min_recall=1.5"):
        KnnConfig(min_recall=1.5)
    assert knn_config_dict(KnnConfig(nprobe=4))["nprobe"] == 4


def test_graph_dataclass_properties():
    g = KnnGraph(np.zeros((3, 2), dtype=np.int64), np.zeros((3, 2), dtype=np.float32), "exact")
    assert g.k == 2 and len(g) == 3 and g.summary() == {"method": "exact", "k": 2, "recall": None}


def test_strip_self_drops_self_or_the_farthest():
    from ds2_hf.knn import _strip_self

    ids = np.array([[0, 4, 5], [7, 8, 9]])  # query 1 is absent from its own row (ties with duplicates)
    sims = np.array([[1.0, 0.9, 0.8], [1.0, 1.0, 0.5]], dtype=np.float32)
    out_ids, out_sims = _strip_self(ids, sims, np.array([0, 1]), 2)
    np.testing.assert_array_equal(out_ids, [[4, 5], [7, 8]])
    np.testing.assert_allclose(out_sims, [[0.9, 0.8], [1.0, 1.0]], rtol=1e-6)


def test_nprobe_rises_to_the_target_recall_without_falling_back():
    x = simulate(3000, 16, seed=5).embeddings
    base = {"method": "ivf", "nlist": 30, "nprobe": 1, "max_nprobe": 64, "recall_sample": 300}
    low = build_knn_graph(x, 10, config=KnnConfig(**base, target_recall=0.5, min_recall=0.5), progress=False)
    high = build_knn_graph(x, 10, config=KnnConfig(**base, target_recall=1.0, min_recall=0.5), progress=False)
    assert low.method == high.method == "ivf"
    assert high.info["nprobe"] > low.info["nprobe"] and high.recall >= low.recall
    assert high.recall == 1.0 or high.info["nprobe"] == high.info["nlist"]
    with pytest.raises(ValueError, match="target_recall=0"):
        KnnConfig(target_recall=0)


def test_ivf_search_in_parts_equals_one_pass(monkeypatch):
    import ds2_hf.knn.ivf as knn_module

    x = simulate(3000, 16, seed=6).embeddings
    cfg = KnnConfig(method="ivf", nlist=30, nprobe=4, max_nprobe=4, min_recall=0.5, recall_sample=200)
    whole = build_knn_graph(x, 10, config=cfg, progress=False)
    monkeypatch.setattr(knn_module, "_CANDIDATE_BYTES", 4 * 11 * 8 * 700)  # 700 queries per part: 5 parts
    parts = build_knn_graph(x, 10, config=cfg, progress=False)
    np.testing.assert_array_equal(parts.indices, whole.indices)
    np.testing.assert_array_equal(parts.similarities, whole.similarities)
