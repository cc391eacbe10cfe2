"""The input boundary (ds2_hf.validation): known bad values are injected and every one must be named."""

from __future__ import annotations

import pickle
from dataclasses import dataclass

import datasets
import numpy as np
import pytest

from ds2_hf import validation as v


@dataclass(frozen=True)
class _Opts:
    k: int = 10
    name: str = "x"


def test_every_error_is_an_input_error_under_its_public_name():
    kinds = (v.UnknownOptionError, v.InputTypeError, v.EmptyInputError, v.MissingInputError,
             v.UnreadableInputError, v.EmbeddingError, v.RatingError)
    for kind in kinds:
        assert issubclass(kind, v.InputError) and issubclass(kind, ValueError)
        assert kind.__module__ == "ds2_hf.validation"
        assert isinstance(pickle.loads(pickle.dumps(kind("m"))), kind)
    assert issubclass(v.UnknownOptionError, TypeError) and issubclass(v.MissingInputError, FileNotFoundError)
    assert issubclass(v.UnreadableInputError, PermissionError)


def test_merge_options():
    assert v.merge_options(_Opts(k=3), {"name": "y"}, cls=_Opts, what="demo") == _Opts(k=3, name="y")
    assert v.merge_options(None, {}, cls=_Opts, what="demo") == _Opts()
    with pytest.raises(v.UnknownOptionError, match=r"unknown demo option\(s\) \['kk', 'zz'\]; valid options: "
                                                   r"\['k', 'name'\]"):
        v.merge_options(None, {"kk": 1, "zz": 2, "k": 3}, cls=_Opts, what="demo")
    with pytest.raises(v.InputTypeError, match="config must be a _Opts, got dict"):
        v.merge_options({"k": 1}, {}, cls=_Opts, what="demo")


def test_check_dataset():
    ds = datasets.Dataset.from_dict({"a": [1, 2]})
    v.check_dataset(ds, what="select")
    with pytest.raises(v.InputTypeError, match=r"Pick one split first, e.g. `ds\['train'\]`"):
        v.check_dataset(datasets.DatasetDict({"train": ds}), what="select")
    with pytest.raises(v.EmptyInputError, match="nothing to select"):
        v.check_dataset(ds.select([]), what="select")


def test_ragged_and_null_embeddings_name_their_rows():
    rows = [[1.0, 0.0]] * 12 + [[1.0, 0.0, 0.0], None, [0.5, 0.5]]
    with pytest.raises(v.EmbeddingError) as info:
        v.as_matrix(rows)
    message = str(info.value)
    assert "rows [13] (1 in all) have no vector (null)" in message
    assert "rows [12] (1 in all) do not have length 2" in message
    with pytest.raises(v.EmbeddingError, match=r"rows \[107\] \(1 in all\) have no vector"):
        v.as_matrix([[1.0], None], rows=[106, 107])
    with pytest.raises(v.EmptyInputError):
        v.as_matrix([])
    with pytest.raises(v.EmbeddingError, match=r"shape \(N, d\); got shape \(3,\)"):
        v.as_matrix(np.ones(3))


def test_nan_and_zero_rows_are_named():
    x = np.ones((20, 4), dtype=np.float32)
    x[[3, 17], 1] = np.nan
    with pytest.raises(v.EmbeddingError, match=r"NaN or inf in 2 row\(s\), e.g. rows \[3, 17\] \(2 in all\)"):
        v.row_norms(x)
    x = np.ones((20, 4), dtype=np.float32)
    x[5] = 0
    with pytest.raises(v.EmbeddingError, match=r"1 all-zero row\(s\), e.g. rows \[105\]"):
        v.row_norms(x, offset=100)


def test_validate_embeddings_normalises_and_keeps_unit_rows():
    unit = np.eye(3, dtype=np.float32)
    assert v.validate_embeddings(unit) is unit  # already C-contiguous float32 unit rows: no copy
    out = v.validate_embeddings([[3.0, 4.0], [0.0, 2.0]])
    np.testing.assert_allclose(np.linalg.norm(out, axis=1), 1.0, rtol=1e-6)
    assert out.dtype == np.float32


def test_every_kind_of_bad_rating_in_one_message():
    ratings = ["good", 3, 2.5, 9, None, float("nan"), -1, "bad"]
    with pytest.raises(v.RatingError) as info:
        v.rating_codes(ratings, len(ratings), num_classes=6)
    message = str(info.value)
    assert "4 row(s) are not" in message
    assert "rows [0, 7] (2 in all) hold text, e.g. 'good'" in message
    assert "rows [2] (1 in all) are not whole numbers, e.g. 2.5" in message
    assert "rows [3] (1 in all) lie outside 0..5, e.g. 9" in message


def test_rating_codes_reads_every_form_of_missing():
    masked = np.ma.MaskedArray([1, 2, 3], mask=[False, True, False])
    assert v.rating_codes(masked, 3, num_classes=6).tolist() == [1, -1, 3]
    assert v.rating_codes([None, float("nan"), -1, 0], 4, num_classes=6).tolist() == [-1, -1, -1, 0]
    with pytest.raises(v.RatingError, match="embeddings have 3 rows but ratings have 2"):
        v.rating_codes([1, 2], 3, num_classes=6)


def test_validate_ratings_needs_something_to_curate():
    with pytest.raises(v.RatingError, match="no row is rated"):
        v.validate_ratings([None, None], 2, num_classes=6)
    with pytest.raises(v.RatingError, match="every rated row has rating 4"):
        v.validate_ratings([4, 4, None], 3, num_classes=6)
    with pytest.raises(v.RatingError, match=r"no row is rated \[3, 4, 5\].*pass num_classes=3"):
        v.validate_ratings([0, 1, 2], 3, num_classes=6)
    assert v.validate_ratings([0, 1, 2], 3, num_classes=6, allow_empty_classes=True).tolist() == [0, 1, 2]


def test_validate_rating_matrix_names_the_rater():
    with pytest.raises(v.RatingError, match=r"rating column 'llama': .*rows \[1\] \(1 in all\) lie outside 0..2"):
        v.validate_rating_matrix([[0, 1], [1, 7], [2, 0]], 3, names=["gpt", "llama"])
    with pytest.raises(v.RatingError, match=r"no rater used score\(s\) \[2\]"):
        v.validate_rating_matrix([[0, 1], [1, 0]], 3)


def test_as_row_values():
    assert v.as_row_values([1, None, 2.5], name="score").tolist()[::2] == [1.0, 2.5]
    with pytest.raises(v.InputError, match=r"score must be numeric; rows \[1\] \(1 in all\) hold 'x'"):
        v.as_row_values([1, "x"], name="score")
    with pytest.raises(v.InputError, match="score has 2 rows, expected 3"):
        v.as_row_values([1, 2], name="score", n=3)
