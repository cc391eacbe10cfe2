import json

import numpy as np
import pytest

from ds2_hf.curation import CurationConfig, curate_scores
from ds2_hf.simulate import inject_noise


def test_default_curation_corrects_clusterable_ratings(sim_gpt):
    res = curate_scores(sim_gpt.embeddings, sim_gpt.rated, progress=False)
    true, rated = sim_gpt.true, sim_gpt.rated
    assert (res.curated == true).mean() > (rated == true).mean() + 0.12
    assert np.abs(res.transition_matrix - sim_gpt.transition).mean() < 0.03
    assert res.clusterability.gate == 1.0
    assert res.posterior.shape == (len(rated), 6)
    np.testing.assert_allclose(res.posterior.sum(1), 1.0, atol=1e-5)
    # changed rows are flagged and more often right than wrong
    changed = res.curated != rated
    assert (res.curated[changed] == true[changed]).mean() > 0.7
    assert res.misrated[changed].mean() > 0.9
    json.dumps(res.report)  # JSON-serialisable
    for key in ("transition_matrix", "true_prior", "counts_raw", "counts_curated", "n_flagged", "n_changed",
                "knn", "timings", "config", "clusterability"):
        assert key in res.report


def test_guard_leaves_ratings_alone_when_embeddings_ignore_them(rng):
    """Embeddings independent of the ratings: neighbours carry nothing, so curation must change (almost) nothing."""
    n = 3000
    x = rng.standard_normal((n, 16)).astype(np.float32)
    true = rng.integers(0, 3, n)
    y = inject_noise(true, 0.7, seed=1)
    res = curate_scores(x, y, num_classes=3, progress=False)
    assert res.clusterability.gate < 0.5
    assert (res.curated != y).mean() < 0.01
    assert (res.curated == true).mean() >= (y == true).mean() - 0.005
    assert res.clusterability.verdict.startswith(("Withheld", "Partial"))


def test_guard_protects_the_faithful_method_when_asked(rng):
    n = 3000
    x = rng.standard_normal((n, 16)).astype(np.float32)
    y = inject_noise(rng.integers(0, 3, n), 0.7, seed=1)
    plain = curate_scores(x, y, num_classes=3, method="faithful", num_rounds=5, num_epochs=5, progress=False)
    guarded = curate_scores(x, y, num_classes=3, method="faithful", num_rounds=5, num_epochs=5, backoff=True,
                            progress=False)
    assert plain.clusterability is None
    assert (guarded.curated != y).sum() <= (plain.curated != y).sum()
    assert (guarded.curated != y).mean() < 0.01


def test_unrated_rows_are_excluded_and_left_uncurated(sim_gpt):
    y = sim_gpt.rated.astype(float)
    y[::10] = np.nan
    ratings = [None if np.isnan(v) else int(v) for v in y]
    res = curate_scores(sim_gpt.embeddings, ratings, progress=False)
    assert (res.curated[::10] == -1).all()
    assert not res.misrated[::10].any()
    assert res.report["n_unrated"] == len(y[::10])
    faithful = curate_scores(sim_gpt.embeddings, ratings, method="faithful", num_rounds=3, num_epochs=3,
                             progress=False)
    assert (faithful.curated[::10] == -1).all()


def test_deterministic_with_seed(sim_gpt):
    a = curate_scores(sim_gpt.embeddings, sim_gpt.rated, seed=3, progress=False)
    b = curate_scores(sim_gpt.embeddings, sim_gpt.rated, seed=3, progress=False)
    np.testing.assert_array_equal(a.curated, b.curated)
    np.testing.assert_allclose(a.transition_matrix, b.transition_matrix)


def test_other_scales_work(sim_gpt):
    y3 = np.minimum(sim_gpt.rated // 2, 2)
    res = curate_scores(sim_gpt.embeddings, y3, num_classes=3, progress=False)
    assert res.transition_matrix.shape == (3, 3) and res.curated.max() <= 2


def test_reuses_a_given_graph(sim_gpt, monkeypatch):
    from ds2_hf.curation import core

    first = curate_scores(sim_gpt.embeddings, sim_gpt.rated, progress=False)
    calls = []
    monkeypatch.setattr(core, "build_knn_graph", lambda *a, **kw: calls.append(a) or pytest.fail("graph rebuilt"))
    again = curate_scores(sim_gpt.embeddings, sim_gpt.rated, graph=first.graph, progress=False)
    assert calls == []
    np.testing.assert_array_equal(first.curated, again.curated)


def test_long_tail_is_higher_for_outliers(rng):
    x = rng.normal(size=(600, 8)).astype(np.float32) * 0.05 + 1.0
    x[0] = -1.0  # far away from everything
    y = rng.integers(0, 2, 600)
    res = curate_scores(x, y, num_classes=2, progress=False)
    assert res.long_tail[0] == res.long_tail.max()


@pytest.mark.parametrize(
    "mutate, match",
    [
        (lambda x, y: (np.vstack([x, np.full((1, x.shape[1]), np.nan)]), np.append(y, 1)), "NaN or inf"),
        (lambda x, y: (np.vstack([x, np.zeros((1, x.shape[1]))]), np.append(y, 1)), "all-zero"),
        (lambda x, y: ([list(r) for r in x[:-1]] + [list(x[-1][:-1])], y), "mixed dimensions"),
        (lambda x, y: (x, np.append(y, 1)), "ratings have"),
        (lambda x, y: (x, np.where(np.arange(len(y)) == 5, 9, y)), r"0\.\.5"),
        (lambda x, y: (x, y + 0.5), "integers"),
        (lambda x, y: (x, np.full(len(y), np.nan)), "no row is rated"),
        (lambda x, y: (x, np.full(len(y), 3)), "every rated row has rating 3"),
        (lambda x, y: (x, np.where(y == 2, 1, y)), r"no row is rated \[2\](?!.*num_classes)"),
        (lambda x, y: (x, np.minimum(y, 4)), r"no row is rated \[5\].*num_classes=5"),
        (lambda x, y: (x[:8], y[:8]), "more rows than neighbours"),
    ],
)
def test_bad_input_gets_a_clear_error(sim_gpt, mutate, match):
    x, y = mutate(sim_gpt.embeddings[:500], sim_gpt.rated[:500].astype(float))
    with pytest.raises(ValueError, match=match):
        curate_scores(x, y, progress=False)


def test_config_validation():
    with pytest.raises(ValueError, match="method"):
        CurationConfig(method="magic")
    with pytest.raises(TypeError, match="unknown curation option"):
        CurationConfig.from_options(nonsense=1)
    assert CurationConfig(method="faithful").threshold == 0.5
    assert CurationConfig().threshold == 0.0 and CurationConfig().use_backoff
    assert not CurationConfig(method="faithful").use_backoff
