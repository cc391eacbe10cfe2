"""The k-nearest-neighbour graph over unit-normalised embeddings (cosine similarity), built with faiss.

One global graph serves every curation step: HOC consensus, detection, the joint posterior and the long-tail
score. ``method="auto"`` searches exactly (``IndexFlatIP``) while that is cheap and switches to an inverted-file
index (``IndexIVFFlat``) above a work threshold; approximate search always measures its recall@k on a random
sample of queries against exact search, raises ``nprobe`` until it reaches ``min_recall`` and falls back to exact
search when the data are not clusterable enough for IVF to reach it.

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


@dataclass(frozen=True)
class KnnConfig:
    """Options of the k-NN graph.

    Parameters
    ----------
    method : {"auto", "exact", "ivf"}, default "auto"
        ``"auto"`` uses exact search while ``N**2 * d <= exact_max_work`` and IVF above it.
    exact_max_work : float, default 5e12
        Work threshold of ``"auto"`` in multiply-adds (``N**2 * d``), about 50 s of exact search on a 2-core CPU.
        Measured there (BENCHMARKS.md): exact search of 50k x 1024 took 26 s; at 100k x 1024, IVF took about 51 s
        (29 s build, 22 s search, recall@40 = 1.000) where exact search needs about four times the 50k time.
    nlist : int, optional
        IVF cells; default ``4 * sqrt(N)``.
    nprobe : int, default 8
        Cells visited per query, raised automatically (doubling) until ``min_recall`` is reached, up to
        ``max_nprobe``. On the public benchmark geometry at 100k x 1024, ``nprobe = 8`` already gives recall@40 of
        1.000 (BENCHMARKS.md).
    max_nprobe : int, default 128
    min_recall : float, default 0.95
        Required recall@k of approximate search, measured on ``recall_sample`` queries against exact search.
        Below it (after raising ``nprobe``) the graph is rebuilt exactly.
    recall_sample : int, default 1000
        Queries used to measure recall.
    train_size : int, optional
        Points used to train the IVF quantiser; default ``min(N, 40 * nlist)`` (faiss' recommended minimum is 39
        per cell).
    batch_size : int, default 16384
        Queries per faiss call; bounds the temporary memory of a search to about ``batch_size * k * 12`` bytes
        plus faiss' own blocks.
    threads : int, optional
        faiss OpenMP threads (default: faiss' own choice).
    seed : int, default 0
        Seed of the recall sample and the quantiser training sample.
    """

    method: str = "auto"
    exact_max_work: float = 5e12
    nlist: int | None = None
    nprobe: int = 8
    max_nprobe: int = 128
    min_recall: float = 0.95
    recall_sample: int = 1000
    train_size: int | None = None
    batch_size: int = 16384
    threads: int | None = None
    seed: int = 0

    def __post_init__(self) -> None:
        if self.method not in KNN_METHODS:
            raise ValueError(f"knn method={self.method!r} is not supported; expected one of {KNN_METHODS}")
        if not 0.0 < self.min_recall <= 1.0:
            raise ValueError(f"min_recall={self.min_recall} must lie in (0, 1]")


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
    nlist = cfg.nlist or max(1, int(4 * math.sqrt(n)))
    nlist = min(nlist, max(1, n // 39))
    train_n = min(n, cfg.train_size or 40 * nlist)
    train = x[np.sort(rng.choice(n, train_n, replace=False))] if train_n < n else x
    quantizer = faiss.IndexFlatIP(d)
    index = faiss.IndexIVFFlat(quantizer, d, nlist, faiss.METRIC_INNER_PRODUCT)
    index.cp.seed = cfg.seed
    index.train(train)
    index.add(x)
    t_build = time.perf_counter() - t0

    # Recall on a query sample against exact search over the full data (so it is the true recall@k).
    q_ids = np.sort(rng.choice(n, min(cfg.recall_sample, n), replace=False))
    e_ids = _exact_for_queries(x, q_ids, k, cfg.batch_size)
    nprobe = min(cfg.nprobe, nlist)
    while True:
        index.nprobe = nprobe
        a_sims, a_ids = index.search(x[q_ids], k + 1)  # faiss returns (scores, ids)
        a_ids, _ = _strip_self(a_ids, a_sims, q_ids, k)
        recall = _recall(a_ids, e_ids)
        if recall >= cfg.min_recall or nprobe >= min(cfg.max_nprobe, nlist):
            break
        nprobe = min(nprobe * 2, cfg.max_nprobe, nlist)
    info = {"nlist": nlist, "nprobe": nprobe, "train_size": int(train_n), "recall_sample": int(len(q_ids))}
    if recall < cfg.min_recall:
        logger.warning(
            "IVF recall@%d is %.3f < min_recall=%.2f even at nprobe=%d: the embeddings are not clusterable "
            "enough for approximate search; falling back to exact search",
            k, recall, cfg.min_recall, nprobe,
        )
        ids, sims = _exact(x, k, cfg, progress=progress)
        info.update(fallback_from_ivf_recall=round(recall, 4), seconds=round(time.perf_counter() - t0, 3))
        return KnnGraph(ids, sims, "exact", None, info)
    ids, sims = _search(index, x, k + 1, cfg.batch_size, "IVF k-NN" if progress else None)
    ids, sims = _strip_self(ids, sims, np.arange(n), k)
    # IVF can return -1 padding when the probed cells hold fewer than k+1 points: repair those rows exactly.
    short = np.flatnonzero((ids < 0).any(axis=1))
    if short.size:
        ids[short], sims[short] = _exact_for_queries(x, short, k, cfg.batch_size, with_sims=True)
        info["rows_repaired_exactly"] = int(short.size)
    info.update(build_seconds=round(t_build, 3), seconds=round(time.perf_counter() - t0, 3))
    return KnnGraph(ids, sims, "ivf", round(float(recall), 4), info)


def knn_config_dict(cfg: KnnConfig) -> dict:
    return asdict(cfg)
