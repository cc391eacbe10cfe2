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

==========================  ======================================================================================
module                      contents
==========================  ======================================================================================
:mod:`.config`              :class:`SelectionConfig` (documented fields, paper defaults), :class:`SelectionReport`
:mod:`.strategies`          the registry :data:`STRATEGIES` (name -> :class:`Strategy`) and the rankings
:mod:`.core`                :func:`select_indices`, the NumPy core
:mod:`.diversity`           the exact greedy diversity filter and the k-NN rarity baseline
:mod:`.duplicates`          prompt groups, exact and near duplicates, one row per group
:mod:`.dataset`             :func:`select`, the :class:`datasets.Dataset` face
==========================  ======================================================================================

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

from .config import TIE_BREAKS, SelectionConfig, SelectionReport
from .core import select_indices
from .dataset import select
from .diversity import mean_knn_distance
from .duplicates import first_of_groups
from .strategies import STRATEGIES, Ranking, RankInputs, Strategy, confidence_tier

__all__ = [
    "STRATEGIES", "TIE_BREAKS", "RankInputs", "Ranking", "SelectionConfig", "SelectionReport", "Strategy",
    "confidence_tier", "first_of_groups", "mean_knn_distance", "select", "select_indices",
]
