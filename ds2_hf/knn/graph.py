"""The graph contract (:class:`KnnGraph`), the options of every search (:class:`KnnConfig`) and input checks."""

from __future__ import annotations

import math
import os
from dataclasses import asdict, dataclass, field

import numpy as np

from ..validation import as_matrix, row_norms, validate_embeddings  # noqa: F401  (re-exported)

KNN_METHODS = ("auto", "exact", "ivf", "hnsw")
KNN_DEVICES = ("auto", "cpu", "gpu")


@dataclass(frozen=True)
class KnnConfig:
    """Options of the k-NN graph.

    Parameters
    ----------
    method : {"auto", "exact", "ivf", "hnsw"}, default "auto"
        ``"auto"`` uses exact search while ``N**2 * d <= exact_max_work`` and IVF above it, escalating when the
        IVF recall stays low (see ``min_recall``). ``"hnsw"`` builds a faiss HNSW index (graph search).
    exact_max_work : float, default 1e12
        Work threshold of ``"auto"`` in multiply-adds (``N**2 * d``), about 10 s of exact search on a 2-core CPU
        (50k x 256); above it the IVF search is faster (at 50k x 1024, 9 s against 38 s; BENCHMARKS.md).
    nlist : int, optional
        IVF cells before splitting; default ``max(2 * sqrt(N), N / cell_size)`` (at most ``N // 39``).
    cell_size : int, default 500
        Mean rows per IVF cell beyond 1M rows (below, ``2 * sqrt(N)`` cells hold fewer): fixed-size cells keep a
        query's cost constant as the pool grows, where cells growing with ``sqrt(N)`` make 10 times the rows cost
        32 times the search.
    max_flat_cells : int, default 2048
        Up to this many cells a query scores every centroid; above, the cells are found through a coarse
        quantiser of ``sqrt(nlist)`` centroids (:mod:`~ds2_hf.knn.quantiser`): about 6,200 centroid products per
        query at 10M rows instead of 20,000.
    coarse_nprobe : int, optional
        Coarse cells whose cells a query scores when the quantiser is two-level; default ``max(16, nc // 4)``
        of the ``nc`` coarse cells. A quarter of them keeps the cells a query misses rare as ``nc`` grows: on the
        public generator's geometry at 10M x 256 (141 coarse cells), 16 capped recall@40 at 0.93 at any
        ``nprobe`` (0.902 at 8, 0.929 at 64), where 32 reached 0.940 at ``nprobe = 8`` and 0.957 at 16, for about
        twice the centroid products (BENCHMARKS.md).
    refine_iter : int, default 3
        k-means steps over all cells after the two-level training (two-level quantiser only).
    nprobe : int, default 8
        Cells visited per query at first; doubled while the measured recall is below ``target_recall``, up to
        ``max_nprobe`` (and while the estimated search time stays within ``max_seconds``). The neighbours a
        search misses lie across cell boundaries, which k-means aligns with cluster boundaries, so they belong
        to the rows whose rating is hardest to curate, and recall that looks excellent still costs accuracy: on
        six pooled 50k benchmark draws (300k x 256), recall@40 0.9996 (over all rows) at ``nprobe = 4`` cost
        0.05 points of curated accuracy against exact search, and ``nprobe = 8`` under 0.01 points
        (BENCHMARKS.md).
    max_nprobe : int, default 128
    target_recall : float, default 0.95
        Recall@k that ``nprobe`` is raised to reach (at least ``min_recall``). Higher targets buy accuracy
        with search time: on three pooled 300k draws (900k x 256) recall 0.996 (``nprobe = 8``) cost 0.06
        points against curating each draw alone and 0.9987 (``nprobe = 16``) 0.01 points, but a 1M x 256 draw needs
        ``nprobe = 64`` for 0.999 (0.990 / 0.995 / 0.997 at 8 / 16 / 32), so 0.998 is an option, not the
        default.
    min_recall : float, default 0.95
        Recall@k below which the IVF graph is not accepted without escalating: exact search when its estimated
        cost fits ``max_seconds`` and the memory budget, else an HNSW graph when a trial on a sample predicts
        a higher recall within budget, else the IVF graph at the measured recall (logged, and recorded in
        the graph's ``info["escalation"]``). Recall is measured on ``recall_sample`` queries against exact
        search over all points.
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
        Queries per exact-search call, per centroid-scoring block and per block of rows read from a
        memory-mapped array; bounds the temporary memory of exact search to about ``batch_size * k * 12``
        bytes plus faiss' own blocks. The IVF search holds at most about 1 GB of candidates
        (``nprobe * (k + 1) * 8`` bytes per query), searching the queries in parts.
    max_seconds : float or None, default 3600
        Longest estimated time of one full search that may be started. Costs are estimated before searching
        (multiply-adds at this machine's measured speed, then for IVF at the rate of one search part timed on
        the pool when that prior would refuse a search; HNSW from a timed trial on a sample); a search above
        the budget is never started: ``"auto"`` escalates to the next option, an explicit ``method`` raises a
        ``ValueError`` naming the estimate. ``None`` disables the check.
    max_memory_gb : float or None, optional
        Memory the search may hold beyond the embeddings themselves (default: 80% of the machine's RAM).
    device : {"auto", "cpu", "gpu"}, default "auto"
        ``"gpu"`` runs the distance products on every visible GPU through GPU faiss (``faiss.knn_gpu``; the same
        graph and the same recall check); ``"auto"`` uses GPUs when GPU faiss is installed and sees one.
    hnsw_m : int, default 32
        HNSW links per node (faiss ``M``); memory is about ``N * (4 d + 8 M)`` bytes (``2 d`` for float16 input).
    hnsw_ef_construction : int, default 80
    hnsw_max_ef : int, default 512
        Largest HNSW search breadth ``efSearch``; it starts at ``2 k`` and doubles until ``target_recall``.
    threads : int, optional
        faiss OpenMP threads (default: faiss' own choice).
    seed : int, default 0
        Seed of the recall sample and the quantiser training sample.
    """

    method: str = "auto"
    exact_max_work: float = 1e12
    nlist: int | None = None
    cell_size: int = 500
    max_flat_cells: int = 2048
    coarse_nprobe: int | None = None
    refine_iter: int = 3
    nprobe: int = 8
    max_nprobe: int = 128
    target_recall: float = 0.95
    min_recall: float = 0.95
    recall_sample: int = 1000
    train_size: int | None = None
    kmeans_iter: int = 10
    max_cell_factor: float = 3.0
    batch_size: int = 16384
    max_seconds: float | None = 3600.0
    max_memory_gb: float | None = None
    device: str = "auto"
    hnsw_m: int = 32
    hnsw_ef_construction: int = 80
    hnsw_max_ef: int = 512
    threads: int | None = None
    seed: int = 0

    def __post_init__(self) -> None:
        if self.method not in KNN_METHODS:
            raise ValueError(f"knn method={self.method!r} is not supported; expected one of {KNN_METHODS}")
        if self.device not in KNN_DEVICES:
            raise ValueError(f"knn device={self.device!r} is not supported; expected one of {KNN_DEVICES}")
        for name in ("target_recall", "min_recall"):
            if not 0.0 < getattr(self, name) <= 1.0:
                raise ValueError(f"{name}={getattr(self, name)} must lie in (0, 1]")
        for name in ("cell_size", "max_flat_cells", "coarse_nprobe", "nprobe", "max_nprobe"):
            if name == "coarse_nprobe" and self.coarse_nprobe is None:
                continue
            if not (isinstance(getattr(self, name), (int, np.integer)) and getattr(self, name) >= 1):
                raise ValueError(f"{name}={getattr(self, name)!r} must be a positive integer")
        if not (isinstance(self.refine_iter, (int, np.integer)) and self.refine_iter >= 0):
            raise ValueError(f"refine_iter={self.refine_iter!r} must be an integer >= 0")
        for name in ("max_seconds", "max_memory_gb"):
            value = getattr(self, name)
            if value is not None and not value > 0:
                raise ValueError(f"{name}={value!r} must be positive (or None to disable the check)")

    def memory_budget(self) -> float:
        """Bytes a search may hold: ``max_memory_gb``, or 80% of the machine's physical memory."""
        if self.max_memory_gb is not None:
            return self.max_memory_gb * 1e9
        try:
            return 0.8 * os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
        except (ValueError, OSError, AttributeError):  # not POSIX: no check
            return math.inf



@dataclass
class KnnGraph:
    """A k-NN graph: for every point, its ``k`` nearest other points by cosine similarity.

    Attributes
    ----------
    indices : ndarray of int32 (int64 when N >= 2**31), shape (N, k)
        Neighbour ids, most similar first; self excluded. ``-1`` pads rows with fewer than ``k`` neighbours
        (only possible when ``N <= k``). Use :func:`id_dtype` for arrays of ids into the same rows.
    similarities : ndarray of float32, shape (N, k)
        Cosine similarities in [-1, 1], non-increasing along each row.
    method : str
        ``"exact"``, ``"ivf"`` or ``"hnsw"`` (what was actually used).
    recall : float or None
        Measured recall@k of approximate search against exact search (``None`` for exact search).
    info : dict
        Build details: nlist, nprobe, seconds, sample sizes, the device, the cost estimates and every
        escalation step with its reason (``info["escalation"]``).
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


def id_dtype(n: int) -> np.dtype:
    """The smallest integer type for row ids of an ``n``-row array (and ``-1`` padding): int32 below 2**31 rows.

    Examples
    --------
    >>> id_dtype(10_000_000), id_dtype(3_000_000_000)
    (dtype('int32'), dtype('int64'))
    """
    return np.dtype(np.int32) if n < 2**31 else np.dtype(np.int64)


def check_shape(x: np.ndarray, name: str = "embeddings") -> None:
    """Raise an :class:`~ds2_hf.validation.InputError` unless ``x`` is a non-empty numeric (N, d) array (not copied)."""
    as_matrix(x, name=name, dtype=None)


def strip_self(ids: np.ndarray, sims: np.ndarray, query_ids: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Drop each query's own id from its (k+1)-long result row; drop the last entry where self is absent."""
    is_self = ids == query_ids[:, None]
    no_self = ~is_self.any(axis=1)
    is_self[no_self, -1] = True  # exact duplicates may push self out of the list: drop the farthest instead
    keep = ~is_self
    return ids[keep].reshape(len(ids), k), sims[keep].reshape(len(ids), k)


def check_k(k: int, n: int) -> None:
    if not 1 <= k < n:
        raise ValueError(
            f"k={k} neighbours need at least k+1={k + 1} rows, but there are {n}; lower k or add rows"
        )


def knn_config_dict(cfg: KnnConfig) -> dict:
    return asdict(cfg)
