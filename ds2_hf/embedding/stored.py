"""Stored-vector backends: vectors you already have, in a dataset column or in an ``(N, d)`` ``.npy`` file.

They are validated (:func:`ds2_hf.validation.as_matrix` names ragged and null rows), cast to float32 and, like
every backend's output, normalised by :func:`~ds2_hf.embedding.finalize`.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from ..validation import EmbeddingError, InputError, as_matrix, few
from .base import Backend, VectorSource, check_dimension, row_names

if TYPE_CHECKING:
    from .config import EmbeddingConfig


class StoredBackend(Backend):
    """Base of the backends that read vectors instead of encoding text: ``source`` names where they are."""

    encodes_text = False
    what_source = "the vectors"

    @classmethod
    def check_config(cls, config: EmbeddingConfig) -> None:
        if not config.source:
            raise InputError(f'backend="{cls.name}" needs source=... ({cls.what_source})')
        if config.skip_empty:
            raise InputError(f"skip_empty=True skips rows with no text, but backend={cls.name!r} reads stored "
                             "vectors and renders no text; drop skip_empty, or filter the rows yourself")

    @classmethod
    def describe(cls, config: EmbeddingConfig) -> tuple[str, str | None]:
        return "source", config.source

    @classmethod
    def vector_source(cls, config: EmbeddingConfig) -> VectorSource:
        return cls(config)


class ColumnBackend(StoredBackend):
    """Vectors in a dataset column (``source=`` the column); its length is learned from the features or row 0.

    Examples
    --------
    >>> import datasets
    >>> from ds2_hf import embed
    >>> ds = datasets.Dataset.from_dict({"vec": [[3.0, 4.0], [0.0, 2.0]]})
    >>> embed(ds, backend="column", source="vec")["embedding"][:]
    [[0.6000000238418579, 0.800000011920929], [0.0, 1.0]]
    """

    name = "column"
    what_source = "a column name"

    def __init__(self, config: EmbeddingConfig):
        self.column = config.source
        self.dim: int | None = None  # known from bind(dataset), or after the first batch

    @classmethod
    def writes_in_place(cls, config: EmbeddingConfig) -> bool:
        return config.source == config.column

    def _require_column(self, columns) -> None:
        if self.column not in columns:
            raise InputError(f"backend='column': the dataset has no column {self.column!r} (columns: "
                             f"{sorted(columns)}); set source= to the column holding the vectors")

    def bind(self, dataset) -> None:
        self._require_column(dataset.column_names)
        length = getattr(dataset.features[self.column], "length", -1)
        if length and length > 0:
            self.dim = int(length)
        elif dataset.num_rows and self.dim is None:
            first = dataset[0][self.column]
            self.dim = None if first is None else len(first)

    def vectors(self, batch, indices):
        self._require_column(batch.keys())
        values = batch[self.column]
        rows = row_names(len(values), indices)
        missing = [r for r, v in zip(rows, values, strict=True) if v is None]
        if missing:
            raise EmbeddingError(f"column {self.column!r} has no vector (null) in rows {few(missing)}; embed those "
                                 "rows or drop them")
        x = as_matrix(values, name=f"the vectors of column {self.column!r}", rows=rows)
        if self.dim is None:
            self.dim = int(x.shape[1])
        check_dimension(x, self.dim, rows=rows, what=f"column {self.column!r}")
        return x


class NpyBackend(StoredBackend):
    """Vectors in a ``.npy`` file of shape ``(N, d)`` (``source=`` its path), row ``i`` for dataset row ``i``.

    The file is memory-mapped; its path, size and modification time are part of the ``datasets`` fingerprint.

    Examples
    --------
    >>> import datasets, numpy as np, os, tempfile
    >>> from ds2_hf import embed
    >>> path = os.path.join(tempfile.mkdtemp(), "vectors.npy")
    >>> np.save(path, np.array([[3.0, 4.0], [0.0, 2.0]]))
    >>> embed(datasets.Dataset.from_dict({"id": [0, 1]}), backend="npy", source=path)["embedding"][0]
    [0.6000000238418579, 0.800000011920929]
    """

    name = "npy"
    what_source = "the path of an (N, d) .npy file"

    def __init__(self, config: EmbeddingConfig):
        self.path = config.source
        self.array = as_matrix(np.load(self.path, mmap_mode="r"), name=repr(self.path), dtype=None)
        self.dim = int(self.array.shape[1])

    @classmethod
    def check_config(cls, config: EmbeddingConfig) -> None:
        super().check_config(config)
        if not Path(config.source).is_file():
            raise FileNotFoundError(f"backend='npy': no such file {config.source!r} (source= must point to a .npy "
                                    "file)")

    @classmethod
    def source_identity(cls, config: EmbeddingConfig) -> tuple:
        st = os.stat(config.source)
        return os.path.abspath(config.source), st.st_size, st.st_mtime_ns

    def bind(self, dataset) -> None:
        if self.array.shape[0] != dataset.num_rows:
            raise EmbeddingError(
                f"{self.path!r} holds {self.array.shape[0]} vectors but the dataset has {dataset.num_rows} rows; "
                "the file must hold exactly one vector per dataset row, in order"
            )

    def vectors(self, batch, indices):
        if indices is None:
            raise InputError(
                "backend='npy' takes row i's vector from row i of the file, so it needs the row indices: call "
                "`dataset.map(embedder, batched=True, with_indices=True)` or use `ds2_hf.embed(dataset, ...)`"
            )
        idx = np.asarray(indices, dtype=np.int64)
        if len(idx) and idx.max() >= self.array.shape[0]:
            raise EmbeddingError(
                f"{self.path!r} has {self.array.shape[0]} rows but the dataset has row {int(idx.max())}; "
                "the file must hold one vector per dataset row, in order"
            )
        return np.asarray(self.array[idx], dtype=np.float32)
