"""Inverted lists: rows grouped by cell, and the top-k of queries among the rows of the cells they probe.

Shared by the IVF search (:mod:`ds2_hf.knn.ivf`: queries against the rows of their cells) and the two-level
quantiser (:mod:`ds2_hf.knn.quantiser`: rows against the centroids of their coarse groups).
"""

from __future__ import annotations

import numpy as np

from .graph import id_dtype


def group(labels: np.ndarray, n_groups: int) -> tuple[np.ndarray, np.ndarray]:
    """Positions of ``labels`` grouped by value (stable) and the group offsets: group ``g`` is
    ``order[offsets[g]:offsets[g + 1]]``."""
    order = np.argsort(labels, kind="stable").astype(np.int64)
    offsets = np.concatenate([[0], np.cumsum(np.bincount(labels, minlength=n_groups))]).astype(np.int64)
    return order, offsets


def cell_search(x, members: np.ndarray, offsets: np.ndarray, queries: np.ndarray, probes: np.ndarray, k: int,
                *, max_block: int, kernel, desc: str | None = None, base=None):
    """Top-``k`` inner products of each query among the points of its probed cells (self included).

    The work is organised by cell, not by query: the queries probing a cell are gathered into one matrix and
    scored against the cell's points with a single BLAS product; each (query, probe) pair keeps its top ``k``
    in a slot of its own, and one top-``k`` over a query's slots merges them at the end. This is the same
    candidate set as a per-query inverted-file scan, computed at matrix-product speed.

    The queries are the rows ``x[queries]``; the cells hold rows of ``base`` (default: ``x`` itself, the
    all-pairs graph; the two-level quantiser passes the cell centroids, :mod:`~ds2_hf.knn.quantiser`).

    Returns ``(ids, sims)``, each (len(queries), k), most similar first; ``-1`` pads rows whose probed cells
    hold fewer than ``k`` points. A probe of ``-1`` is no cell.
    """
    base = x if base is None else base
    if (probes < 0).any():  # fewer cells than probe columns (a two-level quantiser): an empty cell stands in
        probes = np.where(probes < 0, len(offsets) - 1, probes)
        offsets = np.append(offsets, offsets[-1])
    nq, nprobe = probes.shape
    by_cell, qoff = group(probes.ravel(), len(offsets) - 1)  # (query, probe rank) pairs grouped by cell
    # Each (query, probe rank) pair owns one slot of k candidates; one top-k over the slots merges them.
    cand_s = np.full((nq * nprobe, k), -np.inf, dtype=np.float32)
    cand_i = np.full((nq * nprobe, k), -1, dtype=id_dtype(len(base)))
    cells = np.flatnonzero((np.diff(qoff) > 0) & (np.diff(offsets) > 0))
    if desc:
        from tqdm.auto import tqdm

        cells = tqdm(cells, desc=desc, unit="cell")
    for c in cells:
        mem = members[offsets[c] : offsets[c + 1]]
        xc = np.ascontiguousarray(base[mem])
        kc = min(k, len(mem))
        slots = by_cell[qoff[c] : qoff[c + 1]]
        step = max(1, min(max_block // len(mem), max_block // xc.shape[1]))  # bounds scores and gathered queries
        for s in range(0, len(slots), step):
            sl = slots[s : s + step]
            d_, i_ = kernel.knn(np.ascontiguousarray(x[queries[sl // nprobe]]), xc, kc)
            cand_s[sl, :kc] = d_
            cand_i[sl, :kc] = mem[i_]
    cand_s = cand_s.reshape(nq, nprobe * k)
    cand_i = cand_i.reshape(nq, nprobe * k)
    ids = np.empty((nq, k), dtype=id_dtype(len(base)))
    sims = np.empty((nq, k), dtype=np.float32)
    rows = max(1, max_block // (nprobe * k))  # merge in row blocks: no full-size index temporaries
    for r in range(0, nq, rows):
        s_, i_ = cand_s[r : r + rows], cand_i[r : r + rows]
        if nprobe > 1:
            top = np.argpartition(-s_, k - 1, axis=1)[:, :k]
            s_, i_ = np.take_along_axis(s_, top, 1), np.take_along_axis(i_, top, 1)
        order = np.argsort(-s_, axis=1, kind="stable")
        ids[r : r + rows] = np.take_along_axis(i_, order, 1)
        sims[r : r + rows] = np.take_along_axis(s_, order, 1)
    return ids, sims
