"""Score curation: estimate the rater's score transition matrix, find mis-rated samples, correct them, and
score every sample's rarity (long-tail score).

* :func:`curate_scores`: NumPy in, :class:`CurationResult` out (no ``datasets`` needed).
* :func:`curate`: the ``datasets.map`` face (``ds.map(ds2_hf.curate, batched=True, batch_size=None)``).
* :class:`Curator`: fit once, inspect the learned state, transform datasets.
"""

from .config import METHODS, CurationConfig
from .core import CurationResult, curate_scores, validate_ratings
from .curator import Curator, curate
from .diagnostics import Clusterability

__all__ = ["METHODS", "Clusterability", "CurationConfig", "CurationResult", "Curator", "curate", "curate_scores",
           "validate_ratings"]
