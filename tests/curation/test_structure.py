"""Prompt groups and copies in the curation's evidence (ds2_hf.curation.structure), and the multi-response trap."""

import numpy as np
import pytest

from ds2_hf.curation import curate_scores
from ds2_hf.curation.evidence import neighbour_weights, reciprocal_weights
from ds2_hf.curation.joint import fit_joint
from ds2_hf.curation.neighbourhood import neighbourhood_prior
from ds2_hf.curation.structure import BlockVotes, drop_edges, encode_labels, evidence_graph
from ds2_hf.knn import KnnGraph, build_knn_graph
from ds2_hf.simulate import simulate, simulate_multi_response


def test_encode_labels_accepts_strings_ints_and_missing():
    assert encode_labels(["b", "a", "b", None, float("nan")], 5, name="groups").tolist() == [0, 1, 0, -1, -1]
    assert encode_labels(np.array([7, -1, 7, 3]), 4, name="groups").tolist() == [1, -1, 1, 0]
    assert encode_labels(None, 3, name="groups") is None
    with pytest.raises(ValueError, match="groups has 2 entries but there are 3 rows"):
        encode_labels(["a", "b"], 3, name="groups")


def test_drop_edges_keeps_the_order_of_what_remains_and_pads_at_the_end():
    g = KnnGraph(np.array([[1, 2, 3], [0, 2, 3]]), np.array([[0.9, 0.8, 0.7], [0.9, 0.6, 0.5]], np.float32), "exact")
    h = drop_edges(g, np.array([[False, True, False], [True, True, True]]))
    assert h.indices.tolist() == [[1, 3, -1], [-1, -1, -1]]
    assert h.similarities[0, :2].tolist() == pytest.approx([0.9, 0.7])


def test_evidence_graph_removes_group_mates_and_copies_only():
    ids = np.array([[1, 2, 3], [0, 3, 2], [3, 0, 1], [2, 1, 0]])
    g = KnnGraph(ids, np.tile(np.array([0.9, 0.8, 0.7], np.float32), (4, 1)), "exact")
    groups = np.array([0, 0, 1, 1])  # rows 0-1 answer one prompt, rows 2-3 another
    dups = np.array([-1, 5, 5, -1])  # rows 1 and 2 are copies
    h, info = evidence_graph(g, groups=groups, duplicates=dups)
    for i in range(4):
        kept = set(h.indices[i][h.indices[i] >= 0].tolist())
        assert not any(groups[j] == groups[i] for j in kept)
        assert not any(dups[i] >= 0 and dups[j] == dups[i] for j in kept)
    assert h.indices[0].tolist() == [2, 3, -1] and h.indices[1].tolist() == [3, -1, -1]
    assert info.group_share == pytest.approx(4 / 12) and info.duplicate_share == pytest.approx(2 / 12)
    assert (info.n_groups, info.n_grouped_rows, info.n_duplicate_groups, info.n_duplicate_rows) == (2, 4, 1, 2)


@pytest.fixture(scope="module")
def small_graph():
    d = simulate(1500, 16, seed=0)
    g = build_knn_graph(d.embeddings, 12, progress=False)
    y = d.rated.copy()
    y[::40] = -1  # some unrated rows cast no vote
    return y, g, neighbour_weights(g.similarities, g.indices >= 0, 0.5, 5.0)


def test_block_votes_without_labels_are_the_row_own_vote(small_graph):
    y, g, w = small_graph
    first = fit_joint(y, y, g.indices, g.similarities, num_classes=6, alpha=0.5, beta=5.0, symmetric=True)
    rec = reciprocal_weights(g.indices, w)
    plain = neighbourhood_prior(first, y, g.indices, w, rec)
    for labelings in ([], [np.full(len(y), -1)], [None, np.arange(len(y))]):  # none, unlabelled, singletons
        votes = BlockVotes(y, g.indices, w, labelings, num_classes=6)
        assert not votes.shared.any()
        blocked = neighbourhood_prior(first, y, g.indices, w, rec, block_votes=votes)
        np.testing.assert_allclose(blocked, plain, atol=1e-12)


def test_block_votes_match_a_brute_force_count(small_graph):
    y, g, w = small_graph
    n, k = g.indices.shape
    groups = np.where(np.arange(n) % 5 == 0, np.arange(n) // 50, -1)
    dups = np.where(np.arange(n) % 7 == 0, np.arange(n) // 140, -1)
    edges = BlockVotes(y, g.indices, w, [groups, dups], num_classes=6).edges(slice(0, n))
    ids = g.indices
    for i in range(0, n, 37):
        block = {i} | set(np.flatnonzero((groups == groups[i]) & (groups[i] >= 0)).tolist()) \
            | set(np.flatnonzero((dups == dups[i]) & (dups[i] >= 0)).tolist())
        for c in range(k):
            j = ids[i, c]
            expect = np.zeros(6)
            for m in block:
                if y[m] < 0:
                    continue
                expect[y[m]] += w[j][ids[j] == m].sum() + w[m][ids[m] == j].sum()  # forward and reverse votes
            np.testing.assert_allclose(edges[i, c], expect, atol=1e-12)


def _brute_block_votes(y, ids, w, labelings, i):
    """The block votes of row ``i`` into each of its neighbours, counted edge by edge."""
    block = {i}
    for lab in labelings:
        if lab[i] >= 0:
            block |= set(np.flatnonzero(lab == lab[i]).tolist())
    out = np.zeros((ids.shape[1], 6))
    for c, j in enumerate(ids[i]):
        for m in block:
            if y[m] >= 0:
                out[c, y[m]] += w[j][ids[j] == m].sum() + w[m][ids[m] == j].sum()
    return out


def test_block_votes_of_a_large_pool_with_int32_ids_are_exact():
    """60,000 rows with int32 neighbour ids, as the k-NN graph returns them: the keys of the block tables (row id
    times the number of block codes) pass 2^31, and must not wrap. Few rows share a label; the others' block is
    their own vote, and only the shared rows' edges are tabulated."""
    rng = np.random.default_rng(0)
    n, k = 60_000, 6
    ids = (np.arange(n)[:, None] + 1 + rng.choice(n - 1, size=(n, k), replace=True)) % n
    ids = np.sort(ids, axis=1)
    ids[:, 1:][ids[:, 1:] == ids[:, :-1]] = -1  # repeated ids become padding
    ids = ids.astype(np.int32)
    w = rng.random((n, k))
    y = rng.integers(0, 6, n)
    y[::50] = -1
    dups = np.full(n, -1)
    pairs = rng.choice(n, 400, replace=False)
    dups[pairs] = np.arange(400) // 2
    groups = np.full(n, -1)
    groups[n - 300:] = np.arange(300) // 3  # high row ids: their keys are the ones past 2^31
    votes = BlockVotes(y, ids, w, [groups, dups], num_classes=6)
    assert votes.shared.sum() == 700 and votes._dst.size < 2 * 700 * k + 700 * 4 * k  # only the shared rows' edges
    rows = slice(n - 2000, n)
    edges = votes.edges(rows)
    for i in [*range(n - 300, n, 7), *pairs[pairs >= n - 2000][:20], n - 1500, n - 1001]:
        np.testing.assert_allclose(edges[i - rows.start], _brute_block_votes(y, ids, w, [groups, dups], i),
                                   atol=1e-12, err_msg=f"row {i}")


def test_multi_response_pool_keeps_its_ratings_when_prompt_groups_are_given():
    """Neighbours share the prompt's difficulty, not the answer's quality: with groups, nothing is corrected."""
    d = simulate_multi_response(600, 6, difficulty=1, response_noise=0.1, seed=0)
    acc = lambda c: float((c == d.true).mean())  # noqa: E731
    trap = curate_scores(d.embeddings, d.rated, progress=False, backoff=False)  # unguarded, no groups
    assert acc(trap.curated) < acc(d.rated) - 0.05  # the trap is real: consensus pulls answers to their prompt
    res = curate_scores(d.embeddings, d.rated, groups=d.prompt, progress=False)
    changed = res.curated != d.rated
    assert changed.sum() == 0 or (res.confidence[changed] > 0.99).all()
    assert acc(res.curated) >= acc(d.rated) - 0.002
    clus = res.clusterability
    assert clus.status == "withheld"
    assert clus.check("neighbours").values["heldout_gain"] < 0.05  # other prompts' answers carry nothing
    assert clus.check("groups").values["group_share"] > 0.4  # half the raw neighbourhood was group-mates
    no_groups = curate_scores(d.embeddings, d.rated, progress=False)
    assert no_groups.clusterability.check("neighbours").values["heldout_gain"] > 0.05  # ... which predict ratings
    assert "groups" in res.report["clusterability"]["verdict"] or "prompt" in res.report["clusterability"]["verdict"]


def test_copies_are_not_evidence_for_each_other():
    """A block of copies carrying one wrong rating: without duplicate groups they confirm each other."""
    d = simulate(2000, 16, seed=1)
    x, y = d.embeddings.copy(), d.rated.copy()
    copies = np.arange(60)
    x[copies] = x[0]
    y[copies] = 5
    dups = np.where(np.isin(np.arange(len(y)), copies), 0, -1)
    g = build_knn_graph(x, 50, progress=False)
    with_dups, info = evidence_graph(g, duplicates=dups)
    assert not np.isin(with_dups.indices[copies], copies).any()
    assert info.duplicate_share > 0.02
    res = curate_scores(x, y, duplicates=dups, progress=False)
    assert (res.duplicate_group[copies] == res.duplicate_group[0]).all() and res.duplicate_group[0] >= 0
    assert res.report["structure"]["duplicates"]["largest"][0][0] >= 60
