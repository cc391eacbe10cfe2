"""Every number and table a dataset card shows, computed once from the subset, the pool and the report.

:func:`summarize` returns a :class:`Summary`; it is stored in ``ds2_report.json`` so that ``ds2 report`` renders
the same content later without the pool.
"""

from __future__ import annotations

import dataclasses
import math
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..report import Report
from .config import COMPOSITION_CANDIDATES, PublishConfig

SUMMARY_VERSION = 1


@dataclass
class Summary:
    """The card's numbers (plain JSON data).

    Attributes
    ----------
    num_rows : int
        Rows of the subset.
    num_classes : int or None
        The score scale K (from the curation report, else one more than the largest rating seen).
    num_classes_inferred : bool
        K was inferred from the ratings, not recorded.
    columns_present : list of str
        Rating and curation columns the subset carries.
    curated : bool
        The subset carries ``curated_rating``.
    subset_changed, subset_flagged : int or None
        Rows of the subset whose rating curation changed / flagged as mis-rated.
    distributions : dict of str to list of int
        Rows per score: ``"pool, raw"``, ``"pool, curated"``, ``"subset, raw"``, ``"subset, curated"``.
    long_tail : dict
        ``subset_min``, ``subset_median``, ``pool_median``; ``cut`` and ``cut_score`` for the ``ds2`` rule.
    composition : dict
        ``column``, and rows per value in the ``subset`` and the ``pool``.
    examples : list of dict
        The most confident corrections: ``text``, ``rating``, ``curated_rating``, ``confidence``.
    duplicates : dict
        Duplicate groups of the pool with example texts, and ``subset_repeats``.
    """

    num_rows: int
    num_classes: int | None = None
    num_classes_inferred: bool = False
    columns_present: list = field(default_factory=list)
    curated: bool = False
    subset_changed: int | None = None
    subset_flagged: int | None = None
    distributions: dict = field(default_factory=dict)
    long_tail: dict = field(default_factory=dict)
    composition: dict = field(default_factory=dict)
    examples: list = field(default_factory=list)
    duplicates: dict = field(default_factory=dict)
    version: int = SUMMARY_VERSION

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Summary:
        known = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})


def summarize(subset, report: Report, pool, config: PublishConfig) -> Summary:
    """The :class:`Summary` of ``subset`` (a Dataset), with ``pool`` (Dataset, mapping of arrays or None)."""
    cols = config.curation_columns
    k, inferred = _num_classes(subset, pool, report, config)
    sub_raw, sub_cur = column(subset, config.rating_column), column(subset, cols.curated_rating)
    changed = None
    if sub_raw is not None and sub_cur is not None:
        a, b = np.asarray(sub_raw, dtype=np.float64), np.asarray(sub_cur, dtype=np.float64)
        changed = int((np.isfinite(a) & np.isfinite(b) & (a != b)).sum())
    misrated = column(subset, cols.misrated)
    return Summary(
        num_rows=subset.num_rows,
        num_classes=k,
        num_classes_inferred=bool(inferred and k is not None),
        columns_present=[c for c in (config.rating_column, *cols.names()) if c in subset.column_names],
        curated=cols.curated_rating in subset.column_names,
        subset_changed=changed,
        subset_flagged=int(np.asarray(misrated, dtype=bool).sum()) if misrated is not None else None,
        distributions=_distributions(subset, pool, report, config, k),
        long_tail=_long_tail(subset, pool, report, config),
        composition=_composition(subset, pool, config),
        examples=_examples(subset, pool, config),
        duplicates=_duplicates(subset, pool, report, config),
    )


# ---------------------------------------------------------------------------------------------------- arrays
def column(data, name: str | None) -> np.ndarray | None:
    """One column of a Dataset or a mapping of arrays as a NumPy array (nulls -> NaN / None), or None."""
    if data is None or name is None:
        return None
    if isinstance(data, Mapping):
        return None if data.get(name) is None else np.asarray(data[name])
    if name not in (data.column_names or []):
        return None
    col = data.select_columns([name]).with_format("arrow")[:][name]
    return col.to_numpy(zero_copy_only=False)


def finite(x) -> float | None:
    x = float(x)
    return x if math.isfinite(x) else None


def _valid_ratings(values: np.ndarray | None, k: int | None) -> np.ndarray | None:
    if values is None:
        return None
    try:
        arr = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError):
        return None
    ok = np.isfinite(arr) & (arr >= 0)
    if k is not None:
        ok &= arr < k
    return arr[ok].astype(np.int64)


def _counts(values: np.ndarray | None, k: int) -> list[int] | None:
    return None if values is None else np.bincount(values, minlength=k)[:k].astype(int).tolist()


# ---------------------------------------------------------------------------------------------------- parts
def _num_classes(subset, pool, report: Report, config: PublishConfig) -> tuple[int | None, bool]:
    if report.curation is not None and report.curation.num_classes is not None:
        return int(report.curation.num_classes), False
    names = (config.rating_column, config.curation_columns.curated_rating)
    observed = [_valid_ratings(column(data, name), None) for data in (subset, pool) for name in names]
    observed = [a for a in observed if a is not None and a.size]
    return (int(max(a.max() for a in observed)) + 1 if observed else None), True


def _distributions(subset, pool, report: Report, config: PublishConfig, k: int | None) -> dict[str, list[int]]:
    if not k:
        return {}
    cur_name = config.curation_columns.curated_rating
    curation = report.curation
    series = {
        "pool, raw": (curation.counts_raw if curation else None)
        or _counts(_valid_ratings(column(pool, config.rating_column), k), k),
        "pool, curated": (curation.counts_curated if curation else None)
        or _counts(_valid_ratings(column(pool, cur_name), k), k),
        "subset, raw": _counts(_valid_ratings(column(subset, config.rating_column), k), k),
        "subset, curated": _counts(_valid_ratings(column(subset, cur_name), k), k),
    }
    return {name: [int(c) for c in counts] for name, counts in series.items()
            if counts is not None and len(counts) == k}


def _long_tail(subset, pool, report: Report, config: PublishConfig) -> dict[str, Any]:
    """Subset and pool medians; for the ``ds2`` rule, the lowest long-tail score selected at the lowest score."""
    cols = config.curation_columns
    sub_lt = column(subset, cols.long_tail)
    if sub_lt is None:
        return {}
    lt = np.asarray(sub_lt, dtype=np.float64)
    if not np.isfinite(lt).any():
        return {}
    out: dict[str, Any] = {"subset_min": finite(np.nanmin(lt)), "subset_median": finite(np.nanmedian(lt))}
    pool_lt = column(pool, cols.long_tail)
    if pool_lt is not None and np.isfinite(np.asarray(pool_lt, dtype=np.float64)).any():
        out["pool_median"] = finite(np.nanmedian(np.asarray(pool_lt, dtype=np.float64)))
    sub_cur = column(subset, cols.curated_rating)
    cur = np.asarray(sub_cur, dtype=np.float64) if sub_cur is not None else None
    strategy = report.selection.strategy if report.selection else None
    if strategy == "ds2" and cur is not None and np.isfinite(cur).any():
        boundary = float(np.nanmin(cur))
        at_boundary = lt[(cur == boundary) & np.isfinite(lt)]
        if at_boundary.size:
            out["cut"] = float(at_boundary.min())
            out["cut_score"] = int(boundary)
    return out


def composition_column(subset, config: PublishConfig) -> str | None:
    """The column the composition is counted over (``config.composition_column``, resolved), or None."""
    name = config.composition_column
    if name is None:
        return None
    if name != "auto":
        if name not in subset.column_names:
            raise ValueError(
                f"composition_column={name!r} is not a column of the subset; columns are {subset.column_names}; "
                "pass composition_column=None (or leave out --composition-column) to skip the composition"
            )
        return name
    for candidate in COMPOSITION_CANDIDATES:
        feature = subset.features.get(candidate)
        if feature is not None and getattr(feature, "dtype", None) in ("string", "large_string"):
            return candidate
    return None


def _composition(subset, pool, config: PublishConfig) -> dict[str, Any]:
    name = composition_column(subset, config)
    if name is None:
        return {}
    order = lambda counts: dict(sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])))  # noqa: E731
    pool_values = column(pool, name)
    return {
        "column": name,
        "subset": order(Counter(str(v) for v in column(subset, name))),
        "pool": order(Counter(str(v) for v in pool_values)) if pool_values is not None else None,
    }


def _examples(subset, pool, config: PublishConfig) -> list[dict[str, Any]]:
    """The ``num_examples`` most confident corrections of the pool (else the subset)."""
    cols = config.curation_columns
    rows = pool if pool is not None and not isinstance(pool, Mapping) else subset
    raw, new = column(rows, config.rating_column), column(rows, cols.curated_rating)
    if raw is None or new is None:
        return []
    raw_f, new_f = np.asarray(raw, dtype=np.float64), np.asarray(new, dtype=np.float64)
    changed = np.flatnonzero(np.isfinite(raw_f) & np.isfinite(new_f) & (raw_f != new_f))
    conf = column(rows, cols.confidence)
    conf_f = np.asarray(conf, dtype=np.float64) if conf is not None else np.full(len(raw_f), np.nan)
    order = changed[np.lexsort((changed, -np.nan_to_num(conf_f[changed], nan=-1.0)))]
    drop = (config.embedding_column, cols.posterior)
    return [{"text": row_text({c: v for c, v in rows[int(i)].items() if c not in drop}),
             "rating": int(raw_f[i]), "curated_rating": int(new_f[i]), "confidence": finite(conf_f[i])}
            for i in order[: config.num_examples]]


def _duplicates(subset, pool, report: Report, config: PublishConfig) -> dict[str, Any]:
    """Duplicate groups of the pool (from the curation report) with example texts, and repeats in the subset."""
    found = report.curation.duplicates if report.curation else None
    if found is None:
        return {}
    rows = pool if pool is not None and not isinstance(pool, Mapping) else None
    drop = (config.embedding_column, config.curation_columns.posterior)
    largest = [{"size": int(size), "text": row_text({c: v for c, v in rows[int(row)].items() if c not in drop})
                if rows is not None and 0 <= row < len(rows) else None} for size, row in found.largest]
    codes = column(subset, config.curation_columns.duplicate_group)
    repeats = None
    if codes is not None:
        c = np.asarray(codes, dtype=np.int64)
        c = c[c >= 0]
        repeats = int(c.size - np.unique(c).size)
    return {"n_groups": found.n_groups, "n_rows": found.n_rows, "n_redundant": found.n_redundant,
            "largest": largest, "subset_repeats": repeats}


def row_text(row: Mapping[str, Any], max_chars: int = 160) -> str:
    """A row rendered to one line of plain text, shortened to ``max_chars``."""
    from ..formats import Formatter

    try:
        text = Formatter(style="plain").text(row)
    except (ValueError, KeyError, TypeError):
        strings = [v for v in row.values() if isinstance(v, str) and v.strip()]
        text = max(strings, key=len) if strings else ""
    text = " ".join(text.split())
    return text if len(text) <= max_chars else text[: max_chars - 1].rstrip() + "…"
