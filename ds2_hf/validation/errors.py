"""The errors of the input boundary: one :class:`InputError` (a ``ValueError``) and its kinds.

They import nothing heavy, so any module (the command line included) can name them. Their public home is
:mod:`ds2_hf.validation`, which is also the module their tracebacks show.
"""

from __future__ import annotations

from collections.abc import Sequence

class InputError(ValueError):
    """Base of every bad-input error of the package: the message names the bad value and the fix."""


class UnknownOptionError(InputError, TypeError):
    """A keyword option that the configuration does not have (also a ``TypeError``, as Python's own
    "unexpected keyword argument" is)."""


class InputTypeError(InputError, TypeError):
    """An argument of the wrong kind (a ``DatasetDict`` where a ``Dataset`` is needed, a dict for a config)."""


class EmptyInputError(InputError):
    """An input with no rows: there is nothing to rate, embed, curate or select."""


class MissingInputError(InputError, FileNotFoundError):
    """An input path that does not exist (also a ``FileNotFoundError``)."""


class UnreadableInputError(InputError, PermissionError):
    """An input path that exists but cannot be read (also a ``PermissionError``)."""


class EmbeddingError(InputError):
    """Embeddings that cannot be used: ragged or null rows, NaN / inf values, zero vectors, wrong shapes."""


class RatingError(InputError):
    """Ratings that cannot be curated: text, fractions, values off the scale, no or one rated value."""


def few(rows: Sequence[int], limit: int = 10) -> str:
    """``[3, 7, 12] (3 in all)``: the first ``limit`` rows of a problem and how many there are.

    Examples
    --------
    >>> few(list(range(12)))
    '[0, 1, 2, 3, 4, 5, 6, 7, 8, 9, ...] (12 in all)'
    """
    rows = [int(r) for r in rows]
    shown = ", ".join(str(r) for r in rows[:limit])
    return f"[{shown}{', ...' if len(rows) > limit else ''}] ({len(rows)} in all)"


for _error in (InputError, UnknownOptionError, InputTypeError, EmptyInputError, MissingInputError, UnreadableInputError,
               EmbeddingError, RatingError):
    _error.__module__ = "ds2_hf.validation"  # the public name, in tracebacks and doctests
del _error
