"""What an embedding backend is: a registry entry (:class:`Backend`) that knows its options, and the objects it builds.

Every value of ``EmbeddingConfig.backend`` names a :class:`Backend` subclass in :data:`ds2_hf.embedding.BACKENDS`.
The class checks and completes the options that concern it and builds a :class:`VectorSource`, the object that
gives the vectors of one ``datasets.map`` batch. Text backends build theirs around an :class:`EmbeddingBackend`
(a text encoder); stored-vector backends (a column, a ``.npy`` file) are their own source.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, ClassVar, Protocol, runtime_checkable

import numpy as np

from ..validation import EmbeddingError, check_finite, few, row_norms

if TYPE_CHECKING:
    from .config import EmbeddingConfig


@runtime_checkable
class EmbeddingBackend(Protocol):
    """A text encoder: ``encode(texts)`` returns a ``(len(texts), dim)`` float32 array (not necessarily normalised)."""

    @property
    def dim(self) -> int: ...

    def encode(self, texts: Sequence[str]) -> np.ndarray: ...


class VectorSource(Protocol):
    """Where the vectors of a batch come from; ``bind`` checks a whole dataset before ``map`` starts.

    ``dim`` is the output dimension, or ``None`` until a dataset or a batch has shown it. ``vectors`` returns a
    ``(len(batch), dim)`` float array; ``indices`` are the dataset rows of the batch (``None`` in a plain
    ``map`` without ``with_indices``), used to read aligned files and to name rows in errors.
    """

    dim: int | None

    def bind(self, dataset) -> None: ...

    def vectors(self, batch: Mapping[str, Sequence[Any]], indices: Sequence[int] | None) -> np.ndarray: ...


class Backend:
    """Base of the entries of :data:`~ds2_hf.embedding.BACKENDS`: what one ``backend=`` value means.

    Subclasses override the class methods that concern them; the defaults describe a text backend.

    Attributes
    ----------
    name : str
        The ``backend=`` value.
    encodes_text : bool
        The backend renders rows to text and encodes them (it can run on Ray / in a process pool, and
        ``skip_empty`` applies); ``False`` for stored vectors.
    """

    name: ClassVar[str]
    encodes_text: ClassVar[bool] = True

    @classmethod
    def check_config(cls, config: EmbeddingConfig) -> None:
        """Raise :class:`~ds2_hf.validation.InputError` for options this backend cannot honour."""

    @classmethod
    def resolve(cls, config: EmbeddingConfig) -> EmbeddingConfig:
        """``config`` with this backend's defaults filled in (``model``, ``dim``)."""
        return config

    @classmethod
    def describe(cls, config: EmbeddingConfig) -> tuple[str, str | None]:
        """``("model", name)`` or ``("source", column / path)``: what produced the vectors, for logs and reports."""
        return "model", config.model

    @classmethod
    def source_identity(cls, config: EmbeddingConfig) -> tuple | None:
        """Extra fingerprint state (a file's identity), so a changed input is not served from a stale cache."""
        return None

    @classmethod
    def writes_in_place(cls, config: EmbeddingConfig) -> bool:
        """The output column is the input itself (normalising a vector column where it stands)."""
        return False

    @classmethod
    def vector_source(cls, config: EmbeddingConfig) -> VectorSource:
        """Build the :class:`VectorSource` of a resolved config (loads the model)."""
        raise NotImplementedError(f"{cls.__name__} builds no vector source")


def row_names(n: int, indices: Sequence[int] | None) -> list[int]:
    """Dataset row numbers of a batch of ``n`` rows: ``indices`` when known, else ``0..n-1``."""
    return list(range(n)) if indices is None else [int(i) for i in indices]


def finalize(vectors: np.ndarray, *, normalize: bool = True, rows: Sequence[int] | None = None) -> np.ndarray:
    """Validate a ``(n, d)`` block of vectors and (optionally) L2-normalise it.

    Parameters
    ----------
    vectors : array-like, shape (n, d)
        Raw vectors.
    normalize : bool, default True
        Divide every row by its L2 norm.
    rows : sequence of int, optional
        Dataset row numbers of the ``n`` vectors, used in error messages (default ``0..n-1``).

    Returns
    -------
    numpy.ndarray, shape (n, d), float32
        C-contiguous; unit rows when ``normalize``.

    Raises
    ------
    EmbeddingError
        Not two-dimensional, NaN / inf entries, or (when normalising) zero vectors, naming the rows.

    Examples
    --------
    >>> finalize([[3.0, 4.0], [0.0, 2.0]]).tolist()
    [[0.6000000238418579, 0.800000011920929], [0.0, 1.0]]
    >>> finalize([[1.0, 0.0], [0.0, 0.0]], rows=[7, 8])
    Traceback (most recent call last):
    ...
    ds2_hf.validation.EmbeddingError: embeddings have 1 all-zero row(s), e.g. rows [8] (1 in all) ...
    """
    x = np.asarray(vectors, dtype=np.float32)
    if x.ndim != 2:
        raise EmbeddingError(f"expected an (n, d) array of vectors, got shape {x.shape}")
    names = row_names(len(x), rows)
    if normalize:
        x = x / row_norms(x, rows=names)[:, None]
    else:
        check_finite(x, rows=names)
    return np.ascontiguousarray(x, dtype=np.float32)


def check_dimension(vectors: np.ndarray, dim: int | None, *, rows: Sequence[int], what: str) -> None:
    """Raise :class:`EmbeddingError` when a block's width differs from the expected ``dim`` (``None``: any)."""
    if dim is not None and vectors.shape[1] != dim:
        raise EmbeddingError(f"{what} gave vectors of dimension {vectors.shape[1]} for rows {few(rows)}, but the "
                             f"output dimension is {dim}; every row needs a vector of the same length")
