"""The cells of the IVF search: spherical k-means centroids, and the cells each row probes.

Up to ``KnnConfig.max_flat_cells`` cells (1M rows with the defaults) every query scores every centroid (a *flat*
quantiser). Beyond that, scoring all of them would cost more than searching the cells: at 10M rows, 20,000 cells
of 500 rows cost 20,000 centroid products per query against 4,000 cell rows at ``nprobe = 8``. The *two-level*
quantiser groups the cells under ``sqrt(nlist)`` coarse centroids; a query scores the coarse centroids, then the
cells of its ``coarse_nprobe`` most similar coarse cells only (about 6,200 products at 10M rows), and probes the
best of those. The cells are trained in two levels too (k-means of the training sample into ``sqrt(nlist)``
parts, then of each part into its share of the cells), followed by ``refine_iter`` k-means steps over all cells
whose assignments go through the coarse cells; the coarse cells are a k-means of the cell centroids themselves.
On the public generator's geometry at 1M rows (2,456 cells in 45 groups, 16 probed), this reached recall@40
0.996 at ``nprobe = 8``, where flat cells reached 0.995 and the two-level training without the k-means steps
0.979. The coarse cells are scored cell by cell with the IVF search's own matrix products
(:func:`~ds2_hf.knn.cells.cell_search`), and recall is measured with the same probes as the search, as for flat cells.

Examples
--------
>>> import numpy as np
>>> from ds2_hf.knn.graph import KnnConfig
>>> from ds2_hf.knn.quantiser import train_quantiser
>>> rng = np.random.default_rng(0)
>>> x = rng.standard_normal((20000, 16)).astype("float32")
>>> x /= np.linalg.norm(x, axis=1, keepdims=True)
>>> q = train_quantiser(x, 64, 20000, KnnConfig(max_flat_cells=16), rng)
>>> q.two_level, len(q.coarse), q.nlist >= 64
(True, 8, True)
>>> probes = q.probe(x, None, 4, 4096)
>>> probes.shape, bool((probes[:, 0] == (x @ q.centroids.T).argmax(1)).mean() > 0.95)  # column 0: own cell
((20000, 4), True)
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .._import_utils import require
from .cells import cell_search
from .graph import KnnConfig


def kmeans(x: np.ndarray, k: int, niter: int, seed: int, *, min_points: int = 39) -> tuple[np.ndarray, np.ndarray]:
    """Spherical k-means with faiss: centroids (k, d) float32 unit rows and the assignment (len(x),) int64.

    faiss warns below ``min_points`` points per centroid (its default 39); grouping centroids passes 1.
    """
    faiss = require("faiss", purpose="the k-NN graph")
    km = faiss.Kmeans(x.shape[1], k, niter=niter, spherical=True, seed=seed, min_points_per_centroid=min_points,
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


def probe(x, rows: np.ndarray | None, centroids: np.ndarray, nprobe: int, block: int,
          *, desc: str | None = None) -> np.ndarray:
    """The ``nprobe`` cells of highest centroid similarity of each row (``rows=None``: every row), int32, most
    similar first: column 0 is the row's own cell, and ``[:, :p]`` are its ``p`` best cells for any ``p``."""
    n = len(x) if rows is None else len(rows)
    nprobe = min(nprobe, len(centroids))
    out = np.empty((n, nprobe), dtype=np.int32)
    for s in _starts(n, block, desc):
        sc = (x[s : s + block] if rows is None else x[rows[s : s + block]]) @ centroids.T
        if nprobe == len(centroids):
            top = np.argsort(-sc, axis=1, kind="stable")
        else:  # the best nprobe, then in order among themselves
            top = np.argpartition(-sc, nprobe - 1, axis=1)[:, :nprobe]
            top = np.take_along_axis(top, np.argsort(-np.take_along_axis(sc, top, 1), axis=1, kind="stable"), 1)
        out[s : s + block] = top
    return out


def _starts(n: int, block: int, desc: str | None):
    starts = range(0, n, block)
    if desc:
        from tqdm.auto import tqdm

        return tqdm(starts, desc=desc, unit="block", total=math.ceil(n / block))
    return starts


@dataclass
class Quantiser:
    """The cells' centroids and how a query finds its cells.

    Attributes
    ----------
    centroids : ndarray (nlist, d) float32
        Unit centroid of every cell.
    coarse : ndarray (nc, d) float32 or None
        Two-level only: the coarse centroids; coarse cell ``c`` groups the cells
        ``groups[c]:groups[c + 1]``.
    groups : ndarray (nc + 1,) int64 or None
    coarse_nprobe : int
        Two-level only: coarse cells whose cells a query scores (the same for every ``nprobe``, so that the
        recall measured on a sample is that of the full search).
    """

    centroids: np.ndarray
    coarse: np.ndarray | None = None
    groups: np.ndarray | None = None
    coarse_nprobe: int = 0

    @property
    def nlist(self) -> int:
        return len(self.centroids)

    @property
    def two_level(self) -> bool:
        return self.coarse is not None

    @property
    def scored(self) -> float:
        """Centroid products per query: ``nlist`` (flat), or the coarse centroids plus the probed groups' cells."""
        if not self.two_level:
            return float(self.nlist)
        return len(self.coarse) + self.coarse_nprobe * self.nlist / len(self.coarse)

    def probe(self, x, rows: np.ndarray | None, nprobe: int, block: int, *, desc: str | None = None,
              kernel=None) -> np.ndarray:
        """The ``nprobe`` most similar cells of each row (``rows=None``: every row): (n, nprobe) int32.

        The columns are in order of similarity: column 0 is the row's own cell (its most similar centroid among
        those scored), and ``[:, :p]`` are the row's ``p`` best cells. Two-level cells: ``-1`` fills the columns
        beyond the cells of a row's ``coarse_nprobe`` coarse cells (no cell).
        """
        if not self.two_level:
            return probe(x, rows, self.centroids, nprobe, block, desc=desc)
        from .exact import CpuKernel

        kernel = kernel or CpuKernel()
        n = len(x) if rows is None else len(rows)
        nprobe = min(nprobe, self.nlist)
        out = np.empty((n, nprobe), dtype=np.int32)
        members = np.arange(self.nlist, dtype=np.int64)
        for s in _starts(n, block, desc):
            xb = np.ascontiguousarray(x[s : s + block] if rows is None else x[rows[s : s + block]])
            top = probe(xb, None, self.coarse, self.coarse_nprobe, len(xb))
            ids, _ = cell_search(xb, members, self.groups, np.arange(len(xb)), top, nprobe, base=self.centroids,
                                 max_block=1 << 23, kernel=kernel)
            out[s : s + len(xb)] = ids
        return out


def train_quantiser(x, nlist: int, train_n: int, cfg: KnnConfig, rng, *, kernel=None) -> Quantiser:
    """Cells for the IVF search: flat up to ``cfg.max_flat_cells`` cells, two-level above (module docstring).

    ``x`` is an array or :class:`~ds2_hf.knn.blocked.MappedRows` of unit rows; ``train_n`` rows of it are drawn
    with ``rng`` to train on.
    """
    if nlist <= cfg.max_flat_cells:
        return Quantiser(train_centroids(x, nlist, train_n, cfg, rng))
    n = len(x)
    train = np.ascontiguousarray(x[np.sort(rng.choice(n, train_n, replace=False))] if train_n < n else x[:])
    nc = max(2, round(math.sqrt(nlist)))
    centroids = _split_train(train, nlist, nc, cfg, rng)
    for _ in range(cfg.refine_iter):
        centroids = _lloyd_step(train, _grouped(centroids, nc, cfg), kernel)
    return _grouped(centroids, nc, cfg)


def _split_train(train: np.ndarray, nlist: int, nc: int, cfg: KnnConfig, rng) -> np.ndarray:
    """First centroids: k-means of the sample into ``nc`` parts, then of each part into its share of the cells.

    Each part only sees its own points, so clusters that straddle two parts are split between them; the Lloyd
    steps of :func:`train_quantiser` (over all cells) mend that.
    """
    _, assign = kmeans(train, nc, cfg.kmeans_iter, cfg.seed)
    order = np.argsort(assign, kind="stable")
    bounds = np.searchsorted(assign[order], np.arange(nc + 1))
    parts = []
    for c in range(nc):
        rows = train[order[bounds[c] : bounds[c + 1]]]
        if not len(rows):
            continue
        cells = min(max(1, round(nlist * len(rows) / len(train))), max(1, len(rows) // 39))
        if cells == 1:  # one cell: the normalised mean of its points
            m = rows.sum(axis=0)
            parts.append((m / max(float(np.linalg.norm(m)), 1e-12))[None, :].astype(np.float32))
        else:
            parts.append(train_centroids(rows, cells, len(rows), cfg, rng))
    return np.concatenate(parts)


def _grouped(centroids: np.ndarray, nc: int, cfg: KnnConfig) -> Quantiser:
    """The two-level quantiser of ``centroids``: k-means of the centroids themselves into ``nc`` coarse cells.

    Grouping the cells by their own centroids (rather than by the sample points they were trained on) keeps the
    cells of one region under one coarse centroid; on the public generator's geometry at 1M rows, probing through
    these groups found every row's own cell where the groups of the training split missed 1.5% of them.
    """
    coarse, assign = kmeans(centroids, nc, cfg.kmeans_iter, cfg.seed, min_points=1)
    order = np.argsort(assign, kind="stable")
    groups = np.concatenate([[0], np.cumsum(np.bincount(assign, minlength=nc))]).astype(np.int64)
    probed = min(nc, cfg.coarse_nprobe or max(16, nc // 4))  # KnnConfig.coarse_nprobe: a quarter beyond 64
    return Quantiser(np.ascontiguousarray(centroids[order]), coarse, groups, probed)


def _lloyd_step(train: np.ndarray, quantiser: Quantiser, kernel) -> np.ndarray:
    """One k-means update over all cells: assign the sample through the coarse cells, move each centroid to the
    normalised mean of its points (an empty cell keeps its centroid)."""
    from scipy import sparse

    assign = quantiser.probe(train, None, 1, 1 << 16, kernel=kernel)[:, 0]
    onehot = sparse.csr_matrix((np.ones(len(train), np.float32), (assign, np.arange(len(train)))),
                               shape=(quantiser.nlist, len(train)))
    sums = onehot @ train
    norms = np.linalg.norm(sums, axis=1, keepdims=True)
    return np.where(norms > 0, sums / np.maximum(norms, 1e-12), quantiser.centroids).astype(np.float32)
