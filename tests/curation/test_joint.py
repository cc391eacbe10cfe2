import numpy as np
import pytest

from ds2_hf.curation.evidence import (
    incoming_edges,
    incoming_votes,
    neighbour_weights,
    reverse_votes,
    shared_neighbours,
)
from ds2_hf.curation.joint import fit_degenerate, fit_joint, heldout_loglik
from ds2_hf.curation.model_selection import select_joint
from ds2_hf.knn import build_knn_graph


def test_joint_em_recovers_injected_noise(sim_llama):
    """The pull-to-3 rater that HOC cannot identify: the joint EM recovers T and most true scores."""
    x, y, true = sim_llama.embeddings, sim_llama.rated, sim_llama.true
    g = build_knn_graph(x, 40, progress=False)
    sel = select_joint(y, g.indices, g.similarities, num_classes=6)
    acc = (sel.state.posterior.argmax(1) == true).mean()
    assert acc > (y == true).mean() + 0.25
    assert np.abs(sel.state.T - sim_llama.transition).mean() < 0.04
    assert sel.heldout_gain > sel.degenerate_gain  # the latent model explains ratings better than raw
    assert len(sel.candidates) == 3 * 3 * 2 * 2  # k x alpha x beta x gamma
    assert round(sel.heldout_gain, 5) == max(c[-1] for c in sel.candidates)


def test_heldout_loglik_does_not_use_own_rating(sim_gpt):
    x, y = sim_gpt.embeddings, sim_gpt.rated
    g = build_knn_graph(x, 10, progress=False)
    st = fit_joint(y, y, g.indices, g.similarities, num_classes=6, alpha=0.5, beta=0.0)
    ll = heldout_loglik(st, y, y, g.indices, g.similarities, alpha=0.5, beta=0.0)
    # changing a row's own rating changes only the scored value, not the prediction: the prediction
    # (a distribution over ratings) sums to one over the possible own ratings
    total = 0.0
    for r in range(6):
        y2 = y.copy()
        y2[0] = r
        total += np.exp(heldout_loglik(st, y2[:1], y, g.indices[:1], g.similarities[:1], alpha=0.5, beta=0.0)[0])
    assert abs(total - 1.0) < 1e-9
    assert np.isfinite(ll).all()


def test_unrated_rows_give_no_votes_and_no_own_term(sim_gpt):
    x, y = sim_gpt.embeddings, sim_gpt.rated.copy()
    y[::7] = -1
    g = build_knn_graph(x, 10, progress=False)
    st = fit_joint(y, y, g.indices, g.similarities, num_classes=6, alpha=0.5, beta=0.0)
    assert np.isnan(heldout_loglik(st, y, y, g.indices, g.similarities, alpha=0.5, beta=0.0)[::7]).all()
    np.testing.assert_allclose(st.posterior.sum(1), 1.0)


def test_degenerate_model_is_identity():
    y = np.array([0, 1, 1, 0, 1, 0])
    ids = np.array([[1], [2], [0], [4], [3], [2]])
    sims = np.ones((6, 1), np.float32)
    st = fit_degenerate(y, y, ids, sims, num_classes=2, alpha=1.0, beta=0.0)
    np.testing.assert_allclose(st.T, np.eye(2), atol=1e-5)
    np.testing.assert_array_equal(st.posterior.argmax(1), y)


def test_shared_neighbours_counts_common_members_including_self():
    ids = np.array([[1, 2], [0, 2], [0, 1], [4, 2], [3, 2]])
    snn = shared_neighbours(ids, chunk_size=2)  # chunking must not change the result
    # rows 0, 1, 2 form a clique: each pair shares all three members; 3 and 4 share {3, 4, 2}; 3 and 2 share {2}
    np.testing.assert_allclose(snn[:3], 1.0)
    np.testing.assert_allclose(snn[3], [1.0, 1 / 3])
    np.testing.assert_allclose(snn[4], [1.0, 1 / 3])


def test_shared_neighbours_is_symmetric_on_mutual_edges(sim_gpt):
    from ds2_hf.knn import build_knn_graph

    g = build_knn_graph(sim_gpt.embeddings[:500], 8, progress=False)
    snn = shared_neighbours(g.indices)
    assert ((snn > 0) & (snn <= 1)).all()
    pos = {(i, j): snn[i, c] for i in range(len(g.indices)) for c, j in enumerate(g.indices[i])}
    mutual = [(i, j) for (i, j) in pos if (j, i) in pos]
    assert mutual
    for i, j in mutual:
        assert pos[i, j] == pos[j, i]


def test_neighbour_weights_shared_factor_is_relative_to_the_nearest():
    sims = np.array([[0.9, 0.8, 0.7]])
    rated = np.ones((1, 3), bool)
    snn = np.array([[0.8, 0.4, 0.2]])
    plain = neighbour_weights(sims, rated, 0.5, 0.0)
    np.testing.assert_allclose(plain, 0.5)
    np.testing.assert_allclose(neighbour_weights(sims, rated, 0.5, 0.0, shared=snn, gamma=2.0), [[0.5, 0.125, 0.03125]])
    with pytest.raises(ValueError, match="shared"):
        neighbour_weights(sims, rated, 0.5, 0.0, gamma=2.0)


@pytest.mark.parametrize("gamma", [0.0, 2.0])
def test_reverse_votes_of_a_row_subset_equal_the_full_votes(sim_gpt, gamma):
    g = build_knn_graph(sim_gpt.embeddings, 10, progress=False)
    y = sim_gpt.rated.copy()
    y[::17] = -1  # unrated rows cast no votes
    snn = shared_neighbours(g.indices)
    full = reverse_votes(y, g.indices, g.similarities, 6, 0.5, 10.0, snn, gamma)
    targets = np.random.default_rng(0).choice(len(y), 300, replace=False)
    part = reverse_votes(y, g.indices, g.similarities, 6, 0.5, 10.0, snn, gamma, targets=targets)
    assert part.shape == (300, 6)
    np.testing.assert_allclose(part, full[targets], rtol=1e-12)
    assert full.sum() > 0
    # the edge list of the deepest graph serves shallower candidates (what select_joint does on a row sample)
    edges = incoming_edges(y, g.indices, targets)
    short = reverse_votes(y, g.indices[:, :4], g.similarities[:, :4], 6, 0.5, 10.0, snn, gamma)
    np.testing.assert_allclose(incoming_votes(y, g.similarities, snn, edges, 300, 6, 0.5, 10.0, gamma, 4),
                               short[targets], rtol=1e-12)


def test_select_joint_without_shared_neighbours_keeps_the_cosine_grid(sim_gpt):
    from ds2_hf.knn import build_knn_graph

    y = sim_gpt.rated
    g = build_knn_graph(sim_gpt.embeddings, 20, progress=False)
    sel = select_joint(y, g.indices, g.similarities, num_classes=6, ks=(10, 20), gammas=(0.0,))
    assert sel.gamma == 0.0 and sel.shared is None
    assert len(sel.candidates) == 2 * 3 * 2
    both = select_joint(y, g.indices, g.similarities, num_classes=6, ks=(10, 20), gammas=(0.0, 2.0))
    assert both.heldout_gain >= sel.heldout_gain  # a superset of candidates never selects a worse one
    if both.gamma:
        assert both.shared.shape == (len(y), 20)
        ll = heldout_loglik(both.state, y, y, g.indices[:, : both.k], g.similarities[:, : both.k], alpha=both.alpha,
                            beta=both.beta, symmetric=True, shared=both.shared, gamma=both.gamma)
        assert np.isfinite(ll).all()


@pytest.mark.parametrize("selection_rows", [50000, 700])  # all rows, and a sample with a refit on all rows
def test_selection_reports_the_final_fits_heldout_likelihood(sim_gpt, selection_rows):
    y = sim_gpt.rated.copy()
    y[::11] = -1
    g = build_knn_graph(sim_gpt.embeddings, 20, progress=False)
    sel = select_joint(y, g.indices, g.similarities, num_classes=6, ks=(10, 20), selection_rows=selection_rows)
    ll = heldout_loglik(sel.state, y, y, g.indices[:, : sel.k], g.similarities[:, : sel.k], alpha=sel.alpha,
                        beta=sel.beta, symmetric=True, shared=sel.shared, gamma=sel.gamma)
    assert sel.heldout.shape == (len(y),)
    np.testing.assert_allclose(sel.heldout, ll, rtol=1e-10)
    assert np.isnan(sel.heldout[::11]).all() and np.isfinite(np.delete(sel.heldout, np.s_[::11])).all()


@pytest.mark.parametrize("repeat", [False, True])
def test_shared_neighbours_matches_set_intersection(repeat):
    rng = np.random.default_rng(0)
    n, k = 200, 6
    ids = np.array([rng.choice(np.delete(np.arange(n), i), k, replace=False) for i in range(n)])
    if repeat:  # a row listing itself (the general look-up path)
        ids[5, 3] = 5
    snn = shared_neighbours(ids, chunk_size=64)
    ref = [[len(({i} | set(ids[i])) & ({j} | set(ids[j]))) / (k + 1) for j in ids[i]] for i in range(n)]
    np.testing.assert_allclose(snn, ref)
