"""``dataset.map(ds2_hf.curate, ...)``: the whole dataset in one batch works, anything else is refused at once."""

import subprocess
import sys

import datasets
import numpy as np
import pytest

import ds2_hf
from ds2_hf.curation import Curator, map_face
from ds2_hf.validation import InputError

OUTPUTS = ("curated_rating", "curation_confidence", "misrated", "long_tail_score", "duplicate_group",
           "curation_posterior")
FN_KWARGS = {"progress": False}


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


@pytest.fixture
def no_curation(monkeypatch):
    """Fail loudly if curation starts: misuse must be refused before any work."""
    def forbidden(*args, **kwargs):
        raise AssertionError("curation ran on a batch that should have been refused")

    monkeypatch.setattr("ds2_hf.curation.curator.curate_scores", forbidden)


def test_map_one_liner_adds_columns_and_hits_the_cache(disk_ds):
    kw = dict(batched=True, batch_size=None, fn_kwargs=FN_KWARGS)
    out = disk_ds.map(ds2_hf.curate, **kw)
    again = disk_ds.map(ds2_hf.curate, **kw)
    assert out._fingerprint == again._fingerprint and out.cache_files == again.cache_files
    assert set(OUTPUTS) <= set(out.column_names)
    cur = out["curated_rating"]
    assert all(cur[i] is None for i in range(0, len(cur), 25))
    true = np.asarray(out["true"])
    ok = np.array([c is not None for c in cur])
    acc = (np.array([c for c in cur if c is not None]) == true[ok]).mean()
    raw = np.array([r for r in out["rating"] if r is not None])
    assert acc > (raw == true[ok]).mean() + 0.1


def test_map_equals_fit_transform(disk_ds):
    mapped = disk_ds.map(ds2_hf.curate, batched=True, batch_size=None, with_indices=True, fn_kwargs=FN_KWARGS,
                         load_from_cache_file=False)
    fitted = Curator(progress=False).fit_transform(disk_ds, load_from_cache_file=False)
    numpy_batch = disk_ds.with_format("numpy").map(ds2_hf.curate, batched=True, batch_size=None,
                                                   fn_kwargs=FN_KWARGS, load_from_cache_file=False)
    for column in OUTPUTS:
        assert mapped[column] == fitted[column], column
        assert numpy_batch.with_format(None)[column] == fitted[column], column


def test_map_reads_the_batch_through_arrow_not_python_lists(disk_ds):
    seen = {}

    def watched(batch):
        out = ds2_hf.curate(batch, progress=False)
        seen["unformatted"] = set(batch.keys_to_format)  # columns never converted to Python objects
        return out

    disk_ds.map(watched, batched=True, batch_size=None, load_from_cache_file=False)
    assert {"embedding", "rating"} <= seen["unformatted"]


@pytest.mark.parametrize("kwargs, message", [
    ({}, "passed it one row at a time; pass batched=True, batch_size=None"),
    ({"batched": True}, "batches of 1000 of the dataset's 2500 rows"),
    ({"batched": True, "batch_size": 2000, "with_indices": True}, "batches of 2000 of the dataset's 2500 rows"),
    ({"batched": True, "batch_size": None, "input_columns": ["embedding", "rating"]}, "drop input_columns"),
])
def test_map_misuse_is_refused_before_any_work(disk_ds, no_curation, kwargs, message):
    with pytest.raises(InputError, match=message) as err:
        disk_ds.map(ds2_hf.curate, fn_kwargs=FN_KWARGS, load_from_cache_file=False, **kwargs)
    assert "`dataset.map(ds2_hf.curate, batched=True, batch_size=None)`" in str(err.value) or "drop" in message


def test_partial_batches_are_refused_through_a_wrapper(disk_ds, no_curation):
    with pytest.raises(InputError, match="batches of 1000"):
        disk_ds.map(lambda batch: ds2_hf.curate(batch, progress=False), batched=True, load_from_cache_file=False)
    with pytest.raises(InputError, match="batches of 1000"):  # NumPy-formatted batches are plain dicts
        disk_ds.with_format("numpy").map(ds2_hf.curate, batched=True, fn_kwargs=FN_KWARGS, load_from_cache_file=False)


@pytest.mark.slow
def test_num_proc_shards_are_refused():
    # In a fresh interpreter: forking this test process after curation's k-NN threads ran can deadlock the workers.
    script = (
        "import datasets, ds2_hf\n"
        "from ds2_hf.validation import InputError\n"
        "ds = datasets.Dataset.from_dict({'embedding': [[float(i), 1.0] for i in range(40)], 'rating': [i % 6 for i in "
        "range(40)]})\n"
        "try:\n"
        "    ds.map(ds2_hf.curate, batched=True, batch_size=None, num_proc=2, fn_kwargs={'progress': False})\n"
        "except InputError as err:\n"
        "    print(err)\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert "drop num_proc" in done.stdout, done.stderr[-2000:]


def test_a_batch_of_exactly_the_dataset_is_accepted(disk_ds):
    out = disk_ds.map(ds2_hf.curate, batched=True, batch_size=len(disk_ds), fn_kwargs=FN_KWARGS,
                      load_from_cache_file=False)
    assert out["curated_rating"] == disk_ds.map(ds2_hf.curate, batched=True, batch_size=None,
                                                fn_kwargs=FN_KWARGS)["curated_rating"]


def test_streaming_map_is_refused(disk_ds, no_curation):
    stream = disk_ds.to_iterable_dataset().map(ds2_hf.curate, batched=True, batch_size=None, fn_kwargs=FN_KWARGS)
    with pytest.raises(InputError, match="cannot tell whether this batch is the whole dataset"):
        next(iter(stream))


def test_direct_calls(disk_ds, no_curation):
    with pytest.raises(InputError, match="given one row"):
        ds2_hf.curate({"embedding": [0.1] * 32, "rating": 3})
    map_face.check_whole_dataset({"embedding": [[0.1] * 32] * 3, "rating": [1, 2, 3]})  # a hand-built pool


def test_curate_on_a_dataset_returns_a_typed_dataset(disk_ds):
    out = ds2_hf.curate(disk_ds, method="faithful", num_rounds=3, num_epochs=3, progress=False)
    assert isinstance(out, datasets.Dataset) and "curation_posterior" not in out.column_names
    assert out.features["curated_rating"] == datasets.Value("int8")
