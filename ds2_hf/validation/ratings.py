"""Per-row values and ratings: one number per row, integer ratings on a 0..K-1 scale, several raters."""

from __future__ import annotations

import numbers

import numpy as np

from .errors import InputError, RatingError, few


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
