"""The NumPy entry point of curation: embeddings and ratings in, curated ratings and a report out."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field

import numpy as np

from ..duplicates import DuplicateSummary, near_duplicate_groups
from ..knn import KnnGraph, build_knn_graph, validate_embeddings
from ..knn.blocked import is_out_of_core, open_rows
from ..validation import rating_codes, validate_ratings  # noqa: F401  (validate_ratings: public here too)
from .config import CurationConfig
from .diagnostics import Clusterability, assess_clusterability, check_audit, check_groups
from .faithful import graph_size_needed, run_faithful
from .evidence import EdgeWeights
from .model_selection import JointSelection, select_joint
from .neighbourhood import fit_neighbourhood
from .long_tail import long_tail_score, reference_long_tail_score
from .structure import EvidenceStructure, encode_labels, evidence_graph

logger = logging.getLogger(__name__)


@dataclass
class CurationResult:
    """Output of :func:`curate_scores`. Per-row arrays have length ``N``; unrated rows hold ``-1`` / 0.

    Attributes
    ----------
    transition_matrix : ndarray (K, K) float64
        Estimated ``T[i, j] = P(rated = j | true = i)``; rows are true scores and sum to 1.
    true_prior : ndarray (K,) float64
        Estimated ``P(true = i)``.
    curated : ndarray (N,) int64
        Curated rating in ``0..K-1``; ``-1`` where the row was unrated (left uncurated).
    confidence : ndarray (N,) float32 in [0, 1]
        Confidence in the curated rating: the posterior probability of ``curated`` (joint), or the reference's
        ``P(suggested) * P(mis-rated)`` for flagged rows and 0 otherwise (faithful).
    misrated : ndarray (N,) bool
        Flagged as mis-rated (joint: posterior probability that the raw rating is wrong > 0.5; faithful: the
        reference's Laplace-smoothed flag frequency > 0.5).
    noise_score : ndarray (N,) float32 in [0, 1]
        Higher = more likely mis-rated (joint: ``1 - P(true = rated)``; faithful: flag frequency).
    suggested : ndarray (N,) int64
        Most likely other score (what a flagged row would become); ``-1`` for unrated rows.
    long_tail : ndarray (N,) float32
        Long-tail score, higher = rarer (mean cosine distance to the 10 nearest neighbours; faithful: the
        reference's rounded ``2 sigmoid(x) - 1``).
    posterior : ndarray (N, K) float32 or None
        Joint method: posterior over the true score after the back-off; ``None`` for faithful.
    clusterability : Clusterability or None
        The diagnostic (always computed for the joint method; for faithful when ``backoff`` is on).
    report : dict
        JSON-serialisable summary: T, priors, counts, flagged / changed, k-NN method and recall, timings,
        clusterability, config.
    duplicate_group : ndarray (N,) int64
        Duplicate group of each row (exact duplicates passed in, joined with near duplicates on the graph),
        ``-1`` for rows with no duplicate; a selection takes at most one row of a group.
    graph : KnnGraph
        The k-NN graph used (reuse it for selection or another curation).
    details : dict
        Method-specific details (joint: selected k and weights, every candidate's held-out gain and the
        neighbourhood-prior stage (used or not, held-out gains of both stages);
        faithful: HOC loss, sample size, fallback rows).
    rater_transition_matrices : ndarray (R, K, K) float64 or None
        Several rating columns only: each rater's estimated ``T_r[z, y] = P(rater r rates y | true = z)``
        (:mod:`ds2_hf.curation.fused`); ``transition_matrix`` is then that of the raters' majority vote.
    """

    transition_matrix: np.ndarray
    true_prior: np.ndarray
    curated: np.ndarray
    confidence: np.ndarray
    misrated: np.ndarray
    noise_score: np.ndarray
    suggested: np.ndarray
    long_tail: np.ndarray
    posterior: np.ndarray | None
    clusterability: Clusterability | None
    report: dict
    graph: KnnGraph | None = field(default=None, repr=False)
    details: dict = field(default_factory=dict)
    duplicate_group: np.ndarray | None = None
    rater_transition_matrices: np.ndarray | None = None


def curate_scores(embeddings, ratings, *, groups=None, duplicates=None, audit=None, rater_names=None,
                  config: CurationConfig | None = None, graph: KnnGraph | None = None, **options) -> CurationResult:
    """Curate noisy ratings with k-NN consensus over their embeddings.

    Parameters
    ----------
    embeddings : array-like of float, shape (N, d)
        One embedding per row (normalised here); no NaN / inf, no all-zero rows.
    ratings : array-like, shape (N,)
        Integer ratings in ``0..K-1``; ``None`` / NaN / -1 mark unrated rows, which are excluded from
        estimation and left uncurated (never treated as 0).
    groups : array-like, shape (N,), optional
        The prompt (or any group id) of each row, for pools with several responses per prompt; ``None`` entries
        belong to no group. Responses to the same prompt are never used as evidence for each other
        (:mod:`ds2_hf.curation.structure`), and the guard reports what the prompt explains.
    duplicates : array-like, shape (N,), optional
        Duplicate-group id of each row (rows with the same response text; ``None`` / -1 = unique), e.g. from
        :func:`ds2_hf.selection.duplicate_groups`. Copies are never used as evidence for each other.
    audit : array-like, shape (N,), optional
        Trusted ratings (people, a strong model) on some rows, ``None`` / NaN elsewhere, on the same ``0..K-1``
        scale. With one rater they are not used to fit anything: the guard withholds corrections that disagree
        with them. With several raters they anchor every estimate, and the report says how far they moved them.
    rater_names : sequence of str, optional
        Several raters only (``ratings`` of shape (N, R), fused by :mod:`ds2_hf.curation.fused`; ``embeddings``
        may then be ``None`` to fuse the raters alone): the raters' names for the report.
    config : CurationConfig, optional
        Base configuration; keyword ``options`` override its fields (e.g. ``method="faithful"``).
    graph : KnnGraph, optional
        A precomputed k-NN graph over ``embeddings`` with enough neighbours (built when absent).

    Returns
    -------
    CurationResult

    Examples
    --------
    >>> from ds2_hf.simulate import simulate
    >>> from ds2_hf.curation import curate_scores
    >>> data = simulate(3000, 32, transition="gpt-like", seed=0)
    >>> res = curate_scores(data.embeddings, data.rated, progress=False)
    >>> bool((res.curated == data.true).mean() > (data.rated == data.true).mean())
    True
    """
    if embeddings is None or np.ndim(ratings) == 2:  # several raters: one early branch into their module
        from .fused import curate_fused

        if np.ndim(ratings) != 2:
            raise ValueError("embeddings=None fuses several raters alone: pass ratings of shape (N, R), R >= 1, or "
                             "embeddings to curate one rater")
        return curate_fused(embeddings, ratings, groups=groups, duplicates=duplicates, audit=audit,
                            rater_names=rater_names, config=config, graph=graph, **options)
    if rater_names is not None:
        raise ValueError("rater_names names several raters: pass ratings of shape (N, R), or drop rater_names")
    cfg = CurationConfig.from_options(config, **options)
    t0 = time.perf_counter()
    # memory maps and float16 stay on disk: validated and normalised block by block, never copied whole
    x = open_rows(embeddings, block=cfg.knn.batch_size, progress=cfg.progress) if is_out_of_core(embeddings) \
        else validate_embeddings(embeddings)
    n = len(x)
    y = validate_ratings(ratings, n, cfg.num_classes, allow_empty_classes=True)
    n_rated = int((y >= 0).sum())
    need = cfg.graph_k if cfg.method == "joint" else max(cfg.long_tail_k, cfg.detect_k)
    if n_rated <= max(cfg.detect_k, 3) or n <= need // 2:
        raise ValueError(
            f"curation needs more rows than neighbours: {n_rated} rated row(s) of {n}, while the k-NN steps use up "
            f"to {need} neighbours; add rows (hundreds at least) or lower joint_ks / long_tail_k"
        )
    if not cfg.allow_empty_classes:
        validate_ratings(y, n, cfg.num_classes)
    groups = encode_labels(groups, n, name="groups")
    duplicates = encode_labels(duplicates, n, name="duplicates")
    audit = None if audit is None else rating_codes(audit, n, cfg.num_classes, name="audit ratings")
    timings = {}
    k_graph = min(need + _extra_depth(groups, duplicates, need), n - 1)
    if cfg.method == "faithful" and n_rated == n:  # one graph deep enough for the sampled rounds, built once
        k_graph = max(k_graph, _faithful_graph_k(n, cfg))
    if graph is None or graph.k < k_graph:
        graph = build_knn_graph(x, k_graph, config=cfg.knn, progress=cfg.progress)
    timings["knn"] = round(time.perf_counter() - t0, 3)
    evidence, structure = evidence_graph(graph, groups=groups, duplicates=duplicates, k=min(10, need))
    if cfg.method == "joint":
        out = _curate_joint(y, evidence, cfg, timings, structure, audit)
    else:
        out = _curate_faithful(x, y, graph, cfg, timings, evidence, structure, audit)
    t = time.perf_counter()
    if cfg.method == "faithful":
        lt = reference_long_tail_score(graph, cfg.long_tail_k, duplicate_quirk=cfg.duplicate_quirk)
    else:
        lt = long_tail_score(graph, cfg.long_tail_k)
    timings["long_tail"] = round(time.perf_counter() - t, 3)
    out.duplicate_group = duplicates if duplicates is not None else np.full(n, -1, np.int64)
    if cfg.near_duplicate_threshold is not None:
        out.duplicate_group = near_duplicate_groups(graph.indices, graph.similarities, exact=duplicates,
                                                    threshold=cfg.near_duplicate_threshold, groups=groups)
    timings["total"] = round(time.perf_counter() - t0, 3)
    out.long_tail = lt
    out.graph = graph
    out.report = _report(cfg, y, out, graph, timings)
    out.report["structure"] = {**structure.to_dict(),
                               "duplicates": DuplicateSummary.of(out.duplicate_group).to_dict()}
    logger.info(
        "curated %d rated rows (%s): %d flagged, %d changed; %s", n_rated, cfg.method,
        out.report["n_flagged"], out.report["n_changed"],
        out.clusterability.verdict.split(":")[0] if out.clusterability else "no back-off",
    )
    return out


def _extra_depth(groups: np.ndarray | None, duplicates: np.ndarray | None, need: int) -> int:
    """Neighbours to search beyond ``need`` so that rows keep their evidence once group-mates and copies go."""
    extra = 0
    for codes, cap in ((groups, need), (duplicates, 10)):
        if codes is not None and (codes >= 0).any():
            extra += min(int(np.bincount(codes[codes >= 0]).max()) - 1, cap)
    return extra


def prompt_gain(y: np.ndarray, groups: np.ndarray, num_classes: int) -> float | None:
    """How well the other responses to a row's prompt predict its rating: nats per row over the rating marginal.

    Leave-one-out: each rated row with at least one rated group-mate is predicted by its group-mates' rating
    counts smoothed with ``K`` pseudo-counts spread as the marginal. ``None`` when no row has a rated group-mate.
    """
    K = num_classes
    rated = (y >= 0) & (groups >= 0)
    if not rated.any():
        return None
    r = np.bincount(y[y >= 0], minlength=K) / (y >= 0).sum()
    counts = np.zeros((int(groups.max()) + 1, K))
    np.add.at(counts, (groups[rated], y[rated]), 1.0)
    rows = np.flatnonzero(rated)
    own = counts[groups[rows]]
    own[np.arange(len(rows)), y[rows]] -= 1.0
    others = own.sum(axis=1)
    keep = others > 0
    if not keep.any():
        return None
    rows, own, others = rows[keep], own[keep], others[keep]
    p = (own[np.arange(len(rows)), y[rows]] + K * r[y[rows]]) / (others + K)
    return float(np.mean(np.log(p) - np.log(np.maximum(r[y[rows]], 1e-12))))


def _curate_joint(y, graph: KnnGraph, cfg: CurationConfig, timings: dict, structure: EvidenceStructure,
                  audit: np.ndarray | None) -> CurationResult:
    t = time.perf_counter()
    K = cfg.num_classes
    sel = _select_joint(y, graph, cfg)
    timings["joint_em"] = round(time.perf_counter() - t, 3)
    rated = y >= 0
    r = np.bincount(y[rated], minlength=K) / rated.sum()
    log_marginal = np.log(np.maximum(r, 1e-12))[np.maximum(y, 0)]
    state, per_row, heldout_gain = sel.state, sel.heldout - log_marginal, sel.heldout_gain
    stage = {"used": False}
    if cfg.neighbourhood_prior is not False:
        t2 = time.perf_counter()
        ids = graph.indices[:, : sel.k]
        w = EdgeWeights(ids, graph.similarities, sel.weighting, sel.shared)
        second = fit_neighbourhood(sel.state, y, ids, w, symmetric=cfg.symmetric, max_iter=cfg.max_iter,
                                   blocks=[structure.groups, structure.duplicates])
        per_row2 = second.heldout - log_marginal
        g1, g2 = float(np.mean(per_row[rated])), float(np.mean(per_row2[rated]))
        used = cfg.neighbourhood_prior is True or g2 > g1
        stage = {"used": bool(used), "heldout_gain_first": round(g1, 5), "heldout_gain_second": round(g2, 5),
                 "iterations": second.state.iterations}
        if used:
            # the selection's gain (on its sampled rows) shifted by what the second stage adds on every row
            state, per_row, heldout_gain = second.state, per_row2, sel.heldout_gain + (g2 - g1)
        timings["neighbourhood_prior"] = round(time.perf_counter() - t2, 3)
    t_detect = time.perf_counter()
    q = state.posterior
    proposed = np.where(rated, q.argmax(axis=1), -1)
    extra = (check_groups(structure, None if structure.groups is None else prompt_gain(y, structure.groups, K)),
             check_audit(y, proposed, audit))
    diag = assess_clusterability(y, graph.indices, num_classes=K, heldout_gain=heldout_gain,
                                 latent_gain=heldout_gain - sel.degenerate_gain, per_row_gain=per_row,
                                 transition=state.T, prior=state.p, extra=extra)
    gate = diag.gate if cfg.use_backoff else 1.0
    onehot = np.zeros_like(q)
    onehot[np.flatnonzero(rated), y[rated]] = 1.0
    q = np.where(rated[:, None], gate * q + (1.0 - gate) * onehot, q)
    if cfg.curated_value == "expected":
        best = np.clip(np.rint(q @ np.arange(K)), 0, K - 1).astype(np.int64)
    else:
        best = q.argmax(axis=1)
    conf_best = q[np.arange(len(y)), best]
    p_raw = np.where(rated, q[np.arange(len(y)), np.maximum(y, 0)], 0.0)
    change = rated & (best != y) & (conf_best >= cfg.threshold)
    curated = np.where(change, best, y)
    curated = np.where(rated, curated, -1)
    other = q.copy()
    other[np.flatnonzero(rated), y[rated]] = -1.0
    suggested = np.where(rated, other.argmax(axis=1), -1)
    confidence = np.where(rated, q[np.arange(len(y)), np.maximum(curated, 0)], 0.0)
    misrated = rated & (1.0 - p_raw > 0.5)
    timings["detect"] = round(time.perf_counter() - t_detect, 3)
    res = CurationResult(
        transition_matrix=state.T, true_prior=state.p, curated=curated,
        confidence=confidence.astype(np.float32), misrated=misrated,
        noise_score=np.where(rated, 1.0 - p_raw, 0.0).astype(np.float32), suggested=suggested,
        long_tail=np.empty(0, np.float32), posterior=q.astype(np.float32), clusterability=diag, report={},
    )
    res.details = {"k": sel.k, "alpha": sel.alpha, "beta": sel.beta, "gamma": sel.gamma,
                   "iterations": sel.state.iterations, "neighbourhood_prior": stage,
                   "candidates": sel.candidates}
    return res


def _select_joint(y: np.ndarray, graph: KnnGraph, cfg: CurationConfig) -> JointSelection:
    return select_joint(y, graph.indices, graph.similarities, num_classes=cfg.num_classes, ks=cfg.joint_ks,
                        alphas=cfg.joint_alphas, betas=cfg.joint_betas, gammas=cfg.joint_gammas,
                        selection_rows=cfg.selection_rows, max_iter=cfg.max_iter, symmetric=cfg.symmetric,
                        seed=cfg.seed)


def _faithful_sample_size(n_rated: int, cfg: CurationConfig) -> int:
    """Rows per faithful round: the reference's sample size, capped at 90% of the (possibly doubled) pool."""
    return min(cfg.sample_size, int(0.9 * (2 * n_rated if cfg.duplicate_quirk else n_rated)))


def _faithful_graph_k(n_rated: int, cfg: CurationConfig) -> int:
    return graph_size_needed(n_rated, _faithful_sample_size(n_rated, cfg), cfg.detect_k,
                             duplicate_quirk=cfg.duplicate_quirk)


def _curate_faithful(x, y, graph: KnnGraph, cfg: CurationConfig, timings: dict, evidence: KnnGraph,
                     structure: EvidenceStructure, audit: np.ndarray | None) -> CurationResult:
    K = cfg.num_classes
    rated_idx = np.flatnonzero(y >= 0)
    n_r = len(rated_idx)
    ss = _faithful_sample_size(n_r, cfg)
    m = _faithful_graph_k(n_r, cfg)
    t = time.perf_counter()
    xr = x[rated_idx]
    if n_r == len(y) and graph.k >= m:
        g_r = graph.truncate(m)
    else:  # unrated rows are excluded from estimation: a graph over the rated rows only
        g_r = build_knn_graph(xr, min(m, n_r - 1), config=cfg.knn, progress=cfg.progress)
    timings["knn_faithful"] = round(time.perf_counter() - t, 3)
    t = time.perf_counter()
    yr = y[rated_idx]
    fr = run_faithful(xr, yr, g_r, num_classes=K, num_rounds=cfg.num_rounds, num_epochs=cfg.num_epochs,
                      sample_size=cfg.sample_size, k=cfg.detect_k, solver=cfg.solver, max_step=cfg.max_step,
                      lr=cfg.lr, duplicate_quirk=cfg.duplicate_quirk, seed=cfg.seed, progress=cfg.progress)
    timings["hoc_and_detect"] = round(time.perf_counter() - t, 3)
    diag = None
    gate = 1.0
    if cfg.use_backoff:
        sel = _select_joint(y, evidence, cfg)
        proposed = np.where(y >= 0, y, -1)
        proposed[rated_idx] = np.where(fr.misrated & (fr.suggested >= 0), fr.suggested, y[rated_idx])
        extra = (check_groups(structure, None if structure.groups is None else prompt_gain(y, structure.groups, K)),
                 check_audit(y, proposed, audit))
        diag = assess_clusterability(y, evidence.indices, num_classes=K, heldout_gain=sel.heldout_gain,
                                     latent_gain=sel.heldout_gain - sel.degenerate_gain, transition=fr.T,
                                     prior=fr.p, extra=extra)
        gate = diag.gate
    n = len(y)
    conf = np.zeros(n)
    conf[rated_idx] = fr.confidence * gate
    sugg = np.full(n, -1, np.int64)
    sugg[rated_idx] = fr.suggested
    mis = np.zeros(n, bool)
    mis[rated_idx] = fr.misrated
    noise = np.zeros(n)
    noise[rated_idx] = fr.noise_score
    change = mis & (conf >= cfg.threshold) & (conf > 0)
    curated = np.where(change, sugg, y)
    res = CurationResult(
        transition_matrix=fr.T, true_prior=fr.p, curated=curated, confidence=conf.astype(np.float32),
        misrated=mis, noise_score=noise.astype(np.float32), suggested=sugg, long_tail=np.empty(0, np.float32),
        posterior=None, clusterability=diag, report={},
    )
    res.details = {"hoc_loss": fr.hoc_loss, "fallback_rows": fr.n_fallback_rows, "graph_k": int(g_r.k),
                     "sample_size": int(ss)}
    return res


def _report(cfg: CurationConfig, y: np.ndarray, res: CurationResult, graph: KnnGraph, timings: dict) -> dict:
    K = cfg.num_classes
    rated = y >= 0
    report = {
        "method": cfg.method,
        "num_classes": K,
        "n": int(len(y)),
        "n_rated": int(rated.sum()),
        "n_unrated": int((~rated).sum()),
        "transition_matrix": np.round(res.transition_matrix, 6).tolist(),
        "true_prior": np.round(res.true_prior, 6).tolist(),
        "rated_prior": np.round(np.bincount(y[rated], minlength=K) / rated.sum(), 6).tolist(),
        "counts_raw": np.bincount(y[rated], minlength=K).tolist(),
        "counts_curated": np.bincount(res.curated[rated], minlength=K).tolist(),
        "n_flagged": int(res.misrated.sum()),
        "n_changed": int((res.curated != y)[rated].sum()),
        "confidence_threshold": cfg.threshold,
        "backoff": cfg.use_backoff,
        "knn": graph.summary() if graph is not None else None,
        "clusterability": res.clusterability.to_dict() if res.clusterability else None,
        "timings": timings,
        "config": {k: v for k, v in cfg.to_dict().items() if k != "progress"},
    }
    report[cfg.method] = res.details
    return report
