"""The registry of embedding backends: every ``EmbeddingConfig.backend`` value and the class that implements it.

============================  =======================================================================================
name                          class
============================  =======================================================================================
``"auto"``                    :class:`AutoBackend`: resolves once to one of the two text backends below
``"wordllama"``               :class:`~ds2_hf.embedding.text.WordLlamaBackend` (offline default)
``"sentence-transformers"``   :class:`~ds2_hf.embedding.text.SentenceTransformerBackend`
``"column"``                  :class:`~ds2_hf.embedding.stored.ColumnBackend`
``"npy"``                     :class:`~ds2_hf.embedding.stored.NpyBackend`
============================  =======================================================================================

A new backend is a :class:`~ds2_hf.embedding.base.Backend` subclass added to :data:`BACKENDS`; nothing else
branches on backend names.
"""

from __future__ import annotations

import logging
from dataclasses import replace
from typing import TYPE_CHECKING

from ..validation import InputError
from .base import Backend, EmbeddingBackend, VectorSource
from .stored import ColumnBackend, NpyBackend
from .text import DEFAULT_SENTENCE_TRANSFORMER, WORDLLAMA_CONFIGS, SentenceTransformerBackend, WordLlamaBackend

if TYPE_CHECKING:
    from .config import EmbeddingConfig

logger = logging.getLogger(__name__)


class AutoBackend(Backend):
    """``backend="auto"``: WordLlama for a WordLlama config name, Sentence Transformers for any other ``model``.

    With no ``model`` it picks Sentence Transformers with ``BAAI/bge-large-en-v1.5`` when that model is in the
    local Hugging Face cache or the Hub is reachable (and ``HF_HUB_OFFLINE`` is not set), else WordLlama. The
    choice is made once, when the config is resolved, so it is part of the ``datasets`` fingerprint.
    """

    name = "auto"

    @classmethod
    def resolve(cls, config: EmbeddingConfig) -> EmbeddingConfig:
        if config.model is not None:
            name = WordLlamaBackend.name if config.model in WORDLLAMA_CONFIGS else SentenceTransformerBackend.name
        else:
            name, reason = _auto_backend()
            logger.info("backend='auto' resolved to %r (%s)", name, reason)
        return BACKENDS[name].resolve(replace(config, backend=name))

    @classmethod
    def vector_source(cls, config: EmbeddingConfig) -> VectorSource:
        resolved = cls.resolve(config)
        return BACKENDS[resolved.backend].vector_source(resolved)


def _auto_backend() -> tuple[str, str]:
    """Sentence Transformers + BGE when it can be loaded, else WordLlama; returns (backend, reason)."""
    from .._import_utils import is_available

    if not is_available("sentence_transformers"):
        return "wordllama", "sentence-transformers is not installed"
    try:
        from huggingface_hub import try_to_load_from_cache

        cached = try_to_load_from_cache(DEFAULT_SENTENCE_TRANSFORMER, "config.json")
    except Exception:  # noqa: BLE001 - any cache problem just means "not cached"
        cached = None
    if isinstance(cached, str):
        return "sentence-transformers", f"{DEFAULT_SENTENCE_TRANSFORMER} is in the local cache"
    from ..io import hub_offline, hub_reachable

    if hub_offline():
        return "wordllama", f"HF_HUB_OFFLINE is set and {DEFAULT_SENTENCE_TRANSFORMER} is not cached"
    if hub_reachable(DEFAULT_SENTENCE_TRANSFORMER):
        return "sentence-transformers", "the Hugging Face Hub is reachable"
    return "wordllama", "the Hugging Face Hub is not reachable"


#: Backend name -> class; ``EmbeddingConfig.backend`` takes these names (the CLI's ``--backend`` choices).
BACKENDS: dict[str, type[Backend]] = {
    cls.name: cls for cls in (AutoBackend, WordLlamaBackend, SentenceTransformerBackend, ColumnBackend, NpyBackend)
}


def get_backend(name: str) -> type[Backend]:
    """The :class:`~ds2_hf.embedding.base.Backend` class registered as ``name``.

    Raises
    ------
    InputError
        An unknown name; the message lists the registered ones.

    Examples
    --------
    >>> get_backend("wordllama").__name__
    'WordLlamaBackend'
    """
    try:
        return BACKENDS[name]
    except (KeyError, TypeError):
        raise InputError(f"backend={name!r} is not supported; expected one of {tuple(BACKENDS)}") from None


def load_backend(config: EmbeddingConfig) -> EmbeddingBackend:
    """Load the text encoder of a config (resolved first); stored-vector backends have none.

    Examples
    --------
    >>> from ds2_hf.embedding import EmbeddingConfig, load_backend
    >>> load_backend(EmbeddingConfig(backend="wordllama", dim=64)).dim
    64
    """
    config = config.resolved()
    cls = BACKENDS[config.backend]
    if not cls.encodes_text:
        text = sorted(name for name, c in BACKENDS.items() if c.encodes_text)
        raise InputError(f"backend={config.backend!r} reads stored vectors, it does not encode text; text backends "
                         f"are {text}")
    return cls.from_config(config)
