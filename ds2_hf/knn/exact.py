"""Exact search: faiss ``IndexFlatIP`` over in-memory rows, blocked products over memory-mapped rows, and the
exact neighbours of a query sample (the reference every recall is measured against).

A *kernel* does the distance products: :class:`CpuKernel` (faiss on the CPU) here, ``GpuKernel`` in
:mod:`ds2_hf.knn.gpu`. Everything above the kernel is the same on both devices.
"""

from __future__ import annotations

import math

import numpy as np

from .._import_utils import require
from .graph import id_dtype, strip_self


class CpuKernel:
    """faiss on the CPU: ``knn(xq, xb, k)`` top-k inner products and a flat inner-product index."""

    name = "cpu"

    def __init__(self):
        self.faiss = require("faiss", purpose="the k-NN graph")

    def knn(self, xq: np.ndarray, xb: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """``(sims, ids)`` of the ``k`` largest inner products of each row of ``xq`` among the rows of ``xb``."""
        return self.faiss.knn(xq, xb, k, metric=self.faiss.METRIC_INNER_PRODUCT)

    def flat_index(self, d: int):
        return self.faiss.IndexFlatIP(d)


def search_index(index, x, k: int, batch_size: int, desc: str | None = None) -> tuple[np.ndarray, np.ndarray]:
    """The ``k`` nearest other rows of every row of ``x`` in a faiss ``index`` over ``x``, searched in batches.

    Returns ``(ids, sims)``, each (N, k): ids of :func:`~ds2_hf.knn.graph.id_dtype`, self stripped batch by batch
    (:func:`~ds2_hf.knn.graph.strip_self`), so no (N, k + 1) int64 result is ever held.
    """
    n = len(x)
    ids = np.empty((n, k), dtype=id_dtype(n))
    sims = np.empty((n, k), dtype=np.float32)
    starts = range(0, n, batch_size)
    if desc and n > batch_size:
        from tqdm.auto import tqdm

        starts = tqdm(starts, desc=desc, unit="batch", total=math.ceil(n / batch_size))
    for s in starts:
        d, i = index.search(np.ascontiguousarray(x[s : s + batch_size]), k + 1)
        ids[s : s + len(i)], sims[s : s + len(i)] = strip_self(i, d, np.arange(s, s + len(i)), k)
    return ids, sims


def exact_graph(x, k: int, batch_size: int, kernel, *, progress: bool) -> tuple[np.ndarray, np.ndarray]:
    """Exact top-``k`` (self excluded) of every row: a flat index over in-memory rows, blocked products over
    memory-mapped rows (:class:`~ds2_hf.knn.blocked.MappedRows`), which are never copied whole."""
    n = len(x)
    if isinstance(x, np.ndarray):
        index = kernel.flat_index(x.shape[1])
        index.add(x)
        return search_index(index, x, k, batch_size, "exact k-NN" if progress else None)
    ids = np.empty((n, k), dtype=id_dtype(n))
    sims = np.empty((n, k), dtype=np.float32)
    starts = range(0, n, batch_size)
    if progress:
        from tqdm.auto import tqdm

        starts = tqdm(starts, desc="exact k-NN (blocked)", unit="block", total=math.ceil(n / batch_size))
    for s in starts:
        rows = np.arange(s, min(s + batch_size, n))
        ids[rows], sims[rows] = exact_for_queries(x, rows, k, 8 * batch_size, kernel=kernel, with_sims=True)
    return ids, sims


def exact_for_queries(x, queries: np.ndarray, k: int, block: int, *, kernel=None, with_sims: bool = False,
                      desc: str | None = None):
    """Exact top-k (self excluded) of the rows ``queries`` by blocked products over ``x``, never copying ``x``."""
    kernel = kernel or CpuKernel()
    q = np.ascontiguousarray(x[queries])
    best_s = np.full((len(q), k + 1), -np.inf, dtype=np.float32)
    best_i = np.full((len(q), k + 1), -1, dtype=np.int64)
    starts = range(0, len(x), block)
    if desc:
        from tqdm.auto import tqdm

        starts = tqdm(starts, desc=desc, unit="block", total=math.ceil(len(x) / block))
    for start in starts:
        xb = np.ascontiguousarray(x[start : start + block])
        s, i = kernel.knn(q, xb, min(k + 1, len(xb)))
        cand_s = np.concatenate([best_s, s], axis=1)
        cand_i = np.concatenate([best_i, np.where(i >= 0, i + start, -1)], axis=1)
        top = np.argpartition(-cand_s, k, axis=1)[:, : k + 1]
        best_s = np.take_along_axis(cand_s, top, axis=1)
        best_i = np.take_along_axis(cand_i, top, axis=1)
    order = np.argsort(-best_s, axis=1, kind="stable")
    ids, sims = strip_self(np.take_along_axis(best_i, order, 1), np.take_along_axis(best_s, order, 1), queries, k)
    return (ids, sims) if with_sims else ids


def recall(approx: np.ndarray, exact: np.ndarray) -> float:
    """Share of the exact neighbour ids that the approximate rows contain (recall@k)."""
    hits = sum(len(np.intersect1d(a, e, assume_unique=False)) for a, e in zip(approx, exact))
    return hits / exact.size
