"""The NumPy entry point of curation: embeddings and ratings in, curated ratings and a report out."""

from __future__ import annotations

import logging
import time
import numpy as np

from ..duplicates import DuplicateSummary, near_duplicate_groups
from ..knn import KnnGraph, build_knn_graph
from ..knn.blocked import as_rows
from ..validation import rating_codes, validate_ratings  # noqa: F401  (validate_ratings: public here too)
from .config import CurationConfig
from .diagnostics import assess_clusterability, check_audit, check_groups
from .faithful import graph_size_needed, run_faithful
from .long_tail import long_tail_score, reference_long_tail_score
from .model_selection import JointSelection, rating_log_marginal, select_joint, select_stage
from .result import CurationResult, build_report
from .structure import EvidenceStructure, encode_labels, evidence_graph, extra_depth, prompt_gain

logger = logging.getLogger(__name__)
#: Rows from which the steps after the k-NN graph (model selection, EM, neighbourhood prior) show progress bars.
BARS_FROM = 200_000


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
    x, y, groups, duplicates, audit = _check_inputs(embeddings, ratings, groups, duplicates, audit, cfg)
    n, n_rated = len(x), int((y >= 0).sum())
    need = _depth_needed(cfg)
    timings = {}
    k_graph = min(need + extra_depth(groups, duplicates, need), n - 1)
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
    _finish(out, y, graph, structure, cfg, timings, t0)
    return out


def _depth_needed(cfg: CurationConfig) -> int:
    return cfg.graph_k if cfg.method == "joint" else max(cfg.long_tail_k, cfg.detect_k)


def _check_inputs(embeddings, ratings, groups, duplicates, audit, cfg: CurationConfig) -> tuple:
    """``(x, y, groups, duplicates, audit)`` checked, before any expensive step (:func:`curate_scores`).

    Memory maps and float16 arrays stay on disk: they are validated and normalised block by block
    (:func:`~ds2_hf.knn.open_rows`), never copied whole.
    """
    x = as_rows(embeddings, block=cfg.knn.batch_size, progress=cfg.progress)
    n = len(x)
    y = validate_ratings(ratings, n, cfg.num_classes, allow_empty_classes=True)
    n_rated, need = int((y >= 0).sum()), _depth_needed(cfg)
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
    return x, y, groups, duplicates, audit


def _finish(out: CurationResult, y, graph: KnnGraph, structure: EvidenceStructure, cfg: CurationConfig,
            timings: dict, t0: float) -> None:
    """The long-tail score, the duplicate groups and the report of a curation, set on ``out``."""
    t = time.perf_counter()
    if cfg.method == "faithful":
        out.long_tail = reference_long_tail_score(graph, cfg.long_tail_k, duplicate_quirk=cfg.duplicate_quirk)
    else:
        out.long_tail = long_tail_score(graph, cfg.long_tail_k)
    timings["long_tail"] = round(time.perf_counter() - t, 3)
    duplicates = structure.duplicates
    out.duplicate_group = duplicates if duplicates is not None else np.full(len(y), -1, np.int64)
    if cfg.near_duplicate_threshold is not None:
        out.duplicate_group = near_duplicate_groups(graph.indices, graph.similarities, exact=duplicates,
                                                    threshold=cfg.near_duplicate_threshold, groups=structure.groups)
    timings["total"] = round(time.perf_counter() - t0, 3)
    out.graph = graph
    out.report = build_report(cfg, y, out, graph, timings)
    out.report["structure"] = {**structure.to_dict(),
                               "duplicates": DuplicateSummary.of(out.duplicate_group).to_dict()}
    logger.info(
        "curated %d rated rows (%s): %d flagged, %d changed; %s", int((y >= 0).sum()), cfg.method,
        out.report["n_flagged"], out.report["n_changed"],
        out.clusterability.verdict.split(":")[0] if out.clusterability else "no back-off",
    )


def _curate_joint(y, graph: KnnGraph, cfg: CurationConfig, timings: dict, structure: EvidenceStructure,
                  audit: np.ndarray | None) -> CurationResult:
    t = time.perf_counter()
    K = cfg.num_classes
    sel = _select_joint(y, graph, cfg)
    timings["joint_em"] = round(time.perf_counter() - t, 3)
    rated = y >= 0
    t2 = time.perf_counter()
    choice = select_stage(sel, y, graph.indices, graph.similarities, prior=cfg.neighbourhood_prior,
                          symmetric=cfg.symmetric, max_iter=cfg.max_iter,
                          blocks=[structure.groups, structure.duplicates], progress=_bars(cfg, y))
    if cfg.neighbourhood_prior is not False:
        timings["neighbourhood_prior"] = round(time.perf_counter() - t2, 3)
    degenerate_gain, candidates = sel.degenerate_gain, sel.candidates
    del sel  # frees the selected first stage and the shared-neighbour similarities when the second stage is kept
    state, heldout_gain = choice.state, choice.heldout_gain
    per_row = choice.heldout - rating_log_marginal(y, K)[np.maximum(y, 0)]
    t_detect = time.perf_counter()
    q = state.posterior
    proposed = np.where(rated, q.argmax(axis=1), -1)
    extra = (check_groups(structure, None if structure.groups is None else prompt_gain(y, structure.groups, K)),
             check_audit(y, proposed, audit))
    diag = assess_clusterability(y, graph.indices, num_classes=K, heldout_gain=heldout_gain,
                                 latent_gain=heldout_gain - degenerate_gain, per_row_gain=per_row,
                                 transition=state.T, prior=state.p, extra=extra)
    gate = diag.gate if cfg.use_backoff else 1.0
    idx = np.flatnonzero(rated)
    # q (N, K) float64 is worked on in place from here (no copies at 10M rows): only T and p of the state are kept
    if gate != 1.0:  # rated rows back off towards their own rating: gate q + (1 - gate) onehot(y), in place
        q[idx] *= gate
        q[idx, y[idx]] += 1.0 - gate
    if cfg.curated_value == "expected":
        best = np.clip(np.rint(q @ np.arange(K)), 0, K - 1).astype(np.int64)
    else:
        best = q.argmax(axis=1)
    conf_best = q[np.arange(len(y)), best]
    p_raw = np.where(rated, q[np.arange(len(y)), np.maximum(y, 0)], 0.0)
    change = rated & (best != y) & (conf_best >= cfg.threshold)
    curated = np.where(change, best, y)
    curated = np.where(rated, curated, -1)
    confidence = np.where(rated, q[np.arange(len(y)), np.maximum(curated, 0)], 0.0)
    posterior = q.astype(np.float32)
    q[idx, y[idx]] = -1.0  # q is done with: the most likely other score
    suggested = np.where(rated, q.argmax(axis=1), -1)
    misrated = rated & (1.0 - p_raw > 0.5)
    timings["detect"] = round(time.perf_counter() - t_detect, 3)
    res = CurationResult(
        transition_matrix=state.T, true_prior=state.p, curated=curated,
        confidence=confidence.astype(np.float32), misrated=misrated,
        noise_score=np.where(rated, 1.0 - p_raw, 0.0).astype(np.float32), suggested=suggested,
        long_tail=np.empty(0, np.float32), posterior=posterior, clusterability=diag, report={},
    )
    w = choice.weighting
    res.details = {"k": w.k, "alpha": w.alpha, "beta": w.beta, "gamma": w.gamma,
                   "iterations": choice.first_iterations, "neighbourhood_prior": choice.details,
                   "candidates": candidates}
    return res


def _select_joint(y: np.ndarray, graph: KnnGraph, cfg: CurationConfig) -> JointSelection:
    return select_joint(y, graph.indices, graph.similarities, num_classes=cfg.num_classes, ks=cfg.joint_ks,
                        alphas=cfg.joint_alphas, betas=cfg.joint_betas, gammas=cfg.joint_gammas,
                        selection_rows=cfg.selection_rows, max_iter=cfg.max_iter, symmetric=cfg.symmetric,
                        seed=cfg.seed, progress=_bars(cfg, y))


def _bars(cfg: CurationConfig, y: np.ndarray) -> bool:
    """Progress bars of the steps after the graph: on pools large enough for them to take a while."""
    return cfg.progress and len(y) >= BARS_FROM


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
