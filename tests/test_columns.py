"""Tests of ds2_hf.columns: the column contract and the no-overwrite rule."""

from __future__ import annotations

import pytest

from ds2_hf import columns
from ds2_hf.columns import ColumnExistsError, CurationColumns, check_no_overwrite


def test_clash_raises_naming_option_and_columns():
    with pytest.raises(ColumnExistsError) as err:
        check_no_overwrite(["text", "rating", "misrated"], ["misrated", "rating", "new"], option="columns")
    msg = str(err.value)
    assert "['misrated', 'rating']" in msg
    assert "`columns=...`" in msg
    assert "overwrite=True" in msg
    assert "dataset.remove_columns(['misrated', 'rating'])" in msg
    assert isinstance(err.value, ValueError)  # caught by the CLI's error handler


def test_option_name_is_quoted_verbatim():
    with pytest.raises(ColumnExistsError, match="`output_column=...`"):
        check_no_overwrite({"embedding": 1}.keys(), ("embedding",), option="output_column")


def test_no_clash_and_overwrite_pass():
    assert check_no_overwrite(["text"], ["rating"], option="x") is None
    assert check_no_overwrite(["rating"], ["rating"], option="x", overwrite=True) is None
    assert check_no_overwrite([], [], option="x") is None


def test_generators_are_accepted():
    with pytest.raises(ColumnExistsError):
        check_no_overwrite((c for c in ["a", "b"]), (c for c in ["b"]), option="x")


def test_curation_columns_defaults_and_renames():
    assert CurationColumns().names() == (
        "curated_rating", "curation_confidence", "misrated", "long_tail_score", "duplicate_group",
        "curation_posterior",
    )
    renamed = CurationColumns(curated_rating="ds2_rating", misrated="flag")
    assert renamed.names()[0] == "ds2_rating" and renamed.names()[2] == "flag"
    with pytest.raises(AttributeError):
        renamed.misrated = "other"  # frozen


def test_contract_names():
    assert (columns.RATING, columns.RATING_DETAILS, columns.RATING_ERROR, columns.EMBEDDING) == (
        "rating", "rating_details", "rating_error", "embedding",
    )
    assert (columns.CURATED_RATING, columns.CURATION_CONFIDENCE, columns.MISRATED, columns.LONG_TAIL_SCORE,
            columns.DUPLICATE_GROUP, columns.CURATION_POSTERIOR) == CurationColumns().names()
