"""The ``datasets`` face of the embedding stage: the :class:`Embedder` map callable, :func:`embed` and
:func:`embed_texts`."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from .. import columns as _columns
from ..validation import EmbeddingError, InputError, InputTypeError, check_dataset
from .backends import load_backend
from .base import VectorSource, check_dimension, finalize, row_names
from .config import EmbeddingConfig, make_config
from .rows import drop_empty


class Embedder:
    """``datasets.map`` callable that adds a fixed-length, unit-normalised float32 ``embedding`` column.

    A config-only object: the model loads on the first call and is dropped when pickled, so hashing it for the
    ``datasets`` fingerprint is instant and two ``Embedder`` objects with the same config hit the same cache.

    Parameters
    ----------
    config : EmbeddingConfig, optional
        The full configuration; keyword options override its fields.
    **options
        Any :class:`EmbeddingConfig` field (``backend=``, ``model=``, ``dim=``, ``column=``, ...).

    Notes
    -----
    The callable returns ``{column: float32 array (n, d)}``. ``datasets`` stores such an array as a variable-length
    list unless told the type, so pass ``features=embedder.features(dataset)`` to ``map`` (or use :func:`embed`,
    which does) to get an Arrow ``fixed_size_list<float>[d]``. The ``"npy"`` backend needs
    ``with_indices=True``; with it, errors name dataset rows instead of batch positions.

    Examples
    --------
    >>> import datasets
    >>> from ds2_hf import Embedder
    >>> ds = datasets.Dataset.from_dict({"text": ["a cat", "a dog", "stock prices fell"]})
    >>> emb = Embedder(backend="wordllama", dim=128)
    >>> ds = ds.map(emb, batched=True, with_indices=True, features=emb.features(ds))
    >>> ds.features["embedding"]
    List(Value('float32'), length=128)
    """

    def __init__(self, config: EmbeddingConfig | None = None, **options: Any):
        self.config = make_config(config, options).resolved()
        self._source_id = self.config.backend_class.source_identity(self.config)
        self._source: VectorSource | None = None

    # picklable, config-only state: the loaded model never reaches dill / the fingerprint
    def __getstate__(self) -> dict[str, Any]:
        return {"config": self.config, "_source_id": self._source_id}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.config = state["config"]
        self._source_id = state["_source_id"]
        self._source = None

    def __repr__(self) -> str:
        c = self.config
        key, what = c.describe()
        return f"Embedder(backend={c.backend!r}, {key}={what!r}, dim={c.dim}, column={c.column!r})"

    def _vector_source(self) -> VectorSource:
        if self._source is None:
            self._source = self.config.backend_class.vector_source(self.config)
        return self._source

    def dimension(self, dataset=None) -> int:
        """Output dimension ``d``. Loads the model; with ``dataset``, also checks the source against it (the
        ``"column"`` backend learns ``d`` from it, the ``"npy"`` backend checks the row count)."""
        src = self._vector_source()
        if dataset is not None:
            src.bind(dataset)
        if src.dim is None:
            raise InputError(f"backend={self.config.backend!r}: the dimension is known once a dataset is given "
                             "(dimension(dataset))")
        if self.config.dim is not None and src.dim != self.config.dim:
            raise EmbeddingError(f"the {self.config.backend} source has dimension {src.dim}, but dim={self.config.dim}")
        return int(src.dim)

    def features(self, dataset):
        """``dataset.features`` plus the output column as ``List(Value("float32"), length=d)``."""
        import datasets

        self.check_columns(dataset.column_names)
        feats = dataset.features.copy()
        feats[self.config.column] = datasets.List(datasets.Value("float32"), length=self.dimension(dataset))
        return feats

    def check_columns(self, existing: Sequence[str]) -> None:
        """Raise :class:`ds2_hf.columns.ColumnExistsError` if the output column exists and ``overwrite`` is off."""
        c = self.config
        in_place = c.backend_class.writes_in_place(c)
        _columns.check_no_overwrite(existing, [c.column], option="column", overwrite=c.overwrite or in_place)

    def __call__(self, batch: Mapping[str, Sequence[Any]], indices: Sequence[int] | None = None) -> dict[str, np.ndarray]:
        """Embed one batch (``datasets.map(..., batched=True)``): returns ``{column: float32 (n, d)}``."""
        self.check_columns(batch.keys())
        vectors = self._vector_source().vectors(batch, indices)
        rows = row_names(len(vectors), indices)
        check_dimension(vectors, self.config.dim, rows=rows, what=f"the {self.config.backend} backend")
        return {self.config.column: finalize(vectors, normalize=self.config.normalize, rows=rows)}


def prepare(dataset, embedder: Embedder):
    """Check a dataset before any model loads: a non-empty ``Dataset``, no output column in the way, and (text
    backends) every row renderable.

    Returns the rows to embed: ``dataset``, or it without its empty conversations when ``skip_empty`` is set (see
    :func:`~ds2_hf.embedding.rows.drop_empty`).
    """
    check_dataset(dataset, what="embed")
    embedder.check_columns(dataset.column_names)
    return drop_empty(dataset, embedder.config)[0]


def embed(
    dataset,
    config: EmbeddingConfig | None = None,
    *,
    map_batch_size: int = 1000,
    num_proc: int | None = None,
    load_from_cache_file: bool | None = None,
    **options: Any,
):
    """Add a fixed-length, unit-normalised float32 embedding column to a dataset.

    Parameters
    ----------
    dataset : datasets.Dataset
        Rows in any format :class:`ds2_hf.formats.Formatter` reads (or with a vector column / aligned ``.npy``).
    config : EmbeddingConfig, optional
        Full configuration; keyword ``options`` override its fields.
    map_batch_size : int, default 1000
        Rows per ``datasets.map`` batch (the model's own batch is ``batch_size``).
    num_proc, load_from_cache_file
        Passed to ``datasets.Dataset.map``.
    **options
        :class:`EmbeddingConfig` fields, e.g. ``backend="wordllama"``, ``dim=128``, ``column="emb"``,
        ``skip_empty=True``.

    Returns
    -------
    datasets.Dataset
        ``dataset`` plus ``config.column``: ``List(Value("float32"), length=d)`` (Arrow ``fixed_size_list``),
        every row of unit L2 norm when ``normalize=True``. Cached by ``datasets`` like any ``map``. With
        ``skip_empty=True``, rows with an empty conversation are left out (a warning names them).

    Raises
    ------
    EmptyInputError
        The dataset has no rows (or, with ``skip_empty``, no row with text).
    FormatError
        Rows that cannot be rendered to text, or empty conversations without ``skip_empty``: all named at once,
        before any model loads.
    ColumnExistsError
        The output column exists (rename with ``column=`` or pass ``overwrite=True``).
    EmbeddingError
        NaN / inf or zero vectors, mixed dimensions; the message names the rows.

    Examples
    --------
    >>> import datasets, numpy as np
    >>> from ds2_hf import embed
    >>> ds = datasets.Dataset.from_dict({"text": ["a cat", "a dog"]})
    >>> out = embed(ds, backend="wordllama")
    >>> X = np.asarray(out.with_format("numpy")[:]["embedding"])
    >>> X.shape, X.dtype, bool(np.allclose(np.linalg.norm(X, axis=1), 1))
    ((2, 256), dtype('float32'), True)
    >>> embed(datasets.Dataset.from_dict({"text": ["a cat", " "]}), backend="wordllama", skip_empty=True).num_rows
    1
    """
    embedder = Embedder(config, **options)
    c = embedder.config
    dataset = prepare(dataset, embedder)
    features = embedder.features(dataset)
    key, what = c.describe()
    return dataset.map(
        embedder,
        batched=True,
        batch_size=map_batch_size,
        with_indices=True,
        features=features,
        num_proc=num_proc,
        load_from_cache_file=load_from_cache_file,
        desc=f"Embedding ({c.backend}: {what})",
    )


def embed_texts(texts: Sequence[str], config: EmbeddingConfig | None = None, **options: Any) -> np.ndarray:
    """Embed plain strings with a text backend; pure NumPy in and out.

    Parameters
    ----------
    texts : sequence of str
        The texts, used as they are (no formatter, but ``max_chars`` applies).
    config : EmbeddingConfig, optional
        Configuration (``backend`` must be ``"auto"``, ``"wordllama"`` or ``"sentence-transformers"``).
    **options
        :class:`EmbeddingConfig` fields overriding ``config``.

    Returns
    -------
    numpy.ndarray, shape (len(texts), d), float32
        Unit rows when ``normalize=True``.

    Examples
    --------
    >>> from ds2_hf.embedding import embed_texts
    >>> X = embed_texts(["a cat", "a dog", "stock prices fell"], backend="wordllama")
    >>> X.shape, bool(X[0] @ X[1] > X[0] @ X[2])
    ((3, 256), True)
    """
    config = make_config(config, options).resolved()
    texts = [t if config.max_chars is None else t[: config.max_chars] for t in texts]
    if not all(isinstance(t, str) for t in texts):
        raise InputTypeError("embed_texts() takes a sequence of strings")
    backend = load_backend(config)
    if not texts:
        return np.zeros((0, backend.dim), dtype=np.float32)
    return finalize(backend.encode(texts), normalize=config.normalize)
