"""Rows that cannot be embedded as text: found in one pass before any model loads, skipped or named in one error.

An empty conversation (a ShareGPT record with no turns, a ``messages`` list of blank messages) has no text, so it
has no embedding. By default every such row, and every row that cannot be rendered at all, is named in one
:class:`~ds2_hf.formats.FormatError`; with ``skip_empty=True`` the empty ones are left out of the output and the
count and first rows are logged.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

from ..formats import EmptyConversationError, FormatError
from ..validation import EmptyInputError, few

if TYPE_CHECKING:
    from .config import EmbeddingConfig

logger = logging.getLogger(__name__)

_SCAN_BATCH = 10_000


def render_problems(empty: Sequence[int], invalid: Sequence[tuple[int, str]], *, skip_empty: bool) -> FormatError:
    """One error naming every row that cannot be rendered: the empty ones, then the invalid ones.

    Parameters
    ----------
    empty : sequence of int
        Rows with an empty conversation.
    invalid : sequence of (int, str)
        Other rows that fail to render, with their messages.
    skip_empty : bool
        Whether the caller was already skipping empty rows (the hint then says how to skip them in a plain
        ``datasets.map``).

    Returns
    -------
    FormatError
        :class:`~ds2_hf.formats.EmptyConversationError` when only empty rows are at fault.

    Examples
    --------
    >>> print(render_problems([3, 9], [], skip_empty=False))  # doctest: +NORMALIZE_WHITESPACE
    2 row(s) have an empty conversation (no message has any text), so there is nothing to embed: rows [3, 9]
    (2 in all). Leave them out with skip_empty=True (CLI: --skip-empty), or give them text
    """
    parts = []
    if empty:
        how = ("skip_empty=True leaves them out in ds2_hf.embed, before mapping; in a plain dataset.map, filter "
               "them out first" if skip_empty else
               "Leave them out with skip_empty=True (CLI: --skip-empty), or give them text")
        parts.append(f"{len(empty)} row(s) have an empty conversation (no message has any text), so there is "
                     f"nothing to embed: rows {few(empty)}. {how}")
    if invalid:
        parts.append(f"{len(invalid)} row(s) cannot be rendered to text: rows {few([r for r, _ in invalid])}; "
                     f"the first: {invalid[0][1]}")
    cls = EmptyConversationError if not invalid else FormatError
    return cls("; ".join(parts))


def find_unrenderable(dataset, config: EmbeddingConfig) -> tuple[np.ndarray, list[tuple[int, str]]]:
    """Scan every row of ``dataset`` as ``config.formatter`` renders it.

    Parameters
    ----------
    dataset : datasets.Dataset
    config : EmbeddingConfig
        Its ``formatter`` decides how rows become text.

    Returns
    -------
    empty : numpy.ndarray of int64, shape (n_empty,)
        Rows with an empty conversation, ascending.
    invalid : list of (int, str)
        Other rows that cannot be rendered, with the message of each.

    Raises
    ------
    FormatError
        The columns fit no row format (one message, before any row is read).

    Examples
    --------
    >>> import datasets
    >>> from ds2_hf.embedding import EmbeddingConfig
    >>> ds = datasets.Dataset.from_dict({"text": ["a cat", "  ", "a dog"]})
    >>> empty, invalid = find_unrenderable(ds, EmbeddingConfig(backend="wordllama"))
    >>> empty.tolist(), invalid
    ([1], [])
    """
    from tqdm.auto import tqdm

    formatter = config.formatter
    columns = formatter.columns(dataset.column_names)  # a dataset in no known format fails here, once
    rows = dataset.select_columns(columns)
    empty: list[int] = []
    invalid: list[tuple[int, str]] = []
    with tqdm(total=len(rows), desc="Checking rows", unit="row", disable=len(rows) < 5 * _SCAN_BATCH) as bar:
        for start in range(0, len(rows), _SCAN_BATCH):
            batch = rows[start : start + _SCAN_BATCH]
            e, i = formatter.find_problems(batch, offset=start)
            empty += e
            invalid += i
            bar.update(min(_SCAN_BATCH, len(rows) - start))
    return np.asarray(empty, dtype=np.int64), invalid


def drop_empty(dataset, config: EmbeddingConfig):
    """``dataset`` ready to embed: empty conversations left out when ``config.skip_empty``, else refused.

    Stored-vector backends render no text: their dataset is returned as it is. A caller that records the skipped
    rows (a report) calls this before :func:`~ds2_hf.embedding.embed`, whose own check then finds nothing.

    Returns
    -------
    dataset : datasets.Dataset
        The rows to embed (``dataset`` itself when none is skipped).
    skipped : numpy.ndarray of int64
        Row numbers (of ``dataset``) left out, ascending; logged as a warning with their count.

    Raises
    ------
    FormatError
        Rows that cannot be rendered; without ``skip_empty`` also the empty ones. One message names them all.
    EmptyInputError
        Every row is empty.

    Examples
    --------
    >>> import datasets
    >>> from ds2_hf.embedding import EmbeddingConfig
    >>> ds = datasets.Dataset.from_dict({"conversations": [[{"from": "human", "value": "Hi"}], []]})
    >>> kept, skipped = drop_empty(ds, EmbeddingConfig(backend="wordllama", skip_empty=True))
    >>> kept.num_rows, skipped.tolist()
    (1, [1])
    """
    if not config.backend_class.encodes_text:
        return dataset, np.zeros(0, dtype=np.int64)
    empty, invalid = find_unrenderable(dataset, config)
    if invalid or (len(empty) and not config.skip_empty):
        raise render_problems(empty.tolist(), invalid, skip_empty=False)
    if not len(empty):
        return dataset, empty
    if len(empty) == dataset.num_rows:
        raise EmptyInputError(f"all {dataset.num_rows} rows have an empty conversation, so there is nothing to "
                              "embed; check the input file and its format")
    logger.warning("skipped %d row(s) with an empty conversation (skip_empty=True): rows %s", len(empty), few(empty))
    keep = np.setdiff1d(np.arange(dataset.num_rows), empty, assume_unique=True)
    return dataset.select(keep), empty
