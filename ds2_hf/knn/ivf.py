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

from .cells import cell_search, group
from .cost import Rate
from .graph import KnnConfig, id_dtype, strip_self
from .quantiser import Quantiser, train_quantiser

_BLOCK = 1 << 23  # score-matrix elements per matrix product of the IVF search (32 MB of float32)
_CANDIDATE_BYTES = 1 << 30  # candidates held at once by the IVF search; more queries are searched in parts


@dataclass
class IvfIndex:
    """Trained cells: ``quantiser`` (the centroids, :mod:`~ds2_hf.knn.quantiser`); cell ``c`` holds
    ``members[offsets[c]:offsets[c + 1]]`` (the rows whose most similar centroid is ``c``); ``probes`` the best
    cells of every row, most similar first (:func:`probe_columns` of them); ``probe_seconds`` the time it took to
    compute them (what computing them again for more probes costs)."""

    quantiser: Quantiser
    members: np.ndarray
    offsets: np.ndarray
    probes: np.ndarray
    train_size: int
    seconds: float
    probe_seconds: float

    @property
    def nlist(self) -> int:
        return self.quantiser.nlist

    @property
    def sizes(self) -> np.ndarray:
        return np.diff(self.offsets)


def default_nlist(n: int, cfg: KnnConfig) -> int:
    """Cells of the IVF search: ``cfg.nlist``, else ``max(2 sqrt(N), N / cell_size)`` (at most ``N // 39``)."""
    nlist = cfg.nlist or max(1, int(2 * math.sqrt(n)), n // cfg.cell_size)
    return max(1, min(nlist, n // 39))


def build_ivf(x, cfg: KnnConfig, rng, *, progress: bool, kernel=None) -> IvfIndex:
    """Train the cells on a sample of ``x`` (array or :class:`~ds2_hf.knn.blocked.MappedRows`) and assign every row."""
    t0 = time.perf_counter()
    n = len(x)
    nlist = default_nlist(n, cfg)
    train_n = min(n, cfg.train_size or 40 * nlist)
    quantiser = train_quantiser(x, nlist, train_n, cfg, rng, kernel=kernel)
    t1 = time.perf_counter()
    probes = quantiser.probe(x, None, probe_columns(quantiser, cfg), _probe_block(quantiser, cfg),
                             desc="IVF cell assignment" if progress and n > 4 * cfg.batch_size else None,
                             kernel=kernel)
    t2 = time.perf_counter()
    members, offsets = group(probes[:, 0], quantiser.nlist)
    return IvfIndex(quantiser, members, offsets, probes, int(train_n), time.perf_counter() - t0, t2 - t1)


def probe_columns(quantiser: Quantiser, cfg: KnnConfig) -> int:
    """Probes kept per row when the rows are assigned: ``nprobe``, or twice that through coarse cells.

    Through coarse cells the best ``2 nprobe`` cells cost what the best ``nprobe`` cost (the centroid scores
    dominate), and they spare one doubling of ``nprobe`` a second pass over all rows (at 10M x 256, 390 s for
    ``4 * N * nprobe`` bytes more). Flat cells score every centroid; a second pass costs the same as the first.
    """
    cols = 2 * cfg.nprobe if quantiser.two_level else cfg.nprobe
    return max(1, min(cols, cfg.max_nprobe, quantiser.nlist))


def part_rows(nprobe: int, k: int) -> int:
    """Queries per part of the IVF search: their candidates hold at most about 1 GB."""
    return max(1, _CANDIDATE_BYTES // (nprobe * (k + 1) * 8))


def time_part(x, index: IvfIndex, nprobe: int, k: int, cfg: KnnConfig, kernel, rng) -> Rate:
    """The IVF search's rate on this pool: one search part of random queries at ``nprobe``, timed.

    A part of :func:`part_rows` queries (at most a tenth of the rows) meets the cells as the search's own parts
    do (the same queries per cell, the same rows gathered per cell), so its multiply-adds per second are the
    search's. Its probes are taken from the index, or computed when it holds fewer (not timed: the index's
    ``probe_seconds`` is what computing them for every row costs).
    """
    n = len(x)
    q = np.sort(rng.choice(n, min(part_rows(nprobe, k), max(1, n // 10)), replace=False))
    if index.probes.shape[1] >= nprobe:
        probes = index.probes[q, :nprobe]
    else:
        probes = index.quantiser.probe(x, q, nprobe, _probe_block(index.quantiser, cfg), kernel=kernel)
    probed = np.where(probes >= 0, index.sizes[np.maximum(probes, 0)], 0)
    t = time.perf_counter()
    cell_search(x, index.members, index.offsets, q, probes, k + 1, max_block=_BLOCK, kernel=kernel)
    return Rate(len(q), nprobe, float(probed.sum()) * x.shape[1], time.perf_counter() - t)


def _probe_block(quantiser: Quantiser, cfg: KnnConfig) -> int:
    """Rows probed at once: ``batch_size`` (flat), four times that through the coarse cells."""
    return 4 * cfg.batch_size if quantiser.two_level else cfg.batch_size


def search_ivf(x, index: IvfIndex, nprobe: int, k: int, cfg: KnnConfig, kernel, *, progress: bool):
    """The IVF graph of every row at ``nprobe``: ``(ids, sims, rows repaired exactly)``, self excluded.

    Queries are searched in parts whose candidates take at most about 1 GB (``nprobe * (k + 1) * 8`` bytes
    each); every part is stripped of self and written into the (N, k) result at once. Rows whose probed cells
    hold fewer than ``k + 1`` points are searched exactly.
    """
    from .exact import exact_for_queries

    n = len(x)
    if index.probes.shape[1] < nprobe:
        index.probes = index.quantiser.probe(x, None, nprobe, _probe_block(index.quantiser, cfg), kernel=kernel,
                                             desc="IVF probes" if progress and n > 4 * cfg.batch_size else None)
    part = part_rows(nprobe, k)
    starts = range(0, n, part)
    ids = np.empty((n, k), dtype=id_dtype(n))
    sims = np.empty((n, k), dtype=np.float32)
    for i, a in enumerate(starts):
        b = min(a + part, n)
        desc = None if not progress else "IVF k-NN" if len(starts) == 1 else f"IVF k-NN ({i + 1}/{len(starts)})"
        rows = np.arange(a, b)
        pi, ps = cell_search(x, index.members, index.offsets, rows, index.probes[a:b, :nprobe], k + 1,
                             max_block=_BLOCK, kernel=kernel, desc=desc)
        ids[a:b], sims[a:b] = strip_self(pi, ps, rows, k)
    index.probes = np.empty((n, 0), dtype=np.int32)  # no longer needed: free N * nprobe * 4 bytes (not a view)
    short = np.flatnonzero((ids < 0).any(axis=1))  # the probed cells held fewer than k+1 points in all
    if short.size:
        ids[short], sims[short] = exact_for_queries(x, short, k, cfg.batch_size, kernel=kernel, with_sims=True)
    return ids, sims, int(short.size)
