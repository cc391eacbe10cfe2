"""Embedding beyond one process: a Ray Data actor pool of :class:`~ds2_hf.embedding.Embedder`, and Sentence
Transformers' multi-process pool for several GPUs on one node. The output column is the one of
:func:`ds2_hf.embed` (fixed-length, unit-normalised float32).

Both compute the vectors elsewhere and write them, in row order, to an ``(N, d)`` ``.npy`` file (``out_path``;
a temporary file by default). The column is then added from that file by the ``"npy"`` backend, so its checks
and features are the usual ones, and the same file can be given to ``ds2 curate --embeddings``.

=========================  ==================================================================================
function                   where the model runs
=========================  ==================================================================================
:func:`embed_on_ray`       ``actors`` Ray actors, each with its own ``Embedder`` and ``gpus_per_actor`` GPUs
                           (0: CPU actors); rows are rendered to text on the actors
                           (``ray.data.Dataset.map_batches`` with an actor pool).
:func:`embed_multi_process`  one process per device of ``devices`` (``["cuda:0", ..., "cuda:7"]``), Sentence
                           Transformers' ``start_multi_process_pool``; texts are rendered in this process.
=========================  ==================================================================================

Examples
--------
>>> import datasets
>>> from ds2_hf.embedding_scale import embed_on_ray                                      # doctest: +SKIP
>>> ds = datasets.Dataset.from_dict({"text": ["a cat", "a dog"]})                      # doctest: +SKIP
>>> embed_on_ray(ds, actors=2, backend="wordllama").features["embedding"].length       # doctest: +SKIP
256
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Sequence
from typing import Any

import numpy as np

from ._import_utils import require
from .embedding import Embedder, EmbeddingConfig, SentenceTransformerBackend, _make_config, embed, finalize

_ROW = "__ds2_row"


class _EmbedActor:
    """One Ray actor: an :class:`Embedder` (its model loads once per actor) applied to Ray Data batches."""

    def __init__(self, config: EmbeddingConfig):
        self.embedder = Embedder(config)

    def __call__(self, batch) -> dict:
        """A ``pyarrow.Table`` batch -> ``{row id, vector}`` (rows as plain Python values for the formatter)."""
        rows = batch.column(_ROW).to_numpy()
        vectors = self.embedder(batch.drop_columns([_ROW]).to_pydict(), rows.tolist())[self.embedder.config.column]
        return {_ROW: rows, "vector": vectors}


def _text_config(config: EmbeddingConfig | None, options) -> EmbeddingConfig:
    cfg = _make_config(config, options).resolved()
    if cfg.backend not in ("wordllama", "sentence-transformers"):
        raise ValueError(
            f"backend={cfg.backend!r} reads stored vectors, there is no model to spread over workers; use "
            "ds2_hf.embed for it (the Ray and multi-process engines run 'wordllama' and 'sentence-transformers')"
        )
    return cfg


def _attach(dataset, vectors_path: str, cfg: EmbeddingConfig):
    """Add the column from the written ``.npy`` (the ``npy`` backend checks and types it)."""
    return embed(dataset, backend="npy", source=vectors_path, column=cfg.column, overwrite=cfg.overwrite,
                 normalize=cfg.normalize, dim=cfg.dim, load_from_cache_file=False)


def _out_file(out_path: str | os.PathLike | None) -> str:
    if out_path is not None:
        return os.fspath(out_path)
    fd, path = tempfile.mkstemp(suffix=".npy", prefix="ds2-embeddings-")
    os.close(fd)
    return path


def embed_on_ray(dataset, config: EmbeddingConfig | None = None, *, actors: int = 1, gpus_per_actor: float = 0,
                 batch_size: int = 1000, out_path: str | os.PathLike | None = None, address: str | None = None,
                 **options: Any):
    """Embed ``dataset`` on a Ray Data actor pool and add the embedding column.

    Parameters
    ----------
    dataset : datasets.Dataset
    config : EmbeddingConfig, optional
        As for :func:`ds2_hf.embed`; keyword ``options`` override its fields. Text backends only.
    actors : int, default 1
        Actors in the pool, each loading the model once.
    gpus_per_actor : float, default 0
        GPUs reserved by each actor (0: CPU actors; 1 with ``actors`` = number of GPUs fills a node).
    batch_size : int, default 1000
        Rows per Ray Data batch.
    out_path : path, optional
        Where the ``(N, d)`` float32 ``.npy`` of the vectors is written (default: a temporary file).
    address : str, optional
        The Ray cluster to join (default: the running Ray, else a local one).

    Returns
    -------
    datasets.Dataset
        ``dataset`` plus the embedding column, as :func:`ds2_hf.embed` returns it.
    """
    cfg = _text_config(config, options)
    Embedder(cfg).check_columns(dataset.column_names)  # an existing column -> error before any work
    ray = require("ray", extra="ray", purpose="embedding on Ray Data")
    if not ray.is_initialized():
        ray.init(address=address, ignore_reinit_error=True, log_to_driver=False)
    n = len(dataset)
    blocks = max(1, min(-(-n // batch_size), 4 * actors))  # enough blocks to keep every actor busy
    source = ray.data.from_huggingface(dataset.add_column(_ROW, np.arange(n, dtype=np.int64)),
                                       override_num_blocks=blocks)
    vectors = source.map_batches(_EmbedActor, fn_constructor_kwargs={"config": cfg}, batch_size=batch_size,
                                 concurrency=actors, num_gpus=gpus_per_actor or None, batch_format="pyarrow")
    path = _out_file(out_path)
    out = None
    done = 0
    from tqdm.auto import tqdm

    from .atomic import staged

    with staged(path, overwrite=True) as tmp, tqdm(total=n, desc=f"Embedding on Ray ({actors} actors)",
                                                    unit="row") as bar:
        for batch in vectors.iter_batches(batch_size=batch_size, batch_format="numpy"):
            block = np.asarray(batch["vector"], dtype=np.float32)
            if out is None:
                out = np.lib.format.open_memmap(tmp, mode="w+", dtype=np.float32, shape=(n, block.shape[1]))
            out[np.asarray(batch[_ROW])] = block
            done += len(block)
            bar.update(len(block))
        if done != n:
            raise RuntimeError(f"the Ray run returned {done} vectors for {n} rows")
        out.flush()
        del out
    return _attach(dataset, path, cfg)


def embed_multi_process(dataset, config: EmbeddingConfig | None = None, *, devices: Sequence[str],
                        chunk_size: int | None = None, out_path: str | os.PathLike | None = None, **options: Any):
    """Embed ``dataset`` with Sentence Transformers' multi-process pool (one process per device).

    Parameters
    ----------
    dataset : datasets.Dataset
    config : EmbeddingConfig, optional
        ``backend="sentence-transformers"`` (keyword ``options`` override fields).
    devices : sequence of str
        One worker process per entry: ``["cuda:0", "cuda:1", ...]`` (``["cpu", "cpu"]`` works too).
    chunk_size : int, optional
        Texts handed to a worker at a time (Sentence Transformers' default when ``None``).
    out_path : path, optional
        Where the ``(N, d)`` float32 ``.npy`` of the vectors is written (default: a temporary file).

    Returns
    -------
    datasets.Dataset
        ``dataset`` plus the embedding column, as :func:`ds2_hf.embed` returns it.
    """
    cfg = _text_config(config, options)
    if cfg.backend != "sentence-transformers":
        raise ValueError(f"the multi-process pool is Sentence Transformers'; backend={cfg.backend!r} runs with "
                         "ds2_hf.embed or embed_on_ray")
    if not devices:
        raise ValueError("devices= must name at least one device, e.g. ['cuda:0', 'cuda:1']")
    Embedder(cfg).check_columns(dataset.column_names)
    texts: list[str] = []
    for start in range(0, len(dataset), 10_000):
        texts += cfg.formatter.batch_texts(dataset[start : start + 10_000], offset=start)
    if cfg.max_chars is not None:
        texts = [t[: cfg.max_chars] for t in texts]
    backend = SentenceTransformerBackend(cfg.model, dim=cfg.dim, batch_size=cfg.batch_size, pooling=cfg.pooling,
                                         prompt=cfg.prompt, device="cpu", max_seq_length=cfg.max_seq_length)
    model = backend.model
    pool = model.start_multi_process_pool(target_devices=list(devices))
    try:
        vectors = model.encode(texts, pool=pool, prompt=backend.prompt, batch_size=cfg.batch_size,
                               chunk_size=chunk_size, convert_to_numpy=True, normalize_embeddings=False,
                               show_progress_bar=True)
    finally:
        model.stop_multi_process_pool(pool)
    path = _out_file(out_path)
    from .atomic import staged

    with staged(path, overwrite=True) as tmp, open(tmp, "wb") as f:
        np.save(f, finalize(vectors, normalize=False))
    return _attach(dataset, path, cfg)
