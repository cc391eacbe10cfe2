"""Tests of the k-NN graph at scale: memory-mapped float16 rows, cost budgets, escalation, HNSW, the GPU kernel."""

from __future__ import annotations

import tracemalloc

import numpy as np
import pytest

import ds2_hf.knn.build as build_module
from ds2_hf.knn import KnnConfig, build_knn_graph, load_embeddings, open_rows
from ds2_hf.knn.hnsw import trial
from ds2_hf.simulate import simulate


def _unit(n, d, seed=0):
    x = np.random.default_rng(seed).standard_normal((n, d)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def _brute_force(x, k):
    s = x.astype(np.float64) @ x.astype(np.float64).T
    np.fill_diagonal(s, -np.inf)
    return np.argsort(-s, axis=1, kind="stable")[:, :k]


def _recall(ids, truth):
    return sum(len(np.intersect1d(a, b)) for a, b in zip(ids, truth)) / truth.size


def _save16(tmp_path, x, name="emb.npy"):
    path = tmp_path / name
    np.save(path, np.asarray(x, dtype=np.float16))
    return load_embeddings(path)


def test_memory_mapped_float16_exact_equals_in_memory(tmp_path):
    x16 = _save16(tmp_path, simulate(3000, 24, seed=1).embeddings * 3.0)  # not unit: normalised on reading
    assert isinstance(x16, np.memmap) and x16.dtype == np.float16
    ref = np.asarray(x16, dtype=np.float32)
    ref /= np.linalg.norm(ref, axis=1, keepdims=True)
    cfg = KnnConfig(method="exact", batch_size=700)  # several query and database blocks
    mapped = build_knn_graph(x16, 10, config=cfg, progress=False)
    memory = build_knn_graph(ref, 10, config=cfg, progress=False)
    assert mapped.method == "exact" and mapped.info["storage"] == "memory-mapped float16"
    assert (mapped.indices == memory.indices).mean() > 0.999  # equal up to float ties
    np.testing.assert_allclose(mapped.similarities, memory.similarities, atol=1e-5)
    assert (mapped.indices != np.arange(3000)[:, None]).all()


@pytest.mark.slow
def test_memory_mapped_ivf_matches_in_memory_and_stays_out_of_memory(tmp_path, monkeypatch):
    import ds2_hf.knn.ivf as ivf

    monkeypatch.setattr(ivf, "_BLOCK", 1 << 20)  # 4 MB products, so that the fixed-size blocks are small here
    n, d = 40_000, 512
    x16 = _save16(tmp_path, simulate(n, d, seed=2).embeddings)
    cfg = KnnConfig(method="ivf", nlist=200, batch_size=2048, train_size=8000, recall_sample=300)
    tracemalloc.start()
    mapped = build_knn_graph(x16, 5, config=cfg, progress=False)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert peak < 0.75 * n * d * 4  # a float32 copy of the rows alone would take n * d * 4 bytes
    assert mapped.method == "ivf" and mapped.recall >= 0.95
    memory = build_knn_graph(np.asarray(x16, dtype=np.float32), 5, config=cfg, progress=False)
    assert (mapped.indices == memory.indices).mean() > 0.99
    q = np.random.default_rng(3).choice(n, 300, replace=False)
    xf = np.asarray(x16[q], dtype=np.float32)
    full = np.asarray(x16, dtype=np.float32)
    s = (xf / np.linalg.norm(xf, axis=1, keepdims=True)) @ (full / np.linalg.norm(full, axis=1, keepdims=True)).T
    s[np.arange(300), q] = -np.inf
    truth = np.argpartition(-s, 5, axis=1)[:, :5]
    assert abs(_recall(mapped.indices[q], truth) - mapped.recall) < 0.05


def test_open_rows_names_bad_rows_across_blocks(tmp_path):
    x = np.ones((50, 4), dtype=np.float16)
    x[37] = 0
    with pytest.raises(ValueError, match=r"all-zero row\(s\), e.g. rows \[37\]"):
        open_rows(x, block=8, progress=False)
    x[37] = 1
    x[41, 2] = np.inf
    with pytest.raises(ValueError, match=r"NaN or inf in 1 row\(s\), e.g. rows \[41\]"):
        build_knn_graph(x, 3, config=KnnConfig(batch_size=8), progress=False)


def test_load_embeddings_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="no such embeddings file"):
        load_embeddings(tmp_path / "missing.npy")
    np.save(tmp_path / "flat.npy", np.ones(5, dtype=np.float16))
    with pytest.raises(ValueError, match=r"shape \(5,\) and dtype float16; expected \(N, d\)"):
        load_embeddings(tmp_path / "flat.npy")
    np.save(tmp_path / "ints.npy", np.ones((4, 2), dtype=np.int64))
    with pytest.raises(ValueError, match="dtype int64"):
        load_embeddings(tmp_path / "ints.npy")


def test_an_explicit_search_over_budget_is_never_started(monkeypatch):
    monkeypatch.setattr(build_module, "measured_speed", lambda kernel, d: 1e6)
    started = []
    monkeypatch.setattr(build_module, "exact_graph", lambda *a, **kw: started.append(1))
    x = _unit(4000, 32)
    cfg = KnnConfig(method="exact", exact_max_work=1.0, max_seconds=60)
    with pytest.raises(ValueError, match=r"not started: exact search estimated 9 min .* > max_seconds=60"):
        build_knn_graph(x, 5, config=cfg, progress=False)
    with pytest.raises(ValueError, match=r"needs about .* GB > the memory budget of 0\.0 GB"):
        build_knn_graph(x, 5, config=KnnConfig(method="exact", exact_max_work=1.0, max_seconds=None,
                                               max_memory_gb=1e-6), progress=False)
    assert not started


def _isotropic_case(monkeypatch, hnsw_guess):
    """5,000 isotropic points: IVF at nprobe <= 4 stays far below min_recall and exact is over budget."""
    monkeypatch.setattr(build_module, "measured_speed", lambda kernel, d: 1e5)  # exact: 4.4 h, IVF: minutes
    monkeypatch.setattr(build_module, "trial", lambda *a, **kw: dict(hnsw_guess))
    x = _unit(5000, 64, seed=4)
    cfg = KnnConfig(method="ivf", nprobe=1, max_nprobe=4, min_recall=0.9, exact_max_work=1.0, max_seconds=1e4,
                    recall_sample=300)
    return x, cfg


def test_isotropic_data_accept_the_measured_recall_and_say_why(monkeypatch, caplog):
    x, cfg = _isotropic_case(monkeypatch, {"sample_rows": 5000, "ef": 512, "sample_recall": 0.9, "seconds": 1e5})
    with caplog.at_level("WARNING", logger="ds2_hf.knn"):
        g = build_knn_graph(x, 10, config=cfg, progress=False)
    assert g.method == "ivf" and g.recall < 0.9 and g.info["nprobe"] == 4
    steps = g.info["escalation"]
    assert [s["step"] for s in steps] == ["ivf", "ivf", "ivf", "exact", "hnsw", "accept"]
    assert "max_seconds=10000" in steps[3]["skipped"] and "max_seconds=10000" in steps[4]["skipped"]
    assert steps[-1]["recall"] == g.recall
    assert "Accepting the IVF graph at its measured recall" in caplog.text
    # the reported recall is the true one
    assert abs(_recall(g.indices[:500], _brute_force(x, 10)[:500]) - g.recall) < 0.05
    assert g.summary()["escalation"] == steps


def test_isotropic_data_escalate_to_hnsw_when_it_fits(monkeypatch, caplog):
    x, cfg = _isotropic_case(monkeypatch, {"sample_rows": 5000, "ef": 512, "sample_recall": 0.95, "seconds": 1.0})
    with caplog.at_level("WARNING", logger="ds2_hf.knn"):
        g = build_knn_graph(x, 10, config=cfg, progress=False)
    assert g.method == "hnsw" and "using HNSW" in caplog.text
    assert [s["step"] for s in g.info["escalation"]][-2:] == ["exact", "hnsw"]
    truth = _brute_force(x, 10)
    assert _recall(g.indices, truth) > 0.6
    assert abs(_recall(g.indices, truth) - g.recall) < 0.05
    assert (g.indices != np.arange(5000)[:, None]).all()
    assert (np.diff(g.similarities, axis=1) <= 1e-6).all()


def test_hnsw_method_and_trial_on_clustered_data(tmp_path):
    x = simulate(4000, 32, seed=7).embeddings
    g = build_knn_graph(x, 8, config=KnnConfig(method="hnsw", recall_sample=300), progress=False)
    truth = _brute_force(x, 8)
    assert g.method == "hnsw" and g.recall >= 0.95 and _recall(g.indices, truth) >= 0.95
    assert g.info["trial"]["sample_rows"] == 4000 and g.info["ef_search"] >= 18
    np.testing.assert_allclose(g.similarities, np.einsum("nd,nkd->nk", x, x[g.indices]), atol=1e-5)
    mapped = build_knn_graph(_save16(tmp_path, x), 8, config=KnnConfig(method="hnsw", recall_sample=300),
                             progress=False)  # float16 storage; similarities recomputed exactly
    assert mapped.recall >= 0.9 and (np.diff(mapped.similarities, axis=1) <= 1e-6).all()
    guess = trial(x, 8, KnnConfig(), np.random.default_rng(0), half=False)
    assert set(guess) == {"sample_rows", "ef", "sample_recall", "seconds"} and guess["seconds"] > 0


def test_gpu_device_without_gpu_faiss_is_a_clear_error(monkeypatch):
    import faiss

    monkeypatch.setattr(faiss, "get_num_gpus", lambda: 0, raising=False)
    with pytest.raises(ImportError, match="faiss-gpu-cu12"):
        build_knn_graph(_unit(100, 8), 3, config=KnnConfig(device="gpu"), progress=False)
    assert build_knn_graph(_unit(100, 8), 3, progress=False).info["device"] == "cpu"  # auto: the CPU


def test_gpu_kernel_gives_the_cpu_graph(monkeypatch):
    """The GPU path through a stand-in GPU faiss that computes on the CPU: same graphs, same contract."""
    import faiss

    calls = {"knn_gpu": 0, "all_gpus": 0}

    def knn_gpu(res, xq, xb, k, metric, device=0):
        calls["knn_gpu"] += 1
        return faiss.knn(xq, xb, k, metric=metric)

    def to_all_gpus(index):
        calls["all_gpus"] += 1
        return index

    monkeypatch.setattr(faiss, "get_num_gpus", lambda: 1, raising=False)
    monkeypatch.setattr(faiss, "knn_gpu", knn_gpu, raising=False)
    monkeypatch.setattr(faiss, "StandardGpuResources", object, raising=False)
    monkeypatch.setattr(faiss, "index_cpu_to_all_gpus", to_all_gpus, raising=False)
    x = simulate(3000, 16, seed=8).embeddings
    for cfg in (KnnConfig(method="exact"), KnnConfig(method="ivf", nlist=30, recall_sample=200)):
        cpu = build_knn_graph(x, 6, config=KnnConfig(**{**cfg.__dict__, "device": "cpu"}), progress=False)
        gpu = build_knn_graph(x, 6, config=cfg, progress=False)  # device="auto" finds the "GPU"
        assert gpu.info["device"] == "gpu" and cpu.info["device"] == "cpu"
        np.testing.assert_array_equal(gpu.indices, cpu.indices)
        assert gpu.recall == cpu.recall
    assert calls["knn_gpu"] > 0 and calls["all_gpus"] == 1


def test_hnsw_stops_at_its_deadline_and_escalation_accepts_ivf(monkeypatch):
    import time

    from ds2_hf.knn.exact import exact_for_queries
    from ds2_hf.knn.hnsw import OverBudget, hnsw_graph

    x = _unit(3000, 16, seed=9)
    q = np.arange(0, 3000, 30)
    with pytest.raises(OverBudget, match="passed its time budget after 0 of 3,000 rows"):
        hnsw_graph(x, 5, KnnConfig(), q, exact_for_queries(x, q, 5, 1024), half=False, progress=False,
                   deadline=time.perf_counter() - 1)
    x, cfg = _isotropic_case(monkeypatch, {"sample_rows": 5000, "ef": 64, "sample_recall": 0.95, "seconds": 1.0})

    def too_slow(*args, **kwargs):
        raise OverBudget("searching all rows at efSearch 512 would take about 900 s, past the time budget")

    monkeypatch.setattr(build_module, "hnsw_graph", too_slow)
    g = build_knn_graph(x, 10, config=cfg, progress=False)
    assert g.method == "ivf" and [s["step"] for s in g.info["escalation"]][-2:] == ["hnsw", "accept"]
    assert "past the time budget" in g.info["escalation"][-2]["stopped"]


def test_ivf_starts_with_fewer_probes_when_the_default_does_not_fit(monkeypatch, caplog):
    from ds2_hf.knn.cost import Rate

    x = simulate(6000, 16, seed=10).embeddings
    cfg = KnnConfig(method="ivf", nlist=60, recall_sample=200, min_recall=0.5, target_recall=0.5, max_seconds=1.0)
    timed = []

    def slow_part(x, index, nprobe, k, cfg, kernel, rng):  # the pool's own rate: 3e7 multiply-adds per second
        timed.append(nprobe)
        return Rate(1000, nprobe, 3e7, 1.0)

    monkeypatch.setattr(build_module, "time_part", slow_part)
    # the prior puts every nprobe over 1 s; at the timed rate nprobe 8 and 4 stay above it and nprobe 2 below
    monkeypatch.setattr(build_module, "measured_speed", lambda kernel, d: 1.0)
    with caplog.at_level("WARNING", logger="ds2_hf.knn"):
        g = build_knn_graph(x, 5, config=cfg, progress=False)
    assert timed == [8]  # timed once, when the prior first said no
    steps = g.info["escalation"]
    assert [s["step"] for s in steps[:2]] == ["ivf nprobe 8", "ivf nprobe 4"] and steps[2]["nprobe"] == 2
    assert "the rate of 1,000 queries searched at nprobe 8 in 1.0 s" in steps[0]["skipped"]
    assert g.info["nprobe"] == 2 and g.method == "ivf" and "searching at nprobe=2" in caplog.text
    assert g.info["timed_part"]["multiply_adds_per_s"] == 3e7 and g.info["estimate"]["rate"].startswith("the rate")
    monkeypatch.setattr(build_module, "time_part", lambda *a: Rate(1000, 8, 1.0, 1.0))  # nothing fits
    with pytest.raises(ValueError, match=r"not started: ivf \(nprobe 1\) search estimated"):
        build_knn_graph(x, 5, config=cfg, progress=False)


def test_a_search_the_prior_would_skip_is_timed_on_the_pool_and_run(monkeypatch):
    """The prior (speed / IVF_OVERHEAD) puts nprobe 16 over the budget; the search's own rate, timed on one part
    of the pool, does not: the escalation reaches nprobe 16, and says on what rate."""
    from ds2_hf.knn import ivf as ivf_module

    x = simulate(12_000, 32, seed=11).embeddings
    rng = np.random.default_rng(0)
    x = (x + 0.35 * rng.standard_normal(x.shape)).astype(np.float32)  # blurred clusters: nprobe 8 is not enough
    cfg = KnnConfig(method="ivf", nlist=200, recall_sample=300, target_recall=0.999, min_recall=0.5, max_nprobe=16)
    free = build_knn_graph(x, 10, config=KnnConfig(**{**cfg.__dict__, "max_seconds": None}), progress=False)
    assert free.info["nprobe"] == 16 and "timed_part" not in free.info  # reference: no budget, no timing
    calls = []
    real = ivf_module.time_part

    def spy(*args):
        calls.append(args[2])
        return real(*args)

    monkeypatch.setattr(build_module, "time_part", spy)
    est8 = free.info["escalation"]  # recall at 8 below the target, so 16 is considered
    assert est8[0] == {"step": "ivf", "nprobe": 8, "recall": est8[0]["recall"]} and est8[0]["recall"] < 0.999
    # a prior that puts nprobe 16 at 15 s > max_seconds (and nprobe 8, about half the products, below it)
    prior = free.info["estimate"]["multiply_adds"] / 15.0
    monkeypatch.setattr(build_module, "measured_speed", lambda kernel, d: prior)
    g = build_knn_graph(x, 10, config=KnnConfig(**{**cfg.__dict__, "max_seconds": 10.0}), progress=False)
    assert calls == [16] and g.info["nprobe"] == 16
    np.testing.assert_array_equal(g.indices, free.indices)
    part = g.info["timed_part"]
    assert part["nprobe"] == 16 and 0 < part["rows"] <= 1200 and part["multiply_adds_per_s"] > 0
    assert g.info["estimate"]["seconds"] < 10.0 and g.info["estimate"]["rate"].startswith(f"the rate of {part['rows']:,}")


def test_time_part_counts_the_products_of_its_queries():
    from ds2_hf.knn.ivf import build_ivf, part_rows, time_part

    x = simulate(5000, 16, seed=12).embeddings
    cfg = KnnConfig(method="ivf", nlist=50)
    index = build_ivf(x, cfg, np.random.default_rng(0), progress=False)
    assert index.probes.shape[1] == 8 and index.probe_seconds > 0
    rate = time_part(x, index, 8, 10, cfg, build_module.make_kernel("cpu"), np.random.default_rng(1))
    q = np.sort(np.random.default_rng(1).choice(5000, rate.rows, replace=False))
    assert rate.rows == min(part_rows(8, 10), 500) == 500
    assert rate.madds == index.sizes[index.probes[q, :8]].sum() * 16 and rate.seconds > 0
    more = time_part(x, index, 16, 10, cfg, build_module.make_kernel("cpu"), np.random.default_rng(1))
    assert more.nprobe == 16 and more.madds > rate.madds  # probes beyond the index's: computed for the part


@pytest.mark.slow
def test_two_level_cells_reach_the_flat_recall():
    """Beyond ``max_flat_cells`` the cells are found through coarse cells: the graph's recall stays that of flat
    cells, and the report says how many centroids a query scored."""
    x = simulate(8000, 16, seed=5).embeddings
    base = dict(method="ivf", nlist=144, nprobe=8, recall_sample=300, target_recall=0.9)
    flat = build_knn_graph(x, 10, config=KnnConfig(**base), progress=False)
    two = build_knn_graph(x, 10, config=KnnConfig(**base, max_flat_cells=64, coarse_nprobe=4), progress=False)
    assert "coarse_cells" not in flat.info
    coarse = two.info["coarse_cells"]
    assert coarse["nlist"] == 12 and coarse["centroids_scored"] < 0.5 * two.info["nlist"]
    assert two.indices.dtype == np.int32 and (two.indices != np.arange(len(x))[:, None]).all()
    assert two.recall >= 0.9 and two.recall >= flat.recall - 0.02


def test_fixed_size_cells_beyond_a_million_rows():
    from ds2_hf.knn.ivf import default_nlist

    cfg = KnnConfig()
    assert default_nlist(250_000, cfg) == 1000  # 2 sqrt(N) below 1M rows
    assert default_nlist(10_000_000, cfg) == 20_000  # N / cell_size beyond
    assert default_nlist(10_000_000, KnnConfig(nlist=5000)) == 5000


def test_a_query_scores_the_cells_of_a_quarter_of_the_coarse_cells_by_default():
    from ds2_hf.knn.quantiser import _grouped

    centroids = _unit(6000, 8, seed=13)
    assert _grouped(centroids, 100, KnnConfig()).coarse_nprobe == 25  # a quarter beyond 64 coarse cells
    assert _grouped(centroids, 40, KnnConfig()).coarse_nprobe == 16
    assert _grouped(centroids, 10, KnnConfig()).coarse_nprobe == 10  # never more than there are
    assert _grouped(centroids, 100, KnnConfig(coarse_nprobe=7)).coarse_nprobe == 7
    with pytest.raises(ValueError, match="coarse_nprobe=0 must be a positive integer"):
        KnnConfig(coarse_nprobe=0)
