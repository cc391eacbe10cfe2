"""Several raters, one curated score: fuse the ratings of ``R`` raters, optionally with k-NN evidence and a trusted
audit column, into one posterior per row (the model: :mod:`ds2_hf.curation.multirater`; how good each rater is:
:mod:`ds2_hf.curation.raters`).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np
from scipy.special import logsumexp

from ..validation import validate_rating_matrix, validate_ratings  # validate_rating_matrix: re-exported
from .multirater import (
    FusionSelection,
    FusionState,
    _em,
    _RaterRows,
    _warm,
    fit_fusion_neighbourhood,
    fit_raters,
    heldout_loglik,
    select_fusion,
)


@dataclass
class FusionResult:
    """Output of :func:`fuse_ratings`. ``N`` rows, ``R`` raters, ``K`` scores.

    Attributes
    ----------
    posterior : ndarray (N, K) float64
        Each row's posterior over its true score from every rater (and the k-NN evidence); rows sum to 1.
    transition_matrices : ndarray (R, K, K) float64
        ``T_r[z, y] = P(rater r rates y | true score z)``; rows sum to 1.
    true_prior : ndarray (K,) float64
        Estimated ``P(true = z)``.
    prior : ndarray (N, K) float64
        Each row's prior before its own ratings: the neighbourhood prior (second stage), the neighbours' votes
        (first stage) or ``true_prior`` (raters alone). It never sees the row's own ratings, so it predicts them
        out of sample (:func:`ds2_hf.curation.raters.rater_agreement`).
    raters_alone : FusionState
        The model without k-NN evidence (the same as the final one when there is no graph).
    heldout : ndarray (N,) float64
        ``log P(row's ratings | prior)`` under the final model; nan for rows no rater rated.
    details : dict
        JSON-ready: stage used, selected ``k`` and weights, held-out gains (nats per rated row), iterations.
    audit_shift : dict or None
        How far the audit set moved the estimates (:func:`ds2_hf.curation.raters.audit_shift`).
    """

    posterior: np.ndarray
    transition_matrices: np.ndarray
    true_prior: np.ndarray
    prior: np.ndarray
    raters_alone: FusionState = field(repr=False)
    heldout: np.ndarray = field(repr=False)
    details: dict = field(default_factory=dict)
    audit_shift: dict | None = None


def fuse_ratings(ratings, *, graph=None, audit=None, names=None, config=None, **options) -> FusionResult:
    """One posterior per row from several raters, optionally with k-NN evidence and a trusted audit column.

    Parameters
    ----------
    ratings : array-like, shape (N, R)
        Rater ``r``'s integer rating of row ``i`` in ``0..K-1``; ``None`` / NaN / -1 where it did not rate the row.
    graph : KnnGraph, optional
        k-NN graph over the rows' embeddings (:func:`ds2_hf.knn.build_knn_graph`, at least ``max(joint_ks)``
        neighbours). Without it the raters alone are fused.
    audit : array-like, shape (N,), optional
        Trusted scores on a subset (``None`` / NaN / -1 elsewhere): they anchor every estimate.
    names : sequence of str, optional
        Rater names for error messages.
    config : CurationConfig, optional
        ``num_classes``, ``joint_*`` grids, ``selection_rows``, ``symmetric``, ``neighbourhood_prior``, ``max_iter``
        and ``seed`` apply; keyword ``options`` override its fields.

    Returns
    -------
    FusionResult

    Examples
    --------
    >>> import numpy as np
    >>> from ds2_hf.knn import build_knn_graph
    >>> from ds2_hf.simulate import inject_noise, simulate
    >>> data = simulate(3000, 32, seed=0)
    >>> raters = ("gpt-like", "mistral-like", "llama-like")
    >>> Y = np.stack([inject_noise(data.true, t, seed=s) for s, t in enumerate(raters)], axis=1)
    >>> graph = build_knn_graph(data.embeddings, 40, progress=False)
    >>> res = fuse_ratings(Y, graph=graph, joint_gammas=(0.0,))
    >>> res.transition_matrices.shape
    (3, 6, 6)
    >>> bool((res.posterior.argmax(1) == data.true).mean() > 0.9 > (Y[:, 0] == data.true).mean())
    True
    """
    from .config import CurationConfig

    cfg = CurationConfig.from_options(config, **options)
    K = cfg.num_classes
    Y = validate_rating_matrix(ratings, K, names=names, allow_empty_classes=cfg.allow_empty_classes)
    a = _validate_audit(audit, len(Y), K)
    if graph is not None and len(graph) != len(Y):
        raise ValueError(f"the k-NN graph has {len(graph)} rows but ratings have {len(Y)}; build it on the same rows")
    fits = [_fuse(Y, graph, a, cfg)]
    if a is not None:
        fits.append(_fuse(Y, graph, None, cfg, selection=fits[0][1]))
    result = fits[0][0]
    if a is not None:
        from .raters import audit_shift

        result.audit_shift = audit_shift(result, fits[1][0], Y, a)
    return result


def _validate_audit(audit, n: int, K: int) -> np.ndarray | None:
    if audit is None:
        return None
    try:
        return validate_ratings(audit, n, K, allow_empty_classes=True)
    except ValueError as err:
        raise ValueError(f"audit: {err}") from None


def _fuse(Y, graph, audit, cfg, selection: FusionSelection | None = None):
    K = cfg.num_classes
    own = _RaterRows.own_only(Y, K)
    alone = fit_raters(Y, num_classes=K, audit=audit, max_iter=2 * cfg.max_iter)
    alone_ll = heldout_loglik(own, alone)
    rated = own.any_rating
    if graph is None:
        details = {"stage": "raters alone", "iterations": alone.iterations}
        prior = np.broadcast_to(alone.p, alone.posterior.shape).copy()
        return FusionResult(alone.posterior, alone.T, alone.p, prior, alone, alone_ll, details), None
    ids, sims = graph.indices, graph.similarities
    if selection is None:
        sel = select_fusion(Y, ids, sims, num_classes=K, audit=audit, ks=cfg.joint_ks, alphas=cfg.joint_alphas,
                            betas=cfg.joint_betas, gammas=cfg.joint_gammas, selection_rows=cfg.selection_rows,
                            max_iter=cfg.max_iter, symmetric=cfg.symmetric, seed=cfg.seed)
    else:  # the same neighbour weights, refitted with this audit
        st = _em(selection.rows, _warm(selection.rows, selection.state, audit), audit=audit, max_iter=cfg.max_iter)
        sel = FusionSelection(st, selection.rows, selection.k, selection.alpha, selection.beta, selection.gamma,
                              selection.heldout_gain, selection.candidates, selection.shared)
    first_ll = heldout_loglik(sel.rows, sel.state)
    log_pi = sel.rows.log_prior(sel.state.p, sel.state.M)
    state, prior, ll = sel.state, np.exp(log_pi - logsumexp(log_pi, axis=1, keepdims=True)), first_ll
    g1 = float(np.mean(first_ll[rated] - alone_ll[rated]))
    stage = {"used": False, "heldout_gain_first": round(g1, 5)}
    if cfg.neighbourhood_prior is not False:
        second, prior2 = fit_fusion_neighbourhood(sel, Y, ids, sims, audit=audit, symmetric=cfg.symmetric,
                                                  max_iter=cfg.max_iter)
        second_ll = heldout_loglik(_RaterRows(own.own, None, prior2), replace(second, violation=0.0))
        g2 = float(np.mean(second_ll[rated] - alone_ll[rated]))
        used = cfg.neighbourhood_prior is True or g2 > g1
        stage.update(used=bool(used), heldout_gain_second=round(g2, 5), iterations=second.iterations,
                     violation=round(second.violation, 5))
        if used:
            state, prior, ll = second, prior2, second_ll
    details = {"stage": "neighbourhood prior" if stage["used"] else "first", "k": sel.k, "alpha": sel.alpha,
               "beta": sel.beta, "gamma": sel.gamma, "iterations": sel.state.iterations,
               "knn_gain": round(float(np.mean(ll[rated] - alone_ll[rated])), 5), "neighbourhood_prior": stage,
               "candidates": sel.candidates}
    return FusionResult(state.posterior, state.T, state.p, prior, alone, ll, details), sel


def majority_vote(ratings: np.ndarray, num_classes: int) -> np.ndarray:
    """The raters' most frequent score per row, ties to the tied score nearest their mean; ``-1`` if none rated.

    Examples
    --------
    >>> import numpy as np
    >>> majority_vote(np.array([[1, 1, 3], [0, 2, 3], [-1, -1, -1]]), 4).tolist()
    [1, 2, -1]
    """
    Y = np.asarray(ratings)
    counts = np.stack([(Y == z).sum(axis=1) for z in range(num_classes)], axis=1).astype(np.float64)
    rated = (Y >= 0).any(axis=1)
    mean = np.where(Y >= 0, Y, 0).sum(axis=1) / np.maximum((Y >= 0).sum(axis=1), 1)
    tie_break = -np.abs(np.arange(num_classes)[None, :] - mean[:, None]) * 1e-3
    return np.where(rated, (counts + tie_break).argmax(axis=1), -1)
