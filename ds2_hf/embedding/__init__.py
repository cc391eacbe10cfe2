"""Embed every sample: a fixed-length, unit-normalised ``float32`` vector per row, the geometry DS2 curates on.

Backends (pick one with ``backend=``; ``"auto"`` chooses for you). Each is a class in :data:`BACKENDS`:

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
``"###{role}: {content}\\n"`` text the DS2 reference code embeds). Rows with an empty conversation are refused, all
named in one error, before any model loads; ``skip_empty=True`` leaves them out instead.

=====================  ===============================================================================================
module                 what it holds
=====================  ===============================================================================================
``config``             :class:`EmbeddingConfig` (the stage's options, the cache key)
``base``               the :class:`~ds2_hf.embedding.base.Backend` protocol, :func:`finalize`
``backends``           the registry :data:`BACKENDS` and ``"auto"``
``text``, ``stored``   WordLlama and Sentence Transformers; a vector column and a ``.npy`` file
``rows``               empty and unrenderable rows, found before any model loads
``embedder``           :class:`Embedder` (the ``datasets.map`` callable), :func:`embed`, :func:`embed_texts`
``scale``              :func:`embed_on_ray` (a Ray Data actor pool) and :func:`embed_multi_process`
=====================  ===============================================================================================

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

from ..validation import EmbeddingError
from .backends import BACKENDS, AutoBackend, get_backend, load_backend
from .base import Backend, EmbeddingBackend, VectorSource, finalize
from .config import EmbeddingConfig, config_dict, make_config
from .embedder import Embedder, embed, embed_texts
from .rows import drop_empty, find_unrenderable
from .scale import embed_multi_process, embed_on_ray
from .stored import ColumnBackend, NpyBackend
from .text import (
    DEFAULT_SENTENCE_TRANSFORMER,
    DEFAULT_WORDLLAMA,
    POOLING_MODES,
    WORDLLAMA_CONFIGS,
    WORDLLAMA_DIMS,
    WORDLLAMA_SHIPPED_DIM,
    SentenceTransformerBackend,
    WordLlamaBackend,
)

__all__ = [
    "AutoBackend", "BACKENDS", "Backend", "ColumnBackend", "DEFAULT_SENTENCE_TRANSFORMER", "DEFAULT_WORDLLAMA",
    "EmbeddingBackend", "EmbeddingConfig", "EmbeddingError", "Embedder", "NpyBackend", "POOLING_MODES",
    "SentenceTransformerBackend", "VectorSource", "WORDLLAMA_CONFIGS", "WORDLLAMA_DIMS", "WORDLLAMA_SHIPPED_DIM",
    "WordLlamaBackend", "config_dict", "drop_empty", "embed", "embed_multi_process", "embed_on_ray", "embed_texts",
    "finalize", "find_unrenderable", "get_backend", "load_backend", "make_config",
]
