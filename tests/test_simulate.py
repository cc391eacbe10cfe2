"""Tests of ds2_hf.simulate: simulated pools, noise injection through a known T, and curation scoring."""

from __future__ import annotations

import numpy as np
import pytest

from ds2_hf.simulate import (
    DEFAULT_PRIOR,
    TRANSITION_PRESETS,
    curation_ceiling,
    evaluate_curation,
    inject_noise,
    simulate,
    transition_matrix,
)


def test_shapes_and_dtypes():
    d = simulate(1200, 24, seed=3)
    assert d.embeddings.shape == (1200, 24) and d.embeddings.dtype == np.float32
    for a in (d.true, d.rated, d.cluster):
        assert a.shape == (1200,) and a.dtype == np.int64
    np.testing.assert_allclose(np.linalg.norm(d.embeddings, axis=1), 1.0, atol=1e-5)
    assert d.true.min() >= 0 and d.true.max() <= 5 and d.rated.min() >= 0 and d.rated.max() <= 5
    np.testing.assert_allclose(d.transition, TRANSITION_PRESETS["gpt-like"] / TRANSITION_PRESETS["gpt-like"].sum(1,
                               keepdims=True))
    np.testing.assert_allclose(d.prior, DEFAULT_PRIOR / DEFAULT_PRIOR.sum())
    assert 0.6 < (d.rated == d.true).mean() < 0.9  # gpt-like: about 3/4 correct


def test_true_scores_follow_prior():
    d = simulate(20000, 8, seed=0, violate=0.0)
    freq = np.bincount(d.true, minlength=6) / len(d.true)
    np.testing.assert_allclose(freq, DEFAULT_PRIOR, atol=0.05)


def test_clusters_carry_one_score_without_violators():
    d = simulate(2000, 16, seed=1, violate=0.0)
    for c in np.unique(d.cluster):
        assert len(np.unique(d.true[d.cluster == c])) == 1


def test_neighbours_share_true_score():
    # the point of the simulation: k-NN consensus recovers the true score
    d = simulate(1500, 32, seed=2)
    s = d.embeddings @ d.embeddings.T
    np.fill_diagonal(s, -np.inf)
    nn = s.argmax(axis=1)
    assert (d.true[nn] == d.true).mean() > 0.85


def test_determinism_by_seed():
    a, b = simulate(500, 16, seed=7), simulate(500, 16, seed=7)
    np.testing.assert_array_equal(a.embeddings, b.embeddings)
    np.testing.assert_array_equal(a.rated, b.rated)
    c = simulate(500, 16, seed=8)
    assert not np.array_equal(a.embeddings, c.embeddings)
    assert not np.array_equal(a.true, c.true)


def test_same_data_for_different_transitions():
    a = simulate(800, 16, seed=4, transition="gpt-like")
    b = simulate(800, 16, seed=4, transition="llama-like")
    c = simulate(800, 16, seed=4, transition=1.0)
    np.testing.assert_array_equal(a.embeddings, b.embeddings)
    np.testing.assert_array_equal(a.true, b.true)
    np.testing.assert_array_equal(a.cluster, c.cluster)
    assert not np.array_equal(a.rated, b.rated)
    np.testing.assert_array_equal(c.rated, c.true)  # identity rater


def test_other_number_of_classes_uses_uniform_prior():
    d = simulate(600, 8, transition=np.eye(3) * 0.8 + 0.1, seed=0)
    assert d.transition.shape == (3, 3)
    np.testing.assert_allclose(d.prior, [1 / 3] * 3)
    assert set(np.unique(d.true)) == {0, 1, 2}


def test_inject_noise_follows_transition():
    T = np.array([[0.7, 0.2, 0.1], [0.1, 0.8, 0.1], [0.0, 0.3, 0.7]])
    true = np.repeat(np.arange(3), 40000)
    rated = inject_noise(true, T, seed=0)
    assert rated.dtype == np.int64 and rated.shape == true.shape
    emp = np.array([np.bincount(rated[true == i], minlength=3) / 40000 for i in range(3)])
    np.testing.assert_allclose(emp, T, atol=0.01)
    assert (rated[true == 2] != 0).all()  # a zero probability is never drawn
    np.testing.assert_array_equal(rated, inject_noise(true, T, seed=0))
    assert not np.array_equal(rated, inject_noise(true, T, seed=1))


def test_inject_noise_scalar_and_errors():
    true = np.repeat(np.arange(4), 20000)
    rated = inject_noise(true, 0.7, seed=0)
    assert abs((rated == true).mean() - 0.7) < 0.01
    off = rated[(rated != true) & (true == 0)]
    np.testing.assert_allclose(np.bincount(off, minlength=4)[1:] / off.size, [1 / 3] * 3, atol=0.02)
    with pytest.raises(ValueError, match=r"true scores must lie in 0..5, got 0..6"):
        inject_noise([0, 6], "gpt-like")
    with pytest.raises(ValueError, match=r"got -1..2"):
        inject_noise([-1, 2], np.eye(3))
    assert inject_noise([], "gpt-like").shape == (0,)


def test_transition_matrix_presets_scalar_array():
    for name, raw in TRANSITION_PRESETS.items():
        T = transition_matrix(name)
        assert T.shape == (6, 6)
        np.testing.assert_allclose(T.sum(axis=1), 1.0)
        np.testing.assert_allclose(T, raw / raw.sum(axis=1, keepdims=True))
    T = transition_matrix(0.6, num_classes=3)
    np.testing.assert_allclose(T, [[0.6, 0.2, 0.2], [0.2, 0.6, 0.2], [0.2, 0.2, 0.6]])
    np.testing.assert_allclose(transition_matrix([[2, 2], [1, 3]]), [[0.5, 0.5], [0.25, 0.75]])


@pytest.mark.parametrize(("spec", "kwargs", "match"), [
    ("claude-like", {}, r"unknown transition preset 'claude-like'; expected one of \['gpt-like', 'llama-like'"),
    (0.8, {}, "needs num_classes"),
    ([[0.5, 0.5]], {}, r"square and non-negative; got shape \(1, 2\)"),
    ([[1.0, -0.1], [0.0, 1.0]], {}, "non-negative"),
    ([1.0, 0.0], {}, r"got shape \(2,\)"),
])
def test_transition_matrix_validation(spec, kwargs, match):
    with pytest.raises(ValueError, match=match):
        transition_matrix(spec, **kwargs)


def test_evaluate_curation_hand_made():
    true = [0, 1, 2, 2, 1, 0]
    rated = [0, 2, 2, 0, 1, 1]      # wrong at rows 1, 3, 5
    curated = [0, 1, 2, 2, 1, 1]    # fixes rows 1 and 3
    flagged = [False, True, False, False, True, True]
    T = np.eye(3)
    T_est = np.full((3, 3), 1 / 3)
    out = evaluate_curation(true, rated, curated, transition=T, transition_est=T_est, flagged=flagged, k=2)
    assert out["n"] == 6
    assert out["acc_rated"] == pytest.approx(3 / 6)
    assert out["acc_curated"] == pytest.approx(5 / 6)
    assert out["mae_rated"] == pytest.approx((0 + 1 + 0 + 2 + 0 + 1) / 6)
    assert out["mae_curated"] == pytest.approx(1 / 6)
    assert out["n_changed"] == 2
    assert out["T_mae"] == pytest.approx(np.abs(T_est - T).mean())  # (3 * 2/3 + 6 * 1/3) / 9 = 4/9
    assert out["T_mae"] == pytest.approx(4 / 9)
    assert out["flag_precision"] == pytest.approx(2 / 3)  # rows 1, 5 wrong; row 4 right
    assert out["flag_recall"] == pytest.approx(2 / 3)     # wrong rows 1, 3, 5; 3 missed
    # top-2 by curated rating: rows 2, 3 (rating 2) -> true 2, 2; by raw: rows 1, 2 -> true 1, 2
    assert out["topk"] == 2
    assert out["topk_mean_true_curated"] == pytest.approx(2.0)
    assert out["topk_mean_true_raw"] == pytest.approx(1.5)


def test_evaluate_curation_long_tail_breaks_ties_and_default_k():
    true = [0] * 29 + [5, 3]
    rated = [1] * 31
    out = evaluate_curation(true, rated, rated, long_tail=[0] * 29 + [0.1, 0.9])
    assert out["topk"] == 1  # N // 30
    assert out["topk_mean_true_curated"] == 3.0  # the higher long-tail score wins the tie
    assert "T_mae" not in out and "flag_precision" not in out


def test_curation_ceiling_bounds_the_joint_curation():
    from ds2_hf.curation import curate_scores

    data = simulate(3000, 16, transition="mistral-like", seed=3)
    rated = data.rated.copy()
    rated[::50] = -1  # unrated rows take no part in the votes
    res = curate_scores(data.embeddings, rated, progress=False)
    out = curation_ceiling(res, rated, data.true)
    assert out["acc_curated"] == float((res.curated == data.true).mean())
    # True parameters can only help the same evidence, and both beat the raw ratings by far.
    assert out["acc_rated"] + 0.2 < out["acc_curated"] <= out["acc_ceiling"] + 0.005
    assert out["gap"] == out["acc_ceiling"] - out["acc_curated"]
    assert 0.8 < out["acc_neighbour_majority"] <= 1.0
    # With perfect ratings the same graph carries more evidence: a higher ceiling.
    perfect = curation_ceiling(res, data.true, data.true)
    assert perfect["acc_rated"] == 1.0 and perfect["acc_ceiling"] > out["acc_ceiling"]


def test_curation_ceiling_needs_a_joint_curation():
    from ds2_hf.curation import curate_scores

    data = simulate(1500, 16, seed=1)
    res = curate_scores(data.embeddings, data.rated, method="faithful", progress=False)
    with pytest.raises(ValueError, match="method='joint'"):
        curation_ceiling(res, data.rated, data.true)
    res = curate_scores(data.embeddings, data.rated, progress=False)
    with pytest.raises(ValueError, match="differ in length"):
        curation_ceiling(res, data.rated[:-1], data.true)
