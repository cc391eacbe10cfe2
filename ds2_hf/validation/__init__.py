"""The input boundary: every embedding matrix, rating vector and option set a public function accepts is checked
here, once, and every check raises the same kind of error.

**The exception policy.** Bad input raises a :class:`ValueError` subclass whose message names the bad value (the
row, the column, the option), the valid values and the fix. Row-level problems name the rows (the first ten and
how many in all), and a check reports every kind of problem it finds in one message, not only the first. Nothing
expensive runs before the checks: stages call them on their inputs before any rating, embedding or search.

==============================  ================================================================================
check                           what it accepts
==============================  ================================================================================
:func:`merge_options`           keyword options over a config dataclass; an unknown name is an
                                :class:`UnknownOptionError` everywhere (``select``, ``embed``, ``Curator``,
                                ``save_subset``, ``get_task``)
:func:`check_dataset`           a non-empty :class:`datasets.Dataset` (a ``DatasetDict`` gets "pick a split")
:func:`as_matrix`               an (N, d) numeric matrix; ragged or null rows are named
:func:`row_norms`               finite, non-zero rows (NaN / inf and all-zero rows are named)
:func:`validate_embeddings`     both of the above, unit-normalised float32 (the k-NN graph's input)
:func:`as_row_values`           one number per row, ``None`` / NaN = missing (scores, long-tail, lengths)
:func:`rating_codes`            integer ratings in ``0..K-1`` as int64, ``-1`` = unrated; words, fractions and
                                out-of-range values are reported together
:func:`validate_ratings`        the same, plus what curation needs: some rows rated, two values, no empty class
:func:`validate_rating_matrix`  (N, R) ratings of several raters; errors name the rater
==============================  ================================================================================

Examples
--------
>>> from ds2_hf.validation import rating_codes
>>> rating_codes([0, None, 5, float("nan")], 4, num_classes=6).tolist()
[0, -1, 5, -1]
>>> rating_codes(["good", 3, 2.5, 9], 4, num_classes=6)
Traceback (most recent call last):
...
ds2_hf.validation.RatingError: ratings must be integers in 0..5 (None / NaN for unrated rows); 3 row(s) are not: \
rows [0] (1 in all) hold text, e.g. 'good' (map the words to scores first); rows [2] (1 in all) are not whole \
numbers, e.g. 2.5 (round or bin them first; the DS2 scale is 0-5 after compressing 1-10); rows [3] (1 in all) lie \
outside 0..5, e.g. 9 (pass the right num_classes, or compress the scale first: ds2_hf.rating compresses 1-10 to 0-5)
"""

from .embeddings import as_matrix, check_finite, row_norms, validate_embeddings
from .errors import (
    EmbeddingError, EmptyInputError, InputError, InputTypeError, MissingInputError, RatingError, UnknownOptionError,
    UnreadableInputError, few,
)
from .options import check_dataset, merge_options
from .ratings import as_row_values, rating_codes, validate_rating_matrix, validate_ratings

__all__ = [
    "EmbeddingError", "EmptyInputError", "InputError", "InputTypeError", "MissingInputError", "RatingError",
    "UnknownOptionError", "UnreadableInputError", "as_matrix", "as_row_values", "check_dataset", "check_finite", "few", "merge_options", "rating_codes",
    "row_norms", "validate_embeddings", "validate_rating_matrix", "validate_ratings",
]
