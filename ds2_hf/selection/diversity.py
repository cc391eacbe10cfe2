"""Geometry of selection: the exact DEITA-style greedy diversity filter and the k-NN rarity baseline.

Examples
--------
>>> import numpy as np
>>> from ds2_hf.selection.diversity import greedy_diverse
>>> x = np.array([[1, 0], [0.99, 0.1], [0, 1], [0.1, 0.99]], dtype=np.float32)
>>> kept, considered = greedy_diverse(np.arange(4), x, None, 0.9)  # rows 1 and 3 copy rows 0 and 2
>>> kept.tolist(), considered
([0, 2], 4)
"""

from __future__ import annotations

import numpy as np


def _unit_rows(x: np.ndarray) -> np.ndarray:
    x = np.ascontiguousarray(x, dtype=np.float32)
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    return x / np.maximum(norms, np.float32(1e-12))


class _Kept:
    """The rows kept so far: their indices and unit vectors, in a store that doubles when full.

    ``cap`` is the most rows that will ever be kept; the store starts at ``min(cap, capacity)`` rows, so a large
    ``cap`` (e.g. ``k=None`` over a big pool) costs memory only as rows are kept.
    """

    def __init__(self, cap: int, dim: int, capacity: int) -> None:
        self.cap = cap
        self.vecs = np.empty((min(cap, capacity), dim), dtype=np.float32)
        self.idx = np.empty(cap, dtype=np.int64)
        self.n = 0

    @property
    def full(self) -> bool:
        return self.n == self.cap

    def add(self, row: int, vec: np.ndarray) -> None:
        if self.n == self.vecs.shape[0]:
            grown = np.empty((min(self.cap, 2 * self.n), self.vecs.shape[1]), dtype=np.float32)
            grown[: self.n] = self.vecs
            self.vecs = grown
        self.vecs[self.n] = vec
        self.idx[self.n] = row
        self.n += 1

    def far_from(self, vecs: np.ndarray, threshold: np.float32, chunk: int) -> np.ndarray:
        """Mask of the rows of ``vecs`` whose similarity to every kept row is at most ``threshold``.

        The kept rows are compared in chunks of ``chunk``, so memory stays at ``len(vecs) * chunk`` floats; rows
        already rejected are not compared again.
        """
        alive = np.ones(len(vecs), dtype=bool)
        for c0 in range(0, self.n, chunk):
            rows = np.flatnonzero(alive)
            if rows.size == 0:
                break
            sims = vecs[rows] @ self.vecs[c0 : min(c0 + chunk, self.n)].T
            alive[rows[(sims > threshold).any(axis=1)]] = False
        return alive


def _keep_in_order(kept: _Kept, cand: np.ndarray, vecs: np.ndarray, rows: np.ndarray, threshold: np.float32) -> int:
    """Keep the survivors ``rows`` of a block in order, each one removing its close successors.

    Returns how many candidates of the block were examined (all of them, unless ``kept`` filled up).
    """
    close = (vecs[rows] @ vecs[rows].T) > threshold
    ok = np.ones(rows.size, dtype=bool)
    for j in range(rows.size):
        if not ok[j]:
            continue
        kept.add(cand[rows[j]], vecs[rows[j]])
        if kept.full:
            return int(rows[j]) + 1
        ok[j + 1 :] &= ~close[j, j + 1 :]
    return cand.size


def greedy_diverse(
    order: np.ndarray, embeddings: np.ndarray, k: int | None, threshold: float, *, block: int = 1024,
    chunk: int = 8192, capacity: int = 16_384,
) -> tuple[np.ndarray, int]:
    """Exact DEITA-style greedy filter: walk ``order`` and keep the rows not too similar to a kept row.

    A row is kept unless its cosine similarity to a row kept before it exceeds ``threshold``; the walk stops
    after ``k`` kept rows. Candidates are processed in blocks of ``block``: one matrix product against the kept
    rows (in chunks of ``chunk`` rows) rejects most of them, and a small within-block pass resolves the survivors
    in order, so the result equals the one-row-at-a-time loop. The store of kept vectors starts at ``capacity``
    rows and doubles when full. Cost: about ``n_considered * n_kept * d`` multiply-adds.

    Parameters
    ----------
    order : ndarray of int64, shape (M,)
        Candidate rows, best first.
    embeddings : ndarray of shape (N, d)
        Row embeddings, any scale (rows are L2-normalised here).
    k : int or None
        Rows to keep (``None`` = as many as pass the filter).
    threshold : float
        Largest allowed cosine similarity to a kept row, in ``[-1, 1]``.

    Returns
    -------
    kept : ndarray of int64, shape (n_kept,)
        The kept rows, in ``order`` order.
    n_considered : int
        How many candidates were examined.

    Examples
    --------
    >>> import numpy as np
    >>> x = np.array([[1, 0], [1, 0.05], [0, 1]], dtype=np.float32)
    >>> greedy_diverse(np.array([1, 0, 2]), x, 1, 0.9)
    (array([1]), 1)
    """
    from tqdm.auto import tqdm

    n_order = order.size
    cap = n_order if k is None else min(k, n_order)
    if cap == 0:
        return np.empty(0, dtype=np.int64), 0
    kept = _Kept(cap, embeddings.shape[1], capacity)
    thr = np.float32(threshold)
    n_considered = 0
    with tqdm(total=cap, desc="diversity filter", unit="row", disable=n_order < 50_000, leave=False) as bar:
        for start in range(0, n_order, block):
            cand = order[start : start + block]
            vecs = _unit_rows(embeddings[cand])
            rows = np.flatnonzero(kept.far_from(vecs, thr, chunk))
            n_before = kept.n
            n_considered += _keep_in_order(kept, cand, vecs, rows, thr) if rows.size else cand.size
            bar.update(kept.n - n_before)
            if kept.full:
                break
    return kept.idx[: kept.n].copy(), n_considered


def mean_knn_distance(embeddings: np.ndarray, k: int = 10) -> np.ndarray:
    """Mean cosine distance of every row to its ``k`` nearest other rows (the paper's k-NN rarity baseline).

    The neighbours come from :func:`ds2_hf.knn.build_knn_graph` (exact faiss search for small pools, measured-recall
    IVF above its work threshold).

    Parameters
    ----------
    embeddings : ndarray of shape (N, d)
        Any float dtype; rows are L2-normalised internally (all-zero rows are rejected).
    k : int, default 10
        Neighbours per row (self excluded). Capped at ``N - 1``.

    Returns
    -------
    ndarray of shape (N,), float64
        ``1 - mean cosine similarity`` to the ``k`` neighbours, in ``[0, 2]``; higher = rarer. Zero when ``N == 1``.

    Examples
    --------
    >>> import numpy as np
    >>> x = np.array([[1, 0], [1, 0.01], [0, 1]], dtype=np.float32)
    >>> mean_knn_distance(x, k=1).round(2)
    array([0.  , 0.  , 0.99])
    """
    from ..knn import build_knn_graph

    n = np.shape(embeddings)[0]
    k = min(int(k), n - 1)
    if k <= 0:
        return np.zeros(n, dtype=np.float64)
    graph = build_knn_graph(embeddings, k, progress=n >= 50_000)
    return 1.0 - np.asarray(graph.similarities, dtype=np.float64).mean(axis=1)
