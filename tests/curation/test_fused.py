"""Several rating columns through curate_scores, Curator and `ds2 curate`."""

import datasets
import numpy as np
import pytest

from ds2_hf.cli import main
from ds2_hf.curation import Curator, curate_scores
from ds2_hf.simulate import inject_noise, simulate, transition_matrix

PRESETS = ("gpt-like", "mistral-like", "llama-like")


@pytest.fixture(scope="module")
def pool():
    data = simulate(3000, 32, seed=1)
    Y = np.stack([inject_noise(data.true, p, seed=30 + r) for r, p in enumerate(PRESETS)], axis=1).astype(float)
    Y[np.random.default_rng(0).random(len(Y)) > 0.2, 0] = np.nan  # the expensive rater on a 20% sample
    return data, Y


def test_curate_scores_fuses_a_rating_matrix(pool):
    data, Y = pool
    res = curate_scores(data.embeddings, Y, rater_names=list(PRESETS), progress=False, joint_gammas=(0.0,))
    assert res.rater_transition_matrices.shape == (3, 6, 6)
    assert (res.curated == data.true).mean() > 0.9
    T_true = np.stack([transition_matrix(p) for p in PRESETS])
    assert np.abs(res.rater_transition_matrices - T_true).mean() < 0.03
    raters = res.report["raters"]
    assert [s["name"] for s in raters["summary"]] == list(PRESETS)
    assert raters["trust"].startswith("Trust gpt-like most")
    assert raters["embeddings"] and raters["gate"] == 1.0
    clus = res.clusterability  # the guard compares where raters agree with what the neighbours imply
    assert clus.status == "applied" and clus.check("raters").values["correlation"] > 0.1
    assert res.report["n_rated"] == len(Y) and res.long_tail.shape == (len(Y),)
    np.testing.assert_allclose(res.transition_matrix.sum(1), 1.0)  # the majority vote's T


def test_fusion_without_embeddings(pool):
    data, Y = pool
    res = curate_scores(None, Y, progress=False)
    assert res.report["knn"] is None and np.isnan(res.long_tail).all()
    assert not res.report["raters"]["embeddings"]
    assert (res.curated == data.true).mean() > (np.nan_to_num(Y[:, 1], nan=-1) == data.true).mean()


@pytest.mark.slow
def test_shuffled_ratings_back_off_to_the_raters_alone(pool):
    """Neighbours that do not share quality: the gate closes and the raters-alone posterior is used."""
    data, Y = pool
    Ys = Y[np.random.default_rng(3).permutation(len(Y))]
    res = curate_scores(data.embeddings, Ys, progress=False, joint_gammas=(0.0,))
    alone = curate_scores(None, Ys, progress=False)
    assert res.report["raters"]["gate"] < 0.5
    assert res.clusterability.check("raters").values["correlation"] < 0.05
    assert "the raters alone" in res.clusterability.verdict
    assert (res.curated == alone.curated).mean() > 0.95


def test_one_rater_options_are_rejected_clearly(pool):
    data, Y = pool
    with pytest.raises(ValueError, match="embeddings=None fuses several raters"):
        curate_scores(None, Y[:, 1])
    with pytest.raises(ValueError, match="rater_names names several raters"):
        curate_scores(data.embeddings, Y[:, 1], rater_names=["one"])
    with pytest.raises(ValueError, match="method='faithful' curates one rater"):
        curate_scores(data.embeddings, Y, method="faithful")


def test_curator_with_rating_columns_and_audit(pool):
    data, Y = pool
    audit = np.where(np.arange(len(Y)) % 20 == 0, data.true, np.nan)
    cols = {name: [None if np.isnan(v) else int(v) for v in Y[:, r]] for r, name in enumerate(PRESETS)}
    ds = datasets.Dataset.from_dict({"embedding": data.embeddings, **cols,
                                     "human": [None if np.isnan(v) else int(v) for v in audit]})
    curator = Curator(rating_columns=list(PRESETS), audit_column="human", progress=False, joint_gammas=(0.0,))
    out = curator.fit_transform(ds)
    assert curator.rater_transition_matrices_.shape == (3, 6, 6)
    cur = np.array(out["curated_rating"])
    assert (cur[::20] == data.true[::20]).all()
    assert curator.report_["raters"]["audit"]["n_audited"] == len(Y[::20])
    with pytest.raises(KeyError, match="'nope' not found.*rating_columns"):
        Curator(rating_columns=["nope"], progress=False).fit(ds)
    one = Curator(rating_column="mistral-like", audit_column="human", progress=False, joint_gammas=(0.0,)).fit(ds)
    audit_check = one.result_.clusterability.check("audit")  # with one rater the audit tests the corrections
    assert audit_check is not None and audit_check.values["n_audited"] == len(Y[::20])


def test_cli_curates_several_rating_columns(pool, tmp_path, capsys):
    data, _ = pool
    cols = {name: inject_noise(data.true, p, seed=40 + r) for r, (name, p) in enumerate(zip("abc", PRESETS))}
    src = tmp_path / "pool.parquet"
    datasets.Dataset.from_dict({"embedding": data.embeddings, **cols}).to_parquet(str(src))
    out = tmp_path / "fused.parquet"
    rc = main(["curate", str(src), str(out), "--rating-column", "a", "--rating-column", "b", "--rating-column", "c",
               "--no-embeddings", "--report", str(tmp_path / "r.json")])
    assert rc == 0
    text = capsys.readouterr().out
    assert "raters (estimated; without embeddings)" in text and "Trust a most" in text
    fused = datasets.Dataset.from_parquet(str(out))
    acc = (np.array(fused["curated_rating"]) == data.true).mean()
    assert acc > (cols["a"] == data.true).mean() + 0.02  # above the best rater
