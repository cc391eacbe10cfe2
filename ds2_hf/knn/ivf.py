"""The inverted-file (IVF) search: cells by spherical k-means, searched cell by cell at matrix-product speed.

The IVF search partitions the points into cells by spherical k-means (faiss), splits cells that k-means left
oversized, and then works cell by cell rather than query by query: all queries that probe a cell are scored
against the cell's points in one matrix product. That is the candidate set of a classic IVF scan at
matrix-multiply speed (on 2 cores, 300k x 1024 takes about 50 s where faiss' ``IndexIVFFlat`` needed an
estimated 14 minutes; BENCHMARKS.md). The queries are searched in parts whose candidates hold at most about
1 GB, and each part's result is written straight into the (N, k) graph, so memory is bounded for any N.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

import numpy as np

from .._import_utils import require
from .graph import KnnConfig, strip_self

_BLOCK = 1 << 23  # score-matrix elements per matrix product of the IVF search (32 MB of float32)
_CANDIDATE_BYTES = 1 << 30  # candidates held at once by the IVF search; more queries are searched in parts


def kmeans(x: np.ndarray, k: int, niter: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Spherical k-means with faiss: centroids (k, d) float32 unit rows and the assignment (len(x),) int64."""
    faiss = require("faiss", purpose="the k-NN graph")
    km = faiss.Kmeans(x.shape[1], k, niter=niter, spherical=True, seed=seed,
                      max_points_per_centroid=max(1, -(-len(x) // k)), verbose=False)
    km.train(x)
    return np.ascontiguousarray(km.centroids, dtype=np.float32), km.index.search(x, 1)[1][:, 0]


def train_centroids(x, nlist: int, train_n: int, cfg: KnnConfig, rng) -> np.ndarray:
    """Cell centroids (unit rows): spherical k-means of a random sample, with oversized cells split.

    Sentence embeddings are anisotropic, and k-means tends to gather the diffuse points of many clusters into
    a few cells near their common direction (on the public benchmark geometry at 300k x 1024 the largest cell
    held 42 times the mean, and the search cost 13 times that of balanced cells). The cost of a cell grows with
    the square of its size, so a cell holding more than ``max_cell_factor`` times the mean share of the sample
    is re-clustered, on its own sample points, into cells of about the mean size (up to three rounds).
    """
    n = len(x)
    train = x[np.sort(rng.choice(n, train_n, replace=False))] if train_n < n else x[:]
    cents, assign = kmeans(train, nlist, cfg.kmeans_iter, cfg.seed)
    mean = train_n / nlist
    for _ in range(3):
        sizes = np.bincount(assign, minlength=len(cents))
        big = np.flatnonzero(sizes > cfg.max_cell_factor * mean)
        if not big.size:
            break
        small = np.ones(len(cents), dtype=bool)
        small[big] = False
        renumber = np.cumsum(small) - 1  # kept cells keep their order; split cells are appended below
        parts, new_assign, next_id = [cents[small]], renumber[assign], int(small.sum())
        for c in big:
            rows = np.flatnonzero(assign == c)
            n_sub = max(2, min(math.ceil(sizes[c] / mean), len(rows) // 39))  # faiss wants >= 39 points per centroid
            sub, sub_assign = kmeans(train[rows], n_sub, cfg.kmeans_iter, cfg.seed)
            parts.append(sub)
            new_assign[rows] = next_id + sub_assign
            next_id += len(sub)
        cents, assign = np.concatenate(parts), new_assign
    return cents


def group(labels: np.ndarray, n_groups: int) -> tuple[np.ndarray, np.ndarray]:
    """Positions of ``labels`` grouped by value (stable) and the group offsets: group ``g`` is
    ``order[offsets[g]:offsets[g + 1]]``."""
    order = np.argsort(labels, kind="stable").astype(np.int64)
    offsets = np.concatenate([[0], np.cumsum(np.bincount(labels, minlength=n_groups))]).astype(np.int64)
    return order, offsets


def probe(x, rows: np.ndarray | None, centroids: np.ndarray, nprobe: int, block: int,
           *, ordered: bool = False, desc: str | None = None) -> np.ndarray:
    """The ``nprobe`` cells of highest centroid similarity of each row (``rows=None``: every row), int32.

    Column 0 is always the most similar cell (the row's own cell); the others are in order only with
    ``ordered``.
    """
    n = len(x) if rows is None else len(rows)
    nprobe = min(nprobe, len(centroids))
    out = np.empty((n, nprobe), dtype=np.int32)
    starts = range(0, n, block)
    if desc:
        from tqdm.auto import tqdm

        starts = tqdm(starts, desc=desc, unit="block", total=math.ceil(n / block))
    for s in starts:
        sc = (x[s : s + block] if rows is None else x[rows[s : s + block]]) @ centroids.T
        if ordered or nprobe == len(centroids):
            top = np.argsort(-sc, axis=1, kind="stable")[:, :nprobe]
        else:
            top = np.argpartition(-sc, nprobe - 1, axis=1)[:, :nprobe]
            first = np.take_along_axis(sc, top, 1).argmax(axis=1)  # move the own cell to column 0
            r = np.arange(len(top))
            top[r, first], top[r, 0] = top[r, 0], top[r, first]
        out[s : s + block] = top
    return out


def cell_search(x, members: np.ndarray, offsets: np.ndarray, queries: np.ndarray, probes: np.ndarray, k: int,
                *, max_block: int, kernel, desc: str | None = None):
    """Top-``k`` inner products of each query among the points of its probed cells (self included).

    The work is organised by cell, not by query: the queries probing a cell are gathered into one matrix and
    scored against the cell's points with a single BLAS product; each (query, probe) pair keeps its top ``k``
    in a slot of its own, and one top-``k`` over a query's slots merges them at the end. This is the same
    candidate set as a per-query inverted-file scan, computed at matrix-product speed.

    Returns ``(ids, sims)``, each (len(queries), k), most similar first; ``-1`` pads rows whose probed cells
    hold fewer than ``k`` points.
    """
    nq, nprobe = probes.shape
    by_cell, qoff = group(probes.ravel(), len(offsets) - 1)  # (query, probe rank) pairs grouped by cell
    # Each (query, probe rank) pair owns one slot of k candidates; one top-k over the slots merges them.
    cand_s = np.full((nq * nprobe, k), -np.inf, dtype=np.float32)
    cand_i = np.full((nq * nprobe, k), -1, dtype=np.int32 if len(x) < 2**31 else np.int64)
    cells = np.flatnonzero((np.diff(qoff) > 0) & (np.diff(offsets) > 0))
    if desc:
        from tqdm.auto import tqdm

        cells = tqdm(cells, desc=desc, unit="cell")
    for c in cells:
        mem = members[offsets[c] : offsets[c + 1]]
        xc = np.ascontiguousarray(x[mem])
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
    ids = np.empty((nq, k), dtype=np.int64)
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


@dataclass
class IvfIndex:
    """Trained cells: ``centroids`` (nlist, d) unit rows; cell ``c`` holds ``members[offsets[c]:offsets[c + 1]]``
    (the rows whose most similar centroid is ``c``); ``probes`` the first ``nprobe`` cells of every row."""

    centroids: np.ndarray
    members: np.ndarray
    offsets: np.ndarray
    probes: np.ndarray
    train_size: int
    seconds: float

    @property
    def nlist(self) -> int:
        return len(self.centroids)

    @property
    def sizes(self) -> np.ndarray:
        return np.diff(self.offsets)


def build_ivf(x, cfg: KnnConfig, rng, *, progress: bool) -> IvfIndex:
    """Train the cells on a sample of ``x`` (array or :class:`~ds2_hf.knn.blocked.MappedRows`) and assign every row."""
    t0 = time.perf_counter()
    n = len(x)
    nlist = cfg.nlist or max(1, int(2 * math.sqrt(n)))
    nlist = max(1, min(nlist, n // 39))
    train_n = min(n, cfg.train_size or 40 * nlist)
    centroids = train_centroids(x, nlist, train_n, cfg, rng)
    probes = probe(x, None, centroids, min(cfg.nprobe, len(centroids)), cfg.batch_size,
                   desc="IVF cell assignment" if progress and n > 4 * cfg.batch_size else None)
    members, offsets = group(probes[:, 0], len(centroids))
    return IvfIndex(centroids, members, offsets, probes, int(train_n), time.perf_counter() - t0)


def search_ivf(x, index: IvfIndex, nprobe: int, k: int, cfg: KnnConfig, kernel, *, progress: bool):
    """The IVF graph of every row at ``nprobe``: ``(ids, sims, rows repaired exactly)``, self excluded.

    Queries are searched in parts whose candidates take at most about 1 GB (``nprobe * (k + 1) * 8`` bytes
    each); every part is stripped of self and written into the (N, k) result at once. Rows whose probed cells
    hold fewer than ``k + 1`` points are searched exactly.
    """
    from .exact import exact_for_queries

    n = len(x)
    if index.probes.shape[1] < nprobe:
        index.probes = probe(x, None, index.centroids, nprobe, cfg.batch_size,
                             desc="IVF probes" if progress and n > 4 * cfg.batch_size else None)
    part = max(1, _CANDIDATE_BYTES // (nprobe * (k + 1) * 8))
    starts = range(0, n, part)
    ids = np.empty((n, k), dtype=np.int64)
    sims = np.empty((n, k), dtype=np.float32)
    for i, a in enumerate(starts):
        b = min(a + part, n)
        desc = None if not progress else "IVF k-NN" if len(starts) == 1 else f"IVF k-NN ({i + 1}/{len(starts)})"
        rows = np.arange(a, b)
        pi, ps = cell_search(x, index.members, index.offsets, rows, index.probes[a:b, :nprobe], k + 1,
                             max_block=_BLOCK, kernel=kernel, desc=desc)
        ids[a:b], sims[a:b] = strip_self(pi, ps, rows, k)
    index.probes = index.probes[:, :0]  # no longer needed: free N * nprobe * 4 bytes
    short = np.flatnonzero((ids < 0).any(axis=1))  # the probed cells held fewer than k+1 points in all
    if short.size:
        ids[short], sims[short] = exact_for_queries(x, short, k, cfg.batch_size, kernel=kernel, with_sims=True)
    return ids, sims, int(short.size)
