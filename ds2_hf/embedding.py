"""Embed every sample: a fixed-length, unit-normalised ``float32`` vector per row, the geometry DS2 curates on.

Backends (pick one with ``backend=``; ``"auto"`` chooses for you):

============================  =======================================================================================
backend                       what it does
============================  =======================================================================================
``"sentence-transformers"``   Any Sentence Transformers model; the DS2 default is ``BAAI/bge-large-en-v1.5`` (1024-d).
                              Documents are embedded **without** a query instruction, as DS2 does (BGE's
                              ``"Represent this sentence for searching relevant passages: "`` prefix is for queries
                              only; pass ``prompt=`` to add one). The model's own pooling is used (CLS for BGE); the
                              DS2 reference code mean-pooled BGE instead, which ``pooling="mean"`` reproduces.
``"wordllama"``               WordLlama static token embeddings, mean-pooled. Its wheel ships real 256-d weights
                              (``l2_supercat``), so it runs fully offline on a CPU; ``dim`` 64 / 128 / 256 truncates
                              them (Matryoshka-trained). The offline default.
``"column"``                  Vectors already in a dataset column (``source="my_vectors"``): validated, cast to
                              float32 and normalised.
``"npy"``                     Vectors in a ``.npy`` file of shape ``(N, d)`` aligned with the dataset's rows
                              (``source="vectors.npy"``).
============================  =======================================================================================

``"auto"`` resolves once, when the :class:`Embedder` is built: a ``model`` naming a WordLlama config (``l2_supercat``,
``l3_supercat``) means WordLlama and any other ``model`` means Sentence Transformers; with no ``model`` it picks
Sentence Transformers with ``BAAI/bge-large-en-v1.5`` when that model is in the local Hugging Face cache or the Hub is
reachable (and ``HF_HUB_OFFLINE`` is not set), else WordLlama. The resolved choice is part of the config, so it is
part of the ``datasets`` fingerprint.

Text comes from :class:`ds2_hf.formats.Formatter` (any supported row format; default style ``"reference"``, the
``"###{role}: {content}\\n"`` text the DS2 reference code embeds).

Examples
--------
>>> import datasets
>>> from ds2_hf.embedding import embed, embed_texts
>>> ds = datasets.Dataset.from_dict({"instruction": ["Add 2 and 3.", "Name a colour."], "output": ["5", "Blue"]})
>>> ds = embed(ds, backend="wordllama", dim=64)
>>> ds.features["embedding"]
List(Value('float32'), length=64)
>>> embed_texts(["hello", "world"], backend="wordllama").shape
(2, 256)
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np

from . import columns as _columns
from ._import_utils import require
from .formats import Formatter, as_formatter

logger = logging.getLogger(__name__)

BACKENDS = ("auto", "wordllama", "sentence-transformers", "column", "npy")
DEFAULT_SENTENCE_TRANSFORMER = "BAAI/bge-large-en-v1.5"
DEFAULT_WORDLLAMA = "l2_supercat"
WORDLLAMA_CONFIGS = ("l2_supercat", "l3_supercat")
WORDLLAMA_DIMS = (64, 128, 256, 512, 1024)  # 64-256 come from the weights in the wheel; 512/1024 need a download
WORDLLAMA_SHIPPED_DIM = 256
POOLING_MODES = ("cls", "mean", "max", "mean_sqrt_len_tokens", "weightedmean", "lasttoken")

# Rows whose norm falls below this are reported as zero vectors (empty text, all-padding input, broken source).
_ZERO_NORM = 1e-12


class EmbeddingError(ValueError):
    """Embeddings that cannot be used: NaN / inf values, zero vectors, mixed or wrong dimensions."""


# ---------------------------------------------------------------------------------------------------------------------
# configuration
# ---------------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class EmbeddingConfig:
    """Everything that decides the embedding of a row (and nothing else: it is the cache key).

    Parameters
    ----------
    backend : str, default "auto"
        ``"auto"``, ``"wordllama"``, ``"sentence-transformers"``, ``"column"`` or ``"npy"`` (see the module docs).
    model : str, optional
        Model to load. Sentence Transformers: a Hub id or local path (default ``"BAAI/bge-large-en-v1.5"``).
        WordLlama: a config name (default ``"l2_supercat"``).
    source : str, optional
        ``"column"`` backend: the column holding the vectors. ``"npy"`` backend: path of an ``(N, d)`` ``.npy`` file.
    dim : int, optional
        Output dimension. WordLlama: one of 64, 128, 256 (truncations of the shipped weights; 512 / 1024 need
        the larger weight files), default 256. Sentence Transformers: Matryoshka truncation (``truncate_dim``),
        default the model's full size. Ignored by ``"column"`` / ``"npy"``, which are checked against it when set.
    batch_size : int, default 64
        Texts per model batch (a Sentence Transformers forward pass; a WordLlama tokenisation chunk).
    normalize : bool, default True
        L2-normalise every vector (DS2's k-NN uses cosine similarity = inner product of unit vectors).
    formatter : Formatter, default Formatter()
        How rows become text (format auto-detected, style ``"reference"``). A format name is accepted too.
    max_chars : int, optional
        Truncate each rendered text to this many characters before tokenising (``None`` = keep all; Sentence
        Transformers still truncates at the model's ``max_seq_length`` tokens, 512 for BGE).
    pooling : str, optional
        Sentence Transformers only: replace the model's pooling. ``None`` keeps the model's own (CLS for BGE,
        as BGE documents); ``"mean"`` reproduces the DS2 reference code, which mean-pooled BGE. One of
        ``"cls"``, ``"mean"``, ``"max"``, ``"mean_sqrt_len_tokens"``, ``"weightedmean"``, ``"lasttoken"``.
    prompt : str, optional
        Sentence Transformers only: a prefix for every text, e.g. an instruction. ``None`` (default) embeds the
        texts as documents with no prefix, as DS2 does, even when the model defines a default prompt.
    device : str, optional
        Sentence Transformers only: ``"cpu"``, ``"cuda"``, ``"cuda:1"``, ... (default: the library's choice).
    max_seq_length : int, optional
        Sentence Transformers only: token truncation length (default: the model's, 512 for BGE).
    column : str, default "embedding"
        Name of the output column.
    overwrite : bool, default False
        Replace ``column`` when it already exists instead of raising :class:`ds2_hf.columns.ColumnExistsError`.
    """

    backend: str = "auto"
    model: str | None = None
    source: str | None = None
    dim: int | None = None
    batch_size: int = 64
    normalize: bool = True
    formatter: Formatter = field(default_factory=Formatter)
    max_chars: int | None = None
    pooling: str | None = None
    prompt: str | None = None
    device: str | None = None
    max_seq_length: int | None = None
    column: str = _columns.EMBEDDING
    overwrite: bool = False

    def __post_init__(self) -> None:
        if not isinstance(self.formatter, Formatter):
            object.__setattr__(self, "formatter", as_formatter(self.formatter))
        if self.backend not in BACKENDS:
            raise ValueError(f"backend={self.backend!r} is not supported; expected one of {BACKENDS}")
        if self.backend in ("column", "npy") and not self.source:
            what = "a column name" if self.backend == "column" else "the path of an (N, d) .npy file"
            raise ValueError(f'backend="{self.backend}" needs source=... ({what})')
        if self.backend == "npy" and not Path(self.source).is_file():
            raise FileNotFoundError(f"backend='npy': no such file {self.source!r} (source= must point to a .npy file)")
        if self.backend == "wordllama" and self.model is not None and self.model not in WORDLLAMA_CONFIGS:
            raise ValueError(
                f"model={self.model!r} is not a WordLlama config; expected one of {WORDLLAMA_CONFIGS} "
                '(for a Sentence Transformers model use backend="sentence-transformers")'
            )
        if self.dim is not None:
            if not isinstance(self.dim, int) or self.dim < 1:
                raise ValueError(f"dim={self.dim!r} must be a positive integer")
            if self.backend == "wordllama" and self.dim not in WORDLLAMA_DIMS:
                raise ValueError(f"dim={self.dim} is not available for WordLlama; expected one of {WORDLLAMA_DIMS}")
        for name in ("batch_size", "max_chars", "max_seq_length"):
            value = getattr(self, name)
            if value is not None and (not isinstance(value, int) or value < 1):
                raise ValueError(f"{name}={value!r} must be a positive integer")
        if self.pooling is not None and self.pooling not in POOLING_MODES:
            raise ValueError(f"pooling={self.pooling!r} is not supported; expected None or one of {POOLING_MODES}")
        if not self.column:
            raise ValueError("column= must be a non-empty column name")

    def resolved(self) -> EmbeddingConfig:
        """The same config with ``backend="auto"`` and ``model=None`` replaced by concrete choices."""
        backend = self.backend
        if backend == "auto":
            if self.model is not None:
                backend = "wordllama" if self.model in WORDLLAMA_CONFIGS else "sentence-transformers"
            else:
                backend, reason = _auto_backend()
                logger.info("backend='auto' resolved to %r (%s)", backend, reason)
        model = self.model
        if model is None and backend == "wordllama":
            model = DEFAULT_WORDLLAMA
        elif model is None and backend == "sentence-transformers":
            model = DEFAULT_SENTENCE_TRANSFORMER
        out = replace(self, backend=backend, model=model)
        if out.backend == "wordllama" and out.dim is None:
            out = replace(out, dim=WORDLLAMA_SHIPPED_DIM)
        return out


def _make_config(config: EmbeddingConfig | None, options: Mapping[str, Any]) -> EmbeddingConfig:
    """``config`` (default: ``EmbeddingConfig()``) with keyword ``options`` applied; unknown names are an error."""
    if config is not None and not isinstance(config, EmbeddingConfig):
        raise TypeError(f"config must be an EmbeddingConfig, got {type(config).__name__}")
    fields = EmbeddingConfig.__dataclass_fields__
    unknown = sorted(set(options) - set(fields))
    if unknown:
        raise ValueError(f"unknown embedding option(s) {unknown}; valid options: {sorted(fields)}")
    return replace(config or EmbeddingConfig(), **options)


def _auto_backend() -> tuple[str, str]:
    """Sentence Transformers + BGE when it can be loaded, else WordLlama; returns (backend, reason)."""
    from ._import_utils import is_available

    if not is_available("sentence_transformers"):
        return "wordllama", "sentence-transformers is not installed"
    try:
        from huggingface_hub import try_to_load_from_cache

        cached = try_to_load_from_cache(DEFAULT_SENTENCE_TRANSFORMER, "config.json")
    except Exception:  # noqa: BLE001 - any cache problem just means "not cached"
        cached = None
    if isinstance(cached, str):
        return "sentence-transformers", f"{DEFAULT_SENTENCE_TRANSFORMER} is in the local cache"
    from .io import hub_offline, hub_reachable

    if hub_offline():
        return "wordllama", f"HF_HUB_OFFLINE is set and {DEFAULT_SENTENCE_TRANSFORMER} is not cached"
    if hub_reachable(DEFAULT_SENTENCE_TRANSFORMER):
        return "sentence-transformers", "the Hugging Face Hub is reachable"
    return "wordllama", "the Hugging Face Hub is not reachable"


# ---------------------------------------------------------------------------------------------------------------------
# backends
# ---------------------------------------------------------------------------------------------------------------------


@runtime_checkable
class EmbeddingBackend(Protocol):
    """A text encoder: ``encode(texts)`` returns a ``(len(texts), dim)`` float32 array (not necessarily normalised)."""

    @property
    def dim(self) -> int: ...

    def encode(self, texts: Sequence[str]) -> np.ndarray: ...


class WordLlamaBackend:
    """WordLlama static embeddings, mean-pooled over tokens, loaded from the files in its wheel with no network.

    ``WordLlama.load()``'s default lookup searches for the tokenizer in ``wordllama/tokenizer/`` while the wheel
    ships it in ``wordllama/tokenizers/``, and then tries to download it; passing the package folder as
    ``cache_dir`` finds both files. Other configs / dimensions are looked up in ``~/.cache/wordllama`` too.

    Pooling is the same masked mean as ``WordLlamaInference.embed``, computed as one sparse
    ``(texts x vocab) @ (vocab x dim)`` product over unpadded token lists: no padding to the longest text of a
    batch and no ``(tokens, dim)`` intermediate, so long texts cost memory linear in their token count only.
    """

    def __init__(self, model: str = DEFAULT_WORDLLAMA, dim: int = WORDLLAMA_SHIPPED_DIM, batch_size: int = 64):
        wordllama = _import_wordllama()
        load_dim = max(dim, WORDLLAMA_SHIPPED_DIM)
        trunc = dim if dim < load_dim else None
        errors = []
        for cache_dir in (Path(wordllama.__file__).parent, Path.home() / ".cache" / "wordllama"):
            try:
                inference = wordllama.WordLlama.load(
                    config=model, cache_dir=cache_dir, dim=load_dim, trunc_dim=trunc, disable_download=True
                )
                break
            except FileNotFoundError as err:
                errors.append(f"{cache_dir}: {err}")
        else:
            raise FileNotFoundError(
                f"WordLlama {model!r} at dim {load_dim} is not available offline ({'; '.join(errors)}). The wheel "
                f"ships only {DEFAULT_WORDLLAMA!r} at dims 64/128/256; fetch others once while online with "
                f"`from wordllama import WordLlama; WordLlama.load({model!r}, dim={load_dim})`."
            )
        self._table = np.ascontiguousarray(inference.embedding, dtype=np.float32)
        self._tokenizer = inference.tokenizer
        self._tokenizer.no_padding()
        self._tokenizer.no_truncation()
        self.batch_size = batch_size

    @property
    def dim(self) -> int:
        return int(self._table.shape[1])

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        import scipy.sparse

        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        vocab = self._table.shape[0]
        tokenize = getattr(self._tokenizer, "encode_batch_fast", self._tokenizer.encode_batch)  # fast: no offsets
        for start in range(0, len(texts), self.batch_size):
            chunk = list(texts[start : start + self.batch_size])
            encodings = tokenize(chunk, add_special_tokens=False)
            lengths = np.fromiter((len(e.ids) for e in encodings), dtype=np.int64, count=len(encodings))
            if not lengths.any():
                continue  # all empty: zero vectors, reported by finalize()
            ids = np.concatenate([np.asarray(e.ids, dtype=np.int64) for e in encodings])
            np.clip(ids, 0, vocab - 1, out=ids)
            # mean pooling as one sparse (texts x vocab) @ (vocab x dim) product: row i holds 1/len_i per token
            weights = np.repeat(1.0 / np.maximum(lengths, 1), lengths).astype(np.float32)
            indptr = np.concatenate(([0], np.cumsum(lengths)))
            pool = scipy.sparse.csr_matrix((weights, ids, indptr), shape=(len(chunk), vocab))
            out[start : start + len(chunk)] = pool @ self._table
        return out


def _import_wordllama():
    """Import wordllama without letting its import-time ``logging.basicConfig(level=INFO)`` reconfigure logging."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    try:
        return require("wordllama", purpose="the WordLlama embedding backend")
    finally:
        for handler in root.handlers[:]:
            if handler not in handlers:
                root.removeHandler(handler)
        root.setLevel(level)


class SentenceTransformerBackend:
    """Any Sentence Transformers model, with optional pooling override and document-side (no) prompt."""

    def __init__(
        self,
        model: str = DEFAULT_SENTENCE_TRANSFORMER,
        *,
        dim: int | None = None,
        batch_size: int = 64,
        pooling: str | None = None,
        prompt: str | None = None,
        device: str | None = None,
        max_seq_length: int | None = None,
    ):
        st = require("sentence_transformers", purpose="the Sentence Transformers embedding backend")
        self._model = st.SentenceTransformer(model, device=device, truncate_dim=dim)
        if max_seq_length is not None:
            self._model.max_seq_length = max_seq_length
        if pooling is not None:
            _set_pooling(self._model, pooling)
        self.batch_size = batch_size
        # "" (not None) disables any default prompt the model config declares: documents get no prefix.
        self.prompt = prompt if prompt is not None else ""
        get_dim = getattr(self._model, "get_embedding_dimension", None) or self._model.get_sentence_embedding_dimension
        self._dim = int(dim or get_dim())

    @property
    def dim(self) -> int:
        return self._dim

    @property
    def model(self):
        """The loaded ``SentenceTransformer`` (e.g. for its multi-process pool)."""
        return self._model

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        out = self._model.encode(
            list(texts),
            prompt=self.prompt,
            batch_size=self.batch_size,
            convert_to_numpy=True,
            normalize_embeddings=False,
            show_progress_bar=False,
        )
        return np.asarray(out, dtype=np.float32)


def _set_pooling(model, mode: str) -> None:
    try:  # sentence-transformers >= 6
        from sentence_transformers.sentence_transformer.modules import Pooling
    except ImportError:  # pragma: no cover - older layout
        from sentence_transformers.models import Pooling
    for name, module in model.named_children():
        if isinstance(module, Pooling):
            dim = getattr(module, "embedding_dimension", None) or module.word_embedding_dimension
            model._modules[name] = Pooling(dim, pooling_mode=mode, include_prompt=module.include_prompt)
            return
    raise ValueError(f"pooling={mode!r}: the model has no Pooling module to replace (modules: {list(model)})")


_TEXT_BACKENDS = {
    "wordllama": lambda c: WordLlamaBackend(c.model, dim=c.dim, batch_size=c.batch_size),
    "sentence-transformers": lambda c: SentenceTransformerBackend(
        c.model,
        dim=c.dim,
        batch_size=c.batch_size,
        pooling=c.pooling,
        prompt=c.prompt,
        device=c.device,
        max_seq_length=c.max_seq_length,
    ),
}


def load_backend(config: EmbeddingConfig) -> EmbeddingBackend:
    """Load the text encoder of a resolved config (``wordllama`` or ``sentence-transformers``)."""
    config = config.resolved()
    factory = _TEXT_BACKENDS.get(config.backend)
    if factory is None:
        raise ValueError(
            f"backend={config.backend!r} reads stored vectors, it does not encode text; "
            f"text backends are {sorted(_TEXT_BACKENDS)}"
        )
    return factory(config)


# ---------------------------------------------------------------------------------------------------------------------
# vector sources: where the vectors of a batch come from
# ---------------------------------------------------------------------------------------------------------------------


class _VectorSource(Protocol):
    """Where the vectors of a batch come from; ``bind`` checks a whole dataset before ``map`` starts."""

    dim: int | None

    def bind(self, dataset) -> None: ...

    def vectors(self, batch: Mapping[str, Sequence[Any]], indices: Sequence[int] | None) -> np.ndarray: ...


class _TextSource:
    def __init__(self, config: EmbeddingConfig):
        self.config = config
        self.backend = load_backend(config)
        self.dim = self.backend.dim

    def bind(self, dataset) -> None:
        return None

    def vectors(self, batch, indices):
        offset = int(indices[0]) if indices is not None and len(indices) else 0
        texts = self.config.formatter.batch_texts(batch, offset=offset)
        if self.config.max_chars is not None:
            texts = [t[: self.config.max_chars] for t in texts]
        return self.backend.encode(texts)


class _ColumnSource:
    def __init__(self, config: EmbeddingConfig):
        self.column = config.source
        self.dim = None  # known from bind(dataset), or after the first batch

    def bind(self, dataset) -> None:
        if self.column not in dataset.column_names:
            raise ValueError(
                f"backend='column': the dataset has no column {self.column!r} (columns: {dataset.column_names}); "
                "set source= to the column holding the vectors"
            )
        length = getattr(dataset.features[self.column], "length", -1)
        if length and length > 0:
            self.dim = int(length)
        elif dataset.num_rows and self.dim is None:
            first = dataset[0][self.column]
            self.dim = None if first is None else len(first)

    def vectors(self, batch, indices):
        if self.column not in batch:
            raise ValueError(
                f"backend='column': the dataset has no column {self.column!r} (columns: {sorted(batch)}); "
                "set source= to the column holding the vectors"
            )
        values = batch[self.column]
        rows = _row_names(len(values), indices)
        lengths = [None if v is None else len(v) for v in values]
        missing = [r for r, n in zip(rows, lengths, strict=True) if n is None]
        if missing:
            raise EmbeddingError(f"column {self.column!r} has no vector (null) in rows {_few(missing)}")
        dims = sorted(set(lengths))
        if self.dim is None and len(dims) == 1:
            self.dim = dims[0]
        if len(dims) > 1 or dims[0] != self.dim:
            expected = self.dim if self.dim is not None else max(dims, key=lengths.count)
            bad = [r for r, n in zip(rows, lengths, strict=True) if n != expected]
            raise EmbeddingError(
                f"column {self.column!r} mixes vector lengths (found {sorted(set(dims) | {expected})}): rows "
                f"{_few(bad)} do not have length {expected}. Every row needs a vector of the same dimension; "
                "re-embed those rows or drop them."
            )
        return np.asarray(values, dtype=np.float32).reshape(len(values), -1)


class _NpySource:
    def __init__(self, config: EmbeddingConfig):
        self.path = config.source
        self.array = np.load(self.path, mmap_mode="r")
        if self.array.ndim != 2:
            raise EmbeddingError(f"{self.path!r}: expected an (N, d) array, got shape {self.array.shape}")
        self.dim = int(self.array.shape[1])

    def bind(self, dataset) -> None:
        if self.array.shape[0] != dataset.num_rows:
            raise EmbeddingError(
                f"{self.path!r} holds {self.array.shape[0]} vectors but the dataset has {dataset.num_rows} rows; "
                "the file must hold exactly one vector per dataset row, in order"
            )

    def vectors(self, batch, indices):
        if indices is None:
            raise ValueError(
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


_SOURCES = {"wordllama": _TextSource, "sentence-transformers": _TextSource, "column": _ColumnSource, "npy": _NpySource}


def _row_names(n: int, indices: Sequence[int] | None) -> list[int]:
    return list(range(n)) if indices is None else [int(i) for i in indices]


def _few(rows: Sequence[int], limit: int = 10) -> str:
    shown = ", ".join(str(r) for r in rows[:limit])
    return f"[{shown}{', ...' if len(rows) > limit else ''}] ({len(rows)} in all)"


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
        NaN / inf entries, or (when normalising) zero vectors, naming the rows.
    """
    x = np.asarray(vectors, dtype=np.float32)
    if x.ndim != 2:
        raise EmbeddingError(f"expected an (n, d) array of vectors, got shape {x.shape}")
    names = _row_names(len(x), rows)
    finite = np.isfinite(x).all(axis=1)
    if not finite.all():
        bad = [names[i] for i in np.flatnonzero(~finite)]
        raise EmbeddingError(f"embeddings contain NaN or inf in rows {_few(bad)}; check those rows' inputs")
    if normalize:
        norms = np.linalg.norm(x, axis=1)
        zero = norms < _ZERO_NORM
        if zero.any():
            bad = [names[i] for i in np.flatnonzero(zero)]
            raise EmbeddingError(
                f"rows {_few(bad)} have a zero embedding (usually empty text, or text with no known tokens), "
                "which has no direction to normalise; drop or fix those rows, e.g. "
                "`dataset.filter(lambda r, i: i not in bad_rows, with_indices=True)`"
            )
        x = x / norms[:, None]
    return np.ascontiguousarray(x, dtype=np.float32)


# ---------------------------------------------------------------------------------------------------------------------
# the datasets.map callable
# ---------------------------------------------------------------------------------------------------------------------


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
        self.config = _make_config(config, options).resolved()
        self._source_id = _source_identity(self.config)
        self._source: _VectorSource | None = None

    # picklable, config-only state: the loaded model never reaches dill / the fingerprint
    def __getstate__(self) -> dict[str, Any]:
        return {"config": self.config, "_source_id": self._source_id}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.config = state["config"]
        self._source_id = state["_source_id"]
        self._source = None

    def __repr__(self) -> str:
        c = self.config
        what = c.source if c.backend in ("column", "npy") else c.model
        key = "source" if c.backend in ("column", "npy") else "model"
        return f"Embedder(backend={c.backend!r}, {key}={what!r}, dim={c.dim}, column={c.column!r})"

    def _vector_source(self) -> _VectorSource:
        if self._source is None:
            self._source = _SOURCES[self.config.backend](self.config)
        return self._source

    def dimension(self, dataset=None) -> int:
        """Output dimension ``d``. Loads the model; with ``dataset``, also checks the source against it (the
        ``"column"`` backend learns ``d`` from it, the ``"npy"`` backend checks the row count)."""
        src = self._vector_source()
        if dataset is not None:
            src.bind(dataset)
        if src.dim is None:
            raise ValueError("backend='column': the dimension is known once a dataset is given (dimension(dataset))")
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
        in_place = c.backend == "column" and c.source == c.column
        _columns.check_no_overwrite(existing, [c.column], option="column", overwrite=c.overwrite or in_place)

    def __call__(self, batch: Mapping[str, Sequence[Any]], indices: Sequence[int] | None = None) -> dict[str, np.ndarray]:
        """Embed one batch (``datasets.map(..., batched=True)``): returns ``{column: float32 (n, d)}``."""
        self.check_columns(batch.keys())
        vectors = self._vector_source().vectors(batch, indices)
        if self.config.dim is not None and vectors.shape[1] != self.config.dim:
            raise EmbeddingError(f"got vectors of dimension {vectors.shape[1]}, but dim={self.config.dim}")
        return {self.config.column: finalize(vectors, normalize=self.config.normalize, rows=indices)}


def _source_identity(config: EmbeddingConfig) -> tuple | None:
    """Part of the fingerprint for file sources, so a changed .npy file is not served from a stale cache."""
    if config.backend != "npy":
        return None
    st = os.stat(config.source)
    return (os.path.abspath(config.source), st.st_size, st.st_mtime_ns)


# ---------------------------------------------------------------------------------------------------------------------
# one-call helpers
# ---------------------------------------------------------------------------------------------------------------------


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
        :class:`EmbeddingConfig` fields, e.g. ``backend="wordllama"``, ``dim=128``, ``column="emb"``.

    Returns
    -------
    datasets.Dataset
        ``dataset`` plus ``config.column``: ``List(Value("float32"), length=d)`` (Arrow ``fixed_size_list``),
        every row of unit L2 norm when ``normalize=True``. Cached by ``datasets`` like any ``map``.

    Raises
    ------
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
    """
    embedder = Embedder(config, **options)
    features = embedder.features(dataset)
    c = embedder.config
    what = c.source if c.backend in ("column", "npy") else c.model
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
    config = _make_config(config, options).resolved()
    texts = [t if config.max_chars is None else t[: config.max_chars] for t in texts]
    if not all(isinstance(t, str) for t in texts):
        raise TypeError("embed_texts() takes a sequence of strings")
    backend = load_backend(config)
    if not texts:
        return np.zeros((0, backend.dim), dtype=np.float32)
    return finalize(backend.encode(texts), normalize=config.normalize)


def config_dict(config: EmbeddingConfig) -> dict[str, Any]:
    """A JSON-friendly dict of a config (for reports and dataset cards)."""
    out = asdict(config)
    out["formatter"] = asdict(config.formatter)
    return out
