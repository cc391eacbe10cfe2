"""Empty conversations (ShareGPT records with no turns, blank messages): refused with every row named, or skipped
with ``skip_empty`` and reported; rows that cannot be rendered at all are named in the same message."""

from __future__ import annotations

import logging

import datasets
import numpy as np
import pytest

from ds2_hf.embedding import EmbeddingConfig, Embedder, drop_empty, embed, embed_on_ray, find_unrenderable
from ds2_hf.formats import EmptyConversationError, FormatError
from ds2_hf.selection import SelectionConfig
from ds2_hf.validation import EmptyInputError, InputError

EMPTY = [3, 8, 11, 14, 20, 27, 33, 35, 41, 44, 50, 57]  # twelve: more than the ten an error shows


def _turn(i: int) -> list[dict]:
    return [{"from": "human", "value": f"Question {i}: how do I sort {i} numbers?"},
            {"from": "gpt", "value": f"Use sorted() on the {i} numbers."}]


BLANK = [{"from": "human", "value": "  "}, {"from": "gpt", "value": ""}]


def _sharegpt(n: int = 60, empty=EMPTY) -> datasets.Dataset:
    """ShareGPT rows; the ``empty`` ones alternate between no turns and only blank turns (both are empty)."""
    empty = list(empty)
    rows = [_turn(i) if i not in empty else [] if empty.index(i) % 2 else BLANK for i in range(n)]
    return datasets.Dataset.from_dict({"id": list(range(n)), "conversations": rows})


def test_without_the_flag_every_empty_row_and_the_flag_are_named_before_any_model_loads(monkeypatch):
    from ds2_hf.embedding import WordLlamaBackend

    def no_model(*args, **kwargs):
        raise AssertionError("the model was loaded before the rows were checked")

    monkeypatch.setattr(WordLlamaBackend, "__init__", no_model)
    with pytest.raises(EmptyConversationError) as err:
        embed(_sharegpt(), backend="wordllama")
    msg = str(err.value)
    assert "12 row(s) have an empty conversation" in msg
    assert "rows [3, 8, 11, 14, 20, 27, 33, 35, 41, 44, ...] (12 in all)" in msg
    assert "skip_empty=True (CLI: --skip-empty)" in msg
    assert isinstance(err.value, InputError)


def test_skip_empty_leaves_them_out_and_reports_count_and_rows(caplog):
    ds = _sharegpt()
    with caplog.at_level(logging.WARNING, logger="ds2_hf.embedding.rows"):
        out = embed(ds, backend="wordllama", dim=64, skip_empty=True)
    assert out.num_rows == 60 - len(EMPTY)
    assert sorted(set(range(60)) - set(out["id"])) == EMPTY
    warning = "\n".join(r.getMessage() for r in caplog.records)
    assert "skipped 12 row(s) with an empty conversation" in warning and "rows [3, 8, 11" in warning
    # the kept rows get exactly the vectors they get when embedded on their own
    kept = ds.filter(lambda r: r["id"] not in EMPTY)
    np.testing.assert_array_equal(np.asarray(out.with_format("numpy")["embedding"]),
                                  np.asarray(embed(kept, backend="wordllama", dim=64).with_format("numpy")["embedding"]))


def test_drop_empty_returns_the_skipped_rows_and_refuses_an_all_empty_dataset():
    cfg = EmbeddingConfig(backend="wordllama", skip_empty=True)
    kept, skipped = drop_empty(_sharegpt(), cfg)
    assert skipped.tolist() == EMPTY and kept.num_rows == 48
    same, none = drop_empty(_sharegpt(empty=[]), cfg)
    assert none.size == 0 and same.num_rows == 60
    with pytest.raises(EmptyInputError, match="all 4 rows have an empty conversation"):
        drop_empty(_sharegpt(4, empty=[0, 1, 2, 3]), cfg)
    vectors = _sharegpt(4, empty=[0, 1, 2, 3]).add_column("v", [[1.0, 0.0]] * 4)
    untouched, none = drop_empty(vectors, EmbeddingConfig(backend="column", source="v"))  # no text to check
    assert untouched is vectors and none.size == 0


def test_unrenderable_rows_are_named_with_the_empty_ones_even_when_skipping():
    ds = _sharegpt(10, empty=[2]).map(
        lambda r, i: {"conversations": [{"from": "narrator", "value": "?"}]} if i == 5 else {}, with_indices=True)
    empty, invalid = find_unrenderable(ds, EmbeddingConfig(backend="wordllama"))
    assert empty.tolist() == [2] and [r for r, _ in invalid] == [5]
    for skip in (False, True):
        with pytest.raises(FormatError, match=r"1 row\(s\) cannot be rendered to text: rows \[5\].*unknown role"):
            embed(ds, backend="wordllama", skip_empty=skip)
    with pytest.raises(FormatError, match=r"cannot tell how to render rows with columns \['id'\]"):
        embed(datasets.Dataset.from_dict({"id": [1, 2]}), backend="wordllama")


def test_a_plain_map_names_every_empty_row_of_the_batch():
    emb = Embedder(backend="wordllama", dim=64)
    ds = _sharegpt(20, empty=[3, 8, 11])
    with pytest.raises(EmptyConversationError, match=r"rows \[3, 8, 11\] \(3 in all\)"):
        ds.map(emb, batched=True, batch_size=20, with_indices=True, features=emb.features(ds))
    skipping = Embedder(backend="wordllama", dim=64, skip_empty=True)
    with pytest.raises(EmptyConversationError, match="in a plain dataset.map, filter them out first"):
        skipping(ds[:10], list(range(10)))


def test_scale_paths_check_the_rows_before_starting_ray():
    with pytest.raises(EmptyConversationError, match=r"rows \[3, 8"):
        embed_on_ray(_sharegpt(), backend="wordllama")  # raises before `import ray` / ray.init


def test_cli_embed_names_the_empty_rows_in_one_line(tmp_path, capsys):
    from ds2_hf.cli import main

    _sharegpt(20, empty=[3, 8, 11]).to_json(str(tmp_path / "pool.jsonl"))
    assert main(["embed", str(tmp_path / "pool.jsonl"), str(tmp_path / "out.parquet"), "--backend", "wordllama"]) == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert "rows [3, 8, 11] (3 in all)" in err and "--skip-empty" in err and "Traceback" not in err
    assert not (tmp_path / "out.parquet").exists()


def test_cli_embed_names_empty_rows_then_skips_them_with_the_flag_and_reports_them(tmp_path, capsys):
    import json

    from ds2_hf.cli import main

    src = tmp_path / "pool.jsonl"
    _sharegpt().to_json(src)
    capsys.readouterr()
    out = tmp_path / "emb.parquet"
    assert main(["embed", str(src), str(out), "--backend", "wordllama", "--dim", "64"]) == 2
    err = capsys.readouterr().err
    lines = [line for line in err.split("\n") if line.strip()]
    assert lines[-1].startswith("ds2 embed: error:") and "Traceback" not in err
    assert all("examples" in line or "it/s" in line for line in lines[:-1])  # the rest are progress bars
    assert "[3, 8, 11, 14, 20, 27, 33, 35, 41, 44, ...] (12 in all)" in err and "--skip-empty" in err
    assert not out.exists()

    report = tmp_path / "emb.json"
    assert main(["embed", str(src), str(out), "--backend", "wordllama", "--dim", "64", "--skip-empty",
                 "--report", str(report)]) == 0
    assert "12 empty conversation(s) skipped" in capsys.readouterr().out
    assert datasets.Dataset.from_parquet(str(out)).num_rows == 60 - len(EMPTY)
    section = json.loads(report.read_text())["embedding"]
    assert section["skipped_empty"] == len(EMPTY) and section["skipped_empty_rows"] == EMPTY[:10]


def test_pipeline_records_the_skipped_rows_in_its_report():
    from ds2_hf.pipeline import run_pipeline

    ds = _sharegpt().add_column("rating", [i % 6 for i in range(60)])
    with pytest.raises(InputError, match=r"\(12 in all\)"):
        run_pipeline(ds, embedding=EmbeddingConfig(backend="wordllama", dim=64))
    result = run_pipeline(ds, embedding=EmbeddingConfig(backend="wordllama", dim=64, skip_empty=True),
                          selection=SelectionConfig(k=5))
    assert result.report.embedding.skipped_empty == len(EMPTY)
    assert result.report.embedding.skipped_empty_rows == EMPTY[:10]
    assert result.pool.num_rows == 60 - len(EMPTY)
