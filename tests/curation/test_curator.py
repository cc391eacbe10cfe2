import datasets
import numpy as np
import pytest

import ds2_hf
from ds2_hf.columns import ColumnExistsError
from ds2_hf.curation import Curator


@pytest.fixture(scope="module")
def disk_ds(tmp_path_factory, sim_gpt):
    n = 2500
    feats = datasets.Features({"embedding": datasets.List(datasets.Value("float32"), length=32),
                               "rating": datasets.Value("int8"), "true": datasets.Value("int8")})
    ratings = [None if i % 25 == 0 else int(r) for i, r in enumerate(sim_gpt.rated[:n])]
    ds = datasets.Dataset.from_dict({"embedding": sim_gpt.embeddings[:n], "rating": ratings,
                                     "true": sim_gpt.true[:n]}, features=feats)
    path = tmp_path_factory.mktemp("ds") / "pool"
    ds.save_to_disk(str(path))
    return datasets.load_from_disk(str(path))


def test_map_one_liner_adds_columns_and_hits_the_cache(disk_ds):
    kw = dict(batched=True, batch_size=None, fn_kwargs={"progress": False})
    out = disk_ds.map(ds2_hf.curate, **kw)
    again = disk_ds.map(ds2_hf.curate, **kw)
    assert out._fingerprint == again._fingerprint
    assert out.cache_files == again.cache_files
    for col in ("curated_rating", "curation_confidence", "misrated", "long_tail_score", "curation_posterior"):
        assert col in out.column_names
    cur = out["curated_rating"]
    assert all(cur[i] is None for i in range(0, len(cur), 25))
    true = np.asarray(out["true"])
    ok = np.array([c is not None for c in cur])
    acc = (np.array([c for c in cur if c is not None]) == true[ok]).mean()
    raw = np.array([r for r in out["rating"] if r is not None])
    assert acc > (raw == true[ok]).mean() + 0.1


def test_curator_fit_transform_typed_features(disk_ds):
    curator = Curator(progress=False, method="joint").fit(disk_ds)
    assert curator.transition_matrix_.shape == (6, 6)
    assert curator.report_["n_unrated"] == 100
    out = curator.transform(disk_ds)
    assert out.features["curated_rating"] == datasets.Value("int8")
    assert out.features["curation_posterior"].length == 6
    assert "fitted" in repr(curator)


def test_curator_pickles_without_the_graph(disk_ds):
    import pickle

    curator = Curator(progress=False).fit(disk_ds)
    clone = pickle.loads(pickle.dumps(curator))
    assert clone.result_.graph is None and curator.result_.graph is not None
    np.testing.assert_array_equal(clone.result_.curated, curator.result_.curated)


def test_refuses_to_overwrite_user_columns(disk_ds):
    ds = disk_ds.add_column("misrated", [False] * len(disk_ds))
    with pytest.raises(ColumnExistsError, match="misrated"):
        Curator(progress=False).fit(ds)
    out = Curator(progress=False, overwrite=True).fit_transform(ds)
    assert len(out.column_names) == len(ds.column_names) + 5


def test_missing_columns_name_the_fix(disk_ds):
    with pytest.raises(KeyError, match="embed the rows first"):
        Curator(embedding_column="vec").fit(disk_ds)
    with pytest.raises(KeyError, match="rate the rows first"):
        Curator(rating_column="score").fit(disk_ds)


def test_unfitted_and_mismatched_transform(disk_ds):
    with pytest.raises(RuntimeError, match="not fitted"):
        Curator().transition_matrix_
    curator = Curator(progress=False).fit(disk_ds)
    with pytest.raises(ValueError, match="fitted on"):
        curator.transform(disk_ds.select(range(10)))


def test_curate_on_a_dataset_returns_a_dataset(disk_ds):
    out = ds2_hf.curate(disk_ds, method="faithful", num_rounds=3, num_epochs=3, progress=False)
    assert isinstance(out, datasets.Dataset) and "curation_posterior" not in out.column_names
