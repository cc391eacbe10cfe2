"""``build_knn_graph``: pick the search, estimate its cost before starting it, measure its recall, escalate.

``method="auto"`` searches exactly while ``N**2 * d <= exact_max_work`` and with IVF above it. IVF raises
``nprobe`` from 8 while the recall measured on a query sample is below ``target_recall`` and the estimated search
time stays within ``max_seconds`` (and starts lower when even 8 probes would not fit it). The estimate starts from
a prior (:mod:`ds2_hf.knn.cost`); the first time the prior would refuse a search, one search part of random rows
is timed at that ``nprobe`` and every estimate after it uses the rate measured on the pool itself (recorded as
``info["timed_part"]``). When even the best affordable ``nprobe`` leaves recall below ``min_recall``, the graph
escalates, taking the first option that fits the time and memory budgets:

1. exact search (the data are not clusterable enough for IVF, but small enough to search exactly);
2. HNSW, when a timed trial on a sample predicts a higher recall than IVF's (the built graph is kept only if
   its measured recall is higher);
3. the IVF graph at its measured recall (on near-isotropic data, the neighbours then carry little information
   whichever search finds them; curation's clusterability diagnostic says so).

Every step and its reason go to the log and to ``graph.info["escalation"]`` (part of the curation report).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field

import numpy as np

from .._import_utils import require
from .blocked import MappedRows, as_rows
from .cost import exact_cost, human_seconds, hnsw_bytes, ivf_cost, measured_speed
from .exact import exact_for_queries, exact_graph, recall
from .graph import KnnConfig, KnnGraph, check_k, strip_self
from .gpu import make_kernel
from .hnsw import OverBudget, hnsw_graph, trial
from . import ivf
from .cells import cell_search
from .ivf import build_ivf, search_ivf, time_part

logger = logging.getLogger("ds2_hf.knn")


@dataclass
class _Job:
    """One graph build: the rows, the options and what every step shares."""

    x: object  # unit float32 ndarray, or MappedRows
    k: int
    cfg: KnnConfig
    kernel: object
    rng: np.random.Generator
    progress: bool
    t0: float = field(default_factory=time.perf_counter)

    @property
    def out_of_core(self) -> bool:
        return not isinstance(self.x, np.ndarray)

    def speed(self) -> float:
        return measured_speed(self.kernel, self.x.shape[1])

    def over_budget(self, cost) -> str | None:
        return cost.over_budget(max_seconds=self.cfg.max_seconds, max_bytes=self.cfg.memory_budget())

    def check(self, cost) -> dict:
        """Raise a ValueError when ``cost`` does not fit the budgets; its description otherwise."""
        why = self.over_budget(cost)
        if why:
            raise ValueError(
                f"k-NN method={self.cfg.method!r} was not started: {cost.what} search {why}. Use method='auto' (it "
                "escalates within the budget), a GPU (device='gpu'), or raise max_seconds / max_memory_gb "
                "(None disables the check)"
            )
        return cost.as_dict()

    def recall_sample(self) -> tuple[np.ndarray, np.ndarray]:
        """Random query rows and their exact neighbours (over all rows: recall is the true recall@k)."""
        n = len(self.x)
        q_ids = np.sort(self.rng.choice(n, min(self.cfg.recall_sample, n), replace=False))
        desc = "recall sample (exact)" if self.progress and n > 16 * self.cfg.batch_size else None
        return q_ids, exact_for_queries(self.x, q_ids, self.k, self.cfg.batch_size, kernel=self.kernel, desc=desc)

    def seconds(self) -> float:
        return round(time.perf_counter() - self.t0, 3)


def build_knn_graph(embeddings, k: int, *, config: KnnConfig | None = None, progress: bool = True) -> KnnGraph:
    """Build the top-``k`` cosine-similarity graph of ``embeddings`` (self excluded).

    Parameters
    ----------
    embeddings : array-like of float, shape (N, d)
        Row vectors; they are validated and L2-normalised (a copy is made only when needed). A ``numpy.memmap``
        or a float16 array (e.g. :func:`~ds2_hf.knn.load_embeddings` of a float16 ``.npy``) is read in blocks
        and never copied whole: the out-of-core path for pools whose float32 embeddings do not fit in memory.
        Rows already checked by :func:`~ds2_hf.knn.open_rows` (a :class:`~ds2_hf.knn.MappedRows`) are used as
        they are.
    k : int
        Neighbours per point, ``1 <= k < N``.
    config : KnnConfig, optional
        Search method and its options (defaults: :class:`KnnConfig`).
    progress : bool, default True
        Show progress bars on long steps.

    Returns
    -------
    KnnGraph
        ``indices`` (N, k) int64 and ``similarities`` (N, k) float32, most similar first.

    Raises
    ------
    ValueError
        Invalid embeddings, ``k >= N``, or an explicit ``method`` whose estimated cost exceeds ``max_seconds``
        or the memory budget (nothing is searched then).
    """
    cfg = config or KnnConfig()
    x = as_rows(embeddings, block=cfg.batch_size, progress=progress)
    out_of_core = isinstance(x, MappedRows)
    n, d = x.shape
    check_k(k, n)
    faiss = require("faiss", purpose="the k-NN graph")
    if cfg.threads:
        faiss.omp_set_num_threads(cfg.threads)
    job = _Job(x, k, cfg, make_kernel(cfg.device), np.random.default_rng(cfg.seed), progress)
    base = {"device": job.kernel.name, **({"storage": f"memory-mapped {x.data.dtype}"} if out_of_core else {})}
    method = cfg.method
    if method == "auto":
        method = "exact" if float(n) * n * d <= cfg.exact_max_work else "ivf"
    if method == "exact":
        extra = {}
        if float(n) * n * d > cfg.exact_max_work:  # small searches need no estimate
            extra["estimate"] = job.check(exact_cost(n, d, k, job.speed(), in_memory=not out_of_core))
        ids, sims = exact_graph(x, k, cfg.batch_size, job.kernel, progress=progress)
        return KnnGraph(ids, sims, "exact", None, {"seconds": job.seconds(), **base, **extra})
    if method == "hnsw":
        q_ids, e_ids = job.recall_sample()
        guess = trial(x, k, cfg, job.rng, half=out_of_core)
        _check_hnsw(guess, n, d, k, cfg, out_of_core)
        deadline = None if cfg.max_seconds is None else job.t0 + cfg.max_seconds
        ids, sims, rec, info = hnsw_graph(x, k, cfg, q_ids, e_ids, half=out_of_core, progress=progress,
                                          deadline=deadline)
        info.update(base, trial=guess, recall_sample=int(len(q_ids)), seconds=job.seconds())
        return KnnGraph(ids, sims, "hnsw", rec, info)
    return _ivf(job, base)


def _check_hnsw(guess: dict, n: int, d: int, k: int, cfg: KnnConfig, half: bool) -> None:
    need = hnsw_bytes(n, d, cfg.hnsw_m, k, half=half)
    if cfg.max_seconds is not None and guess["seconds"] > cfg.max_seconds:
        raise ValueError(f"k-NN method='hnsw' was not started: the trial on {guess['sample_rows']} rows predicts "
                         f"{human_seconds(guess['seconds'])} > max_seconds={cfg.max_seconds:g}; raise max_seconds "
                         "or use method='auto'")
    if need > cfg.memory_budget():
        raise ValueError(f"k-NN method='hnsw' was not started: the index needs about {need / 1e9:.1f} GB > the "
                         f"memory budget of {cfg.memory_budget() / 1e9:.1f} GB; raise max_memory_gb")


def _ivf(job: _Job, base: dict) -> KnnGraph:
    """IVF with ``nprobe`` raised to the target recall within budget; escalate below ``min_recall``."""
    x, k, cfg = job.x, job.k, job.cfg
    n, d = x.shape
    index = build_ivf(x, cfg, job.rng, progress=job.progress, kernel=job.kernel)
    t_build = time.perf_counter() - job.t0
    q_ids, e_ids = job.recall_sample()
    nlist, sizes, quantiser = index.nlist, index.sizes, index.quantiser
    q_probes = quantiser.probe(x, q_ids, min(cfg.max_nprobe, nlist), cfg.batch_size, kernel=job.kernel)

    rate = None  # the search's own rate, timed on one part the first time the prior would skip a search

    def cost(p):
        probed = np.where(q_probes[:, :p] >= 0, sizes[q_probes[:, :p]], 0)  # -1: no cell (two-level)
        again = index.probe_seconds if p > index.probes.shape[1] else 0.0
        return ivf_cost(n, d, k, p, float(probed.sum(axis=1).mean()), job.speed(), rate=rate, probe_seconds=again)

    def over_budget(p):
        nonlocal rate
        why = job.over_budget(cost(p))
        if why and rate is None:  # the prior says no: time the search on this pool before deciding
            rate = time_part(x, index, p, k, cfg, job.kernel, job.rng)
            logger.info("IVF search at nprobe=%d %s by the prior; timed %s: %s", p, why, rate.describe(),
                        human_seconds(cost(p).seconds))
            why = job.over_budget(cost(p))
        return why

    nprobe = min(cfg.nprobe, nlist)
    steps = []
    while nprobe > 1 and (why := over_budget(nprobe)):  # too big to search at the starting nprobe: fewer probes
        steps.append({"step": f"ivf nprobe {nprobe}", "skipped": why})
        nprobe //= 2
    job.check(cost(nprobe))
    if steps:
        logger.warning("IVF search at nprobe=%d %s; searching at nprobe=%d (recall measured below)",
                       min(cfg.nprobe, nlist), steps[0]["skipped"], nprobe)
    while True:
        a_ids, a_sims = cell_search(x, index.members, index.offsets, q_ids, q_probes[:, :nprobe], k + 1,
                                    max_block=ivf._BLOCK, kernel=job.kernel)
        rec = recall(strip_self(a_ids, a_sims, q_ids, k)[0], e_ids)
        steps.append({"step": "ivf", "nprobe": int(nprobe), "recall": round(float(rec), 4)})
        if rec >= max(cfg.target_recall, cfg.min_recall) or nprobe >= min(cfg.max_nprobe, nlist):
            break
        nxt = min(nprobe * 2, cfg.max_nprobe, nlist)
        why = over_budget(nxt)
        if why:
            steps.append({"step": f"ivf nprobe {nxt}", "skipped": why})
            break
        nprobe = nxt
    info = {"nlist": nlist, "nprobe": nprobe, "train_size": index.train_size, "recall_sample": int(len(q_ids)),
            "largest_cell": int(sizes.max()), "mean_cell": round(float(sizes.mean()), 1), **base}
    if quantiser.two_level:
        info["coarse_cells"] = {"nlist": len(quantiser.coarse), "nprobe": quantiser.coarse_nprobe,
                                "centroids_scored": round(quantiser.scored, 1)}
    if rate is not None:
        info["timed_part"] = {"nprobe": rate.nprobe, "rows": rate.rows, "seconds": round(rate.seconds, 2),
                              "multiply_adds_per_s": float(f"{rate.speed:.3g}")}
    if len(steps) > 1 or rec < cfg.min_recall:
        info["escalation"] = steps
    if rec < cfg.min_recall:
        graph = _escalate(job, rec, nprobe, cost(nprobe).seconds, (q_ids, e_ids), info)
        if graph is not None:
            graph.info["seconds"] = job.seconds()
            return graph
    ids, sims, repaired = search_ivf(x, index, nprobe, k, cfg, job.kernel, progress=job.progress)
    if repaired:
        info["rows_repaired_exactly"] = repaired
    info.update(estimate=cost(nprobe).as_dict(), build_seconds=round(t_build, 3), seconds=job.seconds())
    return KnnGraph(ids, sims, "ivf", round(float(rec), 4), info)


def _escalate(job: _Job, rec: float, nprobe: int, ivf_seconds: float, sample, info: dict) -> KnnGraph | None:
    """Exact search, else HNSW, else ``None`` (accept IVF); every decision goes to ``info["escalation"]``."""
    x, k, cfg, steps = job.x, job.k, job.cfg, info["escalation"]
    n, d = x.shape
    out_of_core = job.out_of_core
    low = f"IVF recall@{k} is {rec:.3f} < min_recall={cfg.min_recall:.2f} at nprobe={nprobe}"
    exact = exact_cost(n, d, k, job.speed(), in_memory=not out_of_core)
    why = job.over_budget(exact) if float(n) * n * d > cfg.exact_max_work else None
    if why is None:
        logger.warning("%s: the embeddings are not clusterable enough for approximate search; falling back to "
                       "exact search (estimated %s)", low, human_seconds(exact.seconds))
        steps.append({"step": "exact", "reason": low, "estimate": exact.as_dict()})
        ids, sims = exact_graph(x, k, cfg.batch_size, job.kernel, progress=job.progress)
        info["fallback_from_ivf_recall"] = round(rec, 4)
        return KnnGraph(ids, sims, "exact", None, info)
    steps.append({"step": "exact", "skipped": why})
    need = hnsw_bytes(n, d, cfg.hnsw_m, k, half=out_of_core)
    if need > cfg.memory_budget():
        steps.append({"step": "hnsw", "skipped": f"needs about {need / 1e9:.1f} GB > the memory budget"})
    else:
        guess = trial(x, k, cfg, job.rng, half=out_of_core)
        if cfg.max_seconds is not None and guess["seconds"] + ivf_seconds > cfg.max_seconds:
            steps.append({"step": "hnsw", "trial": guess, "skipped": f"predicted {human_seconds(guess['seconds'])}"
                          f" plus the IVF search ({human_seconds(ivf_seconds)}) > max_seconds={cfg.max_seconds:g}"})
        elif guess["sample_recall"] <= rec + 0.02:
            steps.append({"step": "hnsw", "trial": guess, "skipped": "the trial's recall is no better than IVF's"})
        else:
            # whatever happens, the IVF search must still fit: HNSW gets the budget minus its estimate
            deadline = None if cfg.max_seconds is None else job.t0 + cfg.max_seconds - ivf_seconds
            try:
                ids, sims, h_rec, h_info = hnsw_graph(x, k, cfg, *sample, half=out_of_core, progress=job.progress,
                                                      deadline=deadline)
            except OverBudget as err:
                steps.append({"step": "hnsw", "trial": guess, "stopped": str(err)})
            else:
                steps.append({"step": "hnsw", "trial": guess, "recall": h_rec})
                if h_rec > rec:
                    logger.warning("%s; exact search %s; using HNSW (recall %.3f)", low, why, h_rec)
                    info.update(h_info)
                    return KnnGraph(ids, sims, "hnsw", h_rec, info)
    steps.append({"step": "accept", "method": "ivf", "recall": round(float(rec), 4),
                  "reason": "no other search fits the budget with a higher recall"})
    logger.warning("%s; exact search %s; %s. Accepting the IVF graph at its measured recall: the embeddings are "
                   "not clusterable enough for approximate search, and on such data the neighbours carry little "
                   "information whichever search finds them (see the curation's clusterability diagnostic)",
                   low, why, "; ".join(f"hnsw: {s.get('skipped') or s.get('stopped')}" for s in steps
                                       if s["step"] == "hnsw" and "recall" not in s) or "HNSW did not do better")
    return None
