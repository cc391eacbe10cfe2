"""The ``datasets.map`` face of curation: ``dataset.map(ds2_hf.curate, batched=True, batch_size=None)``.

Curation is global (the k-NN graph and the transition matrix use every row), while ``map`` hands a function one
row, or batches of 1,000 rows, unless told otherwise. :func:`curate` therefore checks, before any work, that its
batch is the whole dataset (:func:`check_whole_dataset`), and reads the batch through its Arrow table, so the map
face needs about the memory of :meth:`ds2_hf.Curator.fit_transform` (BENCHMARKS.md, "map face memory").
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Mapping
from typing import Any

import numpy as np

from ..columns import EMBEDDING, RATING, CurationColumns
from ..validation import InputError
from .config import CurationConfig
from .curator import Curator
from .table import is_dataset, result_columns

logger = logging.getLogger(__name__)

_MAP_MODULE = "datasets.arrow_dataset"  # where Dataset.map runs a function: _map_single > apply_function > fn


def curate(batch, indices=None, *, config: CurationConfig | None = None, rating_column: str = RATING,
           embedding_column: str | None = EMBEDDING, columns: CurationColumns | None = None,
           add_posterior: bool = True, overwrite: bool = False, group_column: str | None = "auto",
           audit_column: str | None = None, find_duplicates: bool = True, formatter=None, **options):
    """Curate ratings: ``dataset.map(ds2_hf.curate, batched=True, batch_size=None)``, or ``ds2_hf.curate(dataset)``.

    Curation is a global step (the k-NN graph and the transition matrix use every row), so under ``map`` the
    whole dataset must arrive as one batch: ``batched=True, batch_size=None``, no ``num_proc``. Anything else (one
    row at a time, 1,000-row batches, shards) is refused before any work, naming the fix: ``curate`` finds the
    ``map`` call it runs in on the call stack (:func:`check_whole_dataset`). Options go
    through ``fn_kwargs``::

        ds = ds.map(ds2_hf.curate, batched=True, batch_size=None, fn_kwargs={"method": "faithful"})

    The batch is read through its Arrow table (no Python lists), so the ``map`` face needs about the memory of
    :meth:`Curator.fit_transform`. Called on a :class:`datasets.Dataset`, it returns the curated dataset (with
    typed features). Use :class:`Curator` to keep the transition matrix and the report.

    Parameters
    ----------
    batch : dict of columns, datasets' batch, or datasets.Dataset
        The whole pool: ``embedding`` (N, d) floats and ``rating`` (N,) integers in ``0..K-1`` (null = unrated).
    indices : list of int, optional
        Passed by ``map(..., with_indices=True)``; must be ``0..N-1``.
    config, rating_column, embedding_column, columns, add_posterior, overwrite, group_column, audit_column, \
find_duplicates, formatter, **options
        As for :class:`Curator`.

    Returns
    -------
    dict of str to column, or datasets.Dataset
        The new columns (a Dataset when given one): ``curated_rating`` (int in ``0..K-1``, null for unrated
        rows), ``curation_confidence`` (float32 in [0, 1]), ``misrated`` (bool), ``long_tail_score`` (float32,
        higher = rarer), ``duplicate_group`` (int64, -1 = unique) and ``curation_posterior`` (K float32, joint).

    Raises
    ------
    ds2_hf.validation.InputError
        Used under ``map`` without the whole dataset in one batch (the message gives the call to make).

    Examples
    --------
    >>> import datasets, ds2_hf
    >>> from ds2_hf.simulate import simulate
    >>> sim = simulate(1500, 16, seed=0)
    >>> ds = datasets.Dataset.from_dict({"embedding": sim.embeddings, "rating": sim.rated})
    >>> out = ds.map(ds2_hf.curate, batched=True, batch_size=None, fn_kwargs={"progress": False})
    >>> out.column_names[:3]
    ['embedding', 'rating', 'curated_rating']
    >>> ds.map(ds2_hf.curate, fn_kwargs={"progress": False})
    Traceback (most recent call last):
    ...
    ds2_hf.validation.InputError: ds2_hf.curate needs the whole dataset in one batch ... pass batched=True, \
batch_size=None: `dataset.map(ds2_hf.curate, batched=True, batch_size=None)`
    """
    curator = Curator(config, rating_column=rating_column, embedding_column=embedding_column, columns=columns,
                      add_posterior=add_posterior, overwrite=overwrite, group_column=group_column,
                      audit_column=audit_column, find_duplicates=find_duplicates, formatter=formatter, **options)
    if is_dataset(batch):
        return curator.fit_transform(batch)
    check_whole_dataset(batch, indices, rating_column=rating_column)
    curator.fit(batch)
    rep = curator.report_
    logger.info("ds2 curation: %d of %d rated rows changed; transition matrix diagonal %s", rep["n_changed"],
                rep["n_rated"], np.round(np.diag(curator.transition_matrix_), 3).tolist())
    with_posterior = add_posterior and curator.result_.posterior is not None
    return result_columns(curator.result_, columns or CurationColumns(), with_posterior=with_posterior)


def check_whole_dataset(batch, indices=None, *, rating_column: str = "rating", what: str = "ds2_hf.curate") -> None:
    """Refuse, before any work, a ``datasets.map`` batch that is not the whole dataset.

    A function ``map`` calls is not told the dataset's length, so this finds the ``map`` call on the call stack:
    the frame of ``Dataset._map_single`` (module ``datasets.arrow_dataset``) whose ``apply_function`` passed this
    very object holds the dataset (its shard), ``batched``, the batch size (the shard's length for
    ``batch_size=None``) and the shard's rank (set by ``num_proc``). Refused: one row at a time, batches shorter
    than the dataset, shards, ``input_columns``. A batch ``map`` did not pass (a column dict built by hand) is
    taken as the whole pool, unless it holds a single row. A batch from ``datasets`` whose ``Dataset.map`` call
    cannot be found (``IterableDataset.map``, or a ``datasets`` release that maps differently) is refused rather
    than curated blind.

    Parameters
    ----------
    batch : mapping of str to column
        What the function was given.
    indices : list of int, optional
        Unused: accepted so that ``with_indices=True`` works.
    rating_column : str
        A column that holds one value per row (a scalar there means a single row).
    what : str
        The function's public name, for messages.

    Raises
    ------
    ds2_hf.validation.InputError
        The message gives the call to make.

    Examples
    --------
    >>> check_whole_dataset({"rating": [0, 1]})
    >>> check_whole_dataset({"rating": 3})
    Traceback (most recent call last):
    ...
    ds2_hf.validation.InputError: ds2_hf.curate needs the whole dataset in one batch (the k-NN graph and the \
transition matrix use every row), but it was given one row; ...
    """
    head = (f"{what} needs the whole dataset in one batch (the k-NN graph and the transition matrix use every "
            "row), but")
    fix = f"pass batched=True, batch_size=None: `dataset.map({what}, batched=True, batch_size=None)`"
    call = _map_call(batch)
    if call is None:
        if type(batch).__module__.startswith("datasets.") or _called_from("datasets.iterable_dataset"):
            raise InputError(f"{head} it cannot tell whether this batch is the whole dataset (it was not called by "
                             f"datasets.Dataset.map); call {what}(dataset) or ds2_hf.Curator().fit_transform(dataset)")
        if isinstance(batch, Mapping) and rating_column in batch and np.ndim(batch[rating_column]) == 0:
            raise InputError(f"{head} it was given one row; {fix}")
        return
    if not call["batched"]:
        raise InputError(f"{head} `map` passed it one row at a time; {fix}")
    if call["rank"] is not None:
        raise InputError(f"{head} `map(..., num_proc=...)` split the dataset into shards that would each be curated "
                         "alone; drop num_proc (curation parallelises its own k-NN search)")
    if call["input_columns"] is not None:
        raise InputError(f"{head} `map(..., input_columns=...)` passes it separate columns; drop input_columns")
    if call["batch_size"] < call["rows"]:
        raise InputError(f"{head} `map` passed it batches of {call['batch_size']} of the dataset's {call['rows']} "
                         f"rows, which would each be curated alone (wrong ratings); {fix}")


def _map_call(batch) -> dict[str, Any] | None:
    """The options of the ``Dataset.map`` call that passed ``batch`` to the function running now, or None."""
    frame, passed = sys._getframe(2), False
    try:
        while frame is not None:
            if frame.f_globals.get("__name__") == _MAP_MODULE:
                local = frame.f_locals
                if frame.f_code.co_name == "apply_function" and any(arg is batch for arg in local.get("fn_args", ())):
                    passed = True
                elif frame.f_code.co_name == "_map_single" and passed:
                    return {"rows": len(local["shard"]), "batched": local["batched"],
                            "batch_size": local["batch_size"], "rank": local["rank"],
                            "input_columns": local["input_columns"]}
            frame = frame.f_back
        return None
    finally:
        del frame


def _called_from(module: str) -> bool:
    frame = sys._getframe(1)
    try:
        while frame is not None:
            if frame.f_globals.get("__name__") == module:
                return True
            frame = frame.f_back
        return False
    finally:
        del frame
