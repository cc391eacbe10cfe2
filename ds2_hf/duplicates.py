"""Prompt groups and duplicate responses: moved to :mod:`ds2_hf.selection.duplicates`.

This module re-exports its public names for the modules that import them from here (curation reads the prompt
groups and near duplicates, selection takes one row per group).

Examples
--------
>>> from ds2_hf.duplicates import exact_duplicate_groups
>>> exact_duplicate_groups.__module__
'ds2_hf.selection.duplicates'
"""

from .selection.duplicates import (
    MIN_CHARS,
    NEAR_DUPLICATE_THRESHOLD,
    DuplicateSummary,
    exact_duplicate_groups,
    first_of_groups,
    near_duplicate_groups,
    normalize,
    pool_text_keys,
    prompt_and_response,
    text_keys,
)

__all__ = [
    "MIN_CHARS", "NEAR_DUPLICATE_THRESHOLD", "DuplicateSummary", "exact_duplicate_groups", "first_of_groups",
    "near_duplicate_groups", "normalize", "pool_text_keys", "prompt_and_response", "text_keys",
]
