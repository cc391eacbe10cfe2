"""SelectionConfig and the option checks shared with the NumPy core."""

from __future__ import annotations

import pytest
from selection_pools import LONG_TAIL, SCORES, make_pool

from ds2_hf.selection import SelectionConfig, select, select_indices

@pytest.mark.parametrize("k", [0, -3, 2.5, True])
def test_bad_k_is_rejected(k):
    with pytest.raises(ValueError, match="k="):
        select(make_pool(), k=k)
    with pytest.raises(ValueError, match="k="):
        select_indices("ds2", k=k, scores=SCORES, long_tail=LONG_TAIL)


def test_unknown_strategy_lists_valid_ones():
    with pytest.raises(ValueError, match="valid strategies: .*'ds2'.*'diversity'"):
        select(make_pool(), k=2, strategy="best")
    with pytest.raises(ValueError, match="valid strategies"):
        select_indices("best", k=2, scores=SCORES)


def test_other_bad_options():
    with pytest.raises(ValueError, match="unknown selection option"):
        select(make_pool(), k=2, treshold=4)
    with pytest.raises(ValueError, match="either k"):
        SelectionConfig(k=3, fraction=0.1)
    with pytest.raises(ValueError, match="fraction"):
        SelectionConfig(fraction=1.5)
    with pytest.raises(ValueError, match="diversity_threshold"):
        SelectionConfig(diversity_threshold=2)
    with pytest.raises(ValueError, match="tie_break"):
        SelectionConfig(tie_break="first")
    with pytest.raises(ValueError, match="must be numeric"):
        select(make_pool(), k=2, strategy="score", score_column="source")
    with pytest.raises(ValueError, match="expected 7"):
        select_indices("ds2", k=2, scores=SCORES, long_tail=LONG_TAIL[:-1])
    with pytest.raises(ValueError, match="needs `long_tail`"):
        select_indices("ds2", k=2, scores=SCORES)
