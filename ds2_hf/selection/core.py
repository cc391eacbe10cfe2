"""The NumPy core of selection: rank plain arrays with a registered strategy and return the best row indices.

:func:`select_indices` validates its inputs at the boundary (:mod:`ds2_hf.validation`), decides which rows are
eligible, hands them to the strategy (:data:`ds2_hf.selection.STRATEGIES`), takes at most one row of each
duplicate group, and warns when fewer than ``k`` rows come back.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np

from ..validation import InputError, as_matrix, as_row_values, check_finite
from .config import as_tiers, check_options
from .duplicates import first_mask
from .strategies import STRATEGIES, RankInputs, Strategy

_VECTORS = ("scores", "long_tail", "lengths")


def _read_arrays(n: int | None, *, embeddings: Any, posterior: Any, duplicates: Any,
                 **vectors: Any) -> tuple[dict[str, np.ndarray | None], int | None]:
    """The per-row inputs checked and converted (float64 vectors, an (N, d) matrix), and the pool size."""
    arrays: dict[str, np.ndarray | None] = {}
    for name in _VECTORS:
        arrays[name] = None if vectors[name] is None else as_row_values(vectors[name], name=name, n=n)
        if arrays[name] is not None:
            n = arrays[name].shape[0]
    arrays["embeddings"] = None
    if embeddings is not None:
        emb = as_matrix(embeddings, name="embeddings", dtype=None)
        if n is not None and emb.shape[0] != n:
            raise InputError(
                f"embeddings has {emb.shape[0]} rows, expected {n} (all inputs must describe the same rows)"
            )
        check_finite(emb, name="embeddings")
        arrays["embeddings"], n = emb, emb.shape[0]
    arrays["posterior"] = None
    if posterior is not None:
        post = as_matrix(posterior, name="posterior", dtype=np.float64)
        if n is not None and post.shape[0] != n:
            raise InputError(f"posterior must have shape (N, K) with N = {n} rows; got shape {post.shape}")
        arrays["posterior"] = post
    arrays["duplicates"] = None
    if duplicates is not None:
        dup = as_row_values(duplicates, name="duplicates", n=n)
        arrays["duplicates"] = np.where(np.isnan(dup), -1, dup).astype(np.int64)
    return arrays, n


def _check_needs(name: str, spec: Strategy, arrays: dict, n: int | None, threshold: float | None) -> None:
    for need in spec.needs:
        options = need.split("|")
        if all(arrays[o] is None for o in options):
            raise InputError(f"strategy {name!r} needs {' or '.join(f'`{o}`' for o in options)}")
    if threshold is not None and arrays["scores"] is None:
        raise InputError("threshold is set but no scores were given; pass `scores` or drop the threshold")
    if n is None:
        raise InputError(
            f"strategy {name!r} was given no per-row input, so the pool size is unknown; pass n_rows=... "
            "or one of scores, long_tail, lengths, embeddings"
        )


def _eligible(n: int, scores: np.ndarray | None, spec: Strategy, threshold: float | None) -> np.ndarray:
    """Rows that may be chosen: a non-null score for score-based strategies, ``score >= threshold`` when set."""
    eligible = np.ones(n, dtype=bool)
    if scores is not None and (spec.score_based or threshold is not None):
        eligible &= ~np.isnan(scores)
        if threshold is not None:
            eligible &= scores >= threshold
    return eligible


def _tie_key(n: int, seed: int, tie_break: str) -> np.ndarray:
    if tie_break == "index":
        return np.arange(n, dtype=np.int64)
    # an independent stream, so `random` draws the same sample whatever the tie-break
    return np.random.default_rng([seed, 1]).permutation(n).astype(np.int64)


def _rank(spec: Strategy, inputs: RankInputs, k: int | None, info: dict[str, Any]) -> np.ndarray:
    """The strategy's ranking, with at most one row of each duplicate group among the ``k`` returned."""
    dup = inputs.duplicates
    if dup is None or spec.filters:  # a filtering strategy drops duplicates as it walks
        return np.asarray(spec.rank(inputs, k, info), dtype=np.int64)
    ranked = np.asarray(spec.rank(inputs, None, info), dtype=np.int64)
    keep = first_mask(ranked, dup)
    kept_at = np.flatnonzero(keep)[:k]
    reached = kept_at[-1] + 1 if k is not None and kept_at.size == k else ranked.size
    info["n_duplicates_skipped"] = int((~keep[:reached]).sum())
    return ranked[kept_at]


def _warn_shortfall(picked: int, k: int, n: int, n_eligible: int, spec: Strategy, *, threshold: float | None,
                    diversity_threshold: float) -> None:
    if picked < n_eligible and spec.filters:
        why = (f"the diversity filter kept only {picked} of {n_eligible} eligible rows (raise "
               f"diversity_threshold={diversity_threshold} to keep more)")
    elif picked < n_eligible:
        why = (f"{n_eligible} rows are eligible but only {picked} of them are not duplicates of a row "
               "ranked before them (pass deduplicate=False to allow duplicates)")
    else:
        why = f"only {n_eligible} of {n} rows are eligible"
        if spec.score_based or threshold is not None:
            why += " (rows with a null score are never selected" + (
                f"; threshold={threshold})" if threshold is not None else ")")
    warnings.warn(f"asked for k={k} rows but returning {picked}: {why}", UserWarning, stacklevel=3)


def select_indices(
    strategy: str = "confident",
    *,
    k: int | None,
    scores: Any = None,
    long_tail: Any = None,
    lengths: Any = None,
    embeddings: Any = None,
    posterior: Any = None,
    duplicates: Any = None,
    threshold: float | None = None,
    seed: int = 0,
    tie_break: str = "index",
    diversity_threshold: float = 0.9,
    knn_k: int = 10,
    confidence_tiers: tuple = (0.99, 0.9),
    n_rows: int | None = None,
    details: dict[str, Any] | None = None,
) -> np.ndarray:
    """Rank rows with a selection strategy and return the best ``k`` row indices, best first.

    The pure NumPy core of :func:`ds2_hf.selection.select`; see :mod:`ds2_hf.selection` for the strategies and
    conventions.

    Parameters
    ----------
    strategy : str, default "confident"
        One of :data:`ds2_hf.selection.STRATEGIES`.
    k : int or None
        Rows to return (>= 1), or ``None`` for every eligible row.
    scores : array-like of shape (N,), optional
        Quality scores (e.g. curated ratings 0-5); ``NaN`` / ``None`` = unrated, never selected by
        score-based strategies. Required by ``ds2``, ``score``, ``diversity`` and whenever ``threshold`` is set.
    long_tail : array-like of shape (N,), optional
        Long-tail diversity score, higher = rarer. Required by ``ds2``; ``knn`` uses it instead of
        ``embeddings``; ``diversity`` uses it to order rows of equal score. ``NaN`` sorts last.
    lengths : array-like of shape (N,), optional
        Text lengths, required by ``length``.
    embeddings : array-like of shape (N, d), optional
        Row embeddings (any scale; cosine geometry). Required by ``diversity``, and by ``knn`` without
        ``long_tail``.
    posterior : array-like of shape (N, K), optional
        Posterior over the true score (rows sum to 1), used by ``confident``; without it ``confident`` ranks
        as ``ds2``.
    duplicates : array-like of shape (N,), optional
        Duplicate-group ids (``-1`` = unique): at most one row of each group is returned.
    threshold : float, optional
        Keep only rows with ``score >= threshold``.
    seed : int, default 0
        Seed for ``random`` and for ``tie_break="random"``.
    tie_break : {"index", "random"}, default "index"
        Order of rows with equal keys.
    diversity_threshold : float, default 0.9
        Maximum cosine similarity between a candidate and any kept row (``diversity``).
    knn_k : int, default 10
        Neighbours averaged by ``knn`` when it computes distances from ``embeddings``.
    confidence_tiers : tuple of float, default (0.99, 0.9)
        ``confident`` ranks the rows of a score in tiers of the posterior probability of that score.
    n_rows : int, optional
        Pool size; needed only when no per-row array is given (``random`` without a threshold).
    details : dict, optional
        If given, strategy-specific facts are written into it (e.g. ``n_considered`` for ``diversity``).

    Returns
    -------
    ndarray of int64, shape (n_selected,)
        Row indices, best first, without repeats. ``n_selected = min(k, n_eligible)`` (``diversity`` may
        return fewer); a :class:`UserWarning` says when fewer than ``k`` rows are returned.

    Raises
    ------
    ds2_hf.validation.InputError
        Unknown strategy (lists the valid ones), ``k < 1``, a required array missing, arrays of different
        lengths, values that are not numbers (naming the rows).

    Examples
    --------
    >>> from ds2_hf.selection import select_indices
    >>> select_indices("ds2", k=3, scores=[5, 4, 5, 5, None], long_tail=[0.2, 0.9, 0.7, 0.2, 1.0])
    array([2, 0, 3])
    >>> select_indices("ds2", k=3, scores=[5, 4, 5, 5, None], long_tail=[0.2, 0.9, 0.7, 0.2, 1.0],
    ...                duplicates=[-1, -1, 7, 7, -1])  # rows 2 and 3 are copies: one of them
    array([2, 0, 1])
    >>> select_indices("confident", k=2, scores=[1, 1, 1], long_tail=[0.9, 0.5, 0.1],
    ...                posterior=[[0.3, 0.7], [0.005, 0.995], [0.002, 0.998]])  # row 0 is the least certain
    array([1, 2])
    >>> select_indices("score", k=None, scores=[3, 5, 4, 5], threshold=4)
    array([1, 3, 2])
    """
    check_options(
        strategy=strategy, k=k, threshold=threshold, seed=seed, tie_break=tie_break,
        diversity_threshold=diversity_threshold, knn_k=knn_k, confidence_tiers=confidence_tiers,
    )
    spec = STRATEGIES[strategy]
    arrays, n = _read_arrays(n_rows, scores=scores, long_tail=long_tail, lengths=lengths, embeddings=embeddings,
                             posterior=posterior, duplicates=duplicates)
    _check_needs(strategy, spec, arrays, n, threshold)
    eligible = _eligible(n, arrays["scores"], spec, threshold)
    params = {"diversity_threshold": float(diversity_threshold), "knn_k": int(knn_k),
              "confidence_tiers": as_tiers(confidence_tiers)}
    inputs = RankInputs(eligible=eligible, tie=_tie_key(n, seed, tie_break), rng=np.random.default_rng(seed),
                        params=params, **arrays)
    info: dict[str, Any] = {} if details is None else details
    picked = _rank(spec, inputs, k, info)
    n_eligible = int(eligible.sum())
    info["n_eligible"] = n_eligible
    if k is not None and picked.size < k:
        _warn_shortfall(int(picked.size), k, n, n_eligible, spec, threshold=threshold,
                        diversity_threshold=diversity_threshold)
    return picked
