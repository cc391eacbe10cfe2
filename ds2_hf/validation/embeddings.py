"""Embedding matrices: one fixed-length, finite, non-zero numeric vector per row."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from .errors import EmbeddingError, EmptyInputError, few


def _names(bad: np.ndarray, rows: Sequence[int] | None, offset: int) -> list[int]:
    """Dataset row numbers of the positions ``bad``: ``rows[bad]`` when given, else ``bad + offset``."""
    return [int(rows[i]) for i in bad] if rows is not None else (np.asarray(bad) + offset).tolist()



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

