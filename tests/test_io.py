"""Tests of ds2_hf.io: loading from every local source, atomic saves and NumPy-aware JSON."""

from __future__ import annotations

import json

import datasets
import numpy as np
import pytest

from ds2_hf import io
from ds2_hf.atomic import OutputExistsError

ROWS = {"text": ["a", "b", "c"], "rating": [0, 5, 3]}


@pytest.fixture
def ds():
    return datasets.Dataset.from_dict(ROWS)


def _rows(d):
    return {"text": d["text"], "rating": d["rating"]}


@pytest.mark.parametrize("name", ["rows.parquet", "rows.jsonl", "rows.csv", "rows.json"])
def test_file_roundtrip(ds, tmp_path, name):
    path = io.save(ds, tmp_path / name)
    assert path == tmp_path / name and path.is_file()
    loaded = io.load(path)
    assert isinstance(loaded, datasets.Dataset)
    assert _rows(loaded) == ROWS


def test_load_str_path(ds, tmp_path):
    ds.to_parquet(str(tmp_path / "x.parquet"))
    assert _rows(io.load(str(tmp_path / "x.parquet"))) == ROWS


def test_load_gzipped_jsonl(ds, tmp_path):
    import gzip

    with gzip.open(tmp_path / "rows.jsonl.gz", "wt", encoding="utf-8") as f:
        for t, r in zip(ROWS["text"], ROWS["rating"]):
            f.write(json.dumps({"text": t, "rating": r}) + "\n")
    assert _rows(io.load(tmp_path / "rows.jsonl.gz")) == ROWS


def test_save_to_disk_folder_roundtrip(ds, tmp_path):
    dest = io.save(ds, tmp_path / "folder")
    assert (dest / "dataset_info.json").exists()
    assert _rows(io.load(dest)) == ROWS


def test_load_dataset_dict_folder_picks_split(ds, tmp_path):
    dd = datasets.DatasetDict({"train": ds, "test": ds.select([0])})
    dd.save_to_disk(str(tmp_path / "dd"))
    assert len(io.load(tmp_path / "dd")) == 3
    assert io.load(tmp_path / "dd", split="test")["text"] == ["a"]


def test_load_data_folder(ds, tmp_path):
    (tmp_path / "data").mkdir(parents=True)
    ds.select([0, 1]).to_parquet(str(tmp_path / "data" / "train-00000-of-00002.parquet"))
    ds.select([2]).to_parquet(str(tmp_path / "data" / "train-00001-of-00002.parquet"))
    loaded = io.load(tmp_path)
    assert sorted(loaded["text"]) == ["a", "b", "c"]
    assert len(loaded) == 3


@pytest.mark.parametrize("missing", ["missing.parquet", "./nowhere", "/definitely/not/here", "sub/rows.jsonl"])
def test_missing_local_path(tmp_path, missing, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(FileNotFoundError, match="no such file or folder"):
        io.load(missing)


def test_unknown_extension(tmp_path):
    p = tmp_path / "rows.xlsx"
    p.write_text("whatever")
    with pytest.raises(ValueError) as err:
        io.load(p)
    msg = str(err.value)
    assert "'.xlsx'" in msg and "'.parquet'" in msg and "'.jsonl'" in msg


def _leftovers(folder):
    return sorted(p.name for p in folder.iterdir() if p.name.startswith("."))


@pytest.mark.parametrize("name", ["out.parquet", "out.jsonl", "out.csv", "out_folder"])
def test_save_is_atomic_and_overwrites(ds, tmp_path, name):
    dest = tmp_path / "nested" / name  # parent folders are created
    io.save(ds, dest)
    with pytest.raises(OutputExistsError, match="already exists.*overwrite=True"):
        io.save(ds.select([1]), dest)  # an existing output is never replaced unasked
    assert _rows(io.load(dest)) == ROWS
    io.save(ds.select([1]), dest, overwrite=True)  # replace an existing file / folder
    assert _rows(io.load(dest)) == {"text": ["b"], "rating": [5]}
    assert _leftovers(dest.parent) == []
    assert sorted(p.name for p in dest.parent.iterdir()) == [name]


def test_save_failure_leaves_old_data_and_no_temp(ds, tmp_path):
    dest = tmp_path / "out.parquet"
    io.save(ds, dest)

    class Broken:
        def to_parquet(self, path):
            with open(path, "w") as f:
                f.write("half")
            raise RuntimeError("disk full")

    with pytest.raises(RuntimeError, match="disk full"):
        io.save(Broken(), dest, overwrite=True)
    assert _rows(io.load(dest)) == ROWS  # the old file is intact
    assert _leftovers(tmp_path) == []


def test_write_json_numpy(tmp_path):
    obj = {
        "f": np.float32(0.5),
        "i": np.int64(7),
        "b": np.bool_(True),
        "arr": np.arange(4, dtype=np.int8).reshape(2, 2),
        "path": tmp_path / "x",
        "tup": (1, 2),
        "set": {3},
    }
    path = io.write_json(obj, tmp_path / "sub" / "r.json")
    assert path == tmp_path / "sub" / "r.json"
    back = json.loads(path.read_text())
    assert back == {"f": 0.5, "i": 7, "b": True, "arr": [[0, 1], [2, 3]], "path": str(tmp_path / "x"),
                    "tup": [1, 2], "set": [3]}
    assert _leftovers(path.parent) == []


def test_write_json_rejects_unknown_types(tmp_path):
    with pytest.raises(TypeError, match="object is not JSON serialisable"):
        io.write_json({"x": object()}, tmp_path / "r.json")
    assert sorted(p.name for p in tmp_path.iterdir()) == []  # no half-written temporary file


def test_write_json_failure_keeps_previous_file(tmp_path):
    path = io.write_json({"ok": 1}, tmp_path / "r.json")
    with pytest.raises(TypeError):
        io.write_json({"x": object()}, path)
    assert json.loads(path.read_text()) == {"ok": 1}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r.json"]


def test_hub_ids_go_to_load_dataset(monkeypatch, tmp_path):
    calls = []

    def fake_load_dataset(*args, **kwargs):
        calls.append((args, kwargs))
        return "dataset"

    monkeypatch.chdir(tmp_path)  # so "org/name" is not an existing local folder
    monkeypatch.setattr(datasets, "load_dataset", fake_load_dataset)
    assert io.load("org/name", split="test", revision="abc", name="cfg") == "dataset"
    assert calls == [(("org/name", "cfg"), {"split": "test", "revision": "abc"})]
