"""The column contract: names of every column ds2-hf adds to a dataset, and the no-overwrite rule.

=======================  ==================================  ==========================================
column                   type                                written by
=======================  ==================================  ==========================================
``rating``               int8 in 0..K-1, null if failed      :class:`ds2_hf.Rater`
``rating_details``       struct: rarity, complexity,         :class:`ds2_hf.Rater`
                         informativeness, overall (1-10)
``rating_error``         string, null when fine              :class:`ds2_hf.Rater`
``embedding``            fixed-length list of float32        :class:`ds2_hf.Embedder`
``curated_rating``       int8 in 0..K-1, null if unrated     :func:`ds2_hf.curate` / :class:`ds2_hf.Curator`
``curation_confidence``  float32 in [0, 1]                   :func:`ds2_hf.curate`
``misrated``             bool (higher risk = True)           :func:`ds2_hf.curate`
``long_tail_score``      float32, higher = rarer             :func:`ds2_hf.curate`
``curation_posterior``   list of K float32 (sums to 1)       :func:`ds2_hf.curate` (joint method)
``duplicate_group``      int64, -1 when unique               :func:`ds2_hf.curate`
=======================  ==================================  ==========================================

Every name is configurable. A transform never silently overwrites a column it did not write: it raises
:class:`ColumnExistsError` naming the option that renames its output (or ``overwrite=True``).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

RATING = "rating"
RATING_DETAILS = "rating_details"
RATING_ERROR = "rating_error"
EMBEDDING = "embedding"
CURATED_RATING = "curated_rating"
CURATION_CONFIDENCE = "curation_confidence"
MISRATED = "misrated"
LONG_TAIL_SCORE = "long_tail_score"
CURATION_POSTERIOR = "curation_posterior"
DUPLICATE_GROUP = "duplicate_group"


class ColumnExistsError(ValueError):
    """Raised when a transform would overwrite a column it did not write."""


@dataclass(frozen=True)
class CurationColumns:
    """Output column names of the curation stage (all configurable)."""

    curated_rating: str = CURATED_RATING
    confidence: str = CURATION_CONFIDENCE
    misrated: str = MISRATED
    long_tail: str = LONG_TAIL_SCORE
    posterior: str = CURATION_POSTERIOR
    duplicate_group: str = DUPLICATE_GROUP

    def names(self) -> tuple[str, ...]:
        """Every output column; the posterior last (written by the joint method only)."""
        return (self.curated_rating, self.confidence, self.misrated, self.long_tail, self.duplicate_group,
                self.posterior)


def check_no_overwrite(
    existing: Iterable[str], outputs: Iterable[str], *, option: str, overwrite: bool = False
) -> None:
    """Refuse to overwrite user columns.

    Parameters
    ----------
    existing : iterable of str
        Columns already in the dataset / batch.
    outputs : iterable of str
        Columns the transform is about to write.
    option : str
        The keyword that renames the outputs, quoted in the error message.
    overwrite : bool
        When True, existing columns are replaced silently.
    """
    if overwrite:
        return
    clash = sorted(set(existing) & set(outputs))
    if clash:
        raise ColumnExistsError(
            f"column(s) {clash} already exist in the dataset; refusing to overwrite them. "
            f"Choose other output names with `{option}=...`, remove the columns first "
            f"(`dataset.remove_columns({clash!r})`), or pass `overwrite=True` (command line: `--overwrite`)."
        )
