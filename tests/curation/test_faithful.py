"""The faithful mode walks one global graph instead of searching each random subsample; prove it is the same."""

import numpy as np
import pytest

from ds2_hf.curation.faithful import graph_size_needed, run_faithful, sample_neighbours
from ds2_hf.knn import build_knn_graph


def _brute_in_sample(x, sample_raw, n, k):
    """Literal reference k-NN inside a subsample of raw ids (0..L-1, row r is base r % n), self excluded."""
    base = sample_raw % n
    sims = x[base] @ x[base].T
    np.fill_diagonal(sims, -np.inf)
    order = np.argsort(-sims, axis=1, kind="stable")[:, :k]
    return base[order], np.take_along_axis(sims, order, axis=1)


@pytest.mark.parametrize("dup", [False, True])
def test_global_graph_walk_equals_knn_inside_the_sample(dup, sim_gpt):
    x = sim_gpt.embeddings[:1500]
    n = len(x)
    L = 2 * n if dup else n
    rng = np.random.default_rng(3)
    sample = rng.choice(L, int(0.4 * L), replace=False)
    k = 9
    graph = build_knn_graph(x, graph_size_needed(n, len(sample), k, duplicate_quirk=dup), progress=False)
    got = sample_neighbours(graph, x, sample, k, duplicate_quirk=dup)
    want_base, want_sims = _brute_in_sample(x, sample, n, k)
    # similarities must match exactly in order; ids may differ only within exact ties (copies of one point)
    np.testing.assert_allclose(got.sims, want_sims, atol=1e-5)
    agree = got.base == want_base
    tied = np.isclose(got.sims, want_sims, atol=1e-6)
    assert (agree | tied).all()
    assert agree.mean() > 0.97


def test_rows_short_of_members_fall_back_to_exact_search(sim_gpt):
    x = sim_gpt.embeddings[:800]
    rng = np.random.default_rng(0)
    sample = rng.choice(len(x), 100, replace=False)
    graph = build_knn_graph(x, 5, progress=False)  # far too short: most rows fall back
    got = sample_neighbours(graph, x, sample, 4)
    want, _ = _brute_in_sample(x, sample, len(x), 4)
    assert got.n_fallback > 0
    np.testing.assert_array_equal(got.base, want)


def test_faithful_curation_improves_ratings_and_dup_quirk_biases_T(sim_gpt):
    x, y, true = sim_gpt.embeddings, sim_gpt.rated, sim_gpt.true
    g = build_knn_graph(x, 60, progress=False)
    res = run_faithful(x, y, g, num_classes=6, num_rounds=10, num_epochs=11, seed=0)
    curated = np.where(res.confidence >= 0.5, res.suggested, y)
    assert (curated == true).mean() > (y == true).mean() + 0.05
    assert (res.suggested != y).all()  # the reference never suggests the original rating
    # flagged rows are mis-rated far more often than the base rate
    assert (y[res.misrated] != true[res.misrated]).mean() > 2 * (y != true).mean()
    dup = run_faithful(x, y, g, num_classes=6, num_rounds=10, num_epochs=11, seed=0, duplicate_quirk=True)
    assert np.diag(dup.T).mean() > np.diag(res.T).mean() + 0.05  # the doubled dataset inflates diag(T)


def test_faithful_is_deterministic_given_seed(sim_gpt):
    x, y = sim_gpt.embeddings[:1500], sim_gpt.rated[:1500]
    g = build_knn_graph(x, 30, progress=False)
    a = run_faithful(x, y, g, num_classes=6, num_rounds=3, num_epochs=3, seed=7, solver="lbfgs")
    b = run_faithful(x, y, g, num_classes=6, num_rounds=3, num_epochs=3, seed=7, solver="lbfgs")
    np.testing.assert_array_equal(a.suggested, b.suggested)
    np.testing.assert_allclose(a.T, b.T)
