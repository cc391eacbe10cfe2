"""The k-nearest-neighbour graph over unit-normalised embeddings (cosine similarity).

One global graph serves every curation step: HOC consensus, detection, the joint posterior and the long-tail
score. ``method="auto"`` searches exactly (faiss ``IndexFlatIP``) while that is cheap and switches to an
inverted-file (IVF) search above a work threshold. The IVF search partitions the points into cells by spherical
k-means (faiss), splits cells that k-means left oversized, and then works cell by cell rather than query by
query: all queries that probe a cell are scored against the cell's points in one matrix product. That is the
candidate set of a classic IVF scan at matrix-multiply speed (on 2 cores, 300k x 1024 takes about 50 s where
faiss' ``IndexIVFFlat`` needed an estimated 14 minutes; BENCHMARKS.md). Approximate search measures its
recall@k on a random sample of queries against exact search, raises ``nprobe`` until it reaches
``target_recall`` and falls back to exact search when the data are not clusterable enough for IVF to reach
``min_recall``.

Examples
--------
>>> import numpy as np
>>> from ds2_hf.knn import build_knn_graph
>>> x = np.random.default_rng(0).standard_normal((500, 16)).astype("float32")
>>> x /= np.linalg.norm(x, axis=1, keepdims=True)
>>> g = build_knn_graph(x, k=5)
>>> g.indices.shape, g.method
((500, 5), 'exact')
>>> bool((g.indices != np.arange(500)[:, None]).all())   # self is excluded
True
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import asdict, dataclass, field

import numpy as np

from ._import_utils import require

logger = logging.getLogger(__name__)

KNN_METHODS = ("auto", "exact", "ivf")
_BLOCK = 1 << 23  # score-matrix elements per matrix product of the IVF search (32 MB of float32)
_CANDIDATE_BYTES = 1 << 30  # candidates held at once by the IVF search; more queries are searched in parts


@dataclass(frozen=True)
class KnnConfig:
    """Options of the k-NN graph.

    Parameters
    ----------
    method : {"auto", "exact", "ivf"}, default "auto"
        ``"auto"`` uses exact search while ``N**2 * d <= exact_max_work`` and IVF above it.
    exact_max_work : float, default 1e12
        Work threshold of ``"auto"`` in multiply-adds (``N**2 * d``), about 10 s of exact search on a 2-core CPU
        (50k x 256); above it the IVF search is faster (at 50k x 1024, 9 s against 38 s; BENCHMARKS.md).
    nlist : int, optional
        IVF cells before splitting; default ``2 * sqrt(N)`` (at most ``N // 39``).
    nprobe : int, default 8
        Cells visited per query at first; doubled while the measured recall is below ``target_recall``, up to
        ``max_nprobe``. The neighbours a search misses lie across cell boundaries, which k-means aligns with
        cluster boundaries, so they belong to the rows whose rating is hardest to curate, and recall that
        looks excellent still costs accuracy: on six pooled 50k benchmark draws (300k x 256), recall@40 0.9996
        (over all rows) at ``nprobe = 4`` cost 0.05 points of curated accuracy against exact search, and
        ``nprobe = 8`` under 0.01 points (BENCHMARKS.md).
    max_nprobe : int, default 128
    target_recall : float, default 0.95
        Recall@k that ``nprobe`` is raised to reach (at least ``min_recall``). Higher targets buy accuracy
        with search time: on three pooled 300k draws (900k x 256) recall 0.996 (``nprobe = 8``) cost 0.06
        points against curating each draw alone and 0.9987 (``nprobe = 16``) 0.01 points, but a 1M x 256 draw needs
        ``nprobe = 64`` for 0.999 (0.990 / 0.995 / 0.997 at 8 / 16 / 32), so 0.998 is an option, not the
        default.
    min_recall : float, default 0.95
        Recall@k below which approximate search is abandoned: when even ``max_nprobe`` cannot reach it, the
        data are not clusterable enough for IVF and the graph is rebuilt exactly. Recall is measured on
        ``recall_sample`` queries against exact search over all points.
    recall_sample : int, default 1000
        Queries used to measure recall.
    train_size : int, optional
        Points used to train the cell centroids; default ``min(N, 40 * nlist)`` (faiss' recommended minimum is
        39 per centroid).
    kmeans_iter : int, default 10
        k-means iterations.
    max_cell_factor : float, default 3.0
        A cell holding more than this multiple of the mean cell size (estimated on the training sample) is
        re-clustered into cells of about the mean size; ``inf`` disables splitting.
    batch_size : int, default 16384
        Queries per exact-search call and per centroid-scoring block; bounds the temporary memory of exact
        search to about ``batch_size * k * 12`` bytes plus faiss' own blocks. The IVF search holds at most
        about 1 GB of candidates (``nprobe * (k + 1) * 8`` bytes per query), searching the queries in parts.
    threads : int, optional
        faiss OpenMP threads (default: faiss' own choice).
    seed : int, default 0
        Seed of the recall sample and the quantiser training sample.
    """

    method: str = "auto"
    exact_max_work: float = 1e12
    nlist: int | None = None
    nprobe: int = 8
    max_nprobe: int = 128
    target_recall: float = 0.95
    min_recall: float = 0.95
    recall_sample: int = 1000
    train_size: int | None = None
    kmeans_iter: int = 10
    max_cell_factor: float = 3.0
    batch_size: int = 16384
    threads: int | None = None
    seed: int = 0

    def __post_init__(self) -> None:
        if self.method not in KNN_METHODS:
            raise ValueError(f"knn method={self.method!r} is not supported; expected one of {KNN_METHODS}")
        for name in ("target_recall", "min_recall"):
            if not 0.0 < getattr(self, name) <= 1.0:
                raise ValueError(f"{name}={getattr(self, name)} must lie in (0, 1]")


@dataclass
class KnnGraph:
    """A k-NN graph: for every point, its ``k`` nearest other points by cosine similarity.

    Attributes
    ----------
    indices : ndarray of int64, shape (N, k)
        Neighbour ids, most similar first; self excluded. ``-1`` pads rows with fewer than ``k`` neighbours
        (only possible when ``N <= k``).
    similarities : ndarray of float32, shape (N, k)
        Cosine similarities in [-1, 1], non-increasing along each row.
    method : str
        ``"exact"`` or ``"ivf"`` (what was actually used).
    recall : float or None
        Measured recall@k of approximate search against exact search (``None`` for exact search).
    info : dict
        Build details: nlist, nprobe, seconds, sample sizes.
    """

    indices: np.ndarray
    similarities: np.ndarray
    method: str
    recall: float | None = None
    info: dict = field(default_factory=dict)

    @property
    def k(self) -> int:
        return self.indices.shape[1]

    def __len__(self) -> int:
        return self.indices.shape[0]

    def truncate(self, k: int) -> KnnGraph:
        """The graph restricted to the ``k`` nearest neighbours of each point."""
        if k > self.k:
            raise ValueError(f"cannot truncate a {self.k}-NN graph to k={k}; rebuild it with k >= {k}")
        return KnnGraph(self.indices[:, :k], self.similarities[:, :k], self.method, self.recall, dict(self.info))

    def summary(self) -> dict:
        """JSON-serialisable description for reports."""
        return {"method": self.method, "k": int(self.k), "recall": self.recall, **self.info}


def validate_embeddings(embeddings, *, normalize: bool = True, name: str = "embeddings") -> np.ndarray:
    """Check an embedding matrix and return it as C-contiguous float32, unit-normalised rows.

    Raises
    ------
    ValueError
        Not two-dimensional, ragged, NaN / inf values or all-zero rows (the message names the first rows).
    """
    try:
        x = np.asarray(embeddings, dtype=np.float32)
    except ValueError as err:  # ragged lists
        raise ValueError(
            f"{name} have mixed dimensions (rows of different lengths); every row must have the same length. "
            "Re-embed with one model, or cast the column to a fixed-length feature."
        ) from err
    if x.dtype == object or x.ndim != 2:
        raise ValueError(f"{name} must be a 2-D array of shape (N, d); got shape {x.shape}")
    if x.shape[0] == 0:
        raise ValueError(f"{name} are empty (0 rows)")
    finite = np.isfinite(x).all(axis=1)
    if not finite.all():
        bad = np.flatnonzero(~finite)
        raise ValueError(
            f"{name} contain NaN or inf in {bad.size} row(s), e.g. rows {bad[:5].tolist()}; re-embed those rows "
            "or drop them before curation"
        )
    norms = np.linalg.norm(x, axis=1)
    if (norms == 0).any():
        bad = np.flatnonzero(norms == 0)
        raise ValueError(
            f"{name} have {bad.size} all-zero row(s), e.g. rows {bad[:5].tolist()} (often empty texts); "
            "give them text or drop them before curation"
        )
    if normalize and not np.allclose(norms, 1.0, atol=1e-4):  # unit rows already (the usual case): no copy
        x = x / norms[:, None]
    return np.ascontiguousarray(x, dtype=np.float32)


def _strip_self(ids: np.ndarray, sims: np.ndarray, query_ids: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Drop each query's own id from its (k+1)-long result row; drop the last entry where self is absent."""
    is_self = ids == query_ids[:, None]
    no_self = ~is_self.any(axis=1)
    is_self[no_self, -1] = True  # exact duplicates may push self out of the list: drop the farthest instead
    keep = ~is_self
    return ids[keep].reshape(len(ids), k), sims[keep].reshape(len(ids), k)


def _search(index, x: np.ndarray, k: int, batch_size: int, desc: str | None = None) -> tuple[np.ndarray, np.ndarray]:
    n = len(x)
    ids = np.empty((n, k), dtype=np.int64)
    sims = np.empty((n, k), dtype=np.float32)
    starts = range(0, n, batch_size)
    if desc and n > batch_size:
        from tqdm.auto import tqdm

        starts = tqdm(starts, desc=desc, unit="batch", total=math.ceil(n / batch_size))
    for s in starts:
        d, i = index.search(x[s : s + batch_size], k)
        sims[s : s + batch_size] = d
        ids[s : s + batch_size] = i
    return ids, sims


def _exact(x: np.ndarray, k: int, cfg: KnnConfig, *, progress: bool) -> tuple[np.ndarray, np.ndarray]:
    faiss = require("faiss", purpose="the k-NN graph")
    index = faiss.IndexFlatIP(x.shape[1])
    index.add(x)
    ids, sims = _search(index, x, k + 1, cfg.batch_size, "exact k-NN" if progress else None)
    return _strip_self(ids, sims, np.arange(len(x)), k)


def _exact_for_queries(x: np.ndarray, queries: np.ndarray, k: int, block: int, *, with_sims: bool = False):
    """Exact top-k (self excluded) of a few query rows by blocked matrix products, without copying ``x``."""
    q = x[queries]
    best_s = np.full((len(q), k + 1), -np.inf, dtype=np.float32)
    best_i = np.full((len(q), k + 1), -1, dtype=np.int64)
    for start in range(0, len(x), block):
        s = q @ x[start : start + block].T
        cand_s = np.concatenate([best_s, s], axis=1)
        cand_i = np.concatenate([best_i, np.broadcast_to(np.arange(start, start + s.shape[1]), s.shape)], axis=1)
        top = np.argpartition(-cand_s, k, axis=1)[:, : k + 1]
        best_s = np.take_along_axis(cand_s, top, axis=1)
        best_i = np.take_along_axis(cand_i, top, axis=1)
    order = np.argsort(-best_s, axis=1, kind="stable")
    ids, sims = _strip_self(np.take_along_axis(best_i, order, 1), np.take_along_axis(best_s, order, 1), queries, k)
    return (ids, sims) if with_sims else ids


def _kmeans(x: np.ndarray, k: int, niter: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Spherical k-means with faiss: centroids (k, d) float32 unit rows and the assignment (len(x),) int64."""
    faiss = require("faiss", purpose="the k-NN graph")
    km = faiss.Kmeans(x.shape[1], k, niter=niter, spherical=True, seed=seed,
                      max_points_per_centroid=max(1, -(-len(x) // k)), verbose=False)
    km.train(x)
    return np.ascontiguousarray(km.centroids, dtype=np.float32), km.index.search(x, 1)[1][:, 0]


def _train_centroids(x: np.ndarray, nlist: int, train_n: int, cfg: KnnConfig, rng) -> np.ndarray:
    """Cell centroids (unit rows): spherical k-means of a random sample, with oversized cells split.

    Sentence embeddings are anisotropic, and k-means tends to gather the diffuse points of many clusters into
    a few cells near their common direction (on the public benchmark geometry at 300k x 1024 the largest cell
    held 42 times the mean, and the search cost 13 times that of balanced cells). The cost of a cell grows with
    the square of its size, so a cell holding more than ``max_cell_factor`` times the mean share of the sample
    is re-clustered, on its own sample points, into cells of about the mean size (up to three rounds).
    """
    n = len(x)
    train = x[np.sort(rng.choice(n, train_n, replace=False))] if train_n < n else x
    cents, assign = _kmeans(train, nlist, cfg.kmeans_iter, cfg.seed)
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
            sub, sub_assign = _kmeans(train[rows], n_sub, cfg.kmeans_iter, cfg.seed)
            parts.append(sub)
            new_assign[rows] = next_id + sub_assign
            next_id += len(sub)
        cents, assign = np.concatenate(parts), new_assign
    return cents


def _group(labels: np.ndarray, n_groups: int) -> tuple[np.ndarray, np.ndarray]:
    """Positions of ``labels`` grouped by value (stable) and the group offsets: group ``g`` is
    ``order[offsets[g]:offsets[g + 1]]``."""
    order = np.argsort(labels, kind="stable").astype(np.int64)
    offsets = np.concatenate([[0], np.cumsum(np.bincount(labels, minlength=n_groups))]).astype(np.int64)
    return order, offsets


def _probe(x: np.ndarray, rows: np.ndarray | None, centroids: np.ndarray, nprobe: int, block: int,
           *, ordered: bool = False) -> np.ndarray:
    """The ``nprobe`` cells of highest centroid similarity of each row (``rows=None``: every row), int32.

    Column 0 is always the most similar cell (the row's own cell); the others are in order only with
    ``ordered``.
    """
    n = len(x) if rows is None else len(rows)
    nprobe = min(nprobe, len(centroids))
    out = np.empty((n, nprobe), dtype=np.int32)
    for s in range(0, n, block):
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


def _cell_search(x: np.ndarray, members: np.ndarray, offsets: np.ndarray, queries: np.ndarray,
                 probes: np.ndarray, k: int, *, max_block: int, desc: str | None = None):
    """Top-``k`` inner products of each query among the points of its probed cells (self included).

    The work is organised by cell, not by query: the queries probing a cell are gathered into one matrix and
    scored against the cell's points with a single BLAS product; each (query, probe) pair keeps its top ``k``
    in a slot of its own, and one top-``k`` over a query's slots merges them at the end. This is the same
    candidate set as a per-query inverted-file scan, computed at matrix-product speed.

    Returns ``(ids, sims)``, each (len(queries), k), most similar first; ``-1`` pads rows whose probed cells
    hold fewer than ``k`` points.
    """
    faiss = require("faiss", purpose="the k-NN graph")
    nq, nprobe = probes.shape
    by_cell, qoff = _group(probes.ravel(), len(offsets) - 1)  # (query, probe rank) pairs grouped by cell
    # Each (query, probe rank) pair owns one slot of k candidates; one top-k over the slots merges them.
    cand_s = np.full((nq * nprobe, k), -np.inf, dtype=np.float32)
    cand_i = np.full((nq * nprobe, k), -1, dtype=np.int32 if len(x) < 2**31 else np.int64)
    cells = np.flatnonzero((np.diff(qoff) > 0) & (np.diff(offsets) > 0))
    if desc:
        from tqdm.auto import tqdm

        cells = tqdm(cells, desc=desc, unit="cell")
    for c in cells:
        mem = members[offsets[c] : offsets[c + 1]]
        xc = x[mem]
        kc = min(k, len(mem))
        slots = by_cell[qoff[c] : qoff[c + 1]]
        step = max(1, max_block // len(mem))
        for s in range(0, len(slots), step):
            sl = slots[s : s + step]
            d_, i_ = faiss.knn(x[queries[sl // nprobe]], xc, kc, metric=faiss.METRIC_INNER_PRODUCT)
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


def _recall(approx: np.ndarray, exact: np.ndarray) -> float:
    hits = sum(len(np.intersect1d(a, e, assume_unique=False)) for a, e in zip(approx, exact))
    return hits / exact.size


def build_knn_graph(embeddings, k: int, *, config: KnnConfig | None = None, progress: bool = True) -> KnnGraph:
    """Build the top-``k`` cosine-similarity graph of ``embeddings`` (self excluded).

    Parameters
    ----------
    embeddings : array-like of float, shape (N, d)
        Row vectors; they are validated and L2-normalised (a copy is made only when needed).
    k : int
        Neighbours per point, ``1 <= k < N``.
    config : KnnConfig, optional
        Search method and its options (defaults: :class:`KnnConfig`).
    progress : bool, default True
        Show a progress bar on long searches.

    Returns
    -------
    KnnGraph
        ``indices`` (N, k) int64 and ``similarities`` (N, k) float32, most similar first.

    Raises
    ------
    ValueError
        Invalid embeddings, or ``k >= N``.
    """
    cfg = config or KnnConfig()
    x = validate_embeddings(embeddings)
    n, d = x.shape
    if not 1 <= k < n:
        raise ValueError(
            f"k={k} neighbours need at least k+1={k + 1} rows, but there are {n}; lower k or add rows"
        )
    faiss = require("faiss", purpose="the k-NN graph")
    if cfg.threads:
        faiss.omp_set_num_threads(cfg.threads)
    t0 = time.perf_counter()
    method = cfg.method
    if method == "auto":
        method = "exact" if float(n) * n * d <= cfg.exact_max_work else "ivf"
    if method == "exact":
        ids, sims = _exact(x, k, cfg, progress=progress)
        return KnnGraph(ids, sims, "exact", None, {"seconds": round(time.perf_counter() - t0, 3)})

    rng = np.random.default_rng(cfg.seed)
    nlist = cfg.nlist or max(1, int(2 * math.sqrt(n)))
    nlist = max(1, min(nlist, n // 39))
    train_n = min(n, cfg.train_size or 40 * nlist)
    centroids = _train_centroids(x, nlist, train_n, cfg, rng)
    nlist = len(centroids)  # after splitting
    nprobe = min(cfg.nprobe, nlist)
    probes = _probe(x, None, centroids, nprobe, cfg.batch_size)
    members, offsets = _group(probes[:, 0], nlist)
    sizes = np.diff(offsets)
    t_build = time.perf_counter() - t0

    # Recall on a query sample against exact search over the full data (so it is the true recall@k).
    q_ids = np.sort(rng.choice(n, min(cfg.recall_sample, n), replace=False))
    e_ids = _exact_for_queries(x, q_ids, k, cfg.batch_size)
    q_probes = _probe(x, q_ids, centroids, min(cfg.max_nprobe, nlist), cfg.batch_size, ordered=True)
    while True:
        a_ids, a_sims = _cell_search(x, members, offsets, q_ids, q_probes[:, :nprobe], k + 1, max_block=_BLOCK)
        a_ids, _ = _strip_self(a_ids, a_sims, q_ids, k)
        recall = _recall(a_ids, e_ids)
        if recall >= max(cfg.target_recall, cfg.min_recall) or nprobe >= min(cfg.max_nprobe, nlist):
            break
        nprobe = min(nprobe * 2, cfg.max_nprobe, nlist)
    info = {"nlist": nlist, "nprobe": nprobe, "train_size": int(train_n), "recall_sample": int(len(q_ids)),
            "largest_cell": int(sizes.max()), "mean_cell": round(float(sizes.mean()), 1)}
    if recall < cfg.min_recall:
        logger.warning(
            "IVF recall@%d is %.3f < min_recall=%.2f even at nprobe=%d: the embeddings are not clusterable "
            "enough for approximate search; falling back to exact search",
            k, recall, cfg.min_recall, nprobe,
        )
        ids, sims = _exact(x, k, cfg, progress=progress)
        info.update(fallback_from_ivf_recall=round(recall, 4), seconds=round(time.perf_counter() - t0, 3))
        return KnnGraph(ids, sims, "exact", None, info)
    if probes.shape[1] < nprobe:
        probes = _probe(x, None, centroids, nprobe, cfg.batch_size)
    # Each query holds nprobe * (k + 1) candidates (8 bytes each) until they are merged: search in parts.
    part = max(1, _CANDIDATE_BYTES // (nprobe * (k + 1) * 8))
    starts = range(0, n, part)
    ids = np.empty((n, k + 1), dtype=np.int64)
    sims = np.empty((n, k + 1), dtype=np.float32)
    for i, a in enumerate(starts):
        b = min(a + part, n)
        desc = None if not progress else "IVF k-NN" if len(starts) == 1 else f"IVF k-NN ({i + 1}/{len(starts)})"
        ids[a:b], sims[a:b] = _cell_search(x, members, offsets, np.arange(a, b), probes[a:b], k + 1,
                                           max_block=_BLOCK, desc=desc)
    del probes
    ids, sims = _strip_self(ids, sims, np.arange(n), k)
    # The probed cells can hold fewer than k+1 points in all: repair those rows exactly.
    short = np.flatnonzero((ids < 0).any(axis=1))
    if short.size:
        ids[short], sims[short] = _exact_for_queries(x, short, k, cfg.batch_size, with_sims=True)
        info["rows_repaired_exactly"] = int(short.size)
    info.update(build_seconds=round(t_build, 3), seconds=round(time.perf_counter() - t0, 3))
    return KnnGraph(ids, sims, "ivf", round(float(recall), 4), info)


def knn_config_dict(cfg: KnnConfig) -> dict:
    return asdict(cfg)
