"""The result of a curation (:class:`CurationResult`) and its JSON report."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..knn import KnnGraph
from .config import CurationConfig
from .diagnostics import Clusterability


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


def build_report(cfg: CurationConfig, y: np.ndarray, res: CurationResult, graph: KnnGraph, timings: dict) -> dict:
    """The JSON-serialisable summary of a curation (:attr:`CurationResult.report`), without ``structure``."""
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
