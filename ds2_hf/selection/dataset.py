"""The datasets face of selection: read the columns a strategy needs, rank them, return the chosen rows.

:func:`select` checks the dataset and the options (:mod:`ds2_hf.validation`), reads the score, long-tail,
embedding, length, posterior and duplicate columns the strategy asks for, calls
:func:`ds2_hf.selection.select_indices` and returns ``dataset.select(indices)`` (every column kept), optionally
with a :class:`~ds2_hf.selection.SelectionReport`.
"""

from __future__ import annotations

import logging
import math
import warnings
from dataclasses import asdict
from typing import TYPE_CHECKING, Any, Literal, overload

import numpy as np

from .. import columns as C
from ..formats import FormatError, Formatter, as_formatter
from ..validation import InputError, as_matrix, check_dataset, merge_options
from .config import SelectionConfig, SelectionReport
from .core import select_indices
from .strategies import STRATEGIES, Strategy

if TYPE_CHECKING:  # pragma: no cover
    import datasets

logger = logging.getLogger(__name__)

# What writes each input column, quoted in "missing column" errors.
_WRITERS = {
    "score": "the rating step (`ds2_hf.Rater` / `ds2 rate`) writes `rating`; `ds2_hf.curate` / `ds2 curate` "
    "writes `curated_rating`",
    "long_tail": "run `ds2_hf.curate` (CLI: `ds2 curate`) first",
    "embedding": "run `ds2_hf.Embedder` (CLI: `ds2 embed`) first",
}
_ROLE = {"long_tail": "long_tail", "embeddings": "embedding"}


# ------------------------------------------------------------------------------------------------ column readers


def _column_vector(dataset: datasets.Dataset, column: str) -> np.ndarray:
    """A scalar column as float64 with NaN for nulls, honouring any indices mapping of ``dataset``."""
    import pyarrow as pa
    import pyarrow.compute as pc

    arr = dataset.select_columns([column]).with_format("arrow")[:].column(column).combine_chunks()
    if not (pa.types.is_integer(arr.type) or pa.types.is_floating(arr.type) or pa.types.is_boolean(arr.type)
            or pa.types.is_decimal(arr.type)):
        raise InputError(f"column {column!r} must be numeric to rank rows by it, but has type {arr.type}")
    values = pc.cast(arr, pa.float64()).fill_null(float("nan"))
    return values.to_numpy(zero_copy_only=False)


def _column_matrix(dataset: datasets.Dataset, column: str) -> np.ndarray:
    """A column of fixed-length vectors as an (N, d) float32 matrix (ragged or null rows are named)."""
    rows = dataset.select_columns([column]).with_format("numpy")[:][column]
    # ragged or null rows come as an object array of vectors; as a list, as_matrix names the bad rows
    return as_matrix(list(rows) if rows.dtype == object else rows, name=f"column {column!r}")


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
        raise InputError(
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
            raise InputError(
                f"score column {cfg.score_column!r} not found (columns: {dataset.column_names}); "
                f"{_WRITERS['score']}"
            )
        return cfg.score_column
    if C.CURATED_RATING in dataset.column_names:
        return C.CURATED_RATING
    if C.RATING in dataset.column_names:
        log = logger.warning if STRATEGIES[cfg.strategy].curated_rule else logger.info
        log("no %r column (written by `ds2_hf.curate`); ranking by the raw %r column instead",
            C.CURATED_RATING, C.RATING)
        return C.RATING
    raise InputError(
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


# ------------------------------------------------------------------------------------------------ reading inputs


def _plan(spec: Strategy, cfg: SelectionConfig, dataset: datasets.Dataset) -> tuple[set[str], set[str]]:
    """The inputs the strategy must read (``required``) and may read when present (``wanted``).

    An alternative such as knn's ``long_tail|embeddings`` resolves to the first one whose column exists.
    """
    required = {need for need in spec.needs if "|" not in need}
    alternatives = [need.split("|") for need in spec.needs if "|" in need]
    wanted = required | set(spec.uses) | {name for alt in alternatives for name in alt}
    if cfg.threshold is not None:
        required.add("scores")
    column_of = {"long_tail": cfg.long_tail_column, "embeddings": cfg.embedding_column}
    for alt in alternatives:
        present = [name for name in alt if column_of[name] in dataset.column_names]
        if not present:
            raise InputError(
                f"strategy {cfg.strategy!r} needs one of the columns "
                + " or ".join(f"{column_of[a]!r} ({_WRITERS[_ROLE[a]]})" for a in alt)
                + f"; the dataset has none of them (columns: {dataset.column_names})"
            )
        required.add(present[0])
        wanted -= set(alt) - {present[0]}
    return required, wanted


def _read_lengths(dataset: datasets.Dataset, cfg: SelectionConfig, used: dict[str, str | None]) -> np.ndarray:
    if cfg.length_column is None:
        return _text_lengths(dataset, as_formatter(cfg.formatter), {cfg.embedding_column})
    if cfg.length_column not in dataset.column_names:
        raise InputError(
            f"length column {cfg.length_column!r} not found (columns: {dataset.column_names}); pass an "
            "existing numeric column, or leave length_column=None to measure the rendered text"
        )
    used["length"] = cfg.length_column
    return _column_vector(dataset, cfg.length_column)


def _read_inputs(dataset: datasets.Dataset, cfg: SelectionConfig, spec: Strategy,
                 details: dict[str, Any]) -> tuple[dict[str, Any], dict[str, str | None]]:
    """The arrays :func:`select_indices` takes, read from the columns, and the columns read by role."""
    required, wanted = _plan(spec, cfg, dataset)
    cols = set(dataset.column_names)
    used: dict[str, str | None] = dict.fromkeys(("score", "long_tail", "embedding", "length"))
    arrays: dict[str, Any] = dict.fromkeys(("scores", "long_tail", "lengths", "embeddings", "posterior"))
    # Strategies that do not rank by score still read it, when present, for the report's histogram.
    explicit = "scores" in required or cfg.score_column is not None
    used["score"] = _resolve_score_column(dataset, cfg) if explicit else _find_score_column(dataset, cfg)
    if used["score"] is not None:
        arrays["scores"] = _column_vector(dataset, used["score"])
    if "long_tail" in required:
        _require_column(dataset, cfg.long_tail_column, "long_tail", cfg.strategy)
    if "long_tail" in wanted and cfg.long_tail_column in cols:
        used["long_tail"] = cfg.long_tail_column
        arrays["long_tail"] = _column_vector(dataset, cfg.long_tail_column)
    if "embeddings" in required:
        _require_column(dataset, cfg.embedding_column, "embedding", cfg.strategy)
        used["embedding"] = cfg.embedding_column
        arrays["embeddings"] = _column_matrix(dataset, cfg.embedding_column)
    if "lengths" in required:
        arrays["lengths"] = _read_lengths(dataset, cfg, used)
    if "posterior" in spec.uses and cfg.posterior_column in cols:
        arrays["posterior"] = _column_matrix(dataset, cfg.posterior_column).astype(np.float64)
        details["posterior_column"] = cfg.posterior_column
    arrays["duplicates"] = _duplicates(dataset, cfg, details) if cfg.deduplicate else None
    return arrays, used


# ------------------------------------------------------------------------------------------------ report


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


def _report(cfg: SelectionConfig, k: int | None, n: int, indices: np.ndarray, scores: np.ndarray | None,
            used: dict[str, str | None], details: dict[str, Any]) -> SelectionReport:
    n_eligible = details.pop("n_eligible")
    picked = scores[indices] if scores is not None else None
    return SelectionReport(
        strategy=cfg.strategy, k=k, n_selected=int(indices.size), n_pool=n, n_eligible=n_eligible,
        score_column=used["score"], long_tail_column=used["long_tail"], embedding_column=used["embedding"],
        length_column=used["length"],
        score_counts=_counts(picked) if picked is not None else {},
        pool_score_counts=_counts(scores) if scores is not None else {},
        score_mean=float(np.nanmean(picked)) if picked is not None and picked.size
        and not np.isnan(picked).all() else None,
        details=details, config=asdict(cfg),
    )


# ------------------------------------------------------------------------------------------------ select


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
    """Select the best ``k`` rows of ``dataset`` with a selection strategy (default: ``confident``).

    Parameters
    ----------
    dataset : datasets.Dataset
        The pool. Columns read depend on the strategy (see :mod:`ds2_hf.selection`); all columns are kept.
    k : int, optional
        Rows to select (>= 1). ``None`` with no ``fraction`` returns every eligible row, ranked.
    strategy : str, optional
        One of :data:`ds2_hf.selection.STRATEGIES`; defaults to ``config.strategy`` (``"confident"``).
    config : SelectionConfig, optional
        A full configuration; ``k``, ``strategy`` and ``options`` override its fields.
    return_report : bool, default False
        Also return a :class:`~ds2_hf.selection.SelectionReport`.
    **options
        Any other :class:`~ds2_hf.selection.SelectionConfig` field, e.g. ``threshold=4.5``, ``seed=1``,
        ``fraction=0.05``.

    Returns
    -------
    datasets.Dataset, or (datasets.Dataset, SelectionReport) when ``return_report=True``
        ``dataset.select(indices)`` with the rows best first.

    Raises
    ------
    ds2_hf.validation.InputError
        Bad ``k`` or option value, a needed column missing (the message names the column and the step that
        writes it), an empty dataset.
    ds2_hf.validation.UnknownOptionError
        An option that is not a :class:`~ds2_hf.selection.SelectionConfig` field (also a ``TypeError``).
    ds2_hf.validation.InputTypeError
        ``dataset`` is not a :class:`datasets.Dataset` (e.g. a ``DatasetDict``: pick a split).

    Examples
    --------
    >>> import datasets
    >>> from ds2_hf.selection import select
    >>> ds = datasets.Dataset.from_dict({"id": [0, 1, 2, 3], "rating": [4, 5, None, 5]})
    >>> select(ds, 2, strategy="score")["id"][:]
    [1, 3]
    >>> select(ds, 3, strategy="random", seed=0)["id"][:]  # random ignores scores (null rows included)
    [2, 0, 1]
    """
    overrides = dict(options)
    if strategy is not None:
        overrides["strategy"] = strategy
    if k is not None:
        overrides["k"] = k
        if "fraction" not in options:
            overrides["fraction"] = None
    cfg = merge_options(config, overrides, cls=SelectionConfig, what="selection")
    subset, report = _select(dataset, cfg)
    return (subset, report) if return_report else subset


def _select(dataset: datasets.Dataset, cfg: SelectionConfig) -> tuple[datasets.Dataset, SelectionReport]:
    check_dataset(dataset, what="select")
    spec = STRATEGIES[cfg.strategy]
    n = len(dataset)
    k = cfg.budget(n)
    details: dict[str, Any] = {}
    arrays, used = _read_inputs(dataset, cfg, spec, details)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        indices = select_indices(
            cfg.strategy, k=k, **arrays, threshold=cfg.threshold, seed=cfg.seed, tie_break=cfg.tie_break,
            diversity_threshold=cfg.diversity_threshold, knn_k=cfg.knn_k, confidence_tiers=cfg.confidence_tiers,
            n_rows=n, details=details,
        )
    for w in caught:  # re-emit at the caller of select(), not inside this package
        warnings.warn(w.message, w.category, stacklevel=3)
    report = _report(cfg, k, n, indices, arrays["scores"], used, details)
    logger.info("selected %d of %d rows with strategy %r", report.n_selected, n, cfg.strategy)
    return dataset.select(indices), report
