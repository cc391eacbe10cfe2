"""Curation of several rating columns: :func:`ds2_hf.curation.curate_scores` with ratings of shape (N, R).

The raters (and the k-NN evidence, when there are embeddings) are fused into one posterior per row
(:func:`ds2_hf.curation.fusion.fuse_ratings`); the curated score is its most likely value. The "raw rating" a
curation changes is the raters' majority vote (:func:`ds2_hf.curation.fusion.majority_vote`), so ``misrated``,
``noise_score`` and ``suggested`` read as for one rater, and ``transition_matrix`` is that of the majority vote.
Each rater's own matrix is ``rater_transition_matrices`` and the report's ``raters`` block says how good each one
is. Back-off: with embeddings, the fused posterior is shrunk towards the raters-alone posterior by the gate of
:func:`ds2_hf.curation.diagnostics.gate_from_gains` applied to the k-NN model's held-out gain over the raters alone.
"""

from __future__ import annotations

import logging
import time

import numpy as np

from ..knn import KnnGraph, build_knn_graph, validate_embeddings
from .config import CurationConfig
from .diagnostics import gate_from_gains
from .fusion import _validate_audit, fuse_ratings, majority_vote, validate_rating_matrix
from .long_tail import long_tail_score
from .raters import summarize_raters, trust_line

logger = logging.getLogger(__name__)


def curate_fused(embeddings, ratings, *, audit=None, rater_names=None, config: CurationConfig | None = None,
                 graph: KnnGraph | None = None, **options):
    """Curate the ratings of several raters (``ratings`` (N, R)); ``embeddings=None`` fuses the raters alone.

    Called by :func:`ds2_hf.curation.curate_scores`; see there for the parameters and the result.
    """
    from .core import CurationResult, _report

    cfg = CurationConfig.from_options(config, **options)
    if cfg.method != "joint":
        raise ValueError(f"method={cfg.method!r} curates one rater; several rating columns are fused by the joint "
                         "method: pass method='joint' or one rating column")
    t0 = time.perf_counter()
    K = cfg.num_classes
    Y = validate_rating_matrix(ratings, K, names=rater_names, allow_empty_classes=cfg.allow_empty_classes)
    n = len(Y)
    a = _validate_audit(audit, n, K)
    if embeddings is not None:
        x = validate_embeddings(embeddings)
        if len(x) != n:
            raise ValueError(f"embeddings have {len(x)} rows but ratings have {n}; pass one rating row per embedding")
        if n <= cfg.graph_k // 2:
            raise ValueError(f"curation needs more rows than neighbours: {n} rows, while the k-NN steps use up to "
                             f"{cfg.graph_k} neighbours; add rows (hundreds at least) or lower joint_ks / long_tail_k")
        if graph is None or graph.k < min(cfg.graph_k, n - 1):
            graph = build_knn_graph(x, min(cfg.graph_k, n - 1), config=cfg.knn, progress=cfg.progress)
    else:
        graph = None
    timings = {"knn": round(time.perf_counter() - t0, 3)}
    t = time.perf_counter()
    fused = fuse_ratings(Y, graph=graph, audit=a, names=rater_names, config=cfg)
    timings["fusion"] = round(time.perf_counter() - t, 3)
    gate = 1.0
    if graph is not None and cfg.use_backoff:
        gate = gate_from_gains(fused.details["knn_gain"], sum(_entropy(Y[:, r], K) for r in range(Y.shape[1])))
    q = gate * fused.posterior + (1.0 - gate) * fused.raters_alone.posterior
    consensus = majority_vote(Y, K)
    rated = (consensus >= 0) | (a >= 0 if a is not None else False)
    best = np.clip(np.rint(q @ np.arange(K)), 0, K - 1).astype(np.int64) if cfg.curated_value == "expected" \
        else q.argmax(axis=1)
    rows = np.arange(n)
    change = rated & (best != consensus) & (q[rows, best] >= cfg.threshold)
    curated = np.where(rated, np.where(change, best, np.where(consensus >= 0, consensus, best)), -1)
    p_raw = np.where(consensus >= 0, q[rows, np.maximum(consensus, 0)], 0.0)
    other = q.copy()
    other[rows[consensus >= 0], consensus[consensus >= 0]] = -1.0
    onehot = np.zeros_like(q)
    onehot[rows[consensus >= 0], consensus[consensus >= 0]] = 1.0
    res = CurationResult(
        transition_matrix=(q.T @ onehot + 1e-6) / (q.T @ onehot + 1e-6).sum(axis=1, keepdims=True),
        true_prior=fused.true_prior, curated=curated,
        confidence=np.where(rated, q[rows, np.maximum(curated, 0)], 0.0).astype(np.float32),
        misrated=(consensus >= 0) & (p_raw < 0.5),
        noise_score=np.where(consensus >= 0, 1.0 - p_raw, 0.0).astype(np.float32),
        suggested=np.where(rated, other.argmax(axis=1), -1), long_tail=np.full(n, np.nan, np.float32),
        posterior=q.astype(np.float32), clusterability=None, report={}, graph=graph,
        rater_transition_matrices=fused.transition_matrices,
    )
    if graph is not None:
        t = time.perf_counter()
        res.long_tail = long_tail_score(graph, cfg.long_tail_k)
        timings["long_tail"] = round(time.perf_counter() - t, 3)
    timings["total"] = round(time.perf_counter() - t0, 3)
    names = list(rater_names) if rater_names is not None else [f"rater {r}" for r in range(Y.shape[1])]
    summary = summarize_raters(fused.transition_matrices, fused.true_prior, Y, curated, names=names)
    res.details = {**fused.details, "gate": round(gate, 4)}
    res.report = _report(cfg, consensus, res, graph, timings)
    res.report["raters"] = {"names": names, "summary": summary, "trust": trust_line(summary),
                            "audit": fused.audit_shift, "embeddings": graph is not None, "gate": round(gate, 4),
                            "knn_gain": fused.details.get("knn_gain")}
    logger.info("fused %d raters over %d rows: %d changed from the majority vote; %s", Y.shape[1], n,
                res.report["n_changed"], res.report["raters"]["trust"])
    return res


def _entropy(y: np.ndarray, K: int) -> float:
    """Entropy (nats) of one rater's rating marginal."""
    r = np.bincount(y[y >= 0], minlength=K) / max(int((y >= 0).sum()), 1)
    return float(-(r[r > 0] * np.log(r[r > 0])).sum())
