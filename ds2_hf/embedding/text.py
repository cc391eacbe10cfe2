"""Text backends: rows rendered by :class:`ds2_hf.formats.Formatter`, encoded by WordLlama or Sentence Transformers."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from .._import_utils import require
from ..formats import FormatError
from ..validation import InputError
from .base import Backend, EmbeddingBackend, VectorSource
from .rows import render_problems

if TYPE_CHECKING:
    from .config import EmbeddingConfig

DEFAULT_SENTENCE_TRANSFORMER = "BAAI/bge-large-en-v1.5"
DEFAULT_WORDLLAMA = "l2_supercat"
WORDLLAMA_CONFIGS = ("l2_supercat", "l3_supercat")
WORDLLAMA_DIMS = (64, 128, 256, 512, 1024)  # 64-256 come from the weights in the wheel; 512/1024 need a download
WORDLLAMA_SHIPPED_DIM = 256
POOLING_MODES = ("cls", "mean", "max", "mean_sqrt_len_tokens", "weightedmean", "lasttoken")


class TextBackend(Backend):
    """A backend that renders rows to text and encodes them: its instances are :class:`EmbeddingBackend` s."""

    @classmethod
    def from_config(cls, config: EmbeddingConfig) -> EmbeddingBackend:
        """The text encoder of a resolved config."""
        raise NotImplementedError

    @classmethod
    def vector_source(cls, config: EmbeddingConfig) -> VectorSource:
        return TextSource(cls.from_config(config), config)


class TextSource:
    """The vectors of a batch: its rows rendered to text (``config.formatter``, ``max_chars``) and encoded."""

    def __init__(self, encoder: EmbeddingBackend, config: EmbeddingConfig):
        self.encoder = encoder
        self.config = config
        self.dim = encoder.dim

    def bind(self, dataset) -> None:
        return None

    def vectors(self, batch, indices):
        offset = int(indices[0]) if indices is not None and len(indices) else 0
        return self.encoder.encode(render_texts(batch, self.config, offset=offset))


def render_texts(batch, config: EmbeddingConfig, *, offset: int = 0) -> list[str]:
    """The texts a text backend encodes for a batch: ``config.formatter``'s rendering cut to ``max_chars``.

    Every row of the batch that cannot be rendered (empty conversations included) is named in one
    :class:`~ds2_hf.formats.FormatError`; ``offset`` is the dataset row of the batch's first row.

    Examples
    --------
    >>> from ds2_hf.embedding import EmbeddingConfig
    >>> render_texts({"text": ["a cat", "a dog"]}, EmbeddingConfig(backend="wordllama", max_chars=12))
    ['###user: a c', '###user: a d']
    """
    formatter = config.formatter
    try:
        texts = formatter.batch_texts(batch, offset=offset)
    except FormatError:
        empty, invalid = formatter.find_problems(batch, offset=offset)
        raise render_problems(empty, invalid, skip_empty=config.skip_empty) from None
    return texts if config.max_chars is None else [t[: config.max_chars] for t in texts]


class WordLlamaBackend(TextBackend):
    """WordLlama static embeddings, mean-pooled over tokens, loaded from the files in its wheel with no network.

    ``WordLlama.load()``'s default lookup searches for the tokenizer in ``wordllama/tokenizer/`` while the wheel
    ships it in ``wordllama/tokenizers/``, and then tries to download it; passing the package folder as
    ``cache_dir`` finds both files. Other configs / dimensions are looked up in ``~/.cache/wordllama`` too.

    Pooling is the same masked mean as ``WordLlamaInference.embed``, computed as one sparse
    ``(texts x vocab) @ (vocab x dim)`` product over unpadded token lists: no padding to the longest text of a
    batch and no ``(tokens, dim)`` intermediate, so long texts cost memory linear in their token count only.

    Parameters
    ----------
    model : str, default "l2_supercat"
        A WordLlama config name (:data:`WORDLLAMA_CONFIGS`).
    dim : int, default 256
        Output dimension (:data:`WORDLLAMA_DIMS`; 64 / 128 truncate the shipped 256-d weights).
    batch_size : int, default 64
        Texts per tokenisation chunk.

    Examples
    --------
    >>> from ds2_hf.embedding import WordLlamaBackend
    >>> WordLlamaBackend(dim=64).encode(["a cat", "a dog"]).shape
    (2, 64)
    """

    name = "wordllama"

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

    @classmethod
    def check_config(cls, config: EmbeddingConfig) -> None:
        if config.model is not None and config.model not in WORDLLAMA_CONFIGS:
            raise InputError(
                f"model={config.model!r} is not a WordLlama config; expected one of {WORDLLAMA_CONFIGS} "
                '(for a Sentence Transformers model use backend="sentence-transformers")'
            )
        if config.dim is not None and config.dim not in WORDLLAMA_DIMS:
            raise InputError(f"dim={config.dim} is not available for WordLlama; expected one of {WORDLLAMA_DIMS}")

    @classmethod
    def resolve(cls, config: EmbeddingConfig) -> EmbeddingConfig:
        return replace(config, model=config.model or DEFAULT_WORDLLAMA, dim=config.dim or WORDLLAMA_SHIPPED_DIM)

    @classmethod
    def from_config(cls, config: EmbeddingConfig) -> WordLlamaBackend:
        return cls(config.model, dim=config.dim, batch_size=config.batch_size)

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


class SentenceTransformerBackend(TextBackend):
    """Any Sentence Transformers model, with optional pooling override and document-side (no) prompt.

    Parameters
    ----------
    model : str, default "BAAI/bge-large-en-v1.5"
        A Hub id or local path.
    dim : int, optional
        Matryoshka truncation (``truncate_dim``); default the model's full size.
    batch_size : int, default 64
        Texts per forward pass.
    pooling : str, optional
        Replace the model's pooling (:data:`POOLING_MODES`); ``"mean"`` reproduces the DS2 reference code.
    prompt : str, optional
        Prefix for every text; ``None`` embeds documents with no prefix, even if the model declares a default.
    device : str, optional
        ``"cpu"``, ``"cuda"``, ``"cuda:1"``, ... (default: the library's choice).
    max_seq_length : int, optional
        Token truncation length (default: the model's).

    Examples
    --------
    >>> from ds2_hf.embedding import SentenceTransformerBackend
    >>> SentenceTransformerBackend("BAAI/bge-small-en-v1.5", device="cpu").dim  # doctest: +SKIP
    384
    """

    name = "sentence-transformers"

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

    @classmethod
    def resolve(cls, config: EmbeddingConfig) -> EmbeddingConfig:
        return replace(config, model=config.model or DEFAULT_SENTENCE_TRANSFORMER)

    @classmethod
    def from_config(cls, config: EmbeddingConfig, *, device: str | None = None) -> SentenceTransformerBackend:
        """The encoder of a resolved config (``device`` overrides ``config.device``)."""
        return cls(config.model, dim=config.dim, batch_size=config.batch_size, pooling=config.pooling,
                   prompt=config.prompt, device=device or config.device, max_seq_length=config.max_seq_length)

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
    raise InputError(f"pooling={mode!r}: the model has no Pooling module to replace (modules: {list(model)})")
