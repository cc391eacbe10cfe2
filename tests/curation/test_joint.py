import numpy as np

from ds2_hf.curation.joint import fit_degenerate, fit_joint, heldout_loglik, select_joint
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
    assert len(sel.candidates) == 3 * 3 * 2


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
