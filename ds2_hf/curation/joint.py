"""Joint estimation of the transition matrix, the prior and every sample's posterior over its true score.

A Dawid-Skene-style EM over the k-NN graph. Each rated sample ``i`` has a latent true score ``z_i ~ p``; its own
rating is drawn from ``T[z_i]``; the rating of each neighbour ``j`` is a further, weaker view of ``z_i`` drawn
from a *neighbour matrix* ``M[z_i]``. ``M = T`` would assume that neighbours always share the true score;
``M`` is learned instead, so it absorbs how often they do not (k-NN clusterability violations). Each
neighbour's evidence is tempered by a weight ``w_ij = alpha * exp(beta * (s_ij - s_i1)) * (snn_ij / snn_i1) **
gamma`` of its cosine similarity ``s_ij`` and of the fraction ``snn_ij`` of nearest neighbours that ``i`` and ``j``
share (shared-nearest-neighbour similarity, :func:`shared_neighbours`): a neighbour from the same dense region
shares many neighbours, one across a cluster boundary few. Both factors are relative to the nearest neighbour,
whose weight is ``alpha``. ``alpha``, ``beta``, ``gamma`` and the number of neighbours
are chosen by the held-out likelihood of every sample's own rating predicted from its neighbours alone
(:func:`select_joint`), never by hand.

* E-step: ``log q_i(z) = log p(z) + log T[z, y_i] + sum_j w_ij log M[z, y_j]`` (normalised).
* M-step: ``p = mean q``; ``T[z, y] ∝ sum_i q_i(z) [y_i = y]``; ``M[z, y] ∝ sum_ij w_ij q_i(z) [y_j = y]``.

A second stage (:func:`fit_neighbourhood`) replaces the product of votes by a *neighbourhood prior*:
``pi_i(z) ∝ sum_j w_ij q_j^(-i)(z)``, the weighted share of each true score among the neighbours' first-stage
posteriors, each with row ``i``'s own rating removed from its evidence; then ``q_i(z) ∝ pi_i(z) T[z, y_i]`` with
``T`` refitted by EM. The curation keeps it when it predicts held-out ratings better than the first stage.

All functions take the *rows* being modelled (their own ratings and neighbour lists) separately from the
ratings of the whole pool, so model selection can run on a random subset of rows while neighbours' ratings
are read from every row. Unrated rows (rating ``-1``) contribute no own-rating term and no neighbour votes.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
from scipy.special import logsumexp

_EPS = 1e-6


@dataclass
class JointState:
    """Parameters and posteriors of the joint model."""

    T: np.ndarray  # (K, K) rows = true score
    p: np.ndarray  # (K,)
    M: np.ndarray  # (K, K) neighbour view
    posterior: np.ndarray  # (n_rows, K)
    iterations: int = 0
    loglik: float = float("nan")
    log_posterior: np.ndarray | None = None  # (n_rows, K) exact log q, kept where q underflows to 0


@dataclass
class _Rows:
    """Sufficient statistics of the modelled rows: one-hot own ratings and weighted neighbour-rating counts.

    Because a neighbour's evidence depends only on its rating, ``sum_j w_ij log M[z, y_j]`` equals
    ``(votes @ log(M).T)[i, z]`` with ``votes[i, y] = sum_j w_ij [y_j = y]``: every EM step is O(n K^2),
    whatever the number of neighbours.
    """

    y: np.ndarray  # (n,) own ratings, -1 = unrated
    own: np.ndarray  # (n, K) one-hot own rating (zero row if unrated)
    votes: np.ndarray  # (n, K) weighted neighbour-rating counts

    @classmethod
    def build(cls, y_rows, y_pool, nbr_ids, sims, K, alpha, beta, extra_votes=None, shared=None,
              gamma=0.0) -> _Rows:
        n = nbr_ids.shape[0]
        nbr_y = np.where(nbr_ids >= 0, y_pool[nbr_ids], -1)  # -1 pads rows with fewer neighbours
        w = neighbour_weights(sims, nbr_y >= 0, alpha, beta, shared=shared, gamma=gamma)
        flat = (np.arange(n)[:, None] * K + np.maximum(nbr_y, 0)).ravel()
        votes = np.bincount(flat, weights=w.ravel(), minlength=n * K).reshape(n, K)
        if extra_votes is not None:
            votes = votes + extra_votes
        own = np.zeros((n, K))
        rated = y_rows >= 0
        own[np.flatnonzero(rated), y_rows[rated]] = 1.0
        return cls(y_rows, own, votes)

    def own_loglik(self, T: np.ndarray) -> np.ndarray:
        """``log T[z, y_i]`` for rated rows, 0 for unrated; shape (n, K)."""
        return self.own @ np.log(T).T

    def neighbour_loglik(self, M: np.ndarray, gate: float = 1.0) -> np.ndarray:
        """``gate * sum_j w_ij log M[z, y_j]``; shape (n, K)."""
        return gate * (self.votes @ np.log(M).T)


def reverse_votes(y: np.ndarray, nbr_ids: np.ndarray, sims: np.ndarray, K: int, alpha: float,
                  beta: float, shared: np.ndarray | None = None, gamma: float = 0.0, *,
                  targets: np.ndarray | None = None) -> np.ndarray:
    """Votes a row receives from the rows that have it among their neighbours; shape (N, K).

    Row ``j`` with ``i`` in its neighbour list gives ``i`` its rating ``y_j`` with the same weight
    ``alpha * exp(beta * (s_ji - s_j1)) * (snn_ji / snn_j1) ** gamma``. ``nbr_ids`` (and ``shared``) must be the
    graph of the whole pool (row ``j`` = sample ``j``). With ``targets`` (distinct row ids), only the votes of
    those rows are returned, shape (len(targets), K), and only their incoming edges are weighted.
    """
    n = len(y)
    if targets is None:
        valid = (nbr_ids >= 0) & (y >= 0)[:, None]
        w = neighbour_weights(sims, valid, alpha, beta, shared=shared, gamma=gamma)
        flat = (np.maximum(nbr_ids, 0) * K + np.maximum(y, 0)[:, None]).ravel()
        return np.bincount(flat, weights=w.ravel(), minlength=n * K).reshape(n, K)
    return _incoming_votes(y, sims, shared, _incoming_edges(y, nbr_ids, targets), len(targets), K, alpha, beta,
                           gamma)


def _incoming_edges(y: np.ndarray, nbr_ids: np.ndarray, targets: np.ndarray) -> tuple:
    """Edges ``j -> targets[t]`` from rated rows ``j``: arrays ``(j, column in j's list, t)``."""
    pos = np.full(len(y), -1, dtype=np.int64)
    pos[targets] = np.arange(len(targets))
    to = np.where(nbr_ids >= 0, pos[nbr_ids], -1)
    j, c = np.nonzero((to >= 0) & (y >= 0)[:, None])
    return j, c, to[j, c]


def _incoming_votes(y, sims, shared, edges, n_targets: int, K: int, alpha, beta, gamma, k: int | None = None):
    """Votes of the targets over ``edges`` (:func:`_incoming_edges`), using only each list's first ``k`` columns."""
    j, c, to = edges
    if k is not None:
        keep = c < k
        j, c, to = j[keep], c[keep], to[keep]
    snn = (shared[j, c], shared[j, 0]) if gamma else None
    w = _weights(sims[j, c], sims[j, 0], snn, alpha, beta, gamma)
    return np.bincount(to * K + y[j], weights=w, minlength=n_targets * K).reshape(n_targets, K)


def _weights(s, s_first, snn, alpha: float, beta: float, gamma: float) -> np.ndarray:
    """``alpha * exp(beta * (s - s_first)) * (snn / snn_first) ** gamma`` in float64 (``snn`` = (snn, snn_first))."""
    w = alpha * np.exp(beta * (np.asarray(s, np.float64) - s_first))
    if gamma:
        w = w * (snn[0] / np.maximum(snn[1], 1e-12)) ** gamma
    return w


def neighbour_weights(sims: np.ndarray, nbr_rated: np.ndarray, alpha: float, beta: float,
                      shared: np.ndarray | None = None, gamma: float = 0.0) -> np.ndarray:
    """Weights ``alpha * exp(beta * (s_ij - s_i1)) * (snn_ij / snn_i1) ** gamma``, zero for unrated neighbours.

    Shape (n, k); the nearest neighbour weighs ``alpha``.

    ``shared`` holds ``snn_ij`` (:func:`shared_neighbours`, at least ``k`` columns); it is needed when
    ``gamma != 0``.
    """
    snn = None
    if gamma:
        if shared is None:
            raise ValueError(
                f"gamma={gamma} weights neighbours by their shared neighbours: pass shared=shared_neighbours(nbr_ids)"
            )
        snn = (shared[:, : sims.shape[1]], shared[:, :1])
    return np.where(nbr_rated, _weights(sims, sims[:, :1], snn, alpha, beta, gamma), 0.0)


def shared_neighbours(nbr_ids: np.ndarray, *, chunk_size: int = 4096) -> np.ndarray:
    """Shared-nearest-neighbour similarity of every graph edge; shape (N, k), float64 in (0, 1] (0 for padding).

    ``snn_ij = |({i} + N(i)) & ({j} + N(j))| / (k + 1)`` for the ``j``-th neighbour of ``i``, where ``N(i)`` is
    the ``k``-neighbour list of ``i`` (Jarvis and Patrick, 1973). It is symmetric and robust to the hubness of
    high-dimensional embeddings: two points of one dense region share most of their neighbours, two points on
    either side of a boundary few, however close their cosine similarity. Padding ids (``-1``) count as no
    neighbour. Cost ``O(N k^2)``, computed in chunks of ``chunk_size`` rows on all cores.

    Examples
    --------
    >>> import numpy as np
    >>> ids = np.array([[1, 2], [0, 2], [0, 1], [4, 2], [3, 2]])
    >>> shared_neighbours(ids)[0].tolist()  # 0 and 1 share {0, 1, 2}; 0 and 2 too
    [1.0, 1.0]
    """
    from scipy import sparse

    n, k = nbr_ids.shape
    valid = nbr_ids >= 0
    members = np.concatenate([np.arange(n)[:, None], np.where(valid, nbr_ids, n)], axis=1)  # self first; n = none
    flat = members.ravel()
    keep = flat < n
    member = sparse.csr_matrix(
        (np.ones(int(keep.sum()), np.float32), (np.repeat(np.arange(n), k + 1)[keep], flat[keep])), shape=(n, n)
    )
    member.data[:] = 1.0  # a repeated id counts once
    member_t = member.T.tocsr()
    out = np.zeros((n, k))
    ordered = np.sort(members, axis=1)
    if (np.diff(ordered, axis=1)[ordered[:, 1:] < n] == 0).any():  # self or a repeated id listed: look edges up
        for start in range(0, n, chunk_size):
            stop = min(start + chunk_size, n)
            overlap = (member[start:stop] @ member_t).tocsr()
            local = np.repeat(np.arange(stop - start), k)
            ids = np.where(valid[start:stop], nbr_ids[start:stop], 0).ravel()
            out[start:stop] = np.asarray(overlap[local, ids]).reshape(stop - start, k)
        return np.where(valid, out / (k + 1), 0.0)
    # distinct members: the j-th neighbour's overlap sits at its rank among the row's sorted member ids
    rank = np.empty_like(members)
    np.put_along_axis(rank, np.argsort(members, axis=1, kind="stable"), np.arange(k + 1)[None, :], axis=1)

    def chunk(start: int) -> None:
        stop = min(start + chunk_size, n)
        block = member[start:stop]
        overlap = (block @ member_t).multiply(block).tocsr()  # non-zero exactly at (row, member) pairs
        overlap.sort_indices()
        pos = overlap.indptr[:-1, None] + rank[start:stop, 1:]
        out[start:stop] = overlap.data[np.minimum(pos, len(overlap.data) - 1)]

    # scipy's sparse product releases the GIL: chunks run on all cores (1.7x on 2 cores)
    with ThreadPoolExecutor(max_workers=min(os.cpu_count() or 1, 8)) as pool:
        list(pool.map(chunk, range(0, n, chunk_size)))
    return np.where(valid, out / (k + 1), 0.0)


def _normalise(a: np.ndarray, axis: int = -1) -> np.ndarray:
    return a / a.sum(axis=axis, keepdims=True)


def _log_softmax_rows(logits: np.ndarray) -> tuple[np.ndarray, float]:
    """Row-normalised log-probabilities and the mean log-normaliser (the mean log-likelihood)."""
    norm = logsumexp(logits, axis=1, keepdims=True)
    return logits - norm, float(norm.mean())


def _em(rows: _Rows, q: np.ndarray, max_iter: int, tol: float = 1e-6) -> JointState:
    prev, ll, it, log_q = -np.inf, -np.inf, 0, None
    for it in range(1, max_iter + 1):
        p, T, M = _m_step(rows, q)
        log_q, ll = _log_softmax_rows(np.log(p)[None, :] + rows.own_loglik(T) + rows.neighbour_loglik(M))
        q = np.exp(log_q)
        if abs(ll - prev) < tol:
            break
        prev = ll
    return JointState(T, p, M, q, it, ll, log_q)


def _m_step(rows: _Rows, q: np.ndarray, eps: float = _EPS) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Prior, ``T`` and ``M`` that maximise the expected log-likelihood under posteriors ``q`` (n, K), smoothed."""
    return (_normalise(q.sum(axis=0) + eps), _normalise(q.T @ rows.own + eps, axis=1),
            _normalise(q.T @ rows.votes + eps, axis=1))


def _e_step(rows: _Rows, state: JointState, gate: float = 1.0, *, log: bool = False) -> np.ndarray:
    """Posteriors (n, K) under ``state``'s parameters; their logarithms with ``log`` (exact where q underflows)."""
    log_q = _log_softmax_rows(
        np.log(state.p)[None, :] + rows.own_loglik(state.T) + rows.neighbour_loglik(state.M, gate))[0]
    return log_q if log else np.exp(log_q)


def fit_joint(y_rows, y_pool, nbr_ids, sims, *, num_classes: int, alpha: float, beta: float,
              init: JointState | None = None, max_iter: int = 100, symmetric: bool = False,
              shared: np.ndarray | None = None, gamma: float = 0.0) -> JointState:
    """Run the EM for fixed neighbour weights.

    Parameters
    ----------
    y_rows : ndarray (n,) int64
        Own ratings of the modelled rows in ``0..K-1``, ``-1`` = unrated.
    y_pool : ndarray (N,) int64
        Ratings of every row of the pool (neighbour ids index into it).
    nbr_ids, sims : ndarray (n, k)
        Neighbours of the modelled rows (self excluded) and their cosine similarities, most similar first.
    alpha, beta : float
        Neighbour weight parameters.
    init : JointState, optional
        Warm start (its parameters seed the first E-step); default: own rating plus normalised neighbour votes.
    symmetric : bool, default False
        Also count the votes of rows that have a row among their neighbours (:func:`reverse_votes`); needs the
        modelled rows to be the whole pool.
    shared, gamma : ndarray (n, >= k) and float, optional
        Shared-nearest-neighbour similarities of the edges (:func:`shared_neighbours`) and their exponent in the
        neighbour weight (``gamma = 0``: weights by cosine similarity only).
    """
    rows = _rows(y_rows, y_pool, nbr_ids, sims, num_classes, alpha, beta, symmetric, shared, gamma)
    return _fit(rows, init, max_iter)


def _rows(y_rows, y_pool, nbr_ids, sims, K, alpha, beta, symmetric, shared=None, gamma=0.0) -> _Rows:
    extra = None
    if symmetric:
        if len(y_rows) != len(y_pool):
            raise ValueError("symmetric evidence needs the graph of the whole pool (y_rows must be y_pool)")
        extra = reverse_votes(y_pool, nbr_ids, sims, K, alpha, beta, shared, gamma)
    return _Rows.build(y_rows, y_pool, nbr_ids, sims, K, alpha, beta, extra, shared, gamma)


def _fit(rows: _Rows, init: JointState | None, max_iter: int) -> JointState:
    if init is None:
        q = _normalise(rows.own + rows.votes / np.maximum(rows.votes.sum(1, keepdims=True), 1e-12) + 1e-3)
    else:
        q = _e_step(rows, init)
    return _em(rows, q, max_iter)


def fit_degenerate(y_rows, y_pool, nbr_ids, sims, *, num_classes: int, alpha: float, beta: float) -> JointState:
    """The "ratings are the truth" model: ``T = I``, ``q = onehot(y)`` and ``M`` in closed form.

    Its held-out likelihood is the baseline that a latent-true-score model must beat before its corrections
    are trusted (see :mod:`ds2_hf.curation.diagnostics`).
    """
    return _degenerate(_Rows.build(y_rows, y_pool, nbr_ids, sims, num_classes, alpha, beta))


def _degenerate(rows: _Rows) -> JointState:
    K = rows.own.shape[1]
    T = np.eye(K) * (1 - K * _EPS) + _EPS
    return JointState(T, _normalise(rows.own.sum(0) + _EPS), _normalise(rows.own.T @ rows.votes + _EPS, axis=1),
                      rows.own)


def heldout_loglik(state: JointState, y_rows, y_pool, nbr_ids, sims, *, alpha: float, beta: float,
                   symmetric: bool = False, shared: np.ndarray | None = None, gamma: float = 0.0) -> np.ndarray:
    """Log-probability of each row's own rating predicted from its neighbours only; ``nan`` for unrated rows.

    ``log sum_z pi_i(z) T[z, y_i]`` with ``pi_i(z) ∝ p(z) prod_j M[z, y_j]^{w_ij}``. The own rating is not used
    to form the prediction, so this is an out-of-sample score of how well neighbours explain ratings.
    """
    return _heldout(state, _rows(y_rows, y_pool, nbr_ids, sims, len(state.p), alpha, beta, symmetric, shared, gamma))


def _heldout(state: JointState, rows: _Rows) -> np.ndarray:
    logpi = np.log(state.p)[None, :] + rows.neighbour_loglik(state.M)
    logpi -= logsumexp(logpi, axis=1, keepdims=True)
    out = logsumexp(logpi + np.log(state.T).T[np.maximum(rows.y, 0)], axis=1)
    return np.where(rows.y >= 0, out, np.nan)


def reciprocal_weights(nbr_ids: np.ndarray, weights: np.ndarray, *, symmetric: bool = True) -> np.ndarray:
    """Weight with which each row's own rating entered the evidence of each of its neighbours; shape (n, k).

    Row ``i`` votes for its neighbour ``j = nbr_ids[i, m]`` through the reverse edge with ``weights[i, m]`` (when
    ``symmetric``) and, when ``i`` is itself the ``m'``-th neighbour of ``j``, through ``j``'s forward edge with
    ``weights[j, m']``. ``weights`` (n, k) are the unmasked edge weights of the whole pool (row ``i`` = sample
    ``i``, neighbour lists without repeated ids as :func:`ds2_hf.knn.build_knn_graph` returns them); padding ids
    (``-1``) get 0. Cost one sort of the ``N k`` edges, no N x N structure.

    Examples
    --------
    >>> import numpy as np
    >>> ids = np.array([[1, 2], [0, 2], [1, 0]])
    >>> w = np.array([[1.0, 0.5], [1.0, 0.5], [1.0, 0.5]])
    >>> reciprocal_weights(ids, w).tolist()  # 0 -> 1: reverse 1.0 + forward 1.0 (0 is 1's nearest neighbour)
    [[2.0, 1.0], [2.0, 1.5], [1.5, 1.0]]
    """
    n, k = nbr_ids.shape
    valid = nbr_ids >= 0
    src = np.broadcast_to(np.arange(n, dtype=np.int64)[:, None], (n, k))[valid]
    dst = nbr_ids[valid].astype(np.int64)
    w = np.asarray(weights, dtype=np.float64)[valid]
    # i -> j and j -> i share the key of the unordered pair: after one sort the two edges are adjacent
    key = np.minimum(src, dst) * n + np.maximum(src, dst)
    order = np.argsort(key, kind="stable")
    mutual = np.flatnonzero(key[order[1:]] == key[order[:-1]])
    first, second = order[mutual], order[mutual + 1]
    back = np.zeros(len(key))
    back[first], back[second] = w[second], w[first]
    forward = np.zeros((n, k))
    forward[valid] = back
    out = forward + (weights if symmetric else 0.0)
    return np.where(valid, out, 0.0)


@dataclass
class NeighbourhoodFit:
    """Second stage of the joint model: the neighbourhood prior and the posteriors and ``T`` fitted under it."""

    state: JointState  # T, p and posterior refitted under the neighbourhood prior; M of the first stage
    prior: np.ndarray  # (n, K) mixture of the neighbours' leave-one-out posteriors
    heldout: np.ndarray  # (n,) log P(own rating | neighbours) under this stage; nan for unrated rows


def neighbourhood_prior(first: JointState, y: np.ndarray, nbr_ids: np.ndarray, weights: np.ndarray,
                        reciprocal: np.ndarray, *, chunk_rows: int = 32768,
                        removed: np.ndarray | None = None, block_votes=None) -> np.ndarray:
    """Each row's prior over its true score: the weighted mixture of its neighbours' posteriors, its own vote removed.

    ``pi_i(z) = sum_j w_ij q_j^(-i)(z) / sum_j w_ij``, where ``q_j^(-i)`` is neighbour ``j``'s first-stage posterior
    with row ``i``'s rating taken out of its evidence (``log q_j - r_ij log M[:, y_i]``, renormalised; ``r_ij`` from
    :func:`reciprocal_weights`), so that ``pi_i`` never sees ``y_i``. Rows without any weighted neighbour get the
    first-stage prior. Shape (n, K), float64, rows sum to 1. Memory ``O(chunk_rows k K)``.

    ``removed`` (n, K), optional: the evidence each row's ratings gave a neighbour per unit weight, negated
    (default ``-log M[:, y_i]``, 0 for unrated rows); several raters pass ``-sum_r log M_r[:, y_ir]``
    (:mod:`ds2_hf.curation.fusion`).

    ``block_votes`` (:class:`ds2_hf.curation.structure.BlockVotes`, one rater), when given, takes out the votes of
    row ``i``'s whole block (its prompt group and copies) instead of its own vote alone, so that ratings sharing
    ``i``'s prompt or text do not reach ``pi_i`` through its neighbours.
    """
    n = nbr_ids.shape[0]
    K = len(first.p)
    # exact log-posteriors: with strong weights a neighbour's vote can outweigh what q itself underflowed to
    log_q = first.log_posterior if first.log_posterior is not None else np.log(np.maximum(first.posterior, 1e-300))
    rated = y >= 0
    if removed is None:
        removed = np.where(rated[:, None], -np.log(first.M).T[np.maximum(y, 0)], 0.0)  # (n, K): -log M[:, y_i]
    valid = nbr_ids >= 0
    w = np.where(valid, weights, 0.0)
    total = w.sum(axis=1)
    prior = np.empty((n, K))
    for start in range(0, n, chunk_rows):
        sl = slice(start, min(start + chunk_rows, n))
        # log q_j^(-i) = log q_j - r_ij log M[:, y_i] + const, normalised after shifting by the row maximum
        loo = log_q[np.where(valid[sl], nbr_ids[sl], 0)]  # (b, k, K)
        if block_votes is None:
            loo += reciprocal[sl][:, :, None] * removed[sl][:, None, :]
        else:
            loo += block_votes.edges(sl) @ -np.log(first.M).T  # row y of -log(M).T = -log M[:, y]
        loo -= loo.max(axis=2, keepdims=True)
        np.exp(loo, out=loo)
        loo /= loo.sum(axis=2, keepdims=True)
        prior[sl] = np.einsum("bk,bkz->bz", w[sl], loo)
    empty = total <= 0
    prior[~empty] /= total[~empty, None]
    prior[empty] = first.p
    return _normalise(prior + _EPS)


def fit_neighbourhood(first: JointState, y: np.ndarray, nbr_ids: np.ndarray, weights: np.ndarray, *,
                      symmetric: bool = True, max_iter: int = 100, tol: float = 1e-6,
                      blocks: list | None = None) -> NeighbourhoodFit:
    """Second stage: ``z_i ~ pi_i`` (:func:`neighbourhood_prior`), ``y_i ~ T[z_i]``, with ``T`` refitted by EM.

    The first stage multiplies the neighbours' votes as if they were independent views of ``z_i``; this stage
    instead takes the neighbourhood's share of each true score, estimated from the neighbours' own posteriors
    (which already pool *their* neighbourhoods), as the prior of ``z_i``. It is a one-step stacking: iterating
    it further over-smooths (BENCHMARKS.md). ``weights`` (n, k) are the selected first-stage edge weights,
    unmasked (unrated neighbours contribute their posteriors too). ``blocks`` (labelings such as prompt groups
    and duplicate groups, ``-1`` = none) widen the leave-one-out to each row's block
    (:class:`ds2_hf.curation.structure.BlockVotes`).

    Returns
    -------
    NeighbourhoodFit
        ``state.posterior`` (n, K) and ``state.T`` (K x K, rows = true score) under the neighbourhood prior,
        ``prior`` (n, K), and ``heldout`` (n,): ``log P(y_i | neighbours)``, higher = neighbours explain the rating
        better (``nan`` for unrated rows). :func:`ds2_hf.curation.curate_scores` keeps this stage when the mean
        held-out value beats the first stage's.

    Examples
    --------
    >>> from ds2_hf.knn import build_knn_graph
    >>> from ds2_hf.simulate import simulate
    >>> data = simulate(2000, 16, transition="llama-like", spread=1.0, seed=0)
    >>> g = build_knn_graph(data.embeddings, 20, progress=False)
    >>> first = fit_joint(data.rated, data.rated, g.indices, g.similarities, num_classes=6, alpha=0.5, beta=0.0,
    ...                   symmetric=True)
    >>> w = neighbour_weights(g.similarities, g.indices >= 0, 0.5, 0.0)
    >>> second = fit_neighbourhood(first, data.rated, g.indices, w)
    >>> acc = lambda q: (q.argmax(1) == data.true).mean()
    >>> bool(acc(second.state.posterior) > acc(first.posterior) > (data.rated == data.true).mean())
    True
    """
    K = len(first.p)
    block_votes = None
    if blocks and any(b is not None for b in blocks):
        from .structure import BlockVotes

        block_votes = BlockVotes(y, nbr_ids, weights, list(blocks), num_classes=K, symmetric=symmetric)
    prior = neighbourhood_prior(first, y, nbr_ids, weights, reciprocal_weights(nbr_ids, weights, symmetric=symmetric),
                                block_votes=block_votes)
    rated = y >= 0
    own = np.zeros((len(y), K))
    own[np.flatnonzero(rated), y[rated]] = 1.0
    T, prev, ll, it = first.T, -np.inf, -np.inf, 0
    for it in range(1, max_iter + 1):
        q, evidence = posterior_under_prior(prior, T, y)
        ll = float(np.log(evidence).mean())
        T = _normalise(q.T @ own + _EPS, axis=1)
        if abs(ll - prev) < tol:
            break
        prev = ll
    q, evidence = posterior_under_prior(prior, T, y)
    heldout = np.where(rated, np.log(np.maximum(evidence, 1e-300)), np.nan)
    state = JointState(T, _normalise(q.sum(axis=0) + _EPS), first.M, q, it, ll)
    return NeighbourhoodFit(state, prior, heldout)


def posterior_under_prior(prior: np.ndarray, T: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``q_i(z) ∝ prior_i(z) T[z, y_i]`` (the prior alone for unrated rows) and the evidence ``sum_z`` of it.

    Shapes (n, K) and (n,); the evidence of a rated row is ``P(y_i)`` under the prior, 1 for an unrated row.
    """
    joint = prior * np.where((y >= 0)[:, None], T[:, np.maximum(y, 0)].T, 1.0)
    evidence = joint.sum(axis=1)
    return joint / evidence[:, None], evidence


@dataclass
class JointSelection:
    """The selected joint model and the evidence behind it."""

    state: JointState  # fitted on every row
    k: int
    alpha: float
    beta: float
    heldout_gain: float  # nats per rated row over the marginal, selected joint model
    degenerate_gain: float  # nats per rated row over the marginal, best "ratings are the truth" model
    candidates: list  # [k, alpha, beta, gamma, heldout_gain] of every candidate
    gamma: float = 0.0  # exponent of the shared-neighbour similarity in the weights
    shared: np.ndarray | None = None  # (N, k_max) shared-neighbour similarities when a gamma > 0 was searched
    heldout: np.ndarray | None = None  # (N,) held-out log-likelihood of each own rating (nan if unrated)


def select_joint(
    y: np.ndarray,
    nbr_ids: np.ndarray,
    sims: np.ndarray,
    *,
    num_classes: int,
    ks: tuple[int, ...] = (10, 20, 40),
    alphas: tuple[float, ...] = (0.25, 0.5, 1.0),
    betas: tuple[float, ...] = (0.0, 10.0),
    gammas: tuple[float, ...] = (0.0, 2.0),
    selection_rows: int = 50000,
    max_iter: int = 100,
    symmetric: bool = True,
    seed: int = 0,
) -> JointSelection:
    """Choose the number of neighbours and the neighbour weights by held-out likelihood, then fit every row.

    Each candidate ``(k, alpha, beta, gamma)`` is fitted, warm-started from a strong-weight solution, on at most
    ``selection_rows`` random rows (each keeping its neighbours in the full pool) and scored by the mean
    held-out log-likelihood gain over the rating marginal. The best candidate is refitted on all rows.
    With ``symmetric`` (default), a row's evidence also includes the votes of the rows that have it among
    their neighbours (:func:`reverse_votes`), which measurably improves both held-out likelihood and accuracy.
    Candidates with ``gamma > 0`` weight neighbours by the shared-neighbour similarity of the ``max(ks)``-neighbour
    lists (:func:`shared_neighbours`, computed once).
    The best "ratings are the truth" model over the same grid is scored too: the difference is the evidence
    that the latent-true-score model explains the ratings better than the raw ratings themselves.
    """
    K = num_classes
    kmax = nbr_ids.shape[1]
    ks = tuple(sorted({min(k, kmax) for k in ks}))
    gammas = tuple(sorted({float(g) for g in gammas}))
    n = len(y)
    rated = y >= 0
    marg = np.log(np.maximum(np.bincount(y[rated], minlength=K) / max(rated.sum(), 1), 1e-12))
    rng = np.random.default_rng(seed)
    sel = np.sort(rng.choice(n, selection_rows, replace=False)) if n > selection_rows else np.arange(n)
    ys, ids_s, sims_s = y[sel], nbr_ids[sel], sims[sel]
    ok = ys >= 0
    shared = shared_neighbours(nbr_ids[:, : max(ks)]) if any(gammas) else None
    shared_s = shared[sel] if shared is not None else None
    edges = _incoming_edges(y, nbr_ids[:, : max(ks)], sel) if symmetric and len(sel) < n else None

    def gain(state: JointState, rows: _Rows) -> float:
        ll = _heldout(state, rows)
        return float(np.mean(ll[ok] - marg[ys[ok]]))

    def rows_for(k: int, a: float, b: float, c: float) -> _Rows:
        extra = None
        if symmetric and edges is not None:
            extra = _incoming_votes(y, sims, shared, edges, len(sel), K, a, b, c, k)
        elif symmetric:
            extra = reverse_votes(y, nbr_ids[:, :k], sims[:, :k], K, a, b, shared, c)
        return _Rows.build(ys, y, ids_s[:, :k], sims_s[:, :k], K, a, b, extra, shared_s, c)

    base = _fit(rows_for(ks[len(ks) // 2], 1.0, 0.0, 0.0), None, max_iter)
    best, deg_best, candidates = None, -np.inf, []
    for k in ks:
        for c in gammas:
            for a in alphas:
                for b in betas:
                    rows = rows_for(k, a, b, c)
                    st = _fit(rows, base, max_iter)
                    g = gain(st, rows)
                    candidates.append([int(k), float(a), float(b), c, round(g, 5)])
                    if best is None or g > best[0]:
                        best = (g, k, a, b, c, st, rows)
                    deg_best = max(deg_best, gain(_degenerate(rows), rows))
    g, k, a, b, c, st, rows = best
    if len(sel) < n:  # refit the winner on every row
        rows = _rows(y, y, nbr_ids[:, :k], sims[:, :k], K, a, b, symmetric, shared, c)
        st = _fit(rows, st, max_iter)
    return JointSelection(st, int(k), float(a), float(b), float(g), float(deg_best), candidates, c,
                          shared if c else None, _heldout(st, rows))
