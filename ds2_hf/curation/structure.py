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
        return np.where(codes < 0, -1, np.unique(codes, return_inverse=True)[1].reshape(-1)).astype(np.int64)
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
