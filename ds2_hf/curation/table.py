"""The table side of curation: the Curator's input columns read without Python lists, their content fingerprint,
and its output columns with typed features.

:class:`ColumnSource` is the one read path for a :class:`datasets.Dataset`, the batch ``datasets.map`` passes to
a function (read through its Arrow table), a :class:`pyarrow.Table` and a mapping of columns (lists or NumPy
arrays). Embeddings are read from Arrow buffers as NumPy views, so a 100k x 1024 float32 column costs its own
400 MB once (it cost about 4 GB of Python floats when a ``map`` batch was formatted as lists).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

import numpy as np

from ..columns import CurationColumns
from ..validation import EmbeddingError, InputTypeError, as_matrix

_HASH_BLOCK_ROWS = 16384


class ColumnSource:
    """Read-only, column-wise access to a Dataset, a ``datasets.map`` batch, an Arrow table or a column mapping.

    Parameters
    ----------
    data : datasets.Dataset, pyarrow.Table, datasets' ``LazyBatch`` or mapping of str to list / ndarray

    Examples
    --------
    >>> import numpy as np
    >>> source = ColumnSource({"embedding": np.eye(3, dtype=np.float32), "rating": [0, None, 2]})
    >>> source.num_rows, source.embeddings("embedding").shape, source.ratings("rating")
    (3, (3, 3), [0, None, 2])
    """

    def __init__(self, data) -> None:
        import pyarrow as pa

        self._dataset = self._table = self._mapping = None
        if is_dataset(data):
            self._dataset = data
        elif isinstance(data, pa.Table):
            self._table = data
        elif isinstance(getattr(data, "pa_table", None), pa.Table):  # datasets.map's LazyBatch: read its Arrow
            self._table = data.pa_table
        elif isinstance(data, Mapping):
            self._mapping = data
        else:
            raise InputTypeError(
                f"cannot read columns from a {type(data).__name__}; pass a datasets.Dataset, a pyarrow.Table or a "
                "mapping of column names to lists / arrays"
            )

    @property
    def names(self) -> list[str]:
        """The column names."""
        if self._dataset is not None:
            return list(self._dataset.column_names)
        return list(self._table.column_names) if self._table is not None else list(self._mapping.keys())

    @property
    def num_rows(self) -> int:
        """The number of rows (of a mapping: the length of its first column, 1 for a scalar)."""
        if self._dataset is not None:
            return len(self._dataset)
        if self._table is not None:
            return self._table.num_rows
        first = next(iter(self._mapping.values()), [])
        return len(first) if hasattr(first, "__len__") and not isinstance(first, str) else 1

    def require(self, name: str, option: str, fix: str) -> None:
        """Raise a ``KeyError`` naming the columns, the option that names the column and the fix."""
        if name not in self.names:
            raise KeyError(f"column {name!r} not found (columns: {sorted(self.names)}); {fix}, or name the column "
                           f"with `{option}=...`")

    def _arrow(self, name: str):
        if self._dataset is not None:
            return self._dataset.with_format("arrow", columns=[name])[:][name]
        return self._table[name] if self._table is not None else None

    def embedding_chunks(self, name: str) -> Iterator[np.ndarray]:
        """The embedding column as 2-D NumPy blocks of its rows in order (views of Arrow buffers when it can)."""
        arrow = self._arrow(name)
        if arrow is None:
            yield as_matrix(self._mapping[name], name=f"embedding column {name!r}", dtype=None)
            return
        chunks = arrow.chunks if hasattr(arrow, "chunks") else [arrow]
        dim, start = None, 0
        for chunk in chunks:
            block = embeddings_from_arrow(chunk, name, first_row=start, dim=dim)
            dim, start = block.shape[1], start + len(chunk)
            yield block

    def embeddings(self, name: str) -> np.ndarray:
        """The embedding column as one (N, d) array (no copy when it is one Arrow chunk or one array)."""
        blocks = list(self.embedding_chunks(name))
        return blocks[0] if len(blocks) == 1 else np.concatenate(blocks)

    def ratings(self, name: str):
        """A rating (or audit) column: float64 with NaN for nulls when numeric, else its values as a list.

        The caller validates it (:func:`ds2_hf.validation.rating_codes` names the rows holding text).
        """
        arrow = self._arrow(name)
        if arrow is None:
            return self._mapping[name]
        import pyarrow as pa

        if pa.types.is_integer(arrow.type) or pa.types.is_floating(arrow.type) or pa.types.is_null(arrow.type):
            return np.asarray(arrow.to_numpy(zero_copy_only=False), dtype=np.float64)
        return arrow.to_pylist()

    def values(self, name: str) -> list:
        """A column as a Python list (prompt-group ids)."""
        arrow = self._arrow(name)
        return arrow.to_pylist() if arrow is not None else list(self._mapping[name])

    def text_view(self):
        """What :func:`ds2_hf.duplicates.pool_text_keys` reads: the Dataset, the mapping, or lazy Arrow columns."""
        if self._dataset is not None:
            return self._dataset
        return self._mapping if self._mapping is not None else _PyColumns(self._table)


class _PyColumns(Mapping):
    """An Arrow table's columns as Python lists, each converted when it is read (only the text columns are)."""

    def __init__(self, table) -> None:
        self._table = table

    def __getitem__(self, name: str) -> list:
        return self._table[name].to_pylist()

    def __iter__(self):
        return iter(self._table.column_names)

    def __len__(self) -> int:
        return self._table.num_columns


def is_dataset(obj) -> bool:
    """Is ``obj`` a :class:`datasets.Dataset` (duck-typed: no import of ``datasets``)?"""
    return hasattr(obj, "column_names") and hasattr(obj, "map")


def embeddings_from_arrow(array, name: str, *, first_row: int = 0, dim: int | None = None) -> np.ndarray:
    """One Arrow chunk of list / fixed-size-list embeddings as an (n, d) NumPy view of its buffer.

    Raises
    ------
    EmbeddingError
        Null rows, rows of different lengths, a length other than ``dim``, or values that are not numbers;
        the message names the rows (counted from ``first_row``).
    """
    import pyarrow as pa

    kind = array.type
    if not (pa.types.is_fixed_size_list(kind) or pa.types.is_list(kind) or pa.types.is_large_list(kind)):
        raise EmbeddingError(f"column {name!r} must hold one list of floats per row (an embedding); it holds {kind}. "
                             "Embed the rows first (ds2_hf.embed / `ds2 embed`)")
    if array.null_count:
        rows = (np.flatnonzero(array.is_null().to_numpy(zero_copy_only=False)) + first_row)[:5].tolist()
        raise EmbeddingError(f"column {name!r} has {array.null_count} null embedding(s), e.g. rows {rows}; embed "
                             "every row (ds2_hf.embed / `ds2 embed`) before curating")
    if pa.types.is_fixed_size_list(kind):
        width = kind.list_size
    else:
        lengths = np.diff(np.asarray(array.offsets.to_numpy(zero_copy_only=False)))
        width = int(lengths[0]) if len(lengths) else (dim or 0)
        odd = np.flatnonzero(lengths != (dim if dim is not None else width))
        if odd.size:
            raise EmbeddingError(
                f"column {name!r} has rows of different lengths: row {int(odd[0]) + first_row} has "
                f"{int(lengths[odd[0]])} values where other rows have {dim if dim is not None else width}; "
                "embed every row with one model (ds2_hf.embed) before curating"
            )
    if dim is not None and width != dim:
        raise EmbeddingError(f"column {name!r} has rows of different lengths: row {first_row} has {width} values "
                             f"where earlier rows have {dim}; embed every row with one model (ds2_hf.embed)")
    values = array.flatten()
    if not (pa.types.is_floating(values.type) or pa.types.is_integer(values.type)):
        raise EmbeddingError(f"column {name!r} must hold floats; it holds lists of {values.type}")
    return values.to_numpy(zero_copy_only=False).reshape(len(array), width)


def content_fingerprint(blocks: np.ndarray | Iterable[np.ndarray]) -> str:
    """A digest of an array's content, the same for the same values however they are stored or split.

    Parameters
    ----------
    blocks : ndarray, or iterable of ndarray
        Integer codes of shape (N,) or (N, R) (hashed as int64), or float rows of shape (N, d) (hashed as float32,
        so a float16 memory map and its float32 copy agree), whole or as consecutive row blocks. Large blocks are
        hashed ``16384`` rows at a time: no copy of the whole array is made.

    Returns
    -------
    str
        32 hex digits (BLAKE2b, 128 bits) over the values and the shape.

    Examples
    --------
    >>> import numpy as np
    >>> x = np.arange(6, dtype=np.float32).reshape(3, 2)
    >>> content_fingerprint(x) == content_fingerprint([x[:1], x[1:].astype(np.float16)])
    True
    >>> content_fingerprint(x) == content_fingerprint(x[::-1])
    False
    """
    digest = hashlib.blake2b(digest_size=16)
    rows, tail = 0, ()
    for block in [blocks] if isinstance(blocks, np.ndarray) else blocks:
        block = np.asarray(block)
        dtype = np.int64 if block.dtype.kind in "biu" else np.float32
        for start in range(0, len(block), _HASH_BLOCK_ROWS):
            digest.update(np.ascontiguousarray(block[start: start + _HASH_BLOCK_ROWS], dtype=dtype).data)
        rows, tail = rows + len(block), block.shape[1:]
    digest.update(f"\0shape={(rows, *tail)}".encode())
    return digest.hexdigest()


def output_features(columns: CurationColumns, num_classes: int, with_posterior: bool):
    """The :class:`datasets.Features` of the curation columns."""
    from datasets import Features, List, Value

    feats = {
        columns.curated_rating: Value("int8"),
        columns.confidence: Value("float32"),
        columns.misrated: Value("bool"),
        columns.long_tail: Value("float32"),
        columns.duplicate_group: Value("int64"),
    }
    if with_posterior:
        feats[columns.posterior] = List(Value("float32"), length=num_classes)
    return Features(feats)


def result_columns(result, columns: CurationColumns, index=None, *, with_posterior: bool = True) -> dict[str, Any]:
    """The curation output as a column dict (``index`` selects rows); unrated rows get a null curated rating.

    Parameters
    ----------
    result : CurationResult
    columns : CurationColumns
        Output names.
    index : array-like of int, optional
        Rows to return (default: all).
    with_posterior : bool
        Include the posterior (when the method produced one).
    """
    sl = slice(None) if index is None else np.asarray(index)
    curated = result.curated[sl]
    out = {
        columns.curated_rating: [None if c < 0 else int(c) for c in curated],
        columns.confidence: result.confidence[sl].astype(np.float32),
        columns.misrated: result.misrated[sl],
        columns.long_tail: result.long_tail[sl].astype(np.float32),
        columns.duplicate_group: result.duplicate_group[sl].astype(np.int64),
    }
    if with_posterior and result.posterior is not None:
        out[columns.posterior] = result.posterior[sl].astype(np.float32)
    return out


class FittedRows:
    """What :meth:`Curator.transform` maps: the fitted curation columns of the rows it is given by index.

    ``dataset.map(FittedRows(...), batched=True, with_indices=True)``; the caller checks that the dataset is the
    one the result was fitted on. The k-NN graph is dropped, so hashing it for the ``datasets`` cache stays cheap.
    """

    def __init__(self, result, columns: CurationColumns, *, with_posterior: bool) -> None:
        from dataclasses import replace

        self.result = replace(result, graph=None)
        self.columns = columns
        self.with_posterior = with_posterior

    def __call__(self, batch, indices) -> dict[str, Any]:
        return result_columns(self.result, self.columns, indices, with_posterior=self.with_posterior)

