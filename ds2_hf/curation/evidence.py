"""The k-NN evidence of the joint model (:mod:`ds2_hf.curation.joint`): neighbour weights, shared neighbours and
the weighted rating counts each row receives from its neighbours.

A neighbour ``j`` of row ``i`` weighs ``w_ij = alpha * exp(beta * (s_ij - s_i1)) * (snn_ij / snn_i1) ** gamma``
(:class:`Weighting`): its cosine similarity ``s_ij`` and the share ``snn_ij`` of nearest neighbours the two rows
have in common (:func:`shared_neighbours`), both relative to the nearest neighbour. Because a neighbour's evidence
depends only on its rating, a row's evidence reduces to ``votes[i, y] = sum_j w_ij [y_j = y]`` (:class:`Evidence`),
with the *reverse* votes of the rows that list ``i`` among their neighbours added when the evidence is symmetric.

Everything here works through the graph in blocks of rows, so the memory held beyond the graph itself is ``O(N K)``
(the votes) plus ``O(block k^2)``: no (N, k) float64 array of weights or shared-neighbour fractions is ever built.
The shared-neighbour similarities are kept as ``uint8`` counts (:class:`SharedNeighbours`, 1 byte per edge).
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np

#: Rows per block of the blocked graph computations ((b, k) float64 temporaries of 21 MB at k = 40).
BLOCK_ROWS = 1 << 16
#: Edges per ``bincount`` of the reverse votes: pools of up to ``EDGE_BLOCK / k`` rows sum in one pass.
EDGE_BLOCK = 1 << 23


def progress_bar(items, *, desc: str, unit: str, progress: bool, total: int | None = None):
    """``items`` in a tqdm bar when ``progress`` (a long step of the curation), else as they are."""
    if not progress:
        return items
    from tqdm.auto import tqdm

    return tqdm(items, desc=desc, unit=unit, total=total)


def one_hot(y: np.ndarray, K: int) -> np.ndarray:
    """One-hot ratings (float64, shape (len(y), K)); unrated rows (``-1``) are zero rows."""
    out = np.zeros((len(y), K))
    rated = y >= 0
    out[np.flatnonzero(rated), y[rated]] = 1.0
    return out


def row_blocks(n: int, size: int = BLOCK_ROWS):
    """Consecutive slices of at most ``size`` rows covering ``0..n``."""
    return [slice(s, min(s + size, n)) for s in range(0, n, size)]


def edge_weights(s, s_first, snn, alpha: float, beta: float, gamma: float) -> np.ndarray:
    """``alpha * exp(beta * (s - s_first)) * (snn / snn_first) ** gamma`` in float64 (``snn`` = (snn, snn_first))."""
    w = alpha * np.exp(beta * (np.asarray(s, np.float64) - s_first))
    if gamma:
        w = w * (snn[0] / np.maximum(snn[1], 1e-12)) ** gamma
    return w


@dataclass(frozen=True)
class Weighting:
    """How much each of a row's first ``k`` neighbours counts: ``w_ij = alpha * exp(beta * (s_ij - s_i1)) *
    (snn_ij / snn_i1) ** gamma``. The nearest neighbour weighs ``alpha``; ``gamma = 0`` ignores shared neighbours."""

    k: int
    alpha: float
    beta: float = 0.0
    gamma: float = 0.0


def neighbour_weights(sims: np.ndarray, nbr_rated: np.ndarray, alpha: float, beta: float,
                      shared=None, gamma: float = 0.0) -> np.ndarray:
    """Weights ``alpha * exp(beta * (s_ij - s_i1)) * (snn_ij / snn_i1) ** gamma``, zero where ``nbr_rated`` is False.

    Shape (n, k) float64; the nearest neighbour weighs ``alpha``. ``shared`` holds ``snn_ij`` (an array or
    :class:`SharedNeighbours` with at least ``k`` columns); it is needed when ``gamma != 0``.

    Examples
    --------
    >>> import numpy as np
    >>> neighbour_weights(np.array([[0.9, 0.8]]), np.array([[True, True]]), 0.5, 10.0).round(4).tolist()
    [[0.5, 0.1839]]
    """
    snn = None
    if gamma:
        if shared is None:
            raise ValueError(
                f"gamma={gamma} weights neighbours by their shared neighbours: pass shared=shared_neighbours(nbr_ids)"
            )
        snn = (shared[:, : sims.shape[1]], shared[:, :1])
    return np.where(nbr_rated, edge_weights(sims, sims[:, :1], snn, alpha, beta, gamma), 0.0)


class SharedNeighbours:
    """Shared-nearest-neighbour similarities of every edge, stored as ``uint8`` counts.

    Indexing returns ``counts[key] / size`` in float64 (the similarities), so it reads like the (N, k) float64
    array it replaces at an eighth of the memory.

    Parameters
    ----------
    counts : ndarray (N, k) uint8
        ``|({i} + N(i)) & ({j} + N(j))|`` for the ``c``-th neighbour ``j`` of ``i`` (0 at padding).
    size : int
        ``k + 1``, the size of the member sets.
    """

    def __init__(self, counts: np.ndarray, size: int):
        self.counts, self.size = counts, size

    @classmethod
    def of(cls, nbr_ids: np.ndarray, *, chunk_size: int = 4096, progress: bool = False) -> SharedNeighbours:
        """The shared neighbours of the graph ``nbr_ids`` (:func:`shared_neighbours`)."""
        return cls(shared_neighbour_counts(nbr_ids, chunk_size=chunk_size, progress=progress), nbr_ids.shape[1] + 1)

    @property
    def shape(self) -> tuple:
        return self.counts.shape

    def __getitem__(self, key) -> np.ndarray:
        return self.counts[key] / self.size


def shared_neighbours(nbr_ids: np.ndarray, *, chunk_size: int = 4096) -> np.ndarray:
    """Shared-nearest-neighbour similarity of every graph edge; shape (N, k), float64 in (0, 1] (0 for padding).

    ``snn_ij = |({i} + N(i)) & ({j} + N(j))| / (k + 1)`` for the ``j``-th neighbour of ``i``, where ``N(i)`` is
    the ``k``-neighbour list of ``i`` (Jarvis and Patrick, 1973). It is symmetric and robust to the hubness of
    high-dimensional embeddings: two points of one dense region share most of their neighbours, two points on
    either side of a boundary few, however close their cosine similarity. Padding ids (``-1``) count as no
    neighbour, a repeated id once. :class:`SharedNeighbours` holds the same values as ``uint8`` counts.

    Examples
    --------
    >>> import numpy as np
    >>> ids = np.array([[1, 2], [0, 2], [0, 1], [4, 2], [3, 2]])
    >>> shared_neighbours(ids)[0].tolist()  # 0 and 1 share {0, 1, 2}; 0 and 2 too
    [1.0, 1.0]
    """
    return SharedNeighbours.of(nbr_ids, chunk_size=chunk_size)[:]


def shared_neighbour_counts(nbr_ids: np.ndarray, *, chunk_size: int = 4096, progress: bool = False) -> np.ndarray:
    """``|({i} + N(i)) & ({j} + N(j))|`` of every edge; (N, k) uint8, 0 at padding (:func:`shared_neighbours`).

    Each chunk of rows gathers its neighbours' lists and counts the members two lists share by sorting them
    together: ``O(N k^2 log k)`` work and ``O(chunk_size k^2)`` memory, in threads (NumPy's sort releases the GIL).
    """
    n, k = nbr_ids.shape
    if k + 1 > 255:
        raise ValueError(f"shared neighbours are counted in uint8: at most 254 neighbours per row, got k={k}")
    distinct = all(_distinct(nbr_ids, sl) for sl in row_blocks(n, 1 << 16))
    out = np.zeros((n, k), np.uint8)

    def chunk(sl: slice) -> None:
        out[sl] = _overlap_counts(nbr_ids, sl, distinct)

    blocks = row_blocks(n, chunk_size)
    with ThreadPoolExecutor(max_workers=min(os.cpu_count() or 1, 8)) as pool:
        list(progress_bar(pool.map(chunk, blocks), desc="shared neighbours", unit="block", total=len(blocks),
                          progress=progress))
    return out


def _members(nbr_ids: np.ndarray, rows: np.ndarray, filler: int) -> np.ndarray:
    """``[i] + N(i)`` of each row of ``rows`` (any shape), padding replaced by distinct negative ``filler - p``."""
    k = nbr_ids.shape[1]
    lists = np.concatenate([rows[..., None], nbr_ids[rows]], axis=-1)
    return np.where(lists >= 0, lists, filler - np.arange(k + 1))


def _distinct(nbr_ids: np.ndarray, sl: slice) -> bool:
    """Whether no member list of the rows ``sl`` repeats an id (itself included)."""
    lists = np.sort(_members(nbr_ids, np.arange(sl.start, sl.stop), -1), axis=1)
    return not (lists[:, 1:] == lists[:, :-1]).any()


def _dedupe(lists: np.ndarray, filler: int) -> np.ndarray:
    """Sorted member lists with repeated ids replaced by distinct negative ``filler - p`` (so each counts once)."""
    lists = np.sort(lists, axis=-1)
    repeat = np.zeros(lists.shape, bool)
    repeat[..., 1:] = lists[..., 1:] == lists[..., :-1]
    return np.where(repeat, filler - np.arange(lists.shape[-1]), lists)


def _overlap_counts(nbr_ids: np.ndarray, sl: slice, distinct: bool) -> np.ndarray:
    k = nbr_ids.shape[1]
    rows = np.arange(sl.start, sl.stop)
    nbr = nbr_ids[sl]
    valid = nbr >= 0
    own = _members(nbr_ids, rows, -1)  # (b, k + 1); fillers -1 .. -(k + 1)
    theirs = _members(nbr_ids, np.where(valid, nbr, 0), -(k + 2))  # (b, k, k + 1); fillers -(k + 2) ..
    if not distinct:
        own, theirs = _dedupe(own, -(2 * k + 3)), _dedupe(theirs, -(3 * k + 4))
    both = np.concatenate([np.broadcast_to(own[:, None, :], theirs.shape), theirs], axis=2)
    both.sort(axis=2)
    counts = (both[:, :, 1:] == both[:, :, :-1]).sum(axis=2)
    return np.where(valid, counts, 0).astype(np.uint8)


class EdgeWeights:
    """The weights of a graph's edges, block by block: the first stage's :class:`Weighting` of its similarities.

    ``block(rows)`` gives the unmasked weights (0 at padding) of a slice of rows, ``at(j, c)`` those of single
    edges (the ``c``-th neighbour of row ``j``), and ``reciprocal(rows)`` the weight with which each row's rating
    reached each of its neighbours (:func:`reciprocal_weights`).
    """

    def __init__(self, nbr_ids: np.ndarray, sims: np.ndarray, weighting: Weighting, shared=None):
        if weighting.gamma and shared is None:
            raise ValueError(f"gamma={weighting.gamma} weights neighbours by their shared neighbours: pass shared")
        k = weighting.k
        self.nbr_ids, self.sims, self.shared, self.weighting = nbr_ids[:, :k], sims[:, :k], shared, weighting

    @property
    def shape(self) -> tuple:
        return self.nbr_ids.shape

    def at(self, j: np.ndarray, c: np.ndarray) -> np.ndarray:
        w = self.weighting
        snn = (self.shared[j, c], self.shared[j, 0]) if w.gamma else None
        return edge_weights(self.sims[j, c], self.sims[j, 0], snn, w.alpha, w.beta, w.gamma)

    def block(self, rows: slice) -> np.ndarray:
        w = self.weighting
        shared = None if self.shared is None else self.shared[rows]
        return neighbour_weights(self.sims[rows], self.nbr_ids[rows] >= 0, w.alpha, w.beta, shared, w.gamma)

    def reciprocal(self, rows: slice, *, symmetric: bool = True) -> np.ndarray:
        return _reciprocal_block(self.nbr_ids, rows, self.block(rows), self.at, symmetric)


class ArrayWeights(EdgeWeights):
    """Edge weights given as an (N, k) array (the same interface as :class:`EdgeWeights`)."""

    def __init__(self, nbr_ids: np.ndarray, weights: np.ndarray):
        self.nbr_ids, self.weights = nbr_ids, np.asarray(weights, dtype=np.float64)

    def at(self, j: np.ndarray, c: np.ndarray) -> np.ndarray:
        return self.weights[j, c]

    def block(self, rows: slice) -> np.ndarray:
        return self.weights[rows]


def as_edge_weights(nbr_ids: np.ndarray, weights) -> EdgeWeights:
    """``weights`` as :class:`EdgeWeights`: an (N, k) array is wrapped (:class:`ArrayWeights`), edge weights pass."""
    return weights if isinstance(weights, EdgeWeights) else ArrayWeights(nbr_ids, weights)


def _reciprocal_block(nbr_ids: np.ndarray, rows: slice, own: np.ndarray, weight_at, symmetric: bool) -> np.ndarray:
    """Reciprocal weights of the rows ``rows``: each neighbour ``j``'s list is searched for the row (dense, ``k^2``
    per row), and the row's forward weight in ``j``'s evidence is read where it is found."""
    nbr = nbr_ids[rows]
    valid = nbr >= 0
    j = np.where(valid, nbr, 0)
    me = np.arange(rows.start, rows.stop)[:, None]
    found = nbr_ids[j] == me[:, :, None]  # (b, k, k): is the row in j's list, and where
    mutual = found.any(axis=2) & valid & (j != me)
    forward = np.zeros(nbr.shape)
    forward[mutual] = weight_at(j[mutual], found.argmax(axis=2)[mutual])
    out = forward + (own if symmetric else 0.0)
    return np.where(valid, out, 0.0)


def reciprocal_weights(nbr_ids: np.ndarray, weights: np.ndarray, *, symmetric: bool = True) -> np.ndarray:
    """Weight with which each row's own rating entered the evidence of each of its neighbours; shape (n, k).

    Row ``i`` votes for its neighbour ``j = nbr_ids[i, m]`` through the reverse edge with ``weights[i, m]`` (when
    ``symmetric``) and, when ``i`` is itself the ``m'``-th neighbour of ``j``, through ``j``'s forward edge with
    ``weights[j, m']``. ``weights`` (n, k) are the unmasked edge weights of the whole pool (row ``i`` = sample
    ``i``, neighbour lists without repeated ids as :func:`ds2_hf.knn.build_knn_graph` returns them); padding ids
    (``-1``) get 0. Computed in blocks of rows (:meth:`EdgeWeights.reciprocal`), no N x N structure.

    Examples
    --------
    >>> import numpy as np
    >>> ids = np.array([[1, 2], [0, 2], [1, 0]])
    >>> w = np.array([[1.0, 0.5], [1.0, 0.5], [1.0, 0.5]])
    >>> reciprocal_weights(ids, w).tolist()  # 0 -> 1: reverse 1.0 + forward 1.0 (0 is 1's nearest neighbour)
    [[2.0, 1.0], [2.0, 1.5], [1.5, 1.0]]
    """
    edges = ArrayWeights(nbr_ids, weights)
    return np.concatenate([edges.reciprocal(sl, symmetric=symmetric) for sl in row_blocks(len(nbr_ids), 8192)]
                          or [np.zeros(nbr_ids.shape)])


def reverse_votes(y: np.ndarray, nbr_ids: np.ndarray, sims: np.ndarray, K: int, alpha: float,
                  beta: float, shared=None, gamma: float = 0.0, *,
                  targets: np.ndarray | None = None) -> np.ndarray:
    """Votes a row receives from the rows that have it among their neighbours; shape (N, K).

    Row ``j`` with ``i`` in its neighbour list gives ``i`` its rating ``y_j`` with the same weight
    ``alpha * exp(beta * (s_ji - s_j1)) * (snn_ji / snn_j1) ** gamma``. ``nbr_ids`` (and ``shared``) must be the
    graph of the whole pool (row ``j`` = sample ``j``). With ``targets`` (distinct row ids), only the votes of
    those rows are returned, shape (len(targets), K), and only their incoming edges are weighted.
    """
    n = len(y)
    if targets is not None:
        return incoming_votes(y, sims, shared, incoming_edges(y, nbr_ids, targets), len(targets), K, alpha, beta,
                              gamma)
    out = np.zeros(0)
    for sl in row_blocks(n, max(1, EDGE_BLOCK // max(nbr_ids.shape[1], 1))):  # one pass for pools up to 200k rows
        ids = nbr_ids[sl]
        valid = (ids >= 0) & (y[sl] >= 0)[:, None]
        s_sh = None if shared is None else shared[sl]
        w = neighbour_weights(sims[sl], valid, alpha, beta, shared=s_sh, gamma=gamma)
        flat = (np.maximum(ids, 0).astype(np.int64) * K + np.maximum(y[sl], 0)[:, None]).ravel()
        part = np.bincount(flat, weights=w.ravel(), minlength=n * K)
        if sl.start == 0:
            out = part
        else:
            out += part
    return out.reshape(n, K) if n else np.zeros((0, K))


def incoming_edges(y: np.ndarray, nbr_ids: np.ndarray, targets: np.ndarray) -> tuple:
    """Edges ``j -> targets[t]`` from rated rows ``j``: arrays ``(j, column in j's list, t)``, in row order."""
    pos = np.full(len(y), -1, dtype=np.int64)
    pos[targets] = np.arange(len(targets))
    parts = []
    for sl in row_blocks(len(y)):
        ids = nbr_ids[sl]
        to = np.where(ids >= 0, pos[ids], -1)
        j, c = np.nonzero((to >= 0) & (y[sl] >= 0)[:, None])
        parts.append((j + sl.start, c, to[j, c]))
    return tuple(np.concatenate([p[i] for p in parts]) for i in range(3))


def incoming_votes(y, sims, shared, edges, n_targets: int, K: int, alpha, beta, gamma, k: int | None = None):
    """Votes of the targets over ``edges`` (:func:`incoming_edges`), using only each list's first ``k`` columns."""
    j, c, to = edges
    if k is not None:
        keep = c < k
        j, c, to = j[keep], c[keep], to[keep]
    snn = (shared[j, c], shared[j, 0]) if gamma else None
    w = edge_weights(sims[j, c], sims[j, 0], snn, alpha, beta, gamma)
    return np.bincount(to * K + y[j], weights=w, minlength=n_targets * K).reshape(n_targets, K)


class Evidence:
    """Sufficient statistics of the modelled rows: their own ratings and their weighted neighbour-rating counts.

    Because a neighbour's evidence depends only on its rating, ``sum_j w_ij log M[z, y_j]`` equals
    ``(votes @ log(M).T)[i, z]`` with ``votes[i, y] = sum_j w_ij [y_j = y]``: every EM step is O(n K^2),
    whatever the number of neighbours.

    Attributes
    ----------
    y : ndarray (n,) int64
        Own ratings, ``-1`` = unrated.
    votes : ndarray (n, K) float64
        Weighted neighbour-rating counts (forward, plus reverse when the evidence is symmetric).
    """

    def __init__(self, y: np.ndarray, votes: np.ndarray):
        self.y, self.votes = y, votes

    @classmethod
    def build(cls, y_rows, y_pool, nbr_ids, sims, num_classes: int, weighting: Weighting, *, shared=None,
              extra_votes: np.ndarray | None = None) -> Evidence:
        """Forward votes of the rows ``nbr_ids`` (n, >= k) from the ratings ``y_pool`` of the pool, in blocks;
        ``extra_votes`` (n, K), e.g. :func:`reverse_votes`, are added."""
        n, K, w = len(y_rows), num_classes, weighting
        votes = np.empty((n, K))
        for sl in row_blocks(n):
            ids = nbr_ids[sl, : w.k]
            nbr_y = np.where(ids >= 0, y_pool[ids], -1)  # -1 pads rows with fewer neighbours
            s_sh = None if shared is None else shared[sl]
            weights = neighbour_weights(sims[sl, : w.k], nbr_y >= 0, w.alpha, w.beta, shared=s_sh, gamma=w.gamma)
            flat = (np.arange(len(ids))[:, None] * K + np.maximum(nbr_y, 0)).ravel()
            votes[sl] = np.bincount(flat, weights=weights.ravel(), minlength=len(ids) * K).reshape(len(ids), K)
        if extra_votes is not None:
            votes += extra_votes
        return cls(np.asarray(y_rows), votes)

    @property
    def num_classes(self) -> int:
        return self.votes.shape[1]

    def __len__(self) -> int:
        return len(self.y)

    def own(self, rows: slice = slice(None)) -> np.ndarray:
        """One-hot own ratings of ``rows`` (zero rows where unrated); shape (b, K) float64."""
        return one_hot(self.y[rows], self.num_classes)
