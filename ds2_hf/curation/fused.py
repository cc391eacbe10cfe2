"""Curation of several rating columns: :func:`ds2_hf.curation.curate_scores` with ratings of shape (N, R).

The raters (and the k-NN evidence, when there are embeddings) are fused into one posterior per row
(:func:`ds2_hf.curation.fusion.fuse_ratings`); the curated score is its most likely value. The "raw rating" a
curation changes is the raters' majority vote (:func:`ds2_hf.curation.fusion.majority_vote`), so ``misrated``,
``noise_score`` and ``suggested`` read as for one rater, and ``transition_matrix`` is that of the majority vote.
Each rater's own matrix is ``rater_transition_matrices`` and the report's ``raters`` block says how good each one
is. The guard (:mod:`ds2_hf.curation.diagnostics`): with embeddings, the fused posterior is shrunk towards the
raters-alone posterior by the weaker of two checks, the k-NN model's held-out gain over the raters alone
(``neighbours``) and whether the neighbours predict on which rows the raters agree (``raters``). Prompt groups and
copies are left out of the k-NN evidence as for one rater (:mod:`ds2_hf.curation.structure`); with them the second
stage is not used, because its leave-one-out takes out only the row's own votes.
"""

from __future__ import annotations

import logging
import time

from dataclasses import replace

import numpy as np

from ..duplicates import DuplicateSummary, near_duplicate_groups
from ..knn import KnnGraph, build_knn_graph
from ..knn.blocked import as_rows
from .config import CurationConfig
from .diagnostics import Clusterability, check_groups, check_neighbours, check_raters, verdict
from .fusion import _validate_audit, fuse_ratings, majority_vote, validate_rating_matrix
from .long_tail import long_tail_score
from .raters import rater_agreement, summarize_raters, trust_line
from .result import CurationResult, build_report
from .structure import EvidenceStructure, encode_labels, evidence_graph, extra_depth, prompt_gain

logger = logging.getLogger(__name__)


def curate_fused(embeddings, ratings, *, groups=None, duplicates=None, audit=None, rater_names=None,
                 config: CurationConfig | None = None, graph: KnnGraph | None = None, **options):
    """Curate the ratings of several raters (``ratings`` (N, R)); ``embeddings=None`` fuses the raters alone.

    Called by :func:`ds2_hf.curation.curate_scores`; see there for the parameters and the result.
    """
    cfg = CurationConfig.from_options(config, **options)
    if cfg.method != "joint":
        raise ValueError(f"method={cfg.method!r} curates one rater; several rating columns are fused by the joint "
                         "method: pass method='joint' or one rating column")
    t0 = time.perf_counter()
    K = cfg.num_classes
    Y = validate_rating_matrix(ratings, K, names=rater_names, allow_empty_classes=cfg.allow_empty_classes)
    n = len(Y)
    a = _validate_audit(audit, n, K)
    groups, duplicates = encode_labels(groups, n, name="groups"), encode_labels(duplicates, n, name="duplicates")
    graph, evidence, structure = _graphs(embeddings, n, groups, duplicates, graph, cfg)
    if groups is not None or duplicates is not None:  # the second stage's leave-one-out is per row only
        cfg = replace(cfg, neighbourhood_prior=False)
    timings = {"knn": round(time.perf_counter() - t0, 3)}
    t = time.perf_counter()
    fused = fuse_ratings(Y, graph=evidence, audit=a, names=rater_names, config=cfg)
    timings["fusion"] = round(time.perf_counter() - t, 3)
    consensus = majority_vote(Y, K)
    clus = _guard(Y, fused, structure, consensus, K) if evidence is not None else None
    gate = clus.gate if clus is not None and cfg.use_backoff else 1.0
    q = gate * fused.posterior + (1.0 - gate) * fused.raters_alone.posterior
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
        posterior=q.astype(np.float32), clusterability=clus, report={}, graph=graph,
        rater_transition_matrices=fused.transition_matrices,
    )
    res.duplicate_group = duplicates if duplicates is not None else np.full(n, -1, np.int64)
    if graph is not None and cfg.near_duplicate_threshold is not None:
        res.duplicate_group = near_duplicate_groups(graph.indices, graph.similarities, exact=duplicates,
                                                    threshold=cfg.near_duplicate_threshold, groups=groups)
    if graph is not None:
        t = time.perf_counter()
        res.long_tail = long_tail_score(graph, cfg.long_tail_k)
        timings["long_tail"] = round(time.perf_counter() - t, 3)
    timings["total"] = round(time.perf_counter() - t0, 3)
    names = list(rater_names) if rater_names is not None else [f"rater {r}" for r in range(Y.shape[1])]
    summary = summarize_raters(fused.transition_matrices, fused.true_prior, Y, curated, names=names)
    res.details = {**fused.details, "gate": round(gate, 4)}
    res.report = build_report(cfg, consensus, res, graph, timings)
    res.report["structure"] = {**structure.to_dict(), "duplicates": DuplicateSummary.of(res.duplicate_group).to_dict()}
    res.report["raters"] = {"names": names, "summary": summary, "trust": trust_line(summary),
                            "audit": fused.audit_shift, "embeddings": graph is not None, "gate": round(gate, 4),
                            "knn_gain": fused.details.get("knn_gain")}
    logger.info("fused %d raters over %d rows: %d changed from the majority vote; %s", Y.shape[1], n,
                res.report["n_changed"], res.report["raters"]["trust"])
    return res


def _graphs(embeddings, n: int, groups, duplicates, graph: KnnGraph | None, cfg: CurationConfig) -> tuple:
    """``(graph, evidence graph, structure)`` of the embeddings (``None`` graphs without embeddings)."""
    if embeddings is None:
        return None, None, EvidenceStructure(groups, duplicates, None, None)
    x = as_rows(embeddings, block=cfg.knn.batch_size, progress=cfg.progress)
    if len(x) != n:
        raise ValueError(f"embeddings have {len(x)} rows but ratings have {n}; pass one rating row per embedding")
    if n <= cfg.graph_k // 2:
        raise ValueError(f"curation needs more rows than neighbours: {n} rows, while the k-NN steps use up to "
                         f"{cfg.graph_k} neighbours; add rows (hundreds at least) or lower joint_ks / long_tail_k")
    k_graph = min(cfg.graph_k + extra_depth(groups, duplicates, cfg.graph_k), n - 1)
    if graph is None or graph.k < k_graph:
        graph = build_knn_graph(x, k_graph, config=cfg.knn, progress=cfg.progress)
    evidence, structure = evidence_graph(graph, groups=groups, duplicates=duplicates, k=min(10, cfg.graph_k))
    return graph, evidence, structure


def _guard(Y: np.ndarray, fused, structure: EvidenceStructure, consensus: np.ndarray, K: int) -> Clusterability:
    """The guard's checks for several raters: the k-NN gain over the raters alone, and where the raters agree."""
    H = sum(_entropy(Y[:, r], K) for r in range(Y.shape[1]))
    gain = float(fused.details["knn_gain"])
    checks = [check_neighbours(gain, gain, H)]
    if Y.shape[1] >= 2:
        agreement = rater_agreement(Y, fused.prior, fused.transition_matrices)
        alone = rater_agreement(Y, fused.raters_alone.p, fused.transition_matrices)
        checks.append(check_raters(agreement.observed, agreement.implied, alone.implied))
    if structure.groups is not None:
        checks.append(check_groups(structure, prompt_gain(consensus, structure.groups, K)))
    gate = float(min(c.gate for c in checks))
    text, advice = verdict(checks, gate, fallback="the raters alone")
    r = np.bincount(consensus[consensus >= 0], minlength=K) / max(int((consensus >= 0).sum()), 1)
    return Clusterability(heldout_gain=gain, latent_gain=gain, rating_entropy=H, explained=gain / H if H else 0.0,
                          agreement=float("nan"), agreement_random=float((r**2).sum()), agreement_lift=float("nan"),
                          gate=gate, verdict=text, advice=advice, checks=checks)


def _entropy(y: np.ndarray, K: int) -> float:
    """Entropy (nats) of one rater's rating marginal."""
    r = np.bincount(y[y >= 0], minlength=K) / max(int((y >= 0).sum()), 1)
    return float(-(r[r > 0] * np.log(r[r > 0])).sum())
