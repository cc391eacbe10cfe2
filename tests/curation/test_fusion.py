"""Fusion of several raters: known per-rater noise is recovered, missing ratings are handled, an audit anchors."""

import numpy as np
import pytest

from ds2_hf.curation import curate_scores
from ds2_hf.curation.fusion import fuse_ratings, validate_rating_matrix
from ds2_hf.curation.multirater import fit_raters
from ds2_hf.curation.raters import rater_agreement, summarize_raters, trust_line
from ds2_hf.knn import build_knn_graph
from ds2_hf.simulate import DEFAULT_PRIOR, inject_noise, simulate, transition_matrix

PRESETS = ("gpt-like", "mistral-like", "llama-like")
T_TRUE = np.stack([transition_matrix(p) for p in PRESETS])


@pytest.fixture(scope="module")
def three_raters():
    """20,000 true scores from the default prior, rated independently by the three presets."""
    true = np.random.default_rng(0).choice(6, 20000, p=DEFAULT_PRIOR)
    Y = np.stack([inject_noise(true, p, seed=10 + r) for r, p in enumerate(PRESETS)], axis=1)
    return true, Y


@pytest.fixture(scope="module")
def clustered():
    """4,000 clustered rows rated independently by the three presets."""
    data = simulate(4000, 32, seed=0)
    Y = np.stack([inject_noise(data.true, p, seed=20 + r) for r, p in enumerate(PRESETS)], axis=1)
    return data, Y, build_knn_graph(data.embeddings, 40, progress=False)


def _mae(T_est, T_true):
    return np.abs(T_est - T_true).mean(axis=(-2, -1))


def test_raters_alone_recover_each_raters_matrix(three_raters):
    true, Y = three_raters
    st = fit_raters(Y, num_classes=6)
    assert (_mae(st.T, T_TRUE) < 0.02).all(), _mae(st.T, T_TRUE)
    assert np.abs(st.p - DEFAULT_PRIOR).sum() < 0.05
    fused = st.posterior.argmax(1)
    assert (fused == true).mean() > max((Y[:, r] == true).mean() for r in range(3)) + 0.03
    np.testing.assert_allclose(st.posterior.sum(1), 1.0)


def test_missing_ratings_by_design(three_raters):
    """gpt-like on 10% of rows: its T is still recovered, every other row still fused, unrated rows get the prior."""
    true, Y = three_raters
    Y = Y.copy()
    rng = np.random.default_rng(1)
    Y[rng.random(len(Y)) > 0.10, 0] = -1
    Y[:50] = -1  # rated by nobody
    st = fit_raters(Y, num_classes=6)
    assert (_mae(st.T, T_TRUE) < 0.035).all()  # mostly two raters: weaker identification
    np.testing.assert_allclose(st.posterior[:50], np.broadcast_to(st.p, (50, 6)), atol=1e-9)
    full = fit_raters(three_raters[1], num_classes=6).posterior.argmax(1)
    partial = st.posterior.argmax(1)
    assert (full == true).mean() > (partial == true).mean() > (Y[:, 1] == true).mean()  # gpt-like helps


def test_nan_and_none_mark_missing_ratings():
    Y = validate_rating_matrix([[0, None], [1, 2.0], [float("nan"), 1], [2, -1]], 3)
    assert Y.tolist() == [[0, -1], [1, 2], [-1, 1], [2, -1]]


@pytest.mark.parametrize("bad, match", [
    (np.array([0, 1, 2]), r"shape \(N, R\)"),
    (np.array([[0, 1], [1, 7]]), "rating column 'b'.*rows \\[1\\]"),
    (np.array([[0, 1], [1, 1.5]]), "rating column 'b'.*integers"),
    (np.array([[0, -1], [1, -1]]), "rating column 'b'.*no row is rated"),
])
def test_bad_rating_matrix_names_the_column(bad, match):
    with pytest.raises(ValueError, match=match):
        validate_rating_matrix(bad, 3, names=["a", "b"])


def test_empty_score_is_an_error_unless_allowed():
    Y = np.array([[0, 1], [1, 0], [1, 1]])
    with pytest.raises(ValueError, match=r"no rater used score\(s\) \[2\]"):
        validate_rating_matrix(Y, 3)
    assert validate_rating_matrix(Y, 3, allow_empty_classes=True).shape == (3, 2)


def test_audit_anchors_raters_that_err_the_same_way():
    """Two raters that both shift every score fool a raters-alone model; a 2% audit exposes them."""
    K = 3
    true = np.random.default_rng(2).choice(K, 20000, p=[0.5, 0.3, 0.2])
    shift = 0.3 * np.eye(K) + 0.7 * np.roll(np.eye(K), 1, axis=1)  # z rated z + 1 (mod K) 70% of the time
    Y = np.stack([inject_noise(true, shift, seed=s) for s in (3, 4)], axis=1)
    sample = np.random.default_rng(5).random(len(true)) < 0.02
    audit = np.where(sample, true, -1)
    res = fuse_ratings(Y, audit=audit, num_classes=K)
    plain = fuse_ratings(Y, num_classes=K)
    T_true = np.stack([shift, shift])
    assert _mae(res.transition_matrices, T_true).max() < 0.02
    assert _mae(plain.transition_matrices, T_true).min() > 0.3  # fooled without the audit
    unaudited = ~sample
    acc = lambda r: (r.posterior.argmax(1)[unaudited] == true[unaudited]).mean()
    assert acc(res) > acc(plain) + 0.5
    report = res.audit_shift
    assert report["n_audited"] == int(sample.sum()) and report["changed_rows"] > 0.5
    for entry in report["raters"]:
        assert entry["T_shift"] > 0.3 and entry["accuracy_shift"] < -0.3
        assert entry["accuracy_with_audit"] == pytest.approx(entry["observed_accuracy_on_audit"], abs=0.03)
        assert entry["accuracy_without_audit"] > 0.7  # it believed the raters


def test_audit_moves_noisy_estimates_towards_the_truth():
    """1,500 rows, three raters, a 20% audit: the estimated matrices come closer to the true ones on average."""
    with_audit, without = [], []
    for seed in range(5):
        rng = np.random.default_rng(seed)
        true = rng.choice(6, 1500, p=DEFAULT_PRIOR)
        Y = np.stack([inject_noise(true, p, seed=100 * seed + r) for r, p in enumerate(PRESETS)], axis=1)
        res = fuse_ratings(Y, audit=np.where(rng.random(len(true)) < 0.2, true, -1), num_classes=6)
        with_audit.append(_mae(res.transition_matrices, T_TRUE).mean())
        without.append(_mae(fuse_ratings(Y, num_classes=6).transition_matrices, T_TRUE).mean())
        assert res.audit_shift["raters"][0]["T_shift"] > 0
    assert np.mean(with_audit) < np.mean(without) - 0.004, (with_audit, without)


def test_bad_audit_is_rejected_first():
    with pytest.raises(ValueError, match="audit: .*rows \\[1\\]"):
        fuse_ratings(np.array([[0, 1], [1, 0], [1, 1]]), audit=[0, 9, None], num_classes=2)


def test_knn_fusion_beats_every_rater_alone_and_raters_alone(clustered):
    data, Y, graph = clustered
    res = fuse_ratings(Y, graph=graph, num_classes=6, joint_gammas=(0.0,))
    acc = (res.posterior.argmax(1) == data.true).mean()
    alone = fuse_ratings(Y, num_classes=6)
    assert acc > (alone.posterior.argmax(1) == data.true).mean() + 0.1
    for r in range(3):
        curated = curate_scores(data.embeddings, Y[:, r], graph=graph, progress=False, joint_gammas=(0.0,)).curated
        assert acc > (curated == data.true).mean()
    assert (_mae(res.transition_matrices, T_TRUE) < 0.03).all()
    assert res.details["knn_gain"] > 0.3  # neighbours explain the ratings far beyond the raters alone
    np.testing.assert_allclose(res.prior.sum(1), 1.0)


def test_knn_fusion_with_missing_ratings_and_an_audit(clustered):
    data, Y, graph = clustered
    Y = Y.copy()
    Y[np.random.default_rng(6).random(len(Y)) > 0.1, 0] = -1
    audit = np.where(np.arange(len(Y)) % 25 == 0, data.true, -1)
    res = fuse_ratings(Y, graph=graph, audit=audit, num_classes=6, joint_gammas=(0.0,))
    fused = res.posterior.argmax(1)
    assert (fused[audit >= 0] == data.true[audit >= 0]).all()  # the audit is trusted
    assert (fused == data.true).mean() > 0.9
    assert res.audit_shift["n_audited"] == int((audit >= 0).sum())


def test_rater_summary_and_trust_line(three_raters):
    true, Y = three_raters
    over = np.zeros((6, 6))
    for z in range(6):
        over[z, min(z + 1, 5)] += 0.4
        over[z, z] += 0.6
    Y = np.concatenate([Y, inject_noise(true, over, seed=9)[:, None]], axis=1)
    st = fit_raters(Y, num_classes=6)
    names = [*PRESETS, "generous"]
    summary = summarize_raters(st.T, st.p, Y, st.posterior.argmax(1), names=names)
    acc = [s["accuracy"] for s in summary]
    true_acc = [float((Y[:, r] == true).mean()) for r in range(4)]
    np.testing.assert_allclose(acc, true_acc, atol=0.02)
    assert summary[3]["bias"] > 0.3 and abs(summary[0]["bias"]) < 0.1
    line = trust_line(summary)
    assert line.startswith("Trust gpt-like most") and "generous over-rates" in line


def test_implied_agreement_matches_observed_under_the_true_model(three_raters):
    _, Y = three_raters
    res = rater_agreement(Y, DEFAULT_PRIOR, T_TRUE)
    assert res.implied_rate == pytest.approx(res.observed_rate, abs=0.01)
    for pair in res.pairs:
        assert pair["implied"] == pytest.approx(pair["observed"], abs=0.015)


@pytest.mark.slow
def test_knn_prior_predicts_row_level_agreement(clustered):
    """Rows whose neighbourhood points to a consistently rated score agree more: implied tracks observed."""
    _, Y, graph = clustered
    res = fuse_ratings(Y, graph=graph, num_classes=6, joint_gammas=(0.0,))
    knn = rater_agreement(Y, res.prior, res.transition_matrices)
    flat = rater_agreement(Y, res.true_prior, res.transition_matrices)
    assert np.corrcoef(knn.implied, knn.observed)[0, 1] > 0.1
    assert np.ptp(flat.implied) < 1e-12  # one global prior implies one agreement rate
    shuffled = Y[np.random.default_rng(7).permutation(len(Y))]  # neighbours no longer share quality
    res_s = fuse_ratings(shuffled, graph=graph, num_classes=6, joint_gammas=(0.0,))
    assert res_s.details["knn_gain"] < 0.02
    knn_s = rater_agreement(shuffled, res_s.prior, res_s.transition_matrices)
    assert abs(np.corrcoef(knn_s.implied, knn_s.observed)[0, 1]) < 0.05


def test_agreement_needs_two_raters():
    with pytest.raises(ValueError, match=">= 2 raters"):
        rater_agreement(np.zeros((3, 1), int), np.array([1.0]), np.ones((1, 1, 1)))
