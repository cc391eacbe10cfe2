"""The second stage of the joint model: a *neighbourhood prior* in place of the product of neighbour votes.

``pi_i(z) ∝ sum_j w_ij q_j^(-i)(z)`` is the weighted share of each true score among the neighbours' first-stage
posteriors (:mod:`ds2_hf.curation.joint`), each with row ``i``'s own rating removed from its evidence; then
``q_i(z) ∝ pi_i(z) T[z, y_i]`` with ``T`` refitted by EM. The curation keeps it when it predicts held-out ratings
better than the first stage. Every step runs over blocks of rows: the memory held is the prior and the posteriors
(``O(N K)``), with the edge weights and their reciprocals computed block by block
(:class:`~ds2_hf.curation.evidence.EdgeWeights`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .evidence import as_edge_weights, one_hot, progress_bar, row_blocks
from .joint import EM_BLOCK, EPS, JointState, normalise


@dataclass
class NeighbourhoodFit:
    """Second stage of the joint model: the neighbourhood prior and the posteriors and ``T`` fitted under it."""

    state: JointState  # T, p and posterior refitted under the neighbourhood prior; M of the first stage
    prior: np.ndarray  # (n, K) mixture of the neighbours' leave-one-out posteriors
    heldout: np.ndarray  # (n,) log P(own rating | neighbours) under this stage; nan for unrated rows


def neighbourhood_prior(first: JointState, y: np.ndarray, nbr_ids: np.ndarray, weights,
                        reciprocal: np.ndarray | None = None, *, symmetric: bool = True, chunk_rows: int = 32768,
                        removed: np.ndarray | None = None, block_votes=None, progress: bool = False) -> np.ndarray:
    """Each row's prior over its true score: the weighted mixture of its neighbours' posteriors, its own vote removed.

    ``pi_i(z) = sum_j w_ij q_j^(-i)(z) / sum_j w_ij``, where ``q_j^(-i)`` is neighbour ``j``'s first-stage posterior
    with row ``i``'s rating taken out of its evidence (``log q_j - r_ij log M[:, y_i]``, renormalised; ``r_ij`` from
    :func:`~ds2_hf.curation.evidence.reciprocal_weights`), so that ``pi_i`` never sees ``y_i``. Rows without any
    weighted neighbour get the first-stage prior. Shape (n, K), float64, rows sum to 1. Memory
    ``O(chunk_rows k K)`` beyond the result.

    ``weights`` are the unmasked edge weights: an (n, k) array or :class:`~ds2_hf.curation.evidence.EdgeWeights`
    (computed block by block). ``reciprocal`` (n, k), optional: the reciprocal weights (default: computed block by
    block, with the reverse edges when ``symmetric``).

    ``removed`` (n, K), optional: the evidence each row's ratings gave a neighbour per unit weight, negated
    (default ``-log M[:, y_i]``, 0 for unrated rows); several raters pass ``-sum_r log M_r[:, y_ir]``
    (:mod:`ds2_hf.curation.fusion`).

    ``block_votes`` (:class:`ds2_hf.curation.structure.BlockVotes`, one rater), when given, takes out the votes of
    row ``i``'s whole block (its prompt group and copies) instead of its own vote alone, so that ratings sharing
    ``i``'s prompt or text do not reach ``pi_i`` through its neighbours. ``progress`` shows a bar of the blocks.
    """
    n = nbr_ids.shape[0]
    edges = as_edge_weights(nbr_ids, weights)
    # exact log-posteriors: with strong weights a neighbour's vote can outweigh what q itself underflowed to
    log_q = first.log_posterior if first.log_posterior is not None else np.log(np.maximum(first.posterior, 1e-300))
    neg_log_M = -np.log(first.M).T  # row y = -log M[:, y]
    prior = np.empty((n, len(first.p)))
    blocks = row_blocks(n, chunk_rows)
    for sl in progress_bar(blocks, desc="neighbourhood prior", unit="block", progress=progress):
        ids, valid = nbr_ids[sl], nbr_ids[sl] >= 0
        w = np.where(valid, edges.block(sl), 0.0)
        # log q_j^(-i) = log q_j - r_ij log M[:, y_i] + const, normalised after shifting by the row maximum
        loo = log_q[np.where(valid, ids, 0)]  # (b, k, K)
        if block_votes is not None:
            loo += block_votes.edges(sl) @ neg_log_M
        else:
            rec = edges.reciprocal(sl, symmetric=symmetric) if reciprocal is None else reciprocal[sl]
            if removed is None:
                yb = y[sl]
                rem = np.where((yb >= 0)[:, None], neg_log_M[np.maximum(yb, 0)], 0.0)
            else:
                rem = removed[sl]
            loo += rec[:, :, None] * rem[:, None, :]
        loo -= loo.max(axis=2, keepdims=True)
        np.exp(loo, out=loo)
        loo /= loo.sum(axis=2, keepdims=True)
        block = np.einsum("bk,bkz->bz", w, loo)
        total = w.sum(axis=1)
        empty = total <= 0
        block[~empty] /= total[~empty, None]
        block[empty] = first.p
        prior[sl] = normalise(block + EPS)
    return prior


def posterior_under_prior(prior: np.ndarray, T: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``q_i(z) ∝ prior_i(z) T[z, y_i]`` (the prior alone for unrated rows) and the evidence ``sum_z`` of it.

    Shapes (n, K) and (n,); the evidence of a rated row is ``P(y_i)`` under the prior, 1 for an unrated row.
    """
    joint = prior * np.where((y >= 0)[:, None], T[:, np.maximum(y, 0)].T, 1.0)
    evidence = joint.sum(axis=1)
    return joint / evidence[:, None], evidence


def refit_under_prior(prior: np.ndarray, y: np.ndarray, T: np.ndarray, *, max_iter: int = 100, tol: float = 1e-6,
                      block: int = EM_BLOCK) -> tuple[np.ndarray, float, int]:
    """EM for ``T`` with every row's prior fixed: ``(T, mean log-evidence, iterations)``, computed in blocks."""
    n, K = prior.shape
    blocks = row_blocks(n, block)
    prev, ll, it = -np.inf, -np.inf, 0
    for it in range(1, max_iter + 1):
        counts, ll = np.zeros((K, K)), 0.0
        for sl in blocks:
            q, evidence = posterior_under_prior(prior[sl], T, y[sl])
            ll += float(np.log(evidence).mean()) if len(blocks) == 1 else float(np.log(evidence).sum()) / n
            counts = counts + q.T @ one_hot(y[sl], K)
        T = normalise(counts + EPS, axis=1)
        if abs(ll - prev) < tol:
            break
        prev = ll
    return T, ll, it


def fit_neighbourhood(first: JointState, y: np.ndarray, nbr_ids: np.ndarray, weights, *,
                      symmetric: bool = True, max_iter: int = 100, tol: float = 1e-6,
                      blocks: list | None = None, progress: bool = False) -> NeighbourhoodFit:
    """Second stage: ``z_i ~ pi_i`` (:func:`neighbourhood_prior`), ``y_i ~ T[z_i]``, with ``T`` refitted by EM.

    The first stage multiplies the neighbours' votes as if they were independent views of ``z_i``; this stage
    instead takes the neighbourhood's share of each true score, estimated from the neighbours' own posteriors
    (which already pool *their* neighbourhoods), as the prior of ``z_i``. It is a one-step stacking: iterating
    it further over-smooths (BENCHMARKS.md). ``weights`` are the selected first-stage edge weights, unmasked
    (unrated neighbours contribute their posteriors too): an (n, k) array or
    :class:`~ds2_hf.curation.evidence.EdgeWeights`. ``blocks`` (labelings such as prompt groups and duplicate
    groups, ``-1`` = none) widen the leave-one-out to each row's block
    (:class:`ds2_hf.curation.structure.BlockVotes`). ``progress`` shows a bar of the prior's blocks.

    Returns
    -------
    NeighbourhoodFit
        ``state.posterior`` (n, K) and ``state.T`` (K x K, rows = true score) under the neighbourhood prior,
        ``prior`` (n, K), and ``heldout`` (n,): ``log P(y_i | neighbours)``, higher = neighbours explain the rating
        better (``nan`` for unrated rows). :func:`ds2_hf.curation.curate_scores` keeps this stage when the mean
        held-out value beats the first stage's.

    Examples
    --------
    >>> from ds2_hf.curation.joint import fit_joint
    >>> from ds2_hf.curation.evidence import neighbour_weights
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
    edges = as_edge_weights(nbr_ids, weights)
    block_votes = None
    if blocks and any(b is not None for b in blocks):
        from .structure import BlockVotes

        block_votes = BlockVotes(y, nbr_ids, edges, list(blocks), num_classes=K, symmetric=symmetric)
        if not block_votes.shared.any():  # every block is its row alone: the plain leave-one-out
            block_votes = None
    prior = neighbourhood_prior(first, y, nbr_ids, edges, symmetric=symmetric, block_votes=block_votes,
                                progress=progress)
    T, ll, it = refit_under_prior(prior, y, first.T, max_iter=max_iter, tol=tol)
    q, evidence = np.empty_like(prior), np.empty(len(y))
    for sl in row_blocks(len(y), EM_BLOCK):
        q[sl], evidence[sl] = posterior_under_prior(prior[sl], T, y[sl])
    heldout = np.where(y >= 0, np.log(np.maximum(evidence, 1e-300)), np.nan)
    state = JointState(T, normalise(q.sum(axis=0) + EPS), first.M, q, it, ll)
    return NeighbourhoodFit(state, prior, heldout)
