"""Joint estimation of the transition matrix, the prior and every sample's posterior over its true score.

A Dawid-Skene-style EM over the k-NN graph. Each rated sample ``i`` has a latent true score ``z_i ~ p``; its own
rating is drawn from ``T[z_i]``; the rating of each neighbour ``j`` is a further, weaker view of ``z_i`` drawn
from a *neighbour matrix* ``M[z_i]``. ``M = T`` would assume that neighbours always share the true score;
``M`` is learned instead, so it absorbs how often they do not (k-NN clusterability violations). Each
neighbour's evidence is tempered by a weight ``w_ij`` of its cosine similarity and of the neighbours the two
rows share (:class:`~ds2_hf.curation.evidence.Weighting`); the weights and the number of neighbours are chosen
by the held-out likelihood of every sample's own rating predicted from its neighbours alone
(:func:`~ds2_hf.curation.model_selection.select_joint`), never by hand.

* E-step: ``log q_i(z) = log p(z) + log T[z, y_i] + sum_j w_ij log M[z, y_j]`` (normalised).
* M-step: ``p = mean q``; ``T[z, y] ∝ sum_i q_i(z) [y_i = y]``; ``M[z, y] ∝ sum_ij w_ij q_i(z) [y_j = y]``.

:class:`JointModel` holds the evidence of the modelled rows (:class:`~ds2_hf.curation.evidence.Evidence`) and
fits, scores and evaluates the model on it; the EM runs over blocks of rows, so it holds the votes and the
posteriors (``O(n K)``) and nothing of size ``n k``. A second stage replaces the product of votes by a
neighbourhood prior (:mod:`ds2_hf.curation.neighbourhood`).

All functions take the *rows* being modelled (their own ratings and neighbour lists) separately from the
ratings of the whole pool, so model selection can run on a random subset of rows while neighbours' ratings
are read from every row. Unrated rows (rating ``-1``) contribute no own-rating term and no neighbour votes.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.special import logsumexp

from .evidence import Evidence, Weighting, progress_bar, reverse_votes, row_blocks

#: Additive smoothing of every estimated distribution.
EPS = 1e-6
#: Rows per block of the EM: (b, K) temporaries only, one block (the plain computation) up to this many rows.
EM_BLOCK = 1 << 17


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


def normalise(a: np.ndarray, axis: int = -1) -> np.ndarray:
    """``a`` divided by its sums along ``axis`` (a distribution per row by default)."""
    return a / a.sum(axis=axis, keepdims=True)


def log_softmax_rows(logits: np.ndarray) -> tuple[np.ndarray, float]:
    """Row-normalised log-probabilities and the mean log-normaliser (the mean log-likelihood)."""
    norm = logsumexp(logits, axis=1, keepdims=True)
    return logits - norm, float(norm.mean())


class JointModel:
    """The joint model of some rows: their :class:`~ds2_hf.curation.evidence.Evidence` and its fitted parameters.

    Parameters
    ----------
    evidence : Evidence
        Own ratings and weighted neighbour votes of the modelled rows.
    block : int, default EM_BLOCK
        Rows per block of the EM (memory ``O(block K)`` beyond the votes and posteriors).

    Examples
    --------
    >>> from ds2_hf.knn import build_knn_graph
    >>> from ds2_hf.simulate import simulate
    >>> data = simulate(2000, 16, transition="gpt-like", seed=0)
    >>> g = build_knn_graph(data.embeddings, 20, progress=False)
    >>> model = JointModel.build(data.rated, data.rated, g.indices, g.similarities, Weighting(20, 0.5),
    ...                          num_classes=6, symmetric=True)
    >>> state = model.fit()
    >>> bool((state.posterior.argmax(1) == data.true).mean() > (data.rated == data.true).mean())
    True
    """

    def __init__(self, evidence: Evidence, *, block: int = EM_BLOCK):
        self.evidence, self.block = evidence, block
        self.state: JointState | None = None

    @classmethod
    def build(cls, y_rows, y_pool, nbr_ids, sims, weighting: Weighting, *, num_classes: int,
              symmetric: bool = False, shared=None, reverse: np.ndarray | None = None) -> JointModel:
        """The model of the rows whose ratings are ``y_rows`` and neighbour lists ``nbr_ids`` (n, >= k).

        ``reverse`` (n, K) are the rows' reverse votes when they are known (a row sample,
        :func:`~ds2_hf.curation.evidence.incoming_votes`); otherwise ``symmetric`` computes them from the graph,
        which must then be that of the whole pool (``y_rows`` is ``y_pool``).
        """
        if symmetric and reverse is None:
            if len(y_rows) != len(y_pool):
                raise ValueError("symmetric evidence needs the graph of the whole pool (y_rows must be y_pool)")
            k = weighting.k
            reverse = reverse_votes(y_pool, nbr_ids[:, :k], sims[:, :k], num_classes, weighting.alpha,
                                    weighting.beta, shared, weighting.gamma)
        return cls(Evidence.build(np.asarray(y_rows), np.asarray(y_pool), nbr_ids, sims, num_classes, weighting,
                                  shared=shared, extra_votes=reverse))

    @property
    def num_classes(self) -> int:
        return self.evidence.num_classes

    # -- EM ------------------------------------------------------------------------------------------------------
    def initial_posterior(self) -> np.ndarray:
        """Own rating plus normalised neighbour votes, smoothed: the EM's default start; shape (n, K)."""
        ev = self.evidence
        q = np.empty(ev.votes.shape)
        for sl in row_blocks(len(ev), self.block):
            v = ev.votes[sl]
            q[sl] = normalise(ev.own(sl) + v / np.maximum(v.sum(1, keepdims=True), 1e-12) + 1e-3)
        return q

    def m_step(self, q: np.ndarray, eps: float = EPS) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Prior, ``T`` and ``M`` that maximise the expected log-likelihood under posteriors ``q`` (n, K), smoothed."""
        ev, K = self.evidence, self.num_classes
        total, own, nbr = np.zeros(K), np.zeros((K, K)), np.zeros((K, K))
        for sl in row_blocks(len(ev), self.block):
            qb = q[sl]
            total, own, nbr = total + qb.sum(axis=0), own + qb.T @ ev.own(sl), nbr + qb.T @ ev.votes[sl]
        return normalise(total + eps), normalise(own + eps, axis=1), normalise(nbr + eps, axis=1)

    def e_step(self, state: JointState, gate: float = 1.0, *, log: bool = False,
               out: np.ndarray | None = None) -> np.ndarray:
        """Posteriors (n, K) under ``state``'s parameters; their logarithms with ``log`` (exact where q underflows)."""
        return self._e_step(state.p, state.T, state.M, gate, log=log, out=out)[0]

    def _e_step(self, p, T, M, gate: float = 1.0, *, log: bool = True, out: np.ndarray | None = None):
        ev = self.evidence
        out = np.empty(ev.votes.shape) if out is None else out
        log_p, log_T, log_M = np.log(p)[None, :], np.log(T).T, np.log(M).T
        blocks, ll = row_blocks(len(ev), self.block), 0.0
        for sl in blocks:
            log_q, mean = log_softmax_rows(log_p + ev.own(sl) @ log_T + gate * (ev.votes[sl] @ log_M))
            out[sl] = log_q if log else np.exp(log_q)
            ll += mean if len(blocks) == 1 else mean * (sl.stop - sl.start) / len(ev)
        return out, ll

    def fit(self, init: JointState | None = None, *, max_iter: int = 100, tol: float = 1e-6,
            progress: bool = False) -> JointState:
        """EM from ``init``'s parameters (one E-step) or from :meth:`initial_posterior`; sets and returns ``state``.

        ``progress`` shows a bar of the iterations (at most ``max_iter``; the EM stops earlier once converged).
        """
        q = self.initial_posterior() if init is None else self.e_step(init)
        log_q = np.empty_like(q)
        prev, ll, it = -np.inf, -np.inf, 0
        steps = progress_bar(range(1, max_iter + 1), desc="joint EM", unit="iteration", progress=progress)
        for it in steps:
            p, T, M = self.m_step(q)
            log_q, ll = self._e_step(p, T, M, out=log_q)
            np.exp(log_q, out=q)
            if abs(ll - prev) < tol:
                break
            prev = ll
        if progress:
            steps.close()
        self.state = JointState(T, p, M, q, it, ll, log_q)
        return self.state

    # -- scores --------------------------------------------------------------------------------------------------
    def heldout(self, state: JointState | None = None) -> np.ndarray:
        """Log-probability of each row's own rating predicted from its neighbours only; ``nan`` for unrated rows.

        ``log sum_z pi_i(z) T[z, y_i]`` with ``pi_i(z) ∝ p(z) prod_j M[z, y_j]^{w_ij}``. The own rating is not
        used to form the prediction, so this is an out-of-sample score of how well neighbours explain ratings.
        """
        state = state or self.state
        ev = self.evidence
        out = np.empty(len(ev))
        log_p, log_T, log_M = np.log(state.p)[None, :], np.log(state.T).T, np.log(state.M).T
        for sl in row_blocks(len(ev), self.block):
            y = ev.y[sl]
            logpi = log_p + ev.votes[sl] @ log_M
            logpi -= logsumexp(logpi, axis=1, keepdims=True)
            out[sl] = np.where(y >= 0, logsumexp(logpi + log_T[np.maximum(y, 0)], axis=1), np.nan)
        return out

    def degenerate(self) -> JointState:
        """The "ratings are the truth" model: ``T = I``, ``q = onehot(y)`` and ``M`` in closed form.

        Its held-out likelihood is the baseline that a latent-true-score model must beat before its corrections
        are trusted (see :mod:`ds2_hf.curation.diagnostics`).
        """
        ev, K = self.evidence, self.num_classes
        T = np.eye(K) * (1 - K * EPS) + EPS
        own = ev.own()
        return JointState(T, normalise(own.sum(0) + EPS), normalise(own.T @ ev.votes + EPS, axis=1), own)


def fit_joint(y_rows, y_pool, nbr_ids, sims, *, num_classes: int, alpha: float, beta: float,
              init: JointState | None = None, max_iter: int = 100, symmetric: bool = False,
              shared=None, gamma: float = 0.0) -> JointState:
    """Run the EM for fixed neighbour weights (:meth:`JointModel.fit` of the rows ``y_rows``).

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
        Also count the votes of rows that have a row among their neighbours
        (:func:`~ds2_hf.curation.evidence.reverse_votes`); needs the modelled rows to be the whole pool.
    shared, gamma : ndarray (n, >= k) and float, optional
        Shared-nearest-neighbour similarities of the edges (:func:`~ds2_hf.curation.evidence.shared_neighbours`)
        and their exponent in the neighbour weight (``gamma = 0``: weights by cosine similarity only).
    """
    weighting = Weighting(nbr_ids.shape[1], alpha, beta, gamma)
    model = JointModel.build(y_rows, y_pool, nbr_ids, sims, weighting, num_classes=num_classes,
                             symmetric=symmetric, shared=shared)
    return model.fit(init, max_iter=max_iter)


def fit_degenerate(y_rows, y_pool, nbr_ids, sims, *, num_classes: int, alpha: float, beta: float) -> JointState:
    """The "ratings are the truth" model of the rows (:meth:`JointModel.degenerate`), forward votes only."""
    weighting = Weighting(nbr_ids.shape[1], alpha, beta)
    return JointModel.build(y_rows, y_pool, nbr_ids, sims, weighting, num_classes=num_classes).degenerate()


def heldout_loglik(state: JointState, y_rows, y_pool, nbr_ids, sims, *, alpha: float, beta: float,
                   symmetric: bool = False, shared=None, gamma: float = 0.0) -> np.ndarray:
    """Each row's own rating predicted from its neighbours only under ``state`` (:meth:`JointModel.heldout`)."""
    weighting = Weighting(nbr_ids.shape[1], alpha, beta, gamma)
    model = JointModel.build(y_rows, y_pool, nbr_ids, sims, weighting, num_classes=len(state.p),
                             symmetric=symmetric, shared=shared)
    return model.heldout(state)
