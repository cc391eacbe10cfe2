"""The structure of a pool that k-NN evidence must respect: prompt groups and duplicate responses.

DS2's k-NN consensus treats a sample's neighbours as independent views of its quality. Two kinds of neighbour
are not:

* **Group-mates**: other responses to the same prompt (preference data, best-of-n sampling, several models
  answering one instruction). An embedding of prompt and response places them next to each other because they
  share the prompt, so their ratings agree as far as the prompt decides the rating (its difficulty, its topic)
  and say nothing about which response is better, which is what a multi-response pool is rated for.
* **Copies**: rows whose response is the same text. Their ratings are the same rater's view of one text, not
  evidence about each other, and a rater that is systematically fooled by a text (a judge-gaming answer) is
  fooled by every copy of it.

:func:`evidence_graph` removes both kinds of edge from the graph the curation's evidence is built from. The
graph itself, and the long-tail score computed from it, are unchanged.

Labels are arrays of length ``N``: any hashable values (prompt strings, ids), or integers with ``-1`` (or
``None``) for rows that belong to no group.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..knn import KnnGraph
from .evidence import as_edge_weights, row_blocks


def encode_labels(labels, n: int, *, name: str) -> np.ndarray | None:
    """Labels as int64 codes ``0..G-1``, ``-1`` for rows in no group; ``None`` passes through.

    Parameters
    ----------
    labels : array-like of length ``n``, or None
        Group ids of any hashable type; ``None`` / NaN / ``-1`` mark rows that belong to no group.
    n : int
        Expected length (the number of rows).
    name : str
        Argument name for error messages.

    Returns
    -------
    ndarray of int64, shape (n,), or None

    Examples
    --------
    >>> encode_labels(["a", "b", "a", None], 4, name="groups").tolist()
    [0, 1, 0, -1]
    """
    if labels is None:
        return None
    values = list(labels) if not isinstance(labels, np.ndarray) else labels
    if len(values) != n:
        raise ValueError(f"{name} has {len(values)} entries but there are {n} rows; pass one label (or None) per row")
    arr = np.asarray(values)
    if arr.dtype.kind in "iu":
        codes = arr.astype(np.int64)
        out = np.full(n, -1, np.int64)
        keep = codes >= 0
        out[keep] = np.unique(codes[keep], return_inverse=True)[1].reshape(-1)
        return out
    codes, table = np.full(n, -1, np.int64), {}
    for i, v in enumerate(values):
        if v is None or (isinstance(v, float) and v != v) or (isinstance(v, (int, np.integer)) and v == -1):
            continue
        codes[i] = table.setdefault(v, len(table))
    return codes


@dataclass
class EvidenceStructure:
    """What :func:`evidence_graph` removed, for the report.

    Attributes
    ----------
    groups, duplicates : ndarray (N,) int64 or None
        Group and duplicate codes (``-1`` = none).
    group_share : float or None
        Share of the graph's neighbour slots (the first ``k`` of each row) taken by group-mates.
    duplicate_share : float or None
        Share taken by copies (rows with the same response).
    n_groups, n_grouped_rows, n_duplicate_groups, n_duplicate_rows : int
        Groups with at least two rows and the rows in them.
    """

    groups: np.ndarray | None
    duplicates: np.ndarray | None
    group_share: float | None
    duplicate_share: float | None
    n_groups: int = 0
    n_grouped_rows: int = 0
    n_duplicate_groups: int = 0
    n_duplicate_rows: int = 0

    def to_dict(self) -> dict:
        def r(v):
            return None if v is None else round(float(v), 5)

        return {"group_share": r(self.group_share), "duplicate_share": r(self.duplicate_share),
                "n_groups": self.n_groups, "n_grouped_rows": self.n_grouped_rows,
                "n_duplicate_groups": self.n_duplicate_groups, "n_duplicate_rows": self.n_duplicate_rows}


def _multi(codes: np.ndarray | None) -> tuple[int, int]:
    """Groups with at least two rows, and the rows in them."""
    if codes is None:
        return 0, 0
    counts = np.bincount(codes[codes >= 0])
    return int((counts > 1).sum()), int(counts[counts > 1].sum())


def shared_label(graph: KnnGraph, codes: np.ndarray) -> np.ndarray:
    """``(N, k)`` bool: the neighbour carries the row's own label (both labelled)."""
    ids = graph.indices
    nbr = np.where(ids >= 0, codes[np.maximum(ids, 0)], -1)
    return (nbr >= 0) & (nbr == codes[:, None])


def drop_edges(graph: KnnGraph, drop: np.ndarray) -> KnnGraph:
    """The graph without the edges marked in ``drop`` (N, k); each row's remaining neighbours keep their order.

    Removed slots move to the end of each row as padding: id ``-1``, similarity ``-1``.

    Examples
    --------
    >>> import numpy as np
    >>> from ds2_hf.knn import KnnGraph
    >>> g = KnnGraph(np.array([[1, 2, 3]]), np.array([[0.9, 0.8, 0.7]], np.float32), "exact")
    >>> h = drop_edges(g, np.array([[True, False, False]]))
    >>> h.indices.tolist(), h.similarities.astype(float).round(2).tolist()
    ([[2, 3, -1]], [[0.8, 0.7, -1.0]])
    """
    keep = ~drop & (graph.indices >= 0)
    order = np.argsort(~keep, axis=1, kind="stable")
    kept = np.take_along_axis(keep, order, axis=1)
    ids = np.where(kept, np.take_along_axis(graph.indices, order, axis=1), -1)
    sims = np.where(kept, np.take_along_axis(graph.similarities, order, axis=1), np.float32(-1.0))
    return KnnGraph(ids, sims.astype(np.float32), graph.method, graph.recall, dict(graph.info))


def evidence_graph(graph: KnnGraph, *, groups: np.ndarray | None = None, duplicates: np.ndarray | None = None,
                   k: int | None = None) -> tuple[KnnGraph, EvidenceStructure]:
    """The graph the curation's evidence is built from: ``graph`` without group-mates and copies.

    Parameters
    ----------
    graph : KnnGraph
        The k-NN graph of the pool.
    groups, duplicates : ndarray (N,) int64, optional
        Codes from :func:`encode_labels` (``-1`` = none).
    k : int, optional
        Neighbour slots over which the shares are measured (default: all of them).

    Returns
    -------
    KnnGraph, EvidenceStructure
        The reduced graph (padded with ``-1`` at the end of rows that lost neighbours) and what was removed.
    """
    k = graph.k if k is None else min(k, graph.k)
    drop = np.zeros(graph.indices.shape, bool)
    shares = []
    for codes in (groups, duplicates):
        if codes is None:
            shares.append(None)
            continue
        same = shared_label(graph, codes)
        shares.append(float(same[:, :k].mean()))
        drop |= same
    g, d = _multi(groups), _multi(duplicates)
    info = EvidenceStructure(groups, duplicates, shares[0], shares[1], g[0], g[1], d[0], d[1])
    return (drop_edges(graph, drop) if drop.any() else graph), info


class BlockVotes:
    """The votes a row's *block* (itself, its prompt group and its copies) gave each of its neighbours.

    The second stage of the joint model (:func:`ds2_hf.curation.neighbourhood.neighbourhood_prior`) forms a row's prior
    from its neighbours' posteriors with the row's own vote taken out, so the prior never sees the rating it is
    combined with. In a pool with prompt groups or copies that is not enough: the row's group-mates and copies
    are neighbours of its neighbours, and their ratings, which share the row's prompt or text, would reach the
    prior in two hops. This takes out the votes of every row that shares a label with the row (in any of
    ``blocks``), by inclusion-exclusion over the labelings.

    Only rows that share a label with another row have a block larger than themselves, so only their edges are
    tabulated: memory grows with the edges of those rows (about ``2 k`` table entries each), and a pool without
    any shared label holds no table at all. Every other row's block is its own vote, its reciprocal weights.

    Parameters
    ----------
    y : ndarray (N,) int64
        Ratings, ``-1`` = unrated (unrated rows cast no vote).
    nbr_ids : ndarray (N, k)
        The evidence graph (``-1`` padding).
    weights : ndarray (N, k) or EdgeWeights
        Its edge weights, or a :class:`~ds2_hf.curation.evidence.EdgeWeights` that computes them block by block.
    blocks : list of ndarray (N,) int64
        Labelings (``-1`` = none), e.g. prompt groups and duplicate groups.
    num_classes : int
    symmetric : bool, default True
        Rows also vote for the rows in their own neighbour lists (the reverse edges of the joint model).
    """

    def __init__(self, y: np.ndarray, nbr_ids: np.ndarray, weights, blocks: list[np.ndarray], *,
                 num_classes: int, symmetric: bool = True) -> None:
        n, k = nbr_ids.shape
        self.K, self.nbr_ids, self.y, self.symmetric = num_classes, nbr_ids, y, symmetric
        self.weights = as_edge_weights(nbr_ids, weights)
        labelings = [b for b in blocks if b is not None]
        self.shared = np.zeros(n, bool)  # rows whose block holds another row
        for lab in labelings:
            sizes = np.bincount(lab[lab >= 0], minlength=1)
            self.shared |= (lab >= 0) & (sizes[np.maximum(lab, 0)] > 1)
        self._terms = []
        if not self.shared.any():
            return
        # the edges that carry a shared row's vote: j's own list holding it (j's forward votes), and, when
        # symmetric, its own list (its reverse votes), in the row order of the full edge list
        fwd = [(sl.start + r, c) for sl in row_blocks(n) for r, c in [np.nonzero(self._holds_shared(sl))]]
        j_rows = np.concatenate([r for r, _ in fwd]).astype(np.int64)
        j_cols = np.concatenate([c for _, c in fwd]).astype(np.int64)
        dst, src, wt = [j_rows], [nbr_ids[j_rows, j_cols].astype(np.int64)], [self.weights.at(j_rows, j_cols)]
        if symmetric:
            m_rows, m_cols = np.nonzero(nbr_ids[self.shared] >= 0)
            m_rows = np.flatnonzero(self.shared)[m_rows]
            dst.append(nbr_ids[m_rows, m_cols].astype(np.int64))
            src.append(m_rows)
            wt.append(self.weights.at(m_rows, m_cols))
        dst, src, wt = np.concatenate(dst), np.concatenate(src), np.concatenate(wt)
        voted = y[src] >= 0
        self._dst, self._src, self._w, self._y = dst[voted], src[voted], wt[voted], y[src[voted]]
        for size in range(1, len(labelings) + 1):
            for subset in _subsets(labelings, size):
                self._terms.append(((-1) ** (size + 1), *self._table(_joint_code(subset, n))))

    def _holds_shared(self, rows: slice) -> np.ndarray:
        """``(b, k)`` bool: which neighbours of these rows share a block with another row."""
        ids = self.nbr_ids[rows]
        return (ids >= 0) & self.shared[np.maximum(ids, 0)]

    def _table(self, code: np.ndarray) -> tuple:
        span = int(code.max()) + 1
        keys = self._dst * span + code[self._src]
        uniq, inv = np.unique(keys, return_inverse=True)
        counts = np.bincount(inv.reshape(-1) * self.K + self._y, weights=self._w, minlength=len(uniq) * self.K)
        return code, span, uniq, counts.reshape(len(uniq), self.K)

    def edges(self, rows: slice) -> np.ndarray:
        """``(b, k, K)``: weighted rating counts of row ``i``'s block entering the evidence of its ``c``-th neighbour."""
        ids = self.nbr_ids[rows]
        b, k = ids.shape
        out = np.zeros((b, k, self.K))
        yb = self.y[rows]
        rated = np.flatnonzero(yb >= 0)
        rec = self.weights.reciprocal(rows, symmetric=self.symmetric)
        out[rated[:, None], np.arange(k)[None, :], yb[rated][:, None]] = rec[rated]  # the row's own vote
        mine = np.flatnonzero(self.shared[rows])
        if not mine.size:
            return out
        own = np.arange(*rows.indices(len(self.y)))[mine]
        ids = ids[mine]
        valid = ids >= 0
        block = np.zeros(ids.shape + (self.K,))
        for sign, code, span, uniq, counts in self._terms:
            keys = np.where(valid, ids, 0).astype(np.int64) * span + code[own][:, None]  # int32 ids would overflow
            pos = np.minimum(np.searchsorted(uniq, keys), len(uniq) - 1)
            hit = valid & (uniq[pos] == keys)
            block += sign * np.where(hit[:, :, None], counts[pos], 0.0)
        out[mine] = block
        return out


def _subsets(items: list, size: int):
    from itertools import combinations

    return combinations(items, size)


def _joint_code(labelings: tuple, n: int) -> np.ndarray:
    """One code per row for the intersection of several labelings; an unlabelled row is a block of its own."""
    cols = [np.where(lab >= 0, lab, int(lab.max()) + 1 + np.arange(n)) for lab in labelings]
    return np.unique(np.stack(cols, axis=1), axis=0, return_inverse=True)[1].reshape(-1).astype(np.int64)


def extra_depth(groups: np.ndarray | None, duplicates: np.ndarray | None, need: int) -> int:
    """Neighbours to search beyond ``need`` so that rows keep their evidence once group-mates and copies go."""
    extra = 0
    for codes, cap in ((groups, need), (duplicates, 10)):
        if codes is not None and (codes >= 0).any():
            extra += min(int(np.bincount(codes[codes >= 0]).max()) - 1, cap)
    return extra


def prompt_gain(y: np.ndarray, groups: np.ndarray, num_classes: int) -> float | None:
    """How well the other responses to a row's prompt predict its rating: nats per row over the rating marginal.

    Leave-one-out: each rated row with at least one rated group-mate is predicted by its group-mates' rating
    counts smoothed with ``K`` pseudo-counts spread as the marginal. ``None`` when no row has a rated group-mate.
    """
    K = num_classes
    rated = (y >= 0) & (groups >= 0)
    if not rated.any():
        return None
    r = np.bincount(y[y >= 0], minlength=K) / (y >= 0).sum()
    counts = np.zeros((int(groups.max()) + 1, K))
    np.add.at(counts, (groups[rated], y[rated]), 1.0)
    rows = np.flatnonzero(rated)
    own = counts[groups[rows]]
    own[np.arange(len(rows)), y[rows]] -= 1.0
    others = own.sum(axis=1)
    keep = others > 0
    if not keep.any():
        return None
    rows, own, others = rows[keep], own[keep], others[keep]
    p = (own[np.arange(len(rows)), y[rows]] + K * r[y[rows]]) / (others + K)
    return float(np.mean(np.log(p) - np.log(np.maximum(r[y[rows]], 1e-12))))
