"""The long-tail (diversity) score: how far a sample lies from its nearest neighbours. Higher = rarer."""

from __future__ import annotations

import numpy as np

from ..knn import KnnGraph


def long_tail_score(graph: KnnGraph, k: int = 10) -> np.ndarray:
    """Mean cosine distance ``1 - s`` to the ``k`` nearest other samples.

    Parameters
    ----------
    graph : KnnGraph
        k-NN graph with at least ``k`` neighbours per row.
    k : int, default 10
        Neighbours averaged (the paper's ``k``).

    Returns
    -------
    ndarray of float32, shape (N,)
        In [0, 2]; higher = farther from its neighbours = rarer / more diverse.
    """
    k = min(k, graph.k)
    return (1.0 - graph.similarities[:, :k].astype(np.float64)).mean(axis=1).astype(np.float32)


def reference_long_tail_score(graph: KnnGraph, k: int = 10, *, duplicate_quirk: bool = False) -> np.ndarray:
    """The reference code's score: ``round(2 * sigmoid(x) - 1, 4)`` of a mean distance ``x`` that includes self.

    Without the duplicate quirk, ``x`` averages self (distance 0) and the ``k - 1`` nearest others. With it,
    the doubled dataset makes the list ``self, copy, n1, n1', n2, n2', ...``, so ``x = 0.2 * (d1 + .. + d4)``
    for ``k = 10`` (only ``k / 2 - 1`` distinct neighbours are used).
    """
    d = 1.0 - graph.similarities.astype(np.float64)
    if duplicate_quirk:
        m = k // 2 - 1
        x = 2.0 * d[:, :m].sum(axis=1) / k
    else:
        x = d[:, : k - 1].sum(axis=1) / k
    return np.round(2.0 / (1.0 + np.exp(-x)) - 1.0, 4).astype(np.float32)
