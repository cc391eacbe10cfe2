"""The registry of selection strategies: name -> a small object that says what it reads and how it ranks.

A strategy ranks the eligible rows of a pool, best first (:class:`Strategy`). :data:`STRATEGIES` maps every name
:func:`ds2_hf.selection.select` accepts to its strategy; the CLI reads its choices from it. A new strategy is one
:class:`Ranking` registered under a new name.

Examples
--------
>>> from ds2_hf.selection import STRATEGIES
>>> list(STRATEGIES)
['confident', 'ds2', 'score', 'random', 'length', 'knn', 'diversity']
>>> STRATEGIES["ds2"].needs, STRATEGIES["ds2"].score_based
(('scores', 'long_tail'), True)
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

from .diversity import greedy_diverse, mean_knn_distance
from .duplicates import first_of_groups


@dataclass(frozen=True)
class RankInputs:
    """Validated arrays and options handed to a strategy. ``eligible`` masks the rows that may be chosen."""

    eligible: np.ndarray  # bool (N,)
    tie: np.ndarray  # int64 (N,) secondary key: row index or a seeded permutation
    rng: np.random.Generator
    scores: np.ndarray | None = None  # float64 (N,), NaN = null
    long_tail: np.ndarray | None = None  # float64 (N,), NaN = null
    lengths: np.ndarray | None = None  # float64 (N,)
    embeddings: np.ndarray | None = None  # numeric (N, d)
    posterior: np.ndarray | None = None  # float64 (N, K)
    duplicates: np.ndarray | None = None  # int64 (N,), -1 = unique
    params: dict[str, Any] = field(default_factory=dict)  # diversity_threshold, knn_k, confidence_tiers


class Strategy(Protocol):
    """What a selection strategy declares and does.

    Attributes
    ----------
    needs : tuple of str
        Inputs it requires (``"scores"``, ``"long_tail"``, ``"lengths"``, ``"embeddings"``); ``"a|b"`` = ``a``
        or ``b``, the first one present is used.
    uses : tuple of str
        Optional inputs, used when present (``"posterior"``, ``"long_tail"``).
    score_based : bool
        Rows with a null score are not eligible.
    filters : bool
        Its ranking drops rows itself (duplicates, near duplicates), so it may return fewer than ``k`` rows of
        many eligible ones; it is handed the duplicate groups instead of being deduplicated afterwards.
    curated_rule : bool
        The rule is defined on curated scores: ranking the raw rating instead is logged as a warning.
    summary : str
        One line for help texts.
    """

    needs: tuple[str, ...]
    uses: tuple[str, ...]
    score_based: bool
    filters: bool
    curated_rule: bool
    summary: str

    def rank(self, inputs: RankInputs, k: int | None, details: dict[str, Any]) -> np.ndarray:
        """The best ``k`` (``None`` = all) eligible row indices, best first; facts go into ``details``."""


@dataclass(frozen=True)
class Ranking:
    """A :class:`Strategy` made of a ranking function ``fn(inputs, k, details) -> indices``."""

    fn: Callable[[RankInputs, int | None, dict[str, Any]], np.ndarray]
    needs: tuple[str, ...]
    summary: str
    score_based: bool
    uses: tuple[str, ...] = ()
    filters: bool = False
    curated_rule: bool = False

    def rank(self, inputs: RankInputs, k: int | None, details: dict[str, Any]) -> np.ndarray:
        return self.fn(inputs, k, details)


STRATEGIES: dict[str, Strategy] = {}
"""Every selection strategy by name, the default (``confident``) first."""


def _register(name: str, **spec: Any):
    def register(fn):
        STRATEGIES[name] = Ranking(fn, **spec)
        return fn

    return register


def descending(inp: RankInputs, *keys: np.ndarray) -> np.ndarray:
    """Eligible row indices sorted by ``keys`` (primary first), all descending, NaN last, ties by ``inp.tie``."""
    idx = np.flatnonzero(inp.eligible)
    sort_keys = [inp.tie[idx]]
    for key in reversed(keys):
        values = key[idx]
        sort_keys.append(np.where(np.isnan(values), np.inf, -values))
    return idx[np.lexsort(sort_keys)]


def confidence_tier(scores: np.ndarray, posterior: np.ndarray, tiers) -> np.ndarray:
    """How many of ``tiers`` (probabilities) the posterior probability of each row's (integer) score reaches.

    Shape (N,) int64: ``len(tiers)`` for the surest rows, 0 for rows below every tier or without a valid score.

    Examples
    --------
    >>> import numpy as np
    >>> confidence_tier(np.array([1.0, 1.0, np.nan]), np.array([[0.05, 0.95], [0.001, 0.999], [0, 1]]),
    ...                 (0.99, 0.9)).tolist()
    [1, 2, 0]
    """
    K = posterior.shape[1]
    valid = ~np.isnan(scores) & (scores >= 0) & (scores < K) & (scores == np.round(scores))
    cls = np.where(valid, scores, 0).astype(np.int64)
    p = posterior[np.arange(len(cls)), cls]
    return np.where(valid, sum((p >= t).astype(np.int64) for t in tiers), 0)


@_register("confident", needs=("scores", "long_tail"), uses=("posterior",), score_based=True,
           summary="curated score desc; within a score, rows curation is sure of first; then long-tail desc")
def _rank_confident(inp, k, details):
    if inp.posterior is None:
        details["confidence"] = "no posterior column: ranked as ds2"
        return descending(inp, inp.scores, inp.long_tail)[:k]
    tiers = inp.params["confidence_tiers"]
    tier = confidence_tier(inp.scores, inp.posterior, tiers)
    counts = np.bincount(tier[inp.eligible], minlength=len(tiers) + 1)
    details["n_per_tier"] = {f">= {t}": int(counts[i]) for i, t in enumerate(tiers, start=1)}
    return descending(inp, inp.scores, tier.astype(np.float64), inp.long_tail)[:k]


@_register("ds2", needs=("scores", "long_tail"), score_based=True, curated_rule=True,
           summary="curated score desc, then long-tail score desc (the DS2 paper's rule)")
def _rank_ds2(inp, k, details):
    return descending(inp, inp.scores, inp.long_tail)[:k]


@_register("score", needs=("scores",), score_based=True,
           summary="score desc; `threshold` keeps score >= t first (AlpaGasus)")
def _rank_score(inp, k, details):
    return descending(inp, inp.scores)[:k]


@_register("random", needs=(), score_based=False, summary="a seeded uniform random sample")
def _rank_random(inp, k, details):
    return inp.rng.permutation(np.flatnonzero(inp.eligible))[:k]


@_register("length", needs=("lengths",), score_based=False,
           summary="longest rendered conversation first (completion-length baseline)")
def _rank_length(inp, k, details):
    return descending(inp, inp.lengths)[:k]


@_register("knn", needs=("long_tail|embeddings",), score_based=False,
           summary="largest mean distance to the k nearest neighbours first (rarest first)")
def _rank_knn(inp, k, details):
    if inp.long_tail is not None:
        rarity = inp.long_tail
        details.setdefault("rarity_source", "long_tail")
    else:
        knn_k = inp.params["knn_k"]
        rarity = mean_knn_distance(inp.embeddings, knn_k)
        details["rarity_source"] = f"mean cosine distance to {knn_k} nearest neighbours"
    return descending(inp, rarity)[:k]


@_register("diversity", needs=("scores", "embeddings"), uses=("long_tail",), score_based=True, filters=True,
           summary="DEITA: walk the score order, skip rows too similar to a kept row")
def _rank_diversity(inp, k, details):
    keys = (inp.scores,) if inp.long_tail is None else (inp.scores, inp.long_tail)
    order = first_of_groups(descending(inp, *keys), inp.duplicates)
    threshold = inp.params["diversity_threshold"]
    kept, n_considered = greedy_diverse(order, inp.embeddings, k, threshold)
    details.update(n_considered=int(n_considered), n_rejected=int(n_considered - kept.size),
                   diversity_threshold=float(threshold))
    return kept
