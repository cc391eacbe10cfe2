"""The embedding stage's configuration: everything that decides the embedding of a row, and nothing else."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

from .. import columns as _columns
from ..formats import Formatter, as_formatter
from ..validation import InputError, merge_options
from .backends import get_backend
from .text import POOLING_MODES


@dataclass(frozen=True)
class EmbeddingConfig:
    """Everything that decides the embedding of a row (and nothing else: it is the cache key).

    Parameters
    ----------
    backend : str, default "auto"
        A name of :data:`ds2_hf.embedding.BACKENDS`: ``"auto"``, ``"wordllama"``, ``"sentence-transformers"``,
        ``"column"`` or ``"npy"`` (see the package docs).
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
    skip_empty : bool, default False
        Text backends: leave rows whose conversation is empty (no message has any text, e.g. a ShareGPT record
        with no turns) out of the output, and log how many and which. ``False`` refuses them, naming every one,
        before any model loads. Only :func:`ds2_hf.embed` and the Ray / multi-process paths can drop rows; a plain
        ``dataset.map(Embedder(...))`` still refuses them. Once rows are skipped, the row numbers of later
        messages (a zero vector, say) count the rows kept.

    Examples
    --------
    >>> from ds2_hf.embedding import EmbeddingConfig
    >>> cfg = EmbeddingConfig(backend="wordllama").resolved()
    >>> cfg.model, cfg.dim
    ('l2_supercat', 256)
    >>> EmbeddingConfig(backend="word-llama")
    Traceback (most recent call last):
    ...
    ds2_hf.validation.InputError: backend='word-llama' is not supported; expected one of ('auto', 'wordllama', ...
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
    skip_empty: bool = False

    def __post_init__(self) -> None:
        if not isinstance(self.formatter, Formatter):
            object.__setattr__(self, "formatter", as_formatter(self.formatter))
        if self.dim is not None and (not isinstance(self.dim, int) or self.dim < 1):
            raise InputError(f"dim={self.dim!r} must be a positive integer")
        get_backend(self.backend).check_config(self)
        for name in ("batch_size", "max_chars", "max_seq_length"):
            value = getattr(self, name)
            if value is not None and (not isinstance(value, int) or value < 1):
                raise InputError(f"{name}={value!r} must be a positive integer")
        if self.pooling is not None and self.pooling not in POOLING_MODES:
            raise InputError(f"pooling={self.pooling!r} is not supported; expected None or one of {POOLING_MODES}")
        if not self.column:
            raise InputError("column= must be a non-empty column name")

    @property
    def backend_class(self):
        """The :class:`~ds2_hf.embedding.base.Backend` class of ``backend``."""
        return get_backend(self.backend)

    def resolved(self) -> EmbeddingConfig:
        """The same config with ``backend="auto"`` and ``model=None`` replaced by concrete choices."""
        return self.backend_class.resolve(self)

    def describe(self) -> tuple[str, str | None]:
        """``("model", name)`` for a text backend, ``("source", column or path)`` for stored vectors."""
        return self.backend_class.describe(self)


def make_config(config: EmbeddingConfig | None, options: Mapping[str, Any]) -> EmbeddingConfig:
    """``config`` (default ``EmbeddingConfig()``) with keyword ``options`` applied.

    Raises
    ------
    UnknownOptionError
        A name that is not an :class:`EmbeddingConfig` field (the message lists the valid ones).

    Examples
    --------
    >>> make_config(None, {"backend": "wordllama", "dim": 64}).dim
    64
    """
    return merge_options(config, options, cls=EmbeddingConfig, what="embedding")


def config_dict(config: EmbeddingConfig) -> dict[str, Any]:
    """A JSON-friendly dict of a config (for reports and dataset cards).

    Examples
    --------
    >>> config_dict(EmbeddingConfig(backend="wordllama"))["formatter"]["style"]
    'reference'
    """
    out = asdict(config)
    out["formatter"] = asdict(config.formatter)
    return out
