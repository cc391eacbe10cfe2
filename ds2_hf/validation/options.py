"""Keyword options over a config dataclass, and the dataset a stage is given."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

from .errors import EmptyInputError, InputTypeError, UnknownOptionError


def merge_options(config, options: Mapping[str, Any], *, cls: type, what: str):
    """``config`` (default ``cls()``) with the keyword ``options`` applied.

    Parameters
    ----------
    config : dataclass instance of ``cls``, or None
    options : mapping of field name to value
    cls : type
        The config dataclass.
    what : str
        The stage, for messages ("selection", "embedding", ...).

    Raises
    ------
    UnknownOptionError
        A name that is not a field of ``cls`` (the message lists the valid ones).
    InputTypeError
        ``config`` is not a ``cls``.

    Examples
    --------
    >>> from dataclasses import dataclass
    >>> @dataclass(frozen=True)
    ... class Opts:
    ...     k: int = 10
    >>> merge_options(None, {"k": 3}, cls=Opts, what="demo")
    Opts(k=3)
    >>> merge_options(None, {"kk": 3}, cls=Opts, what="demo")
    Traceback (most recent call last):
    ...
    ds2_hf.validation.UnknownOptionError: unknown demo option(s) ['kk']; valid options: ['k']
    """
    if config is not None and not isinstance(config, cls):
        raise InputTypeError(f"config must be a {cls.__name__}, got {type(config).__name__}; build one with "
                             f"{cls.__name__}(...) or pass the options as keywords")
    valid = sorted(f.name for f in dataclasses.fields(cls) if f.init)
    unknown = sorted(set(options) - set(valid))
    if unknown:
        raise UnknownOptionError(f"unknown {what} option(s) {unknown}; valid options: {valid}")
    if config is None:
        return cls(**options)
    return dataclasses.replace(config, **options) if options else config


def check_dataset(dataset, *, what: str) -> None:
    """Require a non-empty :class:`datasets.Dataset` (``what`` names the step: "select", "embed", ...).

    Raises
    ------
    InputTypeError
        Not a ``Dataset`` (a ``DatasetDict``: the message says to pick a split).
    EmptyInputError
        No rows.
    """
    import datasets

    if not isinstance(dataset, datasets.Dataset):
        hint = " Pick one split first, e.g. `ds['train']`." if isinstance(dataset, datasets.DatasetDict) else ""
        raise InputTypeError(f"{what}() needs a datasets.Dataset, got {type(dataset).__name__}.{hint}")
    if dataset.num_rows == 0:
        raise EmptyInputError(f"the dataset has no rows, so there is nothing to {what}; check the input file or "
                              "the filter that produced it")

