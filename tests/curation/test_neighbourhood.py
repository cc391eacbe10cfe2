"""The second stage of the joint model: the neighbourhood prior (leave-one-out mixture of neighbours' posteriors)."""

import numpy as np
import pytest

from ds2_hf.curation import curate_scores
from ds2_hf.curation.evidence import Weighting, neighbour_weights, reciprocal_weights, shared_neighbours
from ds2_hf.curation.joint import JointModel, JointState, fit_joint
from ds2_hf.curation.model_selection import select_joint
from ds2_hf.curation.neighbourhood import fit_neighbourhood, neighbourhood_prior
from ds2_hf.knn import build_knn_graph
from ds2_hf.simulate import simulate


def _model(y, ids, sims, a, b, shared, gamma):
    return JointModel.build(y, y, ids, sims, Weighting(ids.shape[1], a, b, gamma), num_classes=6, symmetric=True,
                            shared=shared)


def _brute_reciprocal(ids, w, symmetric):
    n, k = ids.shape
    out = np.zeros((n, k))
    for i in range(n):
        for m in range(k):
            j = ids[i, m]
            if j < 0:
                continue
            out[i, m] = w[i, m] if symmetric else 0.0
            out[i, m] += sum(w[j, mm] for mm in range(k) if ids[j, mm] == i)
    return out


@pytest.mark.parametrize("symmetric", [True, False])
def test_reciprocal_weights_match_a_direct_lookup(rng, symmetric):
    n, k = 60, 5
    ids = np.stack([rng.choice(np.delete(np.arange(n), i), k, replace=False) for i in range(n)])
    ids[::9, -1] = -1  # padding
    w = rng.random((n, k))
    got = reciprocal_weights(ids, w, symmetric=symmetric)
    np.testing.assert_allclose(got, _brute_reciprocal(ids, w, symmetric))
    assert (got[ids < 0] == 0).all()


@pytest.mark.parametrize("gamma", [0.0, 2.0])
def test_prior_removes_exactly_the_rows_own_vote(sim_gpt, gamma):
    """pi_i mixes the neighbours' posteriors recomputed as if row i were unrated: y_i never enters pi_i."""
    x, y = sim_gpt.embeddings[:600], sim_gpt.rated[:600].copy()
    y[::11] = -1
    g = build_knn_graph(x, 8, progress=False)
    ids, sims = g.indices, g.similarities
    shared = shared_neighbours(ids) if gamma else None
    a, b = 0.5, 10.0
    st = fit_joint(y, y, ids, sims, num_classes=6, alpha=a, beta=b, symmetric=True, shared=shared, gamma=gamma)
    w = neighbour_weights(sims, ids >= 0, a, b, shared=shared, gamma=gamma)
    prior = neighbourhood_prior(st, y, ids, w, reciprocal_weights(ids, w))
    for i in (0, 1, 5, 11, 37):  # 0 and 11 are unrated
        y_wo = y.copy()
        y_wo[i] = -1
        q_wo = _model(y_wo, ids, sims, a, b, shared, gamma).e_step(st)
        expected = (w[i, :, None] * q_wo[ids[i]]).sum(0) / w[i].sum()
        np.testing.assert_allclose(prior[i], expected, atol=1e-5)
    # and it does not depend on y_i: changing it leaves pi_i unchanged
    y2 = y.copy()
    y2[5] = (y[5] + 3) % 6
    st2 = JointState(st.T, st.p, st.M, _model(y2, ids, sims, a, b, shared, gamma).e_step(st))
    prior2 = neighbourhood_prior(st2, y2, ids, w, reciprocal_weights(ids, w))
    np.testing.assert_allclose(prior2[5], prior[5], atol=1e-9)
    assert not np.allclose(prior2[ids[5, 0]], prior[ids[5, 0]])  # a neighbour's prior does see y_5


def test_prior_is_finite_for_saturated_posteriors():
    """One-hot first-stage posteriors (underflowed to exact zeros) and a near-deterministic M: a proper prior."""
    y = np.array([0, 0, 1, 1, 2, 2])
    ids = np.array([[1, 2], [0, 3], [3, 4], [2, 5], [5, 1], [4, 0]])
    w = np.full(ids.shape, 5.0)
    M = np.full((3, 3), 1e-6)
    np.fill_diagonal(M, 1 - 2e-6)
    first = JointState(np.eye(3) * 0.9 + 0.05, np.full(3, 1 / 3), M, np.eye(3)[[0, 0, 1, 1, 2, 2]])
    prior = neighbourhood_prior(first, y, ids, w, reciprocal_weights(ids, w))
    assert np.isfinite(prior).all()
    np.testing.assert_allclose(prior.sum(1), 1.0)
    # row 0's neighbours 1 (score 0) and 2 (score 1) share equal weight: the prior splits between 0 and 1
    np.testing.assert_allclose(prior[0], [0.5, 0.5, 0.0], atol=1e-5)


def _stages(data):
    g = build_knn_graph(data.embeddings, 40, progress=False)
    sel = select_joint(data.rated, g.indices, g.similarities, num_classes=6)
    ids, sims = g.indices[:, : sel.k], g.similarities[:, : sel.k]
    w = neighbour_weights(sims, ids >= 0, sel.alpha, sel.beta, shared=sel.shared, gamma=sel.gamma)
    return sel, fit_neighbourhood(sel.state, data.rated, ids, w)


def test_second_stage_recovers_more_of_the_injected_noise():
    """Overlapping clusters and a heavy pull-to-3 rater: the neighbourhood prior corrects more ratings than the
    product of votes, predicts held-out ratings better, and keeps T close to the generating matrix."""
    data = simulate(4000, 32, transition="llama-like", seed=0, spread=1.0)
    sel, fit = _stages(data)
    acc1 = (sel.state.posterior.argmax(1) == data.true).mean()
    acc2 = (fit.state.posterior.argmax(1) == data.true).mean()
    assert acc2 > acc1 + 0.01
    assert np.nanmean(fit.heldout) > np.nanmean(sel.heldout)
    assert np.abs(fit.state.T - data.transition).mean() < 0.04
    np.testing.assert_allclose(fit.prior.sum(1), 1.0)
    np.testing.assert_allclose(fit.state.posterior.sum(1), 1.0)


def test_auto_declines_the_second_stage_where_it_would_hurt():
    """Strongly overlapping clusters and a mild rater: the second stage over-smooths (lower accuracy), its
    held-out likelihood says so, and the default keeps the first stage."""
    data = simulate(4000, 32, transition="gpt-like", seed=0, spread=1.4)
    sel, fit = _stages(data)
    assert (fit.state.posterior.argmax(1) == data.true).mean() < (sel.state.posterior.argmax(1) == data.true).mean()
    assert np.nanmean(fit.heldout) < np.nanmean(sel.heldout)
    auto = curate_scores(data.embeddings, data.rated, progress=False)
    assert not auto.details["neighbourhood_prior"]["used"]


def test_option_auto_follows_the_heldout_likelihood(sim_gpt):
    x, y, true = sim_gpt.embeddings, sim_gpt.rated, sim_gpt.true
    auto = curate_scores(x, y, progress=False)
    stage = auto.details["neighbourhood_prior"]
    assert stage["used"] == (stage["heldout_gain_second"] > stage["heldout_gain_first"])
    off = curate_scores(x, y, progress=False, neighbourhood_prior=False)
    on = curate_scores(x, y, progress=False, neighbourhood_prior=True)
    assert off.details["neighbourhood_prior"] == {"used": False}
    assert on.details["neighbourhood_prior"]["used"]
    chosen = on if stage["used"] else off
    np.testing.assert_array_equal(auto.curated, chosen.curated)
    assert (on.curated == true).mean() > (y == true).mean() + 0.1
    assert auto.report["joint"]["neighbourhood_prior"] == stage  # the report carries it


def test_second_stage_keeps_unrelated_ratings(rng):
    """Embeddings independent of the ratings: with the stage forced on, the back-off still changes nothing."""
    data = simulate(3000, 16, seed=1)
    y = rng.permutation(data.rated)  # ratings no longer follow the clusters
    res = curate_scores(data.embeddings, y, progress=False, neighbourhood_prior=True)
    assert (res.curated != y).mean() < 0.01


def test_option_is_validated():
    with pytest.raises(ValueError, match="neighbourhood_prior='yes'; expected 'auto', True or False"):
        curate_scores(np.eye(4, dtype=np.float32), np.array([0, 1, 0, 1]), neighbourhood_prior="yes")
