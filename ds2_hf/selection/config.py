"""The selection stage's configuration, its report, and the checks of the options they share with the core.

Examples
--------
>>> from ds2_hf.selection import SelectionConfig
>>> cfg = SelectionConfig(fraction=0.05)
>>> cfg.strategy, cfg.budget(300_000)
('confident', 15000)
>>> SelectionConfig(k=0)
Traceback (most recent call last):
...
ds2_hf.validation.InputError: k=0 must be >= 1
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from .. import columns as C
from ..formats import Formatter
from ..validation import InputError

TIE_BREAKS = ("index", "random")
"""How rows with equal keys are ordered: by row index (stable), or in a seeded random order."""


@dataclass(frozen=True)
class SelectionConfig:
    """Options of the selection stage. Defaults follow the DS2 paper.

    Parameters
    ----------
    strategy : str, default "confident"
        One of :data:`ds2_hf.selection.STRATEGIES` (see :mod:`ds2_hf.selection`); ``"ds2"`` is the paper's rule
        exactly.
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
        Take at most one row of each duplicate group (see :mod:`ds2_hf.selection`).
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
            raise InputError(f"pass either k ({self.k}) or fraction ({self.fraction}), not both")
        if self.fraction is not None and not (_is_real(self.fraction) and 0 < self.fraction <= 1):
            raise InputError(f"fraction={self.fraction!r} must be a number in (0, 1]; use k=... for a row count")
        check_options(
            strategy=self.strategy, k=self.k, threshold=self.threshold, seed=self.seed, tie_break=self.tie_break,
            diversity_threshold=self.diversity_threshold, knn_k=self.knn_k, confidence_tiers=self.confidence_tiers,
        )
        object.__setattr__(self, "confidence_tiers", as_tiers(self.confidence_tiers))

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


def _is_int(v: Any) -> bool:
    return isinstance(v, (int, np.integer)) and not isinstance(v, bool)


def _is_real(v: Any) -> bool:
    return isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, bool) and math.isfinite(v)


def as_tiers(confidence_tiers: Any) -> tuple[float, ...]:
    """``confidence_tiers`` as a tuple of floats (a single number is one tier)."""
    tiers = confidence_tiers if isinstance(confidence_tiers, (tuple, list)) else (confidence_tiers,)
    return tuple(float(t) for t in tiers)


def check_options(
    *, strategy: str, k: Any, threshold: Any, seed: Any, tie_break: str, diversity_threshold: Any, knn_k: Any,
    confidence_tiers: Any = (0.99, 0.9),
) -> None:
    """Validate the options shared by :class:`SelectionConfig` and :func:`ds2_hf.selection.select_indices`.

    Raises
    ------
    InputError
        The first bad option, named with its valid range and the fix.
    """
    from .strategies import STRATEGIES

    if strategy not in STRATEGIES:
        raise InputError(f"unknown selection strategy {strategy!r}; valid strategies: {tuple(STRATEGIES)}")
    if k is not None and not _is_int(k):
        raise InputError(f"k={k!r} must be a positive integer (use fraction=... for a share of the pool)")
    if k is not None and k <= 0:
        raise InputError(f"k={k} must be >= 1")
    if threshold is not None and not _is_real(threshold):
        raise InputError(f"threshold={threshold!r} must be a finite number (or None for no threshold)")
    if not _is_int(seed):
        raise InputError(f"seed={seed!r} must be an integer")
    if tie_break not in TIE_BREAKS:
        raise InputError(f"tie_break={tie_break!r} is not supported; expected one of {TIE_BREAKS}")
    if not (_is_real(diversity_threshold) and -1.0 <= diversity_threshold <= 1.0):
        raise InputError(
            f"diversity_threshold={diversity_threshold!r} is a cosine similarity and must lie in [-1, 1] "
            "(DEITA used 0.9; lower keeps fewer near-duplicates)"
        )
    if not _is_int(knn_k) or knn_k < 1:
        raise InputError(f"knn_k={knn_k!r} must be a positive integer")
    tiers = confidence_tiers if isinstance(confidence_tiers, (tuple, list)) else (confidence_tiers,)
    if not tiers or not all(_is_real(t) and 0.0 <= t <= 1.0 for t in tiers):
        raise InputError(f"confidence_tiers={confidence_tiers!r} must be probabilities in [0, 1], e.g. (0.99, 0.9)")
