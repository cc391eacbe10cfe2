"""HNSW (faiss ``IndexHNSWFlat``; ``IndexHNSWSQ`` with float16 storage for memory-mapped input): a graph index
whose recall does not depend on the data falling into clusters, the second option when IVF recall stays low.

Its cost is predicted from a timed trial on a sample (build and search at each ``efSearch``), scaled by
``N log N``; the trial's recall on the sample is an optimistic guess of the full recall, so the built graph's
recall is measured again on the full recall sample, as for IVF.
"""

from __future__ import annotations

import math
import time

import numpy as np

from .._import_utils import require
from .exact import exact_for_queries, recall, search_index
from .graph import KnnConfig, strip_self

TRIAL_ROWS = 20_000
_ADD_CHUNK = 100_000


class OverBudget(RuntimeError):
    """The HNSW build or search would run past its deadline (the trial's prediction was too optimistic)."""


def _index(d: int, cfg: KnnConfig, *, half: bool):
    faiss = require("faiss", purpose="the k-NN graph")
    if half:
        index = faiss.IndexHNSWSQ(d, faiss.ScalarQuantizer.QT_fp16, cfg.hnsw_m, faiss.METRIC_INNER_PRODUCT)
    else:
        index = faiss.IndexHNSWFlat(d, cfg.hnsw_m, faiss.METRIC_INNER_PRODUCT)
    index.hnsw.efConstruction = cfg.hnsw_ef_construction
    return index


def _add(index, x, *, desc: str | None, deadline: float | None = None) -> None:
    starts = range(0, len(x), _ADD_CHUNK)
    if desc and len(x) > _ADD_CHUNK:
        from tqdm.auto import tqdm

        starts = tqdm(starts, desc=desc, unit="chunk", total=math.ceil(len(x) / _ADD_CHUNK))
    for s in starts:
        if deadline is not None and time.perf_counter() > deadline:
            raise OverBudget(f"the HNSW build passed its time budget after {s:,} of {len(x):,} rows")
        index.add(np.ascontiguousarray(x[s : s + _ADD_CHUNK]))


def _ef_ladder(k: int, cfg: KnnConfig) -> list[int]:
    ladder, ef = [], max(2 * (k + 1), 16)
    while ef < cfg.hnsw_max_ef:
        ladder.append(ef)
        ef *= 2
    return ladder + [cfg.hnsw_max_ef]


def _tune_ef(index, x, q_ids: np.ndarray, e_ids: np.ndarray, k: int, cfg: KnnConfig, *,
             search_seconds: float | None = None):
    """Smallest ``efSearch`` of the ladder reaching ``target_recall`` (else the largest): (ef, recall, s/query).

    With ``search_seconds``, ``efSearch`` stops rising where searching all ``len(x)`` rows would take longer.
    """
    best = None
    for ef in _ef_ladder(k, cfg):
        index.hnsw.efSearch = ef
        t = time.perf_counter()
        _, ids = index.search(np.ascontiguousarray(x[q_ids]), k + 1)
        per_query = (time.perf_counter() - t) / len(q_ids)
        if best is not None and search_seconds is not None and per_query * len(x) > search_seconds:
            break
        best = (ef, recall(strip_self(ids, ids.astype(np.float32), q_ids, k)[0], e_ids), per_query)
        if best[1] >= cfg.target_recall:
            break
    return best


def trial(x, k: int, cfg: KnnConfig, rng, *, half: bool) -> dict:
    """Build HNSW on a sample of ``x`` and predict the full build: ``seconds``, ``ef`` and the sample recall."""
    n = len(x)
    m = min(n, TRIAL_ROWS)
    sample = np.sort(rng.choice(n, m, replace=False)) if m < n else np.arange(n)
    xs = np.ascontiguousarray(x[sample])
    t = time.perf_counter()
    index = _index(xs.shape[1], cfg, half=half)
    index.add(xs)
    build = time.perf_counter() - t
    q = np.sort(rng.choice(m, min(500, m), replace=False))
    e_ids = exact_for_queries(xs, q, k, cfg.batch_size)
    ef, rec, per_query = _tune_ef(index, xs, q, e_ids, k, cfg)
    scale = math.log(max(n, 2)) / math.log(max(m, 2))
    seconds = (build * n / m + per_query * n) * scale
    return {"sample_rows": int(m), "ef": int(ef), "sample_recall": round(float(rec), 4), "seconds": round(seconds, 1)}


def hnsw_graph(x, k: int, cfg: KnnConfig, q_ids: np.ndarray, e_ids: np.ndarray, *, half: bool, progress: bool,
               deadline: float | None = None):
    """The HNSW graph of every row: ``(ids, sims, recall, info)``, ``efSearch`` tuned on the recall sample.

    Raises
    ------
    OverBudget
        The build passed ``deadline`` (a ``time.perf_counter()`` value), or even the smallest ``efSearch``
        would search past it; nothing more is spent then.
    """
    t0 = time.perf_counter()
    index = _index(x.shape[1], cfg, half=half)
    _add(index, x, desc="HNSW build" if progress else None, deadline=deadline)
    build = time.perf_counter() - t0
    left = None if deadline is None else deadline - time.perf_counter()
    ef, rec, per_query = _tune_ef(index, x, q_ids, e_ids, k, cfg, search_seconds=left)
    if left is not None and per_query * len(x) > deadline - time.perf_counter():
        raise OverBudget(f"searching all rows at efSearch {ef} would take about "
                         f"{per_query * len(x):.0f} s, past the time budget")
    index.hnsw.efSearch = ef
    ids, sims = search_index(index, x, k, cfg.batch_size, "HNSW k-NN" if progress else None)
    del index
    if half or not isinstance(x, np.ndarray):  # float16 storage: recompute the similarities exactly, in blocks
        for s in range(0, len(x), cfg.batch_size):
            rows = x[s : s + cfg.batch_size]
            nb = x[np.clip(ids[s : s + cfg.batch_size], 0, None).ravel()].reshape(len(rows), k, -1)
            sims[s : s + len(rows)] = np.einsum("nd,nkd->nk", rows, nb)
        order = np.argsort(-sims, axis=1, kind="stable")
        ids, sims = np.take_along_axis(ids, order, 1), np.take_along_axis(sims, order, 1)
    info = {"ef_search": int(ef), "hnsw_m": cfg.hnsw_m, "build_seconds": round(build, 3)}
    return ids, sims, round(float(rec), 4), info
