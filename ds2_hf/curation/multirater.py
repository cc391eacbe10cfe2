"""The multi-rater model behind :func:`ds2_hf.curation.fusion.fuse_ratings`: Dawid-Skene over ``R`` raters,
optionally with k-NN evidence.

Each row ``i`` has a latent true score ``z_i``. Where rater ``r`` rated the row, its rating ``y_ir`` is drawn from
``T_r[z_i]``, independently of the other raters given ``z_i`` (Dawid and Skene, 1979). A rating missing by design
(a rater that rated only a sample) contributes nothing.

* **Raters alone** (no graph): ``z_i ~ p``; EM fits ``p``, every ``T_r`` and every posterior.
* **With a k-NN graph**, the single-rater joint model (:mod:`ds2_hf.curation.joint`) rater by rater. First stage:
  ``log q_i(z) = log p(z) + sum_r log T_r[z, y_ir] + sum_r sum_j w_ij log M_r[z, y_jr]``, with one neighbour
  matrix ``M_r`` per rater and the neighbour weights ``w_ij`` chosen by the held-out likelihood of each row's
  ratings predicted from its neighbours. Second stage: ``q_i(z) ∝ pi_i(z) prod_r T_r[z, y_ir]``, where ``pi_i`` is
  the weighted mixture of the neighbours' first-stage posteriors with row ``i``'s ratings taken out
  (:func:`ds2_hf.curation.neighbourhood.neighbourhood_prior`); kept when it predicts held-out ratings better.
* **An audit column** of trusted ratings (people, or a strong model) on a subset: the audited rows' posteriors
  are clamped to the trusted score in every E-step, so they anchor every ``T_r`` (and, through the neighbourhood
  prior, their neighbours). :func:`fuse_ratings` fits once more without them and reports how far they moved
  the estimates (:func:`ds2_hf.curation.raters.audit_shift`).
* **Violators.** The second stage's row prior is ``(1 - e) pi_i + e p``: a share ``e`` (fitted by EM) of rows
  whose true score differs from their neighbourhood's, which several raters together can outvote.

Every E-step and M-step is ``O(n R K^2)``: neighbour evidence enters through per-rater weighted vote counts.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy.special import logsumexp

from .evidence import (
    Evidence,
    Weighting,
    incoming_edges,
    incoming_votes,
    neighbour_weights,
    reciprocal_weights,
    reverse_votes,
    shared_neighbours,
)
from .joint import EPS, JointState, log_softmax_rows, normalise
from .neighbourhood import neighbourhood_prior


@dataclass
class FusionState:
    """Parameters and posteriors of one fit of the multi-rater model."""

    T: np.ndarray  # (R, K, K) rows = true score
    p: np.ndarray  # (K,)
    posterior: np.ndarray  # (n, K)
    log_posterior: np.ndarray  # (n, K) exact log q
    M: np.ndarray | None = None  # (R, K, K) neighbour matrices (first stage only)
    iterations: int = 0
    loglik: float = float("nan")
    violation: float = 0.0  # second stage: weight of the global prior p in each row's prior


@dataclass
class _RaterRows:
    """Sufficient statistics of the modelled rows: per-rater one-hot own ratings and weighted neighbour votes."""

    own: np.ndarray  # (R, n, K) one-hot own ratings (zero row where the rater did not rate)
    votes: np.ndarray | None = None  # (R, n, K) weighted counts of the neighbours' ratings, per rater
    prior: np.ndarray | None = None  # (n, K) fixed row priors (second stage); None = one global prior p

    @classmethod
    def own_only(cls, Y: np.ndarray, K: int, prior: np.ndarray | None = None) -> _RaterRows:
        own = np.zeros((Y.shape[1], Y.shape[0], K))
        r, i = np.nonzero(Y.T >= 0)
        own[r, i, Y[i, r]] = 1.0
        return cls(own, None, prior)

    @property
    def any_rating(self) -> np.ndarray:
        return self.own.sum(axis=(0, 2)) > 0

    def own_loglik(self, T: np.ndarray) -> np.ndarray:
        """``sum_r log T_r[z, y_ir]``; shape (n, K)."""
        return np.einsum("rnk,rzk->nz", self.own, np.log(T))

    def log_prior(self, p: np.ndarray, M: np.ndarray | None, violation: float = 0.0) -> np.ndarray:
        """``log p(z) (+ sum_r sum_j w_ij log M_r[z, y_jr])``, or ``log((1 - e) pi_i + e p)`` with fixed row priors
        ``pi_i`` and ``e = violation``; shape (n, K) or (1, K)."""
        if self.prior is not None:
            return np.log((1.0 - violation) * self.prior + violation * p[None, :])
        out = np.log(p)[None, :]
        if self.votes is not None and M is not None:
            out = out + np.einsum("rnk,rzk->nz", self.votes, np.log(M))
        return out


def _m_step(rows: _RaterRows, q: np.ndarray):
    p = normalise(q.sum(axis=0) + EPS)
    T = normalise(np.einsum("nz,rnk->rzk", q, rows.own) + EPS, axis=2)
    M = None if rows.votes is None else normalise(np.einsum("nz,rnk->rzk", q, rows.votes) + EPS, axis=2)
    return p, T, M


def _clamp(log_q: np.ndarray, audit: np.ndarray | None) -> np.ndarray:
    """Audited rows (``audit >= 0``) take their trusted score with certainty."""
    if audit is None:
        return log_q
    rows = np.flatnonzero(audit >= 0)
    log_q[rows] = np.log(EPS**4)
    log_q[rows, audit[rows]] = 0.0
    return log_q


def _em(rows: _RaterRows, q: np.ndarray, *, audit: np.ndarray | None, max_iter: int, tol: float = 1e-6,
        violation: float | None = None) -> FusionState:
    """EM from posteriors ``q``. With fixed row priors and a ``violation`` start, the weight ``e`` of the global
    prior in each row's prior is fitted too (its responsibility ``e p(z) / ((1 - e) pi_i(z) + e p(z))``)."""
    prev, ll, it = -np.inf, -np.inf, 0
    log_q = np.log(np.maximum(q, 1e-300))
    p = T = M = None
    e, fit_e = (violation or 0.0), violation is not None and rows.prior is not None
    for it in range(1, max_iter + 1):
        p_used = p
        p, T, M = _m_step(rows, q)
        if fit_e and p_used is not None:
            share = e * p_used[None, :] / ((1.0 - e) * rows.prior + e * p_used[None, :])
            e = float(np.clip((q * share).sum(axis=1).mean(), 1e-4, 0.5))
        log_q, ll = log_softmax_rows(rows.log_prior(p, M, e) + rows.own_loglik(T))
        log_q = _clamp(log_q, audit)
        q = np.exp(log_q)
        if abs(ll - prev) < tol:
            break
        prev = ll
    return FusionState(T, p, q, log_q, M, it, ll, e)


def _initial(rows: _RaterRows, audit: np.ndarray | None) -> np.ndarray:
    """Starting posteriors: from the audit where there is one, else the majority vote.

    With an audit, one E-step under ``T_r`` and ``p`` counted on the audited rows (add-one smoothed), so EM starts
    in the trusted solution's basin even when every rater errs the same way. Otherwise the share of each score
    among the row's own ratings plus its normalised neighbour votes.
    """
    if audit is not None and (audit >= 0).any():
        a = audit >= 0
        K = rows.own.shape[2]
        p = normalise(np.bincount(audit[a], minlength=K) + 1.0)
        T = normalise(np.einsum("nz,rnk->rzk", np.eye(K)[audit[a]], rows.own[:, a]) + 1.0, axis=2)
        return _warm(_RaterRows(rows.own, None, rows.prior), FusionState(T, p, None, None), audit)
    q = rows.own.sum(axis=0)
    if rows.votes is not None:
        v = rows.votes.sum(axis=0)
        q = q + v / np.maximum(v.sum(axis=1, keepdims=True), 1e-12)
    if rows.prior is not None:
        q = q + rows.prior
    return np.exp(_clamp(np.log(normalise(q + 1e-3)), audit))


def _warm(rows: _RaterRows, init: FusionState, audit: np.ndarray | None) -> np.ndarray:
    """Posteriors under ``init``'s parameters (one E-step)."""
    log_q = log_softmax_rows(rows.log_prior(init.p, init.M, init.violation) + rows.own_loglik(init.T))[0]
    return np.exp(_clamp(log_q, audit))


def heldout_loglik(rows: _RaterRows, state: FusionState) -> np.ndarray:
    """``log sum_z pi_i(z) prod_r T_r[z, y_ir]``: each row's ratings predicted without them; nan if none.

    ``pi_i`` is the global prior (raters alone), ``p`` times the neighbours' votes (first stage) or the fixed
    neighbourhood prior (second stage): none of them sees row ``i``'s own ratings.
    """
    log_pi = rows.log_prior(state.p, state.M, state.violation)
    log_pi = log_pi - logsumexp(log_pi, axis=1, keepdims=True)
    out = logsumexp(log_pi + rows.own_loglik(state.T), axis=1)
    return np.where(rows.any_rating, out, np.nan)


def fit_raters(ratings: np.ndarray, *, num_classes: int, audit: np.ndarray | None = None,
               prior: np.ndarray | None = None, init: FusionState | None = None,
               max_iter: int = 200) -> FusionState:
    """Dawid-Skene EM over ``R`` raters: every ``T_r``, the prior and every row's posterior over its true score.

    Parameters
    ----------
    ratings : ndarray (N, R) int64
        Rater ``r``'s rating of row ``i`` in ``0..K-1``; ``-1`` where it did not rate the row.
    num_classes : int
        ``K``.
    audit : ndarray (N,) int64, optional
        Trusted scores (``-1`` = not audited); audited rows' posteriors are clamped to them.
    prior : ndarray (N, K), optional
        Fixed per-row priors (rows sum to 1); default one global prior ``p``, estimated.
    init : FusionState, optional
        Warm start (its parameters seed the first E-step); default: the majority vote.

    Returns
    -------
    FusionState
        ``T`` (R, K, K), ``p`` (K,), ``posterior`` (N, K) float64, rows sum to 1.

    Examples
    --------
    >>> import numpy as np
    >>> from ds2_hf.simulate import inject_noise
    >>> true = np.random.default_rng(0).integers(0, 3, 3000)
    >>> Y = np.stack([inject_noise(true, a, seed=s) for s, a in enumerate((0.8, 0.7, 0.6))], axis=1)
    >>> st = fit_raters(Y, num_classes=3)
    >>> np.round(np.diagonal(st.T, axis1=1, axis2=2).mean(axis=1), 1).tolist()  # each rater's accuracy
    [0.8, 0.7, 0.6]
    >>> bool((st.posterior.argmax(1) == true).mean() > (Y[:, 0] == true).mean())
    True
    """
    rows = _RaterRows.own_only(ratings, num_classes, prior)
    q = _initial(rows, audit) if init is None else _warm(rows, init, audit)
    return _em(rows, q, audit=audit, max_iter=max_iter)


def _rater_rows(Y_rows, Y_pool, ids, sims, K, a, b, c, shared_rows, extras) -> _RaterRows:
    w = Weighting(ids.shape[1], a, b, c)
    parts = [Evidence.build(Y_rows[:, r], Y_pool[:, r], ids, sims, K, w, shared=shared_rows, extra_votes=extras[r])
             for r in range(Y_pool.shape[1])]
    return _RaterRows(np.stack([p.own() for p in parts]), np.stack([p.votes for p in parts]))


@dataclass
class FusionSelection:
    """The selected first-stage model (neighbour weights by held-out likelihood) and the evidence behind it."""

    state: FusionState  # fitted on every row
    rows: _RaterRows = field(repr=False)  # every row's evidence under the selected weights
    k: int
    alpha: float
    beta: float
    gamma: float
    heldout_gain: float  # nats per row with a rating, over the raters-alone model, on the selection rows
    candidates: list  # [k, alpha, beta, gamma, heldout_gain]
    shared: np.ndarray | None = field(default=None, repr=False)


def select_fusion(Y: np.ndarray, nbr_ids: np.ndarray, sims: np.ndarray, *, num_classes: int,
                  audit: np.ndarray | None = None, ks=(10, 20, 40), alphas=(0.25, 0.5, 1.0), betas=(0.0, 10.0),
                  gammas=(0.0, 2.0), selection_rows: int = 50000, max_iter: int = 100, symmetric: bool = True,
                  seed: int = 0) -> FusionSelection:
    """First stage over ``R`` raters: choose ``k`` and the neighbour weights by held-out likelihood, fit every row.

    As :func:`ds2_hf.curation.model_selection.select_joint`, with ``Y`` (N, R) in place of one rating column: each
    candidate is fitted on at most ``selection_rows`` random rows and scored by the mean log-likelihood of every row's
    ratings predicted from its neighbours alone, against the raters-alone model (:func:`fit_raters`).
    """
    K, (n, R) = num_classes, Y.shape
    ks = tuple(sorted({min(k, nbr_ids.shape[1]) for k in ks}))
    gammas = tuple(sorted({float(g) for g in gammas}))
    sel = np.sort(np.random.default_rng(seed).choice(n, selection_rows, replace=False)) if n > selection_rows \
        else np.arange(n)
    a_sel = None if audit is None else audit[sel]
    shared = shared_neighbours(nbr_ids[:, : max(ks)]) if any(gammas) else None
    shared_s = shared[sel] if shared is not None else None
    subset = len(sel) < n
    edges = [incoming_edges(Y[:, r], nbr_ids[:, : max(ks)], sel) for r in range(R)] if symmetric and subset \
        else None
    alone_rows = _RaterRows.own_only(Y[sel], K)
    alone = heldout_loglik(alone_rows, fit_raters(Y[sel], num_classes=K, audit=a_sel, max_iter=max_iter))

    def rows_for(k, a, b, c) -> _RaterRows:
        extras = [None] * R
        if symmetric:
            extras = [incoming_votes(Y[:, r], sims, shared, edges[r], len(sel), K, a, b, c, k) if subset
                      else reverse_votes(Y[:, r], nbr_ids[:, :k], sims[:, :k], K, a, b, shared, c)
                      for r in range(R)]
        return _rater_rows(Y[sel], Y, nbr_ids[sel, :k], sims[sel, :k], K, a, b, c, shared_s, extras)

    base_rows = rows_for(ks[len(ks) // 2], 1.0, 0.0, 0.0)
    base = _em(base_rows, _initial(base_rows, a_sel), audit=a_sel, max_iter=max_iter)
    best, candidates = None, []
    for k in ks:
        for c in gammas:
            for a in alphas:
                for b in betas:
                    rows = rows_for(k, a, b, c)
                    st = _em(rows, _warm(rows, base, a_sel), audit=a_sel, max_iter=max_iter)
                    g = float(np.nanmean(heldout_loglik(rows, st) - alone))
                    candidates.append([int(k), float(a), float(b), c, round(g, 5)])
                    if best is None or g > best[0]:
                        best = (g, k, a, b, c, st, rows)
    g, k, a, b, c, st, rows = best
    if subset:  # refit the winner on every row
        extras = [reverse_votes(Y[:, r], nbr_ids[:, :k], sims[:, :k], K, a, b, shared, c) if symmetric else None
                  for r in range(R)]
        rows = _rater_rows(Y, Y, nbr_ids[:, :k], sims[:, :k], K, a, b, c, shared, extras)
        st = _em(rows, _warm(rows, st, audit), audit=audit, max_iter=max_iter)
    return FusionSelection(st, rows, int(k), float(a), float(b), float(c), float(g), candidates,
                           shared if c else None)


def fit_fusion_neighbourhood(sel: FusionSelection, Y: np.ndarray, nbr_ids: np.ndarray, sims: np.ndarray, *,
                             audit: np.ndarray | None = None, symmetric: bool = True,
                             max_iter: int = 100, violation: float | None = 0.05) -> tuple[FusionState, np.ndarray]:
    """Second stage: ``q_i ∝ ((1 - e) pi_i + e p) prod_r T_r[:, y_ir]``, ``pi_i`` the neighbours' leave-row-``i``-out
    posteriors.

    ``e`` is the share of rows whose true score differs from what their neighbourhood says (k-NN clusterability
    violators), fitted by EM from ``violation`` (``None``: ``e = 0``). Several raters can outvote a neighbourhood
    where one rater cannot, so the mixture recovers such rows. Returns the refitted state and the row priors
    ``(1 - e) pi_i + e p`` (N, K), which never see row ``i``'s own ratings.
    """
    ids, sm = nbr_ids[:, : sel.k], sims[:, : sel.k]
    w = neighbour_weights(sm, ids >= 0, sel.alpha, sel.beta, shared=sel.shared, gamma=sel.gamma)
    first = sel.state
    removed = -np.einsum("rnk,rzk->nz", sel.rows.own, np.log(first.M))  # row i's ratings' vote, negated
    y_any = np.where(sel.rows.any_rating, 0, -1)
    state = JointState(T=first.T[0], p=first.p, M=first.M[0], posterior=first.posterior,
                       log_posterior=first.log_posterior)
    prior = neighbourhood_prior(state, y_any, ids, w, reciprocal_weights(ids, w, symmetric=symmetric),
                                removed=removed)
    rows = _RaterRows(sel.rows.own, None, prior)
    state = _em(rows, _warm(rows, first, audit), audit=audit, max_iter=max_iter, violation=violation)
    return state, (1.0 - state.violation) * prior + state.violation * state.p[None, :]
