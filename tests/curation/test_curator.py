import datasets
import numpy as np
import pytest

import ds2_hf
from ds2_hf.columns import ColumnExistsError
from ds2_hf.curation import Curator, DatasetMismatchError, NotFittedError
from ds2_hf.validation import EmptyInputError, InputTypeError, RatingError, UnknownOptionError


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


def test_curator_fit_transform_typed_features(disk_ds):
    curator = Curator(progress=False, method="joint").fit(disk_ds)
    assert curator.transition_matrix_.shape == (6, 6)
    assert curator.report_["n_unrated"] == 100
    out = curator.transform(disk_ds)
    assert out.features["curated_rating"] == datasets.Value("int8")
    assert out.features["curation_posterior"].length == 6
    assert curator.config_.method == "joint" and curator.n_rows_ == len(disk_ds)
    assert set(curator.fingerprint_) == {"ratings", "embeddings"}


def test_curator_pickles_without_the_graph(disk_ds):
    import pickle

    curator = Curator(progress=False).fit(disk_ds)
    clone = pickle.loads(pickle.dumps(curator))
    assert clone.result_.graph is None and curator.result_.graph is not None
    np.testing.assert_array_equal(clone.result_.curated, curator.result_.curated)
    assert clone.transform(disk_ds)["curated_rating"] == curator.transform(disk_ds)["curated_rating"]


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


def test_unfitted_curator_raises_not_fitted_error(disk_ds):
    curator = Curator(progress=False)
    for name in ("transition_matrix_", "report_", "result_", "fingerprint_"):
        with pytest.raises(NotFittedError, match="not fitted"):
            getattr(curator, name)
        assert not hasattr(curator, name)  # an AttributeError too, as scikit-learn's
    with pytest.raises(ValueError, match="not fitted"):
        curator.transform(disk_ds)
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        curator.nope


def test_transform_refuses_a_different_dataset_of_the_same_length(disk_ds):
    curator = Curator(progress=False).fit(disk_ds)
    with pytest.raises(DatasetMismatchError, match="rows but the Curator was fitted on 2500"):
        curator.transform(disk_ds.select(range(10)))
    rng = np.random.default_rng(0)
    flipped = disk_ds.map(lambda row, i: {"rating": row["rating"] if i != 1234 else (row["rating"] + 1) % 6},
                          with_indices=True)
    with pytest.raises(DatasetMismatchError, match="ratings differ"):
        curator.transform(flipped)
    emb = np.asarray(disk_ds["embedding"], dtype=np.float32)
    emb[rng.integers(len(emb))] += 1e-3  # one value of one row: the ratings are the same
    moved = disk_ds.remove_columns("embedding").add_column("embedding", list(emb)).cast(disk_ds.features)
    with pytest.raises(DatasetMismatchError, match="embeddings differ"):
        curator.transform(moved)
    with pytest.raises(DatasetMismatchError, match="differ"):
        curator.transform(disk_ds.shuffle(seed=0).flatten_indices())
    same = curator.transform(disk_ds.add_column("note", ["x"] * len(disk_ds)))  # other columns may differ
    assert same["curated_rating"] == curator.transform(disk_ds)["curated_rating"]


def test_fit_on_arrays_transforms_the_dataset_holding_them(disk_ds):
    emb = np.asarray(disk_ds["embedding"], dtype=np.float32)
    ratings = np.array([np.nan if r is None else r for r in disk_ds["rating"]])
    curator = Curator(progress=False, find_duplicates=False, group_column=None).fit(emb, ratings)
    out = curator.transform(disk_ds)
    ref = Curator(progress=False, find_duplicates=False, group_column=None).fit_transform(disk_ds)
    assert out["curated_rating"] == ref["curated_rating"]
    with pytest.raises(DatasetMismatchError):
        curator.transform(disk_ds.map(lambda row: {"rating": 0}))


def test_parameters_are_stored_as_given_and_validated_in_fit(disk_ds):
    curator = Curator(method="faithfull")  # no error yet: __init__ only stores
    assert curator.get_params()["method"] == "faithfull"
    with pytest.raises(ValueError, match="method='faithfull' is not supported"):
        curator.fit(disk_ds)
    with pytest.raises(InputTypeError, match="rating_columns must be a list"):
        Curator(rating_columns="rating").fit(disk_ds)
    with pytest.raises(UnknownOptionError, match="unknown curation option"):
        Curator(num_neighbours=3).fit(disk_ds)
    with pytest.raises(UnknownOptionError, match="unknown Curator parameter"):
        Curator().set_params(num_neighbours=3)


def test_get_params_set_params_and_clone(disk_ds):
    curator = Curator(rating_column="rating", progress=False, method="faithful", num_rounds=2)
    params = curator.get_params()
    assert params["method"] == "faithful" and params["rating_column"] == "rating" and params["config"] is None
    twin = type(curator)(**params)
    assert twin.get_params() == params and twin is not curator
    assert curator.set_params(num_rounds=3, overwrite=True) is curator
    assert curator.get_params()["num_rounds"] == 3 and curator.overwrite is True
    from sklearn.base import clone  # scikit-learn comes with the dev extras (sentence-transformers, cleanlab)

    cloned = clone(curator)
    assert cloned.get_params() == curator.get_params() and not hasattr(cloned, "result_")
    assert repr(cloned) == "Curator(overwrite=True, progress=False, method='faithful', num_rounds=3)"


def test_empty_and_split_inputs_are_refused_before_any_work(disk_ds):
    with pytest.raises(EmptyInputError, match="no rows"):
        Curator(progress=False).fit(disk_ds.select([]))
    with pytest.raises(EmptyInputError, match="no rows"):
        Curator(progress=False).fit({"embedding": [], "rating": []})
    with pytest.raises(InputTypeError, match="Pick one split"):
        Curator(progress=False).fit(datasets.DatasetDict({"train": disk_ds}))


def test_word_ratings_name_the_rows(disk_ds):
    ratings = ["good" if i == 7 else r for i, r in enumerate(disk_ds["rating"])]
    pool = {"embedding": np.asarray(disk_ds["embedding"]), "rating": ratings}
    with pytest.raises(RatingError, match=r"column 'rating' must be integers.*rows \[7\] \(1 in all\) hold text"):
        Curator(progress=False).fit(pool)
    with pytest.raises(RatingError, match="hold text"):  # a text column: every row is text to Arrow
        Curator(progress=False).fit(disk_ds.cast_column("rating", datasets.Value("string")))
