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

from __future__ import annotations

import dataclasses
import numbers
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

__all__ = [
    "EmbeddingError", "EmptyInputError", "InputError", "RatingError", "UnknownOptionError", "as_matrix",
    "as_row_values", "check_dataset", "check_finite", "few", "merge_options", "rating_codes", "row_norms",
    "validate_embeddings", "validate_rating_matrix", "validate_ratings",
]


class InputError(ValueError):
    """Base of every bad-input error of the package: the message names the bad value and the fix."""


class UnknownOptionError(InputError, TypeError):
    """A keyword option that the configuration does not have (also a ``TypeError``, as Python's own
    "unexpected keyword argument" is)."""


class InputTypeError(InputError, TypeError):
    """An argument of the wrong kind (a ``DatasetDict`` where a ``Dataset`` is needed, a dict for a config)."""


class EmptyInputError(InputError):
    """An input with no rows: there is nothing to rate, embed, curate or select."""


class EmbeddingError(InputError):
    """Embeddings that cannot be used: ragged or null rows, NaN / inf values, zero vectors, wrong shapes."""


class RatingError(InputError):
    """Ratings that cannot be curated: text, fractions, values off the scale, no or one rated value."""


def few(rows: Sequence[int] | np.ndarray, limit: int = 10) -> str:
    """``[3, 7, 12] (3 in all)``: the first ``limit`` rows of a problem and how many there are.

    Examples
    --------
    >>> few(list(range(12)))
    '[0, 1, 2, 3, 4, 5, 6, 7, 8, 9, ...] (12 in all)'
    """
    rows = [int(r) for r in rows]
    shown = ", ".join(str(r) for r in rows[:limit])
    return f"[{shown}{', ...' if len(rows) > limit else ''}] ({len(rows)} in all)"


def _names(bad: np.ndarray, rows: Sequence[int] | None, offset: int) -> list[int]:
    """Dataset row numbers of the positions ``bad``: ``rows[bad]`` when given, else ``bad + offset``."""
    return [int(rows[i]) for i in bad] if rows is not None else (np.asarray(bad) + offset).tolist()


# ---------------------------------------------------------------------------------------------------- options


def merge_options(config, options: Mapping[str, Any], *, cls: type, what: str):
    """``config`` (default ``cls()``) with the keyword ``options`` applied.

    Parameters
    ----------
    config : dataclass instance of ``cls``, or None
    options : mapping of field name to value
    cls : type
        The config dataclass.
    what : str
        The stage, for messages ("selection", "embedding", ...).

    Raises
    ------
    UnknownOptionError
        A name that is not a field of ``cls`` (the message lists the valid ones).
    InputTypeError
        ``config`` is not a ``cls``.

    Examples
    --------
    >>> from dataclasses import dataclass
    >>> @dataclass(frozen=True)
    ... class Opts:
    ...     k: int = 10
    >>> merge_options(None, {"k": 3}, cls=Opts, what="demo")
    Opts(k=3)
    >>> merge_options(None, {"kk": 3}, cls=Opts, what="demo")
    Traceback (most recent call last):
    ...
    ds2_hf.validation.UnknownOptionError: unknown demo option(s) ['kk']; valid options: ['k']
    """
    if config is not None and not isinstance(config, cls):
        raise InputTypeError(f"config must be a {cls.__name__}, got {type(config).__name__}; build one with "
                             f"{cls.__name__}(...) or pass the options as keywords")
    valid = sorted(f.name for f in dataclasses.fields(cls) if f.init)
    unknown = sorted(set(options) - set(valid))
    if unknown:
        raise UnknownOptionError(f"unknown {what} option(s) {unknown}; valid options: {valid}")
    if config is None:
        return cls(**options)
    return dataclasses.replace(config, **options) if options else config


def check_dataset(dataset, *, what: str) -> None:
    """Require a non-empty :class:`datasets.Dataset` (``what`` names the step: "select", "embed", ...).

    Raises
    ------
    InputTypeError
        Not a ``Dataset`` (a ``DatasetDict``: the message says to pick a split).
    EmptyInputError
        No rows.
    """
    import datasets

    if not isinstance(dataset, datasets.Dataset):
        hint = " Pick one split first, e.g. `ds['train']`." if isinstance(dataset, datasets.DatasetDict) else ""
        raise InputTypeError(f"{what}() needs a datasets.Dataset, got {type(dataset).__name__}.{hint}")
    if dataset.num_rows == 0:
        raise EmptyInputError(f"the dataset has no rows, so there is nothing to {what}; check the input file or "
                              "the filter that produced it")


# ----------------------------------------------------------------------------------------------- embeddings


def as_matrix(values, *, name: str = "embeddings", dtype=np.float32, rows: Sequence[int] | None = None) -> np.ndarray:
    """One fixed-length numeric vector per row, as an (N, d) array.

    Parameters
    ----------
    values : array-like (N, d), a list of vectors, or an object array of vectors (a ``datasets`` column)
    name : str
        What the values are, for messages.
    dtype : numpy dtype or None, default float32
        Output dtype (``None`` keeps a numeric array's own, e.g. a float16 memory map).
    rows : sequence of int, optional
        Dataset row numbers of the N rows, for messages (default ``0..N-1``).

    Raises
    ------
    EmptyInputError
        No rows.
    EmbeddingError
        Rows of different lengths or null rows (named), not two-dimensional, not numeric.
    """
    if isinstance(values, np.ndarray) and values.dtype != object:
        x = values
    else:
        if len(values) == 0:
            raise EmptyInputError(f"{name} are empty (0 rows); there is nothing to curate or select")
        try:
            x = np.asarray(values, dtype=dtype or np.float32)
        except (ValueError, TypeError):
            _raise_ragged(values, name, rows)
    if x.ndim == 1 and x.size == 0 or x.ndim == 2 and x.shape[0] == 0:
        raise EmptyInputError(f"{name} are empty (0 rows); there is nothing to curate or select")
    if x.dtype == object or x.ndim != 2:
        raise EmbeddingError(f"{name} must be a 2-D array of shape (N, d); got shape {x.shape}")
    if not (np.issubdtype(x.dtype, np.number) or x.dtype == bool):
        raise EmbeddingError(f"{name} must be numbers; got dtype {x.dtype}")
    return x if dtype is None else np.asarray(x, dtype=dtype)


def _raise_ragged(values, name: str, rows: Sequence[int] | None) -> None:
    lengths = [-1 if v is None else (len(v) if hasattr(v, "__len__") else 0) for v in values]
    nulls = [i for i, n in enumerate(lengths) if n < 0]
    sizes = [n for n in lengths if n >= 0]
    common = max(set(sizes), key=sizes.count) if sizes else 0
    odd = [i for i, n in enumerate(lengths) if n >= 0 and n != common]
    parts = []
    if nulls:
        parts.append(f"rows {few(_names(np.asarray(nulls), rows, 0))} have no vector (null)")
    if odd:
        parts.append(f"rows {few(_names(np.asarray(odd), rows, 0))} do not have length {common} (lengths found: "
                     f"{sorted(set(sizes))[:5]})")
    if not parts:
        parts.append("some rows are not vectors of numbers")
    raise EmbeddingError(
        f"{name} have mixed dimensions or missing rows: {'; '.join(parts)}. Every row needs a vector of the same "
        "length: re-embed those rows with one model (ds2_hf.embed), or drop them"
    )


def check_finite(x: np.ndarray, *, name: str = "embeddings", rows: Sequence[int] | None = None,
                 offset: int = 0) -> None:
    """Raise :class:`EmbeddingError` naming the rows of ``x`` (N, d) that hold NaN or inf."""
    finite = np.isfinite(x).all(axis=1)
    if not finite.all():
        bad = _names(np.flatnonzero(~finite), rows, offset)
        raise EmbeddingError(
            f"{name} contain NaN or inf in {len(bad)} row(s), e.g. rows {few(bad)}; re-embed those rows or drop "
            "them"
        )


def row_norms(x: np.ndarray, *, name: str = "embeddings", rows: Sequence[int] | None = None,
              offset: int = 0) -> np.ndarray:
    """L2 norms (float32, shape (N,)) of the rows of ``x``, which must be finite and not all zero.

    ``rows`` are the dataset rows of ``x`` (or ``offset`` the row of ``x[0]``), for messages.

    Raises
    ------
    EmbeddingError
        Rows with NaN / inf, or all-zero rows (usually empty text), named.
    """
    check_finite(x, name=name, rows=rows, offset=offset)
    norms = np.linalg.norm(x, axis=1).astype(np.float32)
    if (norms == 0).any():
        bad = _names(np.flatnonzero(norms == 0), rows, offset)
        raise EmbeddingError(
            f"{name} have {len(bad)} all-zero row(s), e.g. rows {few(bad)} (a zero embedding has no direction: "
            "usually empty text, or text with no known tokens); give those rows text or drop them, e.g. "
            "`dataset.filter(lambda r, i: i not in bad_rows, with_indices=True)`"
        )
    return norms


def validate_embeddings(embeddings, *, normalize: bool = True, name: str = "embeddings") -> np.ndarray:
    """An embedding matrix as C-contiguous float32 with unit rows (rows already of unit norm are not copied).

    Parameters
    ----------
    embeddings : array-like, shape (N, d)
    normalize : bool, default True
        Divide each row by its L2 norm unless every row already has norm 1 (to 1e-4).

    Returns
    -------
    ndarray (N, d) float32

    Raises
    ------
    EmbeddingError, EmptyInputError
        See :func:`as_matrix` and :func:`row_norms`.

    Examples
    --------
    >>> validate_embeddings([[3.0, 4.0], [0.0, 2.0]]).tolist()
    [[0.6000000238418579, 0.800000011920929], [0.0, 1.0]]
    """
    x = as_matrix(embeddings, name=name)
    norms = row_norms(x, name=name)
    if normalize and not np.allclose(norms, 1.0, atol=1e-4):
        x = x / norms[:, None]
    return np.ascontiguousarray(x, dtype=np.float32)


# ------------------------------------------------------------------------------------------- per-row values


def as_row_values(values, *, name: str, n: int | None = None) -> np.ndarray:
    """One number per row as float64, ``None`` / NaN = missing.

    Raises
    ------
    InputError
        Not one-dimensional, not numeric (rows holding text are named), or not ``n`` rows.
    """
    arr = values if isinstance(values, np.ndarray) else np.asarray(values, dtype=object)
    if arr.ndim != 1:
        raise InputError(f"{name} must be one-dimensional, got shape {arr.shape}")
    if arr.dtype == object or arr.dtype.kind in "US":
        floats, text = _floats(arr)
        if text:
            raise InputError(f"{name} must be numeric; rows {few(text)} hold {arr[text[0]]!r}, for example")
        arr = floats
    if not (np.issubdtype(arr.dtype, np.number) or arr.dtype == bool):
        raise InputError(f"{name} must be numeric, got dtype {arr.dtype}")
    if n is not None and arr.shape[0] != n:
        raise InputError(f"{name} has {arr.shape[0]} rows, expected {n} (all inputs must describe the same rows)")
    return arr.astype(np.float64)


def _floats(values) -> tuple[np.ndarray, list[int]]:
    """Values as float64 with NaN for ``None`` and for the values that are not numbers, and the positions of
    those (text, lists)."""
    out = np.full(len(values), np.nan)
    bad = []
    for i, v in enumerate(values):
        if isinstance(v, (numbers.Real, np.bool_)):
            out[i] = float(v)
        elif v is not None:
            bad.append(i)
    return out, bad


# -------------------------------------------------------------------------------------------------- ratings


def _array(values: list) -> np.ndarray:
    """``np.asarray(values)``, or an object array when the values do not form one (lists of different lengths)."""
    try:
        return np.asarray(values)
    except ValueError:
        out = np.empty(len(values), dtype=object)
        out[:] = values
        return out


def rating_codes(ratings, n: int, num_classes: int, *, name: str = "ratings") -> np.ndarray:
    """Ratings as int64 in ``0..K-1`` with ``-1`` for unrated rows (``None`` / NaN / masked / ``-1``).

    Checks the shape, the type and the range only (an audit column may rate a few rows with one value). Every kind
    of bad value (text, fractions, values off the scale) is reported in one message, naming the rows.

    Raises
    ------
    RatingError
        Wrong length or shape, or bad values (naming rows).
    """
    if isinstance(ratings, np.ma.MaskedArray):
        ratings = ratings.astype(float).filled(np.nan)
    arr = ratings if isinstance(ratings, np.ndarray) else _array([np.nan if r is None else r for r in ratings])
    if arr.ndim != 1:
        raise RatingError(f"{name} must be one-dimensional; got shape {arr.shape}")
    if len(arr) != n:
        raise RatingError(f"embeddings have {n} rows but {name} have {len(arr)}; pass one rating (or None) per "
                          "embedding row")
    if arr.dtype.kind in "biuf":
        f, words = arr.astype(np.float64), []
    else:  # text somewhere: read the values one by one (a list given with text becomes all text in numpy)
        values = ratings if isinstance(ratings, np.ndarray) else list(ratings)
        f, words = _floats(values)
    missing = np.isnan(f) | (f == -1)
    frac = np.flatnonzero(~missing & (f != np.round(f)))
    out = np.where(missing | (f != np.round(f)), -1, f).astype(np.int64)
    off = np.flatnonzero(~missing & (f == np.round(f)) & ((out < 0) | (out >= num_classes)))
    problems = []
    if words:
        problems.append(f"rows {few(words)} hold text, e.g. {values[words[0]]!r} (map the words to scores first)")
    if frac.size:
        problems.append(f"rows {few(frac)} are not whole numbers, e.g. {f[frac[0]]:g} (round or bin them first; "
                        "the DS2 scale is 0-5 after compressing 1-10)")
    if off.size:
        problems.append(f"rows {few(off)} lie outside 0..{num_classes - 1}, e.g. {f[off[0]]:g} (pass the right "
                        "num_classes, or compress the scale first: ds2_hf.rating compresses 1-10 to 0-5)")
    if problems:
        count = len(words) + frac.size + off.size
        raise RatingError(f"{name} must be integers in 0..{num_classes - 1} (None / NaN for unrated rows); {count} "
                          f"row(s) are not: {'; '.join(problems)}")
    return out


def validate_ratings(ratings, n: int, num_classes: int, *, allow_empty_classes: bool = False,
                     name: str = "ratings") -> np.ndarray:
    """:func:`rating_codes`, plus what curation needs: some rated rows, two values, every class used.

    Raises
    ------
    RatingError
        Bad values (see :func:`rating_codes`), no rated rows, a single rated value, or a score no row is rated
        with (unless ``allow_empty_classes``).

    Examples
    --------
    >>> validate_ratings([0, 1, None, 2], 4, num_classes=3).tolist()
    [0, 1, -1, 2]
    """
    out = rating_codes(ratings, n, num_classes, name=name)
    rated = out[out >= 0]
    if rated.size == 0:
        raise RatingError(f"no row is rated (every one of the {n} {name} is missing); rate the dataset first "
                          "(ds2_hf.Rater / `ds2 rate`)")
    values = np.unique(rated)
    if values.size == 1:
        raise RatingError(f"every rated row has rating {values[0]}: there is no disagreement to curate. Check the "
                          "rating step")
    empty = sorted(set(range(num_classes)) - set(values.tolist()))
    if empty and not allow_empty_classes:
        top = int(values.max()) + 1
        hint = f"if your scale has only {top} classes pass num_classes={top}; " if empty[0] >= top else ""
        raise RatingError(
            f"no row is rated {empty} of 0..{num_classes - 1}, so the transition matrix cannot be estimated for "
            f"{'it' if len(empty) == 1 else 'them'}: {hint}rate more rows, or pass allow_empty_classes=True"
        )
    return out


def validate_rating_matrix(ratings, num_classes: int, *, names=None, allow_empty_classes: bool = False) -> np.ndarray:
    """Ratings of ``R`` raters as an (N, R) int64 array with ``-1`` where a rater did not rate a row.

    Each column is checked as :func:`validate_ratings` checks one rater (any empty class allowed per rater);
    errors name the column (``names[r]`` or ``"rater r"``).

    Raises
    ------
    RatingError
        Not two-dimensional, a bad column (naming it), or a score no rater used (unless ``allow_empty_classes``).

    Examples
    --------
    >>> validate_rating_matrix([[0, None], [1, 2.0], [float("nan"), 1], [2, -1]], 3).tolist()
    [[0, -1], [1, 2], [-1, 1], [2, -1]]
    """
    if isinstance(ratings, np.ma.MaskedArray):
        ratings = ratings.astype(float).filled(np.nan)
    arr = np.asarray(ratings, dtype=object if not isinstance(ratings, np.ndarray) else None)
    if arr.ndim != 2:
        raise RatingError(f"ratings of several raters must have shape (N, R); got shape {arr.shape}")
    names = list(names) if names is not None else [f"rater {r}" for r in range(arr.shape[1])]
    if len(names) != arr.shape[1]:
        raise RatingError(f"{len(names)} rater names for {arr.shape[1]} rating columns; pass one name per column")
    cols = []
    for r, rater in enumerate(names):
        try:
            cols.append(validate_ratings(list(arr[:, r]) if arr.dtype == object else arr[:, r], len(arr),
                                         num_classes, allow_empty_classes=True))
        except RatingError as err:
            raise RatingError(f"rating column {rater!r}: {err}") from None
    Y = np.stack(cols, axis=1)
    empty = sorted(set(range(num_classes)) - set(np.unique(Y[Y >= 0]).tolist()))
    if empty and not allow_empty_classes:
        raise RatingError(
            f"no rater used score(s) {empty} of 0..{num_classes - 1}, so no transition matrix can be estimated for "
            "them: pass the right num_classes, rate more rows, or pass allow_empty_classes=True"
        )
    return Y
