"""Score curation: estimate the rater's score transition matrix, find mis-rated samples, correct them, and
score every sample's rarity (long-tail score).

* :func:`curate_scores`: NumPy in, :class:`CurationResult` out (no ``datasets`` needed).
* :func:`curate`: the ``datasets.map`` face (``ds.map(ds2_hf.curate, batched=True, batch_size=None)``).
* :class:`Curator`: fit once, inspect the learned state, transform datasets.
* :func:`fuse_ratings`: several raters (and an audit column) fused into one posterior per row, with or without
  embeddings; :func:`summarize_raters` and :func:`rater_agreement` say how good each rater is.
"""

from .config import METHODS, CurationConfig
from .core import CurationResult, curate_scores, validate_ratings
from .curator import Curator, DatasetMismatchError, NotFittedError
from .map_face import curate
from .diagnostics import Clusterability
from .fusion import FusionResult, fuse_ratings
from .raters import rater_agreement, summarize_raters

__all__ = ["METHODS", "Clusterability", "CurationConfig", "CurationResult", "Curator", "DatasetMismatchError",
           "FusionResult", "NotFittedError", "curate",
           "curate_scores", "fuse_ratings", "rater_agreement", "summarize_raters", "validate_ratings"]
