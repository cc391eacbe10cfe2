"""Select a small subset of a rated (and usually curated) dataset.

The DS2 rule (the paper's section 4 and ``subset_generation.py`` of the reference code) sorts the pool by the
curated score, descending, then by the long-tail diversity score, descending (higher = rarer), and keeps the
top ``k``. The baselines of the paper's Table 3 are available under the same interface:

=============  ===========================================================  ==================================
strategy       ranking (best first)                                         needs
=============  ===========================================================  ==================================
``confident``  score desc; within a score, rows whose posterior gives that   score + long-tail columns (the
(default)      score at least 0.99 first, then at least 0.9 (the             posterior column when present)
               ``confidence_tiers``), then the rest; long-tail desc in each
``ds2``        score desc, then long-tail desc (the paper's rule)           score + long-tail columns
``score``      score desc (AlpaGasus; ``threshold`` keeps score >= t)       score column
``random``     a seeded random permutation                                  nothing
``length``     rendered conversation length desc ("Long Is More")          text columns or ``length_column``
``knn``        mean cosine distance to the ``knn_k`` nearest neighbours     long-tail column or embeddings
               desc (rarer first)
``diversity``  DEITA: walk the ``ds2`` order, skip a row whose cosine       score + embedding columns
               similarity to an already kept row exceeds the threshold
=============  ===========================================================  ==================================

The ``diversity`` filter is exact (the same result as checking one row at a time) and blocked: candidates are
compared with the kept rows by matrix products, so it costs about ``n_considered * n_kept * d`` multiply-adds.
Measured on a 2-core CPU at 100k x 256: a budget of 10k takes a few seconds; filtering a whole 100k pool that has
few near-duplicates (``k=None``, nearly every row kept) is quadratic and takes over a minute.

Why ``confident`` is the default: the paper's long-tail tie-break puts the rarest rows of each score first, and
the rarest rows are also the ones whose neighbours disagree most, so their curated score is the least certain.
Taking the rows curation is sure of first (posterior of the score at least 0.99, then at least 0.9), the rarest
first within each tier, raised the mean true score of the top N/30 on all 30 draws of the public generator's
sweep, above every baseline on each; ranking by the posterior alone scored 0.002 higher on average but covered a
third fewer of the generator's clusters (BENCHMARKS.md, "Selection for purity"). Where curation was withheld every posterior is the raw rating, and
``confident`` orders rows exactly as ``ds2`` does.

**Duplicates.** By default every strategy takes at most one row of each duplicate group: rows with the same
``duplicate_group`` value (written by :func:`ds2_hf.curate`: the same response text, or near-identical
embeddings; ``-1`` = unique). Without that column the groups are computed from the rows' text (exact duplicates
only). ``deduplicate=False`` turns this off.

Conventions shared by every strategy:

* **Null ratings are never selected by a score-based strategy** (``ds2``, ``score``, ``diversity``): a row whose
  score is null or NaN (the rater failed) is not eligible. ``random``, ``length`` and ``knn`` ignore scores unless
  a ``threshold`` is set, which restricts every strategy to rows with ``score >= threshold``.
* **Ties** are broken by position in the dataset as given (stable, deterministic) by default, or in a seeded
  random order with ``tie_break="random"``. Discrete 0-5 ratings tie massively, so with ``strategy="score"`` the
  index order favours rows that come first in the pool (e.g. the first source of a concatenated pool); prefer
  ``tie_break="random"`` there.
* **Order**: the subset is ordered best first. As a set, the ``ds2`` subset equals the reference's (which
  lists each score group in index order).
* **Budget**: ``k`` must be >= 1. When ``k`` exceeds the number of eligible rows, all eligible rows are
  returned with a :class:`UserWarning` (never an error, since null ratings and thresholds shrink the pool).
  ``diversity`` can also return fewer rows than ``k`` when the filter rejects too many (warned as well).
  ``k=None`` returns every eligible row, ranked (with ``threshold``: the AlpaGasus "keep all rated >= t").

Two layers: :func:`select_indices` is a pure NumPy core over plain arrays, and :func:`select` reads the columns of
a :class:`datasets.Dataset`, calls it and returns ``dataset.select(indices)`` (every column kept), optionally with
a :class:`SelectionReport`.

Examples
--------
>>> import datasets
>>> from ds2_hf.selection import select
>>> ds = datasets.Dataset.from_dict({
...     "text": ["a", "b", "c", "d"],
...     "curated_rating": [5, 3, 5, None],
...     "long_tail_score": [0.1, 0.9, 0.7, 0.5],
... })
>>> select(ds, k=2)["text"][:]
['c', 'a']
>>> sub, report = select(ds, k=3, strategy="score", return_report=True)
>>> sub["text"][:], report.score_counts
(['a', 'c', 'b'], {'3': 1, '5': 2})
"""

from __future__ import annotations

import logging
import math
import warnings
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from typing import TYPE_CHECKING, Any, Literal, overload

import numpy as np

from . import columns as C
from .formats import FormatError, Formatter, as_formatter

if TYPE_CHECKING:  # pragma: no cover
    import datasets

logger = logging.getLogger(__name__)

TIE_BREAKS = ("index", "random")

# What writes each input column, quoted in "missing column" errors.
_WRITERS = {
    "score": "the rating step (`ds2_hf.Rater` / `ds2 rate`) writes `rating`; `ds2_hf.curate` / `ds2 curate` "
    "writes `curated_rating`",
    "long_tail": "run `ds2_hf.curate` (CLI: `ds2 curate`) first",
    "embedding": "run `ds2_hf.Embedder` (CLI: `ds2 embed`) first",
}


# --------------------------------------------------------------------------------------------------------------
# Configuration and report
# --------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SelectionConfig:
    """Options of the selection stage. Defaults follow the DS2 paper.

    Parameters
    ----------
    strategy : str, default "confident"
        One of :data:`STRATEGIES` (see the module docstring); ``"ds2"`` is the paper's rule exactly.
    k : int, optional
        Number of rows to select (>= 1). Exactly one of ``k`` and ``fraction`` may be set; with neither, every
        eligible row is returned, ranked.
    fraction : float, optional
        Select ``round(fraction * len(dataset))`` rows (at least 1); ``0 < fraction <= 1``.
    score_column : str, optional
        Column holding the quality score. ``None`` (default) uses ``curated_rating`` and falls back to the raw
        ``rating`` (with a logged note) when the dataset has not been curated.
    long_tail_column : str, default "long_tail_score"
        Long-tail diversity score (higher = rarer), written by :func:`ds2_hf.curate`. Used by ``ds2`` (second
        key), ``diversity`` (tie-break within a score) and ``knn`` (when present, instead of recomputing).
    threshold : float, optional
        Keep only rows with ``score >= threshold`` before ranking (AlpaGasus used 4.5 on its 0-5 scale). Applies
        to every strategy and then requires a score column.
    seed : int, default 0
        Seed of the ``random`` strategy and of ``tie_break="random"``.
    tie_break : {"index", "random"}, default "index"
        How rows with equal keys are ordered: by row index (stable), or in a seeded random order.
    length_column : str, optional
        Numeric column used by ``length`` (e.g. a token count). ``None`` measures the character length of
        each row rendered by ``formatter``.
    formatter : Formatter or str, optional
        How ``length`` renders rows to text (a :class:`ds2_hf.formats.Formatter` or a format name;
        default: auto-detected format, reference style).
    embedding_column : str, default "embedding"
        Embedding column used by ``diversity`` and by ``knn`` when no long-tail column exists.
    diversity_threshold : float, default 0.9
        ``diversity`` skips a row whose cosine **similarity** to any already kept row is greater than this
        (DEITA's default 0.9, i.e. a minimum cosine distance of 0.1). Range ``[-1, 1]``; lower = stricter.
    knn_k : int, default 10
        Neighbours averaged by ``knn`` when it computes the distance itself (the paper's long-tail ``k``).
    posterior_column : str, default "curation_posterior"
        Posterior over the true score (written by the joint curation), read by ``confident``.
    confidence_tiers : tuple of float, default (0.99, 0.9)
        ``confident`` ranks the rows of a score in tiers of the posterior probability of that score: at least the
        first value, then at least the next, ..., then the rest (values in [0, 1]). Chosen on the public generator's
        sweep and the real-text benchmarks (BENCHMARKS.md, "Selection for purity").
    deduplicate : bool, default True
        Take at most one row of each duplicate group (see the module docstring).
    duplicate_column : str, default "duplicate_group"
        Duplicate-group ids (``-1`` = unique); computed from the text when the column is absent.
    """

    strategy: str = "confident"
    k: int | None = None
    fraction: float | None = None
    score_column: str | None = None
    long_tail_column: str = C.LONG_TAIL_SCORE
    threshold: float | None = None
    seed: int = 0
    tie_break: str = "index"
    length_column: str | None = None
    formatter: Formatter | str | None = None
    embedding_column: str = C.EMBEDDING
    diversity_threshold: float = 0.9
    knn_k: int = 10
    posterior_column: str = C.CURATION_POSTERIOR
    confidence_tiers: tuple = (0.99, 0.9)
    deduplicate: bool = True
    duplicate_column: str = C.DUPLICATE_GROUP

    def __post_init__(self) -> None:
        if self.k is not None and self.fraction is not None:
            raise ValueError(f"pass either k ({self.k}) or fraction ({self.fraction}), not both")
        if self.fraction is not None and not (
            isinstance(self.fraction, (int, float)) and not isinstance(self.fraction, bool) and 0 < self.fraction <= 1
        ):
            raise ValueError(f"fraction={self.fraction!r} must be a number in (0, 1]; use k=... for a row count")
        _check_options(
            strategy=self.strategy, k=self.k, threshold=self.threshold, seed=self.seed, tie_break=self.tie_break,
            diversity_threshold=self.diversity_threshold, knn_k=self.knn_k, confidence_tiers=self.confidence_tiers,
        )
        object.__setattr__(self, "confidence_tiers", tuple(float(t) for t in self.confidence_tiers))

    def budget(self, n_rows: int) -> int | None:
        """The number of rows to select from a pool of ``n_rows`` (``None`` = all eligible)."""
        if self.fraction is not None:
            return max(1, round(self.fraction * n_rows))
        return self.k


@dataclass(frozen=True)
class SelectionReport:
    """What a selection did, for logs, dataset cards and ``report.json``.

    Attributes
    ----------
    strategy : str
        The strategy used.
    k : int or None
        The requested budget (``None`` = every eligible row).
    n_selected : int
        Rows actually selected (``<= k``).
    n_pool : int
        Rows in the input dataset.
    n_eligible : int
        Rows the strategy could select (non-null score for score-based strategies, above ``threshold``).
    score_column, long_tail_column, embedding_column, length_column : str or None
        Columns actually read (``None`` when not used).
    score_counts : dict of str to int
        Histogram of the selection's scores (integer-valued scores only; keys are the score as text), empty
        when no score column was read.
    pool_score_counts : dict of str to int
        The same histogram over the whole pool (``"null"`` counts missing scores).
    score_mean : float or None
        Mean score of the selection.
    details : dict
        Strategy-specific facts, e.g. ``n_considered`` / ``n_rejected`` for ``diversity`` and the
        ``rarity_source`` of ``knn``.
    config : dict
        The full :class:`SelectionConfig` used (threshold, seed, tie-break, ...), as plain data.
    """

    strategy: str
    k: int | None
    n_selected: int
    n_pool: int
    n_eligible: int
    score_column: str | None = None
    long_tail_column: str | None = None
    embedding_column: str | None = None
    length_column: str | None = None
    score_counts: dict[str, int] = field(default_factory=dict)
    pool_score_counts: dict[str, int] = field(default_factory=dict)
    score_mean: float | None = None
    details: dict[str, Any] = field(default_factory=dict)
    config: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-serialisable dict."""
        return asdict(self)


# --------------------------------------------------------------------------------------------------------------
# Strategies: a small registry of ranking functions over plain arrays
# --------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Inputs:
    """Validated arrays handed to a strategy. ``eligible`` is a boolean mask of the rows that may be chosen."""

    eligible: np.ndarray
    tie: np.ndarray  # int64 secondary key: row index or a seeded permutation
    rng: np.random.Generator
    scores: np.ndarray | None = None  # float64, NaN = null
    long_tail: np.ndarray | None = None  # float64, NaN = null
    lengths: np.ndarray | None = None  # float64
    embeddings: np.ndarray | None = None  # float32 (N, d)
    posterior: np.ndarray | None = None  # float64 (N, K)
    duplicates: np.ndarray | None = None  # int64 (N,), -1 = unique


@dataclass(frozen=True)
class _Strategy:
    """A selection strategy: which inputs it needs, whether scores gate eligibility, and how it ranks."""

    name: str
    needs: tuple[str, ...]  # required inputs; "a|b" = a or b (the first one present is used)
    uses: tuple[str, ...]  # optional inputs, used when present
    score_based: bool
    rank: Callable[[_Inputs, int | None, dict[str, Any], dict[str, Any]], np.ndarray]
    summary: str


_REGISTRY: dict[str, _Strategy] = {}


def _strategy(name: str, *, needs: tuple[str, ...], uses: tuple[str, ...] = (), score_based: bool, summary: str):
    def register(fn):
        _REGISTRY[name] = _Strategy(name, needs, uses, score_based, fn, summary)
        return fn

    return register


def _descending(inp: _Inputs, *keys: np.ndarray) -> np.ndarray:
    """Eligible row indices sorted by ``keys`` (primary first), all descending, NaN last, ties by ``inp.tie``."""
    idx = np.flatnonzero(inp.eligible)
    sort_keys = [inp.tie[idx]]
    for key in reversed(keys):
        values = key[idx]
        sort_keys.append(np.where(np.isnan(values), np.inf, -values))
    return idx[np.lexsort(sort_keys)]


@_strategy("confident", needs=("scores", "long_tail"), uses=("posterior",), score_based=True,
           summary="curated score desc; within a score, rows curation is sure of first; then long-tail desc")
def _rank_confident(inp, k, params, details):
    if inp.posterior is None:
        details["confidence"] = "no posterior column: ranked as ds2"
        return _descending(inp, inp.scores, inp.long_tail)[:k]
    tier = confidence_tier(inp.scores, inp.posterior, params["confidence_tiers"])
    counts = np.bincount(tier[inp.eligible], minlength=len(params["confidence_tiers"]) + 1)
    details["n_per_tier"] = {f">= {t}": int(counts[i]) for i, t in enumerate(params["confidence_tiers"], start=1)}
    return _descending(inp, inp.scores, tier.astype(np.float64), inp.long_tail)[:k]


def confidence_tier(scores: np.ndarray, posterior: np.ndarray, tiers) -> np.ndarray:
    """How many of ``tiers`` (probabilities) the posterior probability of each row's (integer) score reaches.

    Shape (N,) int64: ``len(tiers)`` for the surest rows, 0 for rows below every tier or without a valid score.
    """
    K = posterior.shape[1]
    valid = ~np.isnan(scores) & (scores >= 0) & (scores < K) & (scores == np.round(scores))
    cls = np.where(valid, scores, 0).astype(np.int64)
    p = posterior[np.arange(len(cls)), cls]
    return np.where(valid, sum((p >= t).astype(np.int64) for t in tiers), 0)


@_strategy("ds2", needs=("scores", "long_tail"), score_based=True,
           summary="curated score desc, then long-tail score desc (the DS2 paper's rule)")
def _rank_ds2(inp, k, params, details):
    return _descending(inp, inp.scores, inp.long_tail)[:k]


@_strategy("score", needs=("scores",), score_based=True,
           summary="score desc; `threshold` keeps score >= t first (AlpaGasus)")
def _rank_score(inp, k, params, details):
    return _descending(inp, inp.scores)[:k]


@_strategy("random", needs=(), score_based=False, summary="a seeded uniform random sample")
def _rank_random(inp, k, params, details):
    idx = np.flatnonzero(inp.eligible)
    return inp.rng.permutation(idx)[:k]


@_strategy("length", needs=("lengths",), score_based=False,
           summary="longest rendered conversation first (completion-length baseline)")
def _rank_length(inp, k, params, details):
    return _descending(inp, inp.lengths)[:k]


@_strategy("knn", needs=("long_tail|embeddings",), score_based=False,
           summary="largest mean distance to the k nearest neighbours first (rarest first)")
def _rank_knn(inp, k, params, details):
    if inp.long_tail is not None:
        rarity = inp.long_tail
        details.setdefault("rarity_source", "long_tail")
    else:
        rarity = mean_knn_distance(inp.embeddings, params["knn_k"])
        details["rarity_source"] = f"mean cosine distance to {params['knn_k']} nearest neighbours"
    return _descending(inp, rarity)[:k]


@_strategy("diversity", needs=("scores", "embeddings"), uses=("long_tail",), score_based=True,
           summary="DEITA: walk the score order, skip rows too similar to a kept row")
def _rank_diversity(inp, k, params, details):
    keys = (inp.scores,) if inp.long_tail is None else (inp.scores, inp.long_tail)
    order = first_of_groups(_descending(inp, *keys), inp.duplicates)
    kept, n_considered = _greedy_diverse(order, inp.embeddings, k, params["diversity_threshold"])
    details.update(
        n_considered=int(n_considered),
        n_rejected=int(n_considered - kept.size),
        diversity_threshold=float(params["diversity_threshold"]),
    )
    return kept


STRATEGIES: tuple[str, ...] = tuple(_REGISTRY)
"""Names of the available selection strategies."""


# --------------------------------------------------------------------------------------------------------------
# Geometry helpers
# --------------------------------------------------------------------------------------------------------------


def first_of_groups(order: np.ndarray, groups: np.ndarray | None) -> np.ndarray:
    """``order`` without the rows whose duplicate group (``-1`` = none) already appeared earlier in it.

    Examples
    --------
    >>> import numpy as np
    >>> first_of_groups(np.array([3, 0, 2, 1]), np.array([5, -1, 5, -1])).tolist()  # rows 0 and 2 are copies
    [3, 0, 1]
    """
    return order if groups is None else order[_first_mask(order, groups)]


def _first_mask(order: np.ndarray, groups: np.ndarray) -> np.ndarray:
    """Over ``order``: True for ungrouped rows and for the first row of each duplicate group."""
    g = groups[order]
    grouped = np.flatnonzero(g >= 0)
    first = np.zeros(len(order), dtype=bool)
    first[grouped[np.unique(g[grouped], return_index=True)[1]]] = True
    return (g < 0) | first


def _unit_rows(x: np.ndarray) -> np.ndarray:
    x = np.ascontiguousarray(x, dtype=np.float32)
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    return x / np.maximum(norms, np.float32(1e-12))


def _greedy_diverse(
    order: np.ndarray, embeddings: np.ndarray, k: int | None, threshold: float, *, block: int = 1024,
    chunk: int = 8192, capacity: int = 16_384,
) -> tuple[np.ndarray, int]:
    """Exact DEITA-style greedy filter.

    Walk ``order``; keep a row unless its cosine similarity to a row kept before it exceeds ``threshold``; stop
    after ``k`` kept rows. Candidates are processed in blocks: one matrix product against the kept rows (in
    chunks of ``chunk`` rows, so memory stays at ``block * chunk`` floats) rejects most of them, and a small
    within-block pass resolves the survivors in order, so the result equals the one-row-at-a-time loop. The
    store of kept vectors starts at ``capacity`` rows and doubles when full.

    Returns the kept row indices (in ``order`` order) and how many candidates were examined.
    """
    n_order = order.size
    cap = n_order if k is None else min(k, n_order)
    if cap == 0:
        return np.empty(0, dtype=np.int64), 0
    d = embeddings.shape[1]
    # Kept rows grow by doubling, so a large `cap` (e.g. k=None over a big pool) costs memory only as rows are kept.
    kept_vecs = np.empty((min(cap, capacity), d), dtype=np.float32)
    kept_idx = np.empty(cap, dtype=np.int64)
    n_kept = 0
    thr = np.float32(threshold)
    n_considered = 0
    from tqdm.auto import tqdm

    with tqdm(total=cap, desc="diversity filter", unit="row", disable=n_order < 50_000, leave=False) as bar:
        for start in range(0, n_order, block):
            cand = order[start : start + block]
            vecs = _unit_rows(embeddings[cand])
            alive = np.ones(cand.size, dtype=bool)
            for c0 in range(0, n_kept, chunk):  # reject candidates close to a row kept in an earlier block
                rows = np.flatnonzero(alive)
                if rows.size == 0:
                    break
                sims = vecs[rows] @ kept_vecs[c0 : min(c0 + chunk, n_kept)].T
                alive[rows[(sims > thr).any(axis=1)]] = False
            rows = np.flatnonzero(alive)
            n_before = n_kept
            examined = cand.size
            if rows.size:  # resolve the survivors in order: each one kept removes its close successors
                close = (vecs[rows] @ vecs[rows].T) > thr
                ok = np.ones(rows.size, dtype=bool)
                for j in range(rows.size):
                    if not ok[j]:
                        continue
                    if n_kept == kept_vecs.shape[0]:
                        grown = np.empty((min(cap, 2 * n_kept), d), dtype=np.float32)
                        grown[:n_kept] = kept_vecs
                        kept_vecs = grown
                    kept_vecs[n_kept] = vecs[rows[j]]
                    kept_idx[n_kept] = cand[rows[j]]
                    n_kept += 1
                    if n_kept == cap:
                        examined = int(rows[j]) + 1
                        break
                    ok[j + 1 :] &= ~close[j, j + 1 :]
            bar.update(n_kept - n_before)
            n_considered += examined
            if n_kept == cap:
                break
    return kept_idx[:n_kept].copy(), n_considered


def mean_knn_distance(embeddings: np.ndarray, k: int = 10) -> np.ndarray:
    """Mean cosine distance of every row to its ``k`` nearest other rows (the paper's k-NN rarity baseline).

    The neighbours come from :func:`ds2_hf.knn.build_knn_graph` (exact faiss search for small pools, measured-recall
    IVF above its work threshold).

    Parameters
    ----------
    embeddings : ndarray of shape (N, d)
        Any float dtype; rows are L2-normalised internally (all-zero rows are rejected).
    k : int, default 10
        Neighbours per row (self excluded). Capped at ``N - 1``.

    Returns
    -------
    ndarray of shape (N,), float64
        ``1 - mean cosine similarity`` to the ``k`` neighbours, in ``[0, 2]``; higher = rarer. Zero when ``N == 1``.

    Examples
    --------
    >>> import numpy as np
    >>> x = np.array([[1, 0], [1, 0.01], [0, 1]], dtype=np.float32)
    >>> mean_knn_distance(x, k=1).round(2)
    array([0.  , 0.  , 0.99])
    """
    from .knn import build_knn_graph

    n = np.shape(embeddings)[0]
    k = min(int(k), n - 1)
    if k <= 0:
        return np.zeros(n, dtype=np.float64)
    graph = build_knn_graph(embeddings, k, progress=n >= 50_000)
    return 1.0 - np.asarray(graph.similarities, dtype=np.float64).mean(axis=1)


# --------------------------------------------------------------------------------------------------------------
# The NumPy core
# --------------------------------------------------------------------------------------------------------------


def _check_options(
    *, strategy: str, k: Any, threshold: Any, seed: Any, tie_break: str, diversity_threshold: Any, knn_k: Any,
    confidence_tiers: Any = (0.99, 0.9),
) -> None:
    """Validate the options shared by :class:`SelectionConfig` and :func:`select_indices`."""

    def is_int(v: Any) -> bool:
        return isinstance(v, (int, np.integer)) and not isinstance(v, bool)

    def is_real(v: Any) -> bool:
        return isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, bool) and math.isfinite(v)

    if strategy not in _REGISTRY:
        raise ValueError(f"unknown selection strategy {strategy!r}; valid strategies: {STRATEGIES}")
    if k is not None and not is_int(k):
        raise ValueError(f"k={k!r} must be a positive integer (use fraction=... for a share of the pool)")
    if k is not None and k <= 0:
        raise ValueError(f"k={k} must be >= 1")
    if threshold is not None and not is_real(threshold):
        raise ValueError(f"threshold={threshold!r} must be a finite number (or None for no threshold)")
    if not is_int(seed):
        raise ValueError(f"seed={seed!r} must be an integer")
    if tie_break not in TIE_BREAKS:
        raise ValueError(f"tie_break={tie_break!r} is not supported; expected one of {TIE_BREAKS}")
    if not (is_real(diversity_threshold) and -1.0 <= diversity_threshold <= 1.0):
        raise ValueError(
            f"diversity_threshold={diversity_threshold!r} is a cosine similarity and must lie in [-1, 1] "
            "(DEITA used 0.9; lower keeps fewer near-duplicates)"
        )
    if not is_int(knn_k) or knn_k < 1:
        raise ValueError(f"knn_k={knn_k!r} must be a positive integer")
    tiers = confidence_tiers if isinstance(confidence_tiers, (tuple, list)) else (confidence_tiers,)
    if not tiers or not all(is_real(t) and 0.0 <= t <= 1.0 for t in tiers):
        raise ValueError(f"confidence_tiers={confidence_tiers!r} must be probabilities in [0, 1], e.g. (0.99, 0.9)")


def _as_vector(name: str, values: Any, n: int | None) -> np.ndarray:
    arr = np.asarray(values)
    if arr.dtype == object:
        arr = np.array([np.nan if v is None else v for v in arr], dtype=np.float64)
    if arr.ndim != 1:
        raise ValueError(f"{name} must be one-dimensional, got shape {arr.shape}")
    if not (np.issubdtype(arr.dtype, np.number) or arr.dtype == bool):
        raise ValueError(f"{name} must be numeric, got dtype {arr.dtype}")
    if n is not None and arr.shape[0] != n:
        raise ValueError(f"{name} has {arr.shape[0]} rows, expected {n} (all inputs must describe the same rows)")
    return arr.astype(np.float64)


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

    The pure NumPy core of :func:`select`; see the module docstring for the strategies and conventions.

    Parameters
    ----------
    strategy : str, default "confident"
        One of :data:`STRATEGIES`.
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
    ValueError
        Unknown strategy (lists the valid ones), ``k < 1``, a required array missing, arrays of different
        lengths.

    Examples
    --------
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
    _check_options(
        strategy=strategy, k=k, threshold=threshold, seed=seed, tie_break=tie_break,
        diversity_threshold=diversity_threshold, knn_k=knn_k, confidence_tiers=confidence_tiers,
    )
    spec = _REGISTRY[strategy]

    n: int | None = n_rows
    arrays: dict[str, np.ndarray | None] = {}
    for name, value in (("scores", scores), ("long_tail", long_tail), ("lengths", lengths)):
        arrays[name] = None if value is None else _as_vector(name, value, n)
        if arrays[name] is not None:
            n = arrays[name].shape[0]
    emb = None
    if embeddings is not None:
        emb = np.asarray(embeddings)
        if emb.ndim != 2 or not np.issubdtype(emb.dtype, np.number):
            raise ValueError(f"embeddings must be a numeric (N, d) array, got dtype {emb.dtype}, shape {emb.shape}")
        if n is not None and emb.shape[0] != n:
            raise ValueError(
                f"embeddings has {emb.shape[0]} rows, expected {n} (all inputs must describe the same rows)"
            )
        if not np.isfinite(emb).all():
            raise ValueError("embeddings contain NaN or infinite values; re-embed the affected rows")
        n = emb.shape[0]
    post = None
    if posterior is not None:
        post = np.asarray(posterior, dtype=np.float64)
        if post.ndim != 2 or (n is not None and post.shape[0] != n):
            raise ValueError(f"posterior must have shape (N, K) with N = {n} rows; got shape {post.shape}")
    dup = None
    if duplicates is not None:
        dup = _as_vector("duplicates", duplicates, n)
        dup = np.where(np.isnan(dup), -1, dup).astype(np.int64)

    for need in spec.needs:
        options = need.split("|")
        if all((emb if o == "embeddings" else arrays[o]) is None for o in options):
            raise ValueError(f"strategy {strategy!r} needs {' or '.join(f'`{o}`' for o in options)}")
    if threshold is not None and arrays["scores"] is None:
        raise ValueError("threshold is set but no scores were given; pass `scores` or drop the threshold")
    if n is None:
        raise ValueError(
            f"strategy {strategy!r} was given no per-row input, so the pool size is unknown; pass n_rows=... "
            "or one of scores, long_tail, lengths, embeddings"
        )

    eligible = np.ones(n, dtype=bool)
    if arrays["scores"] is not None and (spec.score_based or threshold is not None):
        eligible &= ~np.isnan(arrays["scores"])
        if threshold is not None:
            eligible &= arrays["scores"] >= threshold

    rng = np.random.default_rng(seed)
    if tie_break == "index":
        tie = np.arange(n, dtype=np.int64)
    else:  # an independent stream, so `random` draws the same sample whatever the tie-break
        tie = np.random.default_rng([seed, 1]).permutation(n).astype(np.int64)
    inputs = _Inputs(
        eligible=eligible, tie=tie, rng=rng, scores=arrays["scores"], long_tail=arrays["long_tail"],
        lengths=arrays["lengths"], embeddings=emb, posterior=post, duplicates=dup,
    )
    params = {"diversity_threshold": float(diversity_threshold), "knn_k": int(knn_k),
              "confidence_tiers": tuple(float(t) for t in (confidence_tiers if isinstance(
                  confidence_tiers, (tuple, list)) else (confidence_tiers,)))}
    info: dict[str, Any] = {} if details is None else details
    if dup is None or strategy == "diversity":  # the diversity filter drops duplicates as it walks
        picked = np.asarray(spec.rank(inputs, k, params, info), dtype=np.int64)
    else:
        ranked = np.asarray(spec.rank(inputs, None, params, info), dtype=np.int64)
        keep = _first_mask(ranked, dup)
        kept_at = np.flatnonzero(keep)[:k]
        picked = ranked[kept_at]
        reached = kept_at[-1] + 1 if k is not None and kept_at.size == k else ranked.size
        info["n_duplicates_skipped"] = int((~keep[:reached]).sum())

    n_eligible = int(eligible.sum())
    info["n_eligible"] = n_eligible
    if k is not None and picked.size < k:
        if picked.size < n_eligible and strategy == "diversity":
            why = (f"the diversity filter kept only {picked.size} of {n_eligible} eligible rows (raise "
                   f"diversity_threshold={diversity_threshold} to keep more)")
        elif picked.size < n_eligible:
            why = (f"{n_eligible} rows are eligible but only {picked.size} of them are not duplicates of a row "
                   "ranked before them (pass deduplicate=False to allow duplicates)")
        else:
            why = f"only {n_eligible} of {n} rows are eligible"
            if spec.score_based or threshold is not None:
                why += " (rows with a null score are never selected" + (
                    f"; threshold={threshold})" if threshold is not None else ")")
        warnings.warn(f"asked for k={k} rows but returning {picked.size}: {why}", UserWarning, stacklevel=2)
    return picked


# --------------------------------------------------------------------------------------------------------------
# The datasets front end
# --------------------------------------------------------------------------------------------------------------


def _column_vector(dataset: datasets.Dataset, column: str) -> np.ndarray:
    """A scalar column as float64 with NaN for nulls, honouring any indices mapping of ``dataset``."""
    import pyarrow as pa
    import pyarrow.compute as pc

    arr = dataset.select_columns([column]).with_format("arrow")[:].column(column).combine_chunks()
    if not (pa.types.is_integer(arr.type) or pa.types.is_floating(arr.type) or pa.types.is_boolean(arr.type)
            or pa.types.is_decimal(arr.type)):
        raise ValueError(f"column {column!r} must be numeric to rank rows by it, but has type {arr.type}")
    values = pc.cast(arr, pa.float64()).fill_null(float("nan"))
    return values.to_numpy(zero_copy_only=False)


def _embedding_matrix(dataset: datasets.Dataset, column: str) -> np.ndarray:
    rows = dataset.select_columns([column]).with_format("numpy")[:][column]
    if rows.dtype == object:
        try:
            rows = np.stack([np.asarray(r, dtype=np.float32) for r in rows])
        except (ValueError, TypeError) as err:
            raise ValueError(
                f"column {column!r} must hold one fixed-length vector per row (no nulls, equal lengths): {err}"
            ) from None
    if rows.ndim != 2:
        raise ValueError(f"column {column!r} must hold one vector per row; got an array of shape {rows.shape}")
    return rows.astype(np.float32, copy=False)


def _text_lengths(dataset: datasets.Dataset, formatter: Formatter, skip: set[str]) -> np.ndarray:
    """Characters of every row rendered by ``formatter``; a row that cannot be rendered (e.g. an empty
    conversation) counts as length 0 with a logged warning, unless no row can be rendered at all."""
    from tqdm.auto import tqdm

    view = dataset.with_format(None)
    drop = [c for c in view.column_names if c in skip]
    if drop:
        view = view.remove_columns(drop)
    out = np.zeros(len(view), dtype=np.float64)
    failed: list[FormatError] = []
    batch = 1000
    for b, rows in enumerate(
        tqdm(view.iter(batch_size=batch), total=math.ceil(len(view) / batch), desc="text lengths", unit="batch",
             disable=len(view) < 20_000, leave=False)
    ):
        for i, row in enumerate(formatter.batch_rows(rows), start=b * batch):
            try:
                out[i] = len(formatter.text(row, where=f"row {i}"))
            except FormatError as err:
                failed.append(err)
    if failed and len(failed) == len(view):
        raise failed[0]
    if failed:
        logger.warning("%d row(s) could not be rendered to text and count as length 0 (first: %s)", len(failed),
                       failed[0])
    return out


def _require_column(dataset: datasets.Dataset, column: str, role: str, strategy: str) -> None:
    if column not in dataset.column_names:
        raise ValueError(
            f"strategy {strategy!r} needs column {column!r}, which the dataset does not have "
            f"(columns: {dataset.column_names}); {_WRITERS[role]}, or name another column with "
            f"`{role}_column=...`"
        )


def _find_score_column(dataset: datasets.Dataset, cfg: SelectionConfig) -> str | None:
    """The configured score column if present, else the curated, else the raw rating, else None."""
    for name in (cfg.score_column,) if cfg.score_column is not None else (C.CURATED_RATING, C.RATING):
        if name in dataset.column_names:
            return name
    return None


def _resolve_score_column(dataset: datasets.Dataset, cfg: SelectionConfig) -> str:
    if cfg.score_column is not None:
        if cfg.score_column not in dataset.column_names:
            raise ValueError(
                f"score column {cfg.score_column!r} not found (columns: {dataset.column_names}); "
                f"{_WRITERS['score']}"
            )
        return cfg.score_column
    if C.CURATED_RATING in dataset.column_names:
        return C.CURATED_RATING
    if C.RATING in dataset.column_names:
        log = logger.warning if cfg.strategy == "ds2" else logger.info
        log("no %r column (written by `ds2_hf.curate`); ranking by the raw %r column instead",
            C.CURATED_RATING, C.RATING)
        return C.RATING
    raise ValueError(
        f"strategy {cfg.strategy!r} needs a score column, but the dataset has neither {C.CURATED_RATING!r} "
        f"nor {C.RATING!r} (columns: {dataset.column_names}); {_WRITERS['score']}. To rank by another column, "
        "pass `score_column=...`"
    )


def _duplicates(dataset: datasets.Dataset, cfg: SelectionConfig, details: dict[str, Any]) -> np.ndarray | None:
    """Duplicate groups: the ``duplicate_column`` when present, else exact duplicates of the rows' text."""
    from .duplicates import exact_duplicate_groups, pool_text_keys

    if cfg.duplicate_column in dataset.column_names:
        details["duplicate_source"] = cfg.duplicate_column
        values = _column_vector(dataset, cfg.duplicate_column)
        return np.where(np.isnan(values), -1, values).astype(np.int64)
    keys = pool_text_keys(dataset, cfg.formatter)
    if keys is None:
        details["duplicate_source"] = "none (no duplicate_group column and no text columns)"
        return None
    details["duplicate_source"] = "response text (exact)"
    return exact_duplicate_groups(*keys)


def _counts(values: np.ndarray) -> dict[str, int]:
    """Histogram of integer-valued scores (``"null"`` for NaN); empty for non-integer scores."""
    finite = values[~np.isnan(values)]
    if finite.size and not np.all(finite == np.round(finite)):
        return {}
    uniq, cnt = np.unique(finite.astype(np.int64), return_counts=True)
    out = {str(u): int(c) for u, c in zip(uniq.tolist(), cnt.tolist())}
    n_null = int(values.size - finite.size)
    if n_null:
        out["null"] = n_null
    return out


@overload
def select(
    dataset: datasets.Dataset, k: int | None = ..., *, strategy: str | None = ...,
    config: SelectionConfig | None = ..., return_report: Literal[False] = ..., **options: Any,
) -> datasets.Dataset: ...


@overload
def select(
    dataset: datasets.Dataset, k: int | None = ..., *, strategy: str | None = ...,
    config: SelectionConfig | None = ..., return_report: Literal[True], **options: Any,
) -> tuple[datasets.Dataset, SelectionReport]: ...


def select(
    dataset: datasets.Dataset,
    k: int | None = None,
    *,
    strategy: str | None = None,
    config: SelectionConfig | None = None,
    return_report: bool = False,
    **options: Any,
):
    """Select the best ``k`` rows of ``dataset`` with a selection strategy (default: the DS2 rule).

    Parameters
    ----------
    dataset : datasets.Dataset
        The pool. Columns read depend on the strategy (see the module docstring); all columns are kept.
    k : int, optional
        Rows to select (>= 1). ``None`` with no ``fraction`` returns every eligible row, ranked.
    strategy : str, optional
        One of :data:`STRATEGIES`; defaults to ``config.strategy`` (``"ds2"``).
    config : SelectionConfig, optional
        A full configuration; ``k``, ``strategy`` and ``options`` override its fields.
    return_report : bool, default False
        Also return a :class:`SelectionReport`.
    **options
        Any other :class:`SelectionConfig` field, e.g. ``threshold=4.5``, ``seed=1``, ``fraction=0.05``.

    Returns
    -------
    datasets.Dataset, or (datasets.Dataset, SelectionReport) when ``return_report=True``
        ``dataset.select(indices)`` with the rows best first.

    Raises
    ------
    ValueError
        Unknown strategy or option, bad ``k``, a needed column missing (the message names the column and the
        step that writes it).
    TypeError
        ``dataset`` is not a :class:`datasets.Dataset` (e.g. a ``DatasetDict``: pick a split).

    Examples
    --------
    >>> import datasets
    >>> ds = datasets.Dataset.from_dict({"id": [0, 1, 2, 3], "rating": [4, 5, None, 5]})
    >>> select(ds, 2, strategy="score")["id"][:]
    [1, 3]
    >>> select(ds, 3, strategy="random", seed=0)["id"][:]  # random ignores scores (null rows included)
    [2, 0, 1]
    """
    base = config or SelectionConfig()
    unknown = sorted(set(options) - set(SelectionConfig.__dataclass_fields__))
    if unknown:
        raise ValueError(
            f"unknown selection option(s) {unknown}; valid options: {sorted(SelectionConfig.__dataclass_fields__)}"
        )
    overrides = dict(options)
    if strategy is not None:
        overrides["strategy"] = strategy
    if k is not None:
        overrides["k"] = k
        if "fraction" not in options:
            overrides["fraction"] = None
    cfg = replace(base, **overrides)
    subset, report = _select(dataset, cfg)
    return (subset, report) if return_report else subset


def _select(dataset: datasets.Dataset, cfg: SelectionConfig) -> tuple[datasets.Dataset, SelectionReport]:
    import datasets

    if not isinstance(dataset, datasets.Dataset):
        hint = " Pick one split first, e.g. `ds['train']`." if isinstance(dataset, datasets.DatasetDict) else ""
        raise TypeError(f"select() needs a datasets.Dataset, got {type(dataset).__name__}.{hint}")
    spec = _REGISTRY[cfg.strategy]
    cols = set(dataset.column_names)
    n = len(dataset)
    if n == 0:
        raise ValueError("the dataset is empty; there is nothing to select")
    k = cfg.budget(n)
    used: dict[str, str | None] = dict.fromkeys(("score", "long_tail", "embedding", "length"))

    required = {need for need in spec.needs if "|" not in need}
    alternatives = [need.split("|") for need in spec.needs if "|" in need]
    wanted = required | set(spec.uses) | {name for alt in alternatives for name in alt}
    if cfg.threshold is not None:
        required.add("scores")
    column_of = {"long_tail": cfg.long_tail_column, "embeddings": cfg.embedding_column}
    role_of = {"long_tail": "long_tail", "embeddings": "embedding"}
    for alt in alternatives:  # e.g. knn: the long-tail column if present, else the embeddings
        present = [name for name in alt if column_of[name] in cols]
        if not present:
            raise ValueError(
                f"strategy {cfg.strategy!r} needs one of the columns "
                + " or ".join(f"{column_of[a]!r} ({_WRITERS[role_of[a]]})" for a in alt)
                + f"; the dataset has none of them (columns: {dataset.column_names})"
            )
        required.add(present[0])
        wanted -= set(alt) - {present[0]}

    scores = long_tail = lengths = embeddings = None
    # Strategies that do not rank by score still read it, when present, for the report's histogram.
    explicit = "scores" in required or cfg.score_column is not None
    used["score"] = _resolve_score_column(dataset, cfg) if explicit else _find_score_column(dataset, cfg)
    if used["score"] is not None:
        scores = _column_vector(dataset, used["score"])
    if "long_tail" in required:
        _require_column(dataset, cfg.long_tail_column, "long_tail", cfg.strategy)
    if "long_tail" in wanted and cfg.long_tail_column in cols:
        used["long_tail"] = cfg.long_tail_column
        long_tail = _column_vector(dataset, cfg.long_tail_column)
    if "embeddings" in required:
        _require_column(dataset, cfg.embedding_column, "embedding", cfg.strategy)
        used["embedding"] = cfg.embedding_column
        embeddings = _embedding_matrix(dataset, cfg.embedding_column)
    if "lengths" in required:
        if cfg.length_column is not None:
            if cfg.length_column not in cols:
                raise ValueError(
                    f"length column {cfg.length_column!r} not found (columns: {dataset.column_names}); pass an "
                    "existing numeric column, or leave length_column=None to measure the rendered text"
                )
            used["length"] = cfg.length_column
            lengths = _column_vector(dataset, cfg.length_column)
        else:
            lengths = _text_lengths(dataset, as_formatter(cfg.formatter), {cfg.embedding_column})

    details: dict[str, Any] = {}
    posterior = None
    if "posterior" in spec.uses and cfg.posterior_column in cols:
        posterior = _embedding_matrix(dataset, cfg.posterior_column).astype(np.float64)
        details["posterior_column"] = cfg.posterior_column
    duplicates = _duplicates(dataset, cfg, details) if cfg.deduplicate else None
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        indices = select_indices(
            cfg.strategy, k=k, scores=scores, long_tail=long_tail, lengths=lengths, embeddings=embeddings,
            posterior=posterior, duplicates=duplicates, threshold=cfg.threshold, seed=cfg.seed,
            tie_break=cfg.tie_break, diversity_threshold=cfg.diversity_threshold, knn_k=cfg.knn_k,
            confidence_tiers=cfg.confidence_tiers, n_rows=n, details=details,
        )
    for w in caught:  # re-emit at the caller of select(), not inside this module
        warnings.warn(w.message, w.category, stacklevel=3)
    subset = dataset.select(indices)
    n_eligible = details.pop("n_eligible")
    picked_scores = scores[indices] if scores is not None else None
    report = SelectionReport(
        strategy=cfg.strategy,
        k=k,
        n_selected=int(indices.size),
        n_pool=n,
        n_eligible=n_eligible,
        score_column=used["score"],
        long_tail_column=used["long_tail"],
        embedding_column=used["embedding"],
        length_column=used["length"],
        score_counts=_counts(picked_scores) if picked_scores is not None else {},
        pool_score_counts=_counts(scores) if scores is not None else {},
        score_mean=float(np.nanmean(picked_scores)) if picked_scores is not None and picked_scores.size
        and not np.isnan(picked_scores).all() else None,
        details=details,
        config=asdict(cfg),
    )
    logger.info("selected %d of %d rows with strategy %r", report.n_selected, n, cfg.strategy)
    return subset, report

