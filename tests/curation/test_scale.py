"""The curation's memory paths: memory-mapped float16 embeddings end to end, and blocked steps equal to unblocked."""

from __future__ import annotations

import numpy as np
import pytest

import ds2_hf.curation.core as core
import ds2_hf.curation.evidence as evidence
from ds2_hf.curation import curate_scores
from ds2_hf.curation.evidence import EdgeWeights, SharedNeighbours, Weighting, reverse_votes
from ds2_hf.curation.joint import JointModel
from ds2_hf.curation.neighbourhood import neighbourhood_prior, refit_under_prior
from ds2_hf.knn import build_knn_graph, load_embeddings
from ds2_hf.knn.blocked import MappedRows
from ds2_hf.simulate import simulate


@pytest.fixture(scope="module")
def pool():
    data = simulate(3000, 24, transition="llama-like", seed=4)
    g = build_knn_graph(data.embeddings, 20, progress=False)
    y = data.rated.copy()
    y[::17] = -1  # some unrated rows: no own term, no votes
    return data, g, y


def test_memory_mapped_float16_embeddings_are_curated_without_a_float32_copy(tmp_path, monkeypatch):
    data = simulate(4000, 32, transition="gpt-like", seed=2)
    path = tmp_path / "emb.npy"
    np.save(path, (data.embeddings * 2.5).astype(np.float16))  # not unit rows: normalised while read
    x16 = load_embeddings(path)
    seen = []

    def spy(x, k, **kw):
        seen.append(x)
        return build_knn_graph(x, k, **kw)

    monkeypatch.setattr(core, "build_knn_graph", spy)
    mapped = curate_scores(x16, data.rated, progress=False)
    assert isinstance(seen[0], MappedRows) and seen[0].data is x16  # the file itself, read in blocks
    memory = curate_scores(np.asarray(x16, dtype=np.float32), data.rated, progress=False)
    assert isinstance(seen[1], np.ndarray)
    acc = lambda r: float((r.curated == data.true).mean())  # noqa: E731
    assert acc(mapped) > (data.rated == data.true).mean() + 0.05
    assert abs(acc(mapped) - acc(memory)) < 0.005
    assert (mapped.curated == memory.curated).mean() > 0.99  # the same up to float ties in the graph


def test_memory_mapped_bad_rows_are_named_before_any_search(tmp_path):
    x = simulate(500, 8, seed=0).embeddings.astype(np.float16)
    x[123] = 0
    np.save(tmp_path / "emb.npy", x)
    with pytest.raises(ValueError, match="123"):
        curate_scores(load_embeddings(tmp_path / "emb.npy"), np.arange(500) % 6, progress=False)


def test_blocked_em_equals_one_block(pool):
    data, g, y = pool
    shared = SharedNeighbours.of(g.indices)
    w = Weighting(20, 0.5, 10.0, 2.0)
    whole = JointModel.build(y, y, g.indices, g.similarities, w, num_classes=6, symmetric=True, shared=shared)
    blocked = JointModel(whole.evidence, block=257)
    a, b = whole.fit(max_iter=30), blocked.fit(max_iter=30)
    assert a.iterations == b.iterations
    np.testing.assert_allclose(b.posterior, a.posterior, atol=1e-10)
    np.testing.assert_allclose(b.T, a.T, atol=1e-12)
    np.testing.assert_allclose(blocked.heldout(a), whole.heldout(a), atol=1e-10, equal_nan=True)
    assert (a.posterior.argmax(1) == data.true).mean() > (data.rated == data.true).mean() + 0.1


def test_blocked_evidence_equals_one_block(pool, monkeypatch):
    _, g, y = pool
    shared = SharedNeighbours.of(g.indices)
    args = (y, g.indices, g.similarities, 6, 0.5, 10.0, shared, 2.0)
    one = reverse_votes(*args)
    monkeypatch.setattr(evidence, "EDGE_BLOCK", 20 * 101)  # 101 rows per bincount
    np.testing.assert_allclose(reverse_votes(*args), one, atol=1e-10)
    w = Weighting(20, 0.5, 10.0, 2.0)
    edges = EdgeWeights(g.indices, g.similarities, w, shared)
    dense = np.concatenate([edges.block(slice(0, 3000))])
    np.testing.assert_allclose(np.concatenate([edges.block(slice(s, s + 333)) for s in range(0, 3000, 333)]), dense)


def test_blocked_second_stage_equals_one_block(pool):
    _, g, y = pool
    w = Weighting(20, 0.5, 10.0)
    model = JointModel.build(y, y, g.indices, g.similarities, w, num_classes=6, symmetric=True)
    first = model.fit(max_iter=30)
    edges = EdgeWeights(g.indices, g.similarities, w)
    one = neighbourhood_prior(first, y, g.indices, edges, chunk_rows=10_000)
    np.testing.assert_allclose(neighbourhood_prior(first, y, g.indices, edges, chunk_rows=97), one, atol=1e-12)
    T1, ll1, it1 = refit_under_prior(one, y, first.T, block=10_000)
    T2, ll2, it2 = refit_under_prior(one, y, first.T, block=97)
    assert it1 == it2 and abs(ll1 - ll2) < 1e-10
    np.testing.assert_allclose(T2, T1, atol=1e-12)


def test_progress_bars_of_every_step_change_nothing(monkeypatch, capsys):
    data = simulate(2000, 16, seed=6)
    quiet = curate_scores(data.embeddings, data.rated, progress=False, selection_rows=800)  # then a refit on all
    monkeypatch.setattr(core, "BARS_FROM", 0)
    shown = curate_scores(data.embeddings, data.rated, progress=True, selection_rows=800)
    err = capsys.readouterr().err
    for step in ("shared neighbours", "joint model selection", "joint EM", "neighbourhood prior"):
        assert step in err
    np.testing.assert_array_equal(shown.curated, quiet.curated)
    np.testing.assert_array_equal(shown.posterior, quiet.posterior)
