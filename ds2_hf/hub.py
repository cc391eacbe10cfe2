"""Publish a curated subset as a Hugging Face dataset: parquet shards, a dataset card, figures and a report.

:func:`save_subset` writes a folder in the Hub's repository layout::

    my-subset/
    ├── README.md                         dataset card: YAML metadata + how the subset was selected
    ├── data/train-00000-of-00001.parquet the rows (``embedding`` dropped unless ``keep_embedding=True``)
    ├── figures/*.png                     transition matrix, rating distributions, long-tail, composition
    └── ds2_report.json                   the curation report and every number the card shows

``datasets.load_dataset("my-subset")`` reads it back with the same features, and
``huggingface_hub.DatasetCard.load("my-subset/README.md")`` parses its metadata. :func:`push_folder` uploads such
a folder to the Hub in one commit; :func:`push_subset` does both. The files are byte-for-byte reproducible, so
re-pushing the same subset makes no new commit.

Every report key is optional: what was not recorded is written as "not recorded" in the card rather than
guessed. The card templates live in the ``cards/`` folder shipped inside the package.

Examples
--------
>>> import datasets, ds2_hf
>>> subset = datasets.Dataset.from_dict({"text": ["a", "b"], "rating": [5, 4], "curated_rating": [5, 5]})
>>> folder = ds2_hf.save_subset(subset, "/tmp/my-subset", source="org/pool", license="apache-2.0",
...                             overwrite=True)
>>> datasets.load_dataset(str(folder), split="train").num_rows
2
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import os
import re
import shutil
import tempfile
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

from . import columns as C
from .io import json_default

logger = logging.getLogger(__name__)

__all__ = [
    "PublishConfig",
    "PushResult",
    "PushError",
    "build_card",
    "save_subset",
    "push_subset",
    "push_folder",
    "load_summary",
    "read_reports",
]

REPORT_FILE = "ds2_report.json"
HTML_FILE = "ds2_report.html"
CARD_FILE = "README.md"
DATA_DIR = "data"
FIGURES_DIR = "figures"
#: Paths :func:`save_subset` owns inside a folder (replaced by ``overwrite=True``; nothing else is touched).
MANAGED = (CARD_FILE, REPORT_FILE, HTML_FILE, DATA_DIR, FIGURES_DIR)
#: Remote paths :func:`push_folder` prunes when a re-push no longer contains them (stale shards, old figures).
PRUNE_PATTERNS = (f"{DATA_DIR}/*", f"{FIGURES_DIR}/*")
SUMMARY_VERSION = 1

CATEGORY_CANDIDATES = ("source", "dataset", "category", "task", "domain", "subset", "origin", "task_name")
NOT_RECORDED = "not recorded"

CITATION = """@inproceedings{pang2025improving,
  title     = {Improving Data Efficiency via Curating {LLM}-Driven Rating Systems},
  author    = {Pang, Jinlong and Wei, Jiaheng and Shah, Ankit Parag and Zhu, Zhaowei and Wang, Yaxuan and
               Qian, Chen and Liu, Yang and Bao, Yujia and Wei, Wei},
  booktitle = {International Conference on Learning Representations (ICLR)},
  year      = {2025},
  url       = {https://arxiv.org/abs/2410.10877}
}"""

_SIZE_CATEGORIES = (
    (1_000, "n<1K"),
    (10_000, "1K<n<10K"),
    (100_000, "10K<n<100K"),
    (1_000_000, "100K<n<1M"),
    (10_000_000, "1M<n<10M"),
    (100_000_000, "10M<n<100M"),
    (1_000_000_000, "100M<n<1B"),
)


class PushError(RuntimeError):
    """Publishing to the Hub failed; the message says why and how to fix it (it never contains the token)."""


@dataclass(frozen=True)
class PublishConfig:
    """Options of the publishing stage (card metadata, data layout, figures).

    Parameters
    ----------
    pretty_name : str, optional
        Title of the card; default ``"<source> (DS2 subset)"``.
    license : str, optional
        Hub licence id (``"apache-2.0"``, ``"cc-by-nc-4.0"``, ...). Default: the source's licence from the report,
        else ``"unknown"`` (the card then says the licence was not recorded).
    language : str or sequence of str, optional
        ISO 639-1 codes. Default: the source's languages from the report, else omitted.
    task_categories : sequence of str, default ("text-generation",)
        Hub task categories; instruction-tuning data is text generation.
    tags : sequence of str, default ()
        Extra tags, added to ``ds2``, ``data-selection`` and (for LLM ratings) ``synthetic-ratings``.
    split : str, default "train"
        Split name of the published rows.
    keep_embedding : bool, default False
        Keep the ``embedding`` column in the parquet files (it is large and recomputable, so it is dropped).
    drop_columns : sequence of str, default ()
        More columns to leave out of the parquet files.
    max_shard_size : int or str, default "500MB"
        Largest parquet shard, in bytes or as ``"500MB"`` / ``"1GB"``.
    num_examples : int, default 5
        Corrected-rating examples shown in the card.
    category_column : str or None, default "auto"
        Column giving each row's source / category for the composition figure; ``"auto"`` picks the first of
        :data:`CATEGORY_CANDIDATES` that holds strings; ``None`` disables the figure.
    figures : bool, default True
        Render the PNG figures.
    rating_column : str, default "rating"
        Column with the raw (rated) score.
    curation_columns : ds2_hf.columns.CurationColumns
        Names of the curation outputs (``curated_rating``, ``curation_confidence``, ...).
    embedding_column : str, default "embedding"
        Column dropped unless ``keep_embedding``.
    repo_id : str, optional
        Hub id shown in the card's loading snippet (:func:`push_subset` sets it).
    """

    pretty_name: str | None = None
    license: str | None = None
    language: str | Sequence[str] | None = None
    task_categories: Sequence[str] = ("text-generation",)
    tags: Sequence[str] = ()
    split: str = "train"
    keep_embedding: bool = False
    drop_columns: Sequence[str] = ()
    max_shard_size: int | str = "500MB"
    num_examples: int = 5
    category_column: str | None = "auto"
    figures: bool = True
    rating_column: str = C.RATING
    curation_columns: C.CurationColumns = field(default_factory=C.CurationColumns)
    embedding_column: str = C.EMBEDDING
    repo_id: str | None = None

    def __post_init__(self) -> None:
        if self.num_examples < 0:
            raise ValueError(f"num_examples must be >= 0, got {self.num_examples}")
        _parse_size(self.max_shard_size)
        if not self.split or not self.split.replace("_", "").replace("-", "").isalnum():
            raise ValueError(f"split={self.split!r} must be a non-empty name of letters, digits, '_' or '-'")


@dataclass(frozen=True)
class PushResult:
    """What :func:`push_folder` did.

    Attributes
    ----------
    repo_id : str
        Full ``namespace/name`` of the dataset repository.
    url : str
        Web address of the repository.
    revision : str
        Branch the commit went to.
    commit_oid : str
        The commit now at the head of ``revision`` (the previous head when nothing changed).
    commit_url : str
        Web address of that commit.
    changed : bool
        False when every file was already on the Hub byte for byte, so no commit was made.
    files : tuple of str
        Paths of the folder that were part of the upload.
    """

    repo_id: str
    url: str
    revision: str
    commit_oid: str
    commit_url: str
    changed: bool
    files: tuple[str, ...]


# ---------------------------------------------------------------------------------------------------- options
def _make_config(config: PublishConfig | None, options: Mapping[str, Any]) -> PublishConfig:
    config = config or PublishConfig()
    if not options:
        return config
    valid = {f.name for f in dataclasses.fields(PublishConfig)}
    unknown = sorted(set(options) - valid)
    if unknown:
        raise TypeError(f"unknown publishing option(s) {unknown}; valid options are {sorted(valid)}")
    return dataclasses.replace(config, **options)


def _parse_size(size: int | str) -> int:
    if isinstance(size, int) and not isinstance(size, bool):
        if size <= 0:
            raise ValueError(f"max_shard_size must be positive, got {size}")
        return size
    units = {"KB": 10**3, "MB": 10**6, "GB": 10**9, "KIB": 2**10, "MIB": 2**20, "GIB": 2**30, "B": 1}
    text = str(size).strip().upper()
    for unit, factor in sorted(units.items(), key=lambda kv: -len(kv[0])):
        if text.endswith(unit):
            try:
                value = float(text[: -len(unit)])
            except ValueError:
                break
            if value > 0:
                return int(value * factor)
    raise ValueError(f"max_shard_size={size!r} is not a size; use bytes (an int) or e.g. '500MB', '1GB'")


def _size_category(n: int) -> str:
    for bound, name in _SIZE_CATEGORIES:
        if n < bound:
            return name
    return "n>1T"


def _as_list(value) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        return [value]
    return [str(v) for v in value]


# ---------------------------------------------------------------------------------------------------- arrays
def _column(data, name: str | None) -> np.ndarray | None:
    """One column of a Dataset or a mapping of arrays as a NumPy array (nulls -> NaN / None), or None."""
    if data is None or name is None:
        return None
    if isinstance(data, Mapping):
        return None if data.get(name) is None else np.asarray(data[name])
    if name not in (data.column_names or []):
        return None
    col = data.select_columns([name]).with_format("arrow")[:][name]
    return col.to_numpy(zero_copy_only=False)


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


def _category_column(subset, config: PublishConfig) -> str | None:
    if config.category_column is None:
        return None
    if config.category_column != "auto":
        if config.category_column not in subset.column_names:
            raise ValueError(
                f"category_column={config.category_column!r} is not a column of the subset; "
                f"columns are {subset.column_names}; pass category_column=None to skip the composition figure"
            )
        return config.category_column
    for name in CATEGORY_CANDIDATES:
        feature = subset.features.get(name)
        if feature is not None and getattr(feature, "dtype", None) in ("string", "large_string"):
            return name
    return None


def _row_text(row: Mapping[str, Any], max_chars: int = 160) -> str:
    from .formats import Formatter

    try:
        text = Formatter(style="plain").text(row)
    except (ValueError, KeyError, TypeError):
        strings = [v for v in row.values() if isinstance(v, str) and v.strip()]
        text = max(strings, key=len) if strings else ""
    text = " ".join(text.split())
    return text if len(text) <= max_chars else text[: max_chars - 1].rstrip() + "…"


# ---------------------------------------------------------------------------------------------------- summary
def _normalise_report(report: Mapping[str, Any] | None, source) -> dict[str, Any]:
    report = json.loads(json.dumps(dict(report or {}), default=json_default))
    if source is not None:
        given = {"dataset": source} if isinstance(source, str) else dict(source)
        report["source"] = {**(report.get("source") or {}), **{k: v for k, v in given.items() if v is not None}}
    return report


def _published_columns(subset, config: PublishConfig) -> list[str]:
    drop = set(config.drop_columns)
    if not config.keep_embedding:
        drop.add(config.embedding_column)
    missing = sorted(set(config.drop_columns) - set(subset.column_names))
    if missing:
        raise ValueError(f"drop_columns {missing} are not columns of the subset; columns are {subset.column_names}")
    keep = [c for c in subset.column_names if c not in drop]
    if not keep:
        raise ValueError(f"no column left to publish after dropping {sorted(drop)}")
    return keep


def _summarize(subset, report: dict[str, Any], pool, config: PublishConfig) -> dict[str, Any]:
    """Every number and table the card shows, JSON-serialisable (stored in ``ds2_report.json``)."""
    cols = config.curation_columns
    curation = report.get("curation") or {}
    selection = report.get("selection") or {}

    sub_raw = _column(subset, config.rating_column)
    sub_cur = _column(subset, cols.curated_rating)
    pool_raw = _column(pool, config.rating_column)
    pool_cur = _column(pool, cols.curated_rating)

    k = curation.get("num_classes")
    k_inferred = k is None
    if k is None:
        observed = [_valid_ratings(a, None) for a in (sub_raw, sub_cur, pool_raw, pool_cur)]
        observed = [a for a in observed if a is not None and a.size]
        k = int(max(a.max() for a in observed)) + 1 if observed else None
    k = int(k) if k is not None else None

    distributions: dict[str, list[int]] = {}
    if k:
        pool_series = {
            "pool, raw": curation.get("counts_raw") or _counts(_valid_ratings(pool_raw, k), k),
            "pool, curated": curation.get("counts_curated") or _counts(_valid_ratings(pool_cur, k), k),
            "subset, raw": _counts(_valid_ratings(sub_raw, k), k),
            "subset, curated": _counts(_valid_ratings(sub_cur, k), k),
        }
        distributions = {name: [int(c) for c in counts] for name, counts in pool_series.items()
                         if counts is not None and len(counts) == k}

    # long-tail: the cut is the lowest long-tail score selected inside the lowest selected curated score
    sub_lt = _column(subset, cols.long_tail)
    long_tail: dict[str, Any] = {}
    if sub_lt is not None:
        lt = np.asarray(sub_lt, dtype=np.float64)
        long_tail = {"subset_min": _finite(np.nanmin(lt)) if lt.size else None,
                     "subset_median": _finite(np.nanmedian(lt)) if lt.size else None}
        pool_lt = _column(pool, cols.long_tail)
        if pool_lt is not None:
            p = np.asarray(pool_lt, dtype=np.float64)
            long_tail["pool_median"] = _finite(np.nanmedian(p)) if p.size else None
        cur = np.asarray(sub_cur, dtype=np.float64) if sub_cur is not None else None
        if selection.get("strategy") == "ds2" and cur is not None and np.isfinite(cur).any():
            boundary = float(np.nanmin(cur))
            at_boundary = lt[(cur == boundary) & np.isfinite(lt)]
            if at_boundary.size:
                long_tail["cut"] = float(at_boundary.min())
                long_tail["cut_score"] = int(boundary)

    # composition by source / category
    composition: dict[str, Any] = {}
    cat = _category_column(subset, config)
    if cat is not None:
        sub_counts = Counter(str(v) for v in _column(subset, cat))
        pool_vals = _column(pool, cat)
        composition = {
            "column": cat,
            "subset": dict(sorted(sub_counts.items(), key=lambda kv: (-kv[1], kv[0]))),
            "pool": dict(sorted(Counter(str(v) for v in pool_vals).items(), key=lambda kv: (-kv[1], kv[0])))
            if pool_vals is not None else None,
        }

    # examples of corrected ratings (old, new, confidence), most confident first
    examples: list[dict[str, Any]] = []
    subset_changed = None
    source_rows = pool if pool is not None and not isinstance(pool, Mapping) else subset
    raw, new = _column(source_rows, config.rating_column), _column(source_rows, cols.curated_rating)
    if raw is not None and new is not None:
        raw_f, new_f = np.asarray(raw, dtype=np.float64), np.asarray(new, dtype=np.float64)
        changed = np.flatnonzero(np.isfinite(raw_f) & np.isfinite(new_f) & (raw_f != new_f))
        conf = _column(source_rows, cols.confidence)
        conf_f = np.asarray(conf, dtype=np.float64) if conf is not None else np.full(len(raw_f), np.nan)
        order = changed[np.lexsort((changed, -np.nan_to_num(conf_f[changed], nan=-1.0)))]
        for i in order[: config.num_examples]:
            row = source_rows[int(i)]
            examples.append({
                "text": _row_text({c: v for c, v in row.items() if c not in (config.embedding_column, cols.posterior)}),
                "rating": int(raw_f[i]),
                "curated_rating": int(new_f[i]),
                "confidence": _finite(conf_f[i]),
            })

    if sub_raw is not None and sub_cur is not None:
        a, b = np.asarray(sub_raw, dtype=np.float64), np.asarray(sub_cur, dtype=np.float64)
        subset_changed = int((np.isfinite(a) & np.isfinite(b) & (a != b)).sum())
    duplicates = _duplicate_summary(subset, curation, pool, config)
    misrated = _column(subset, cols.misrated)
    present = [c for c in (config.rating_column, *cols.names()) if c in subset.column_names]
    return {
        "version": SUMMARY_VERSION,
        "num_rows": subset.num_rows,
        "num_classes": k,
        "num_classes_inferred": bool(k_inferred and k is not None),
        "columns_present": present,
        "curated": cols.curated_rating in subset.column_names,
        "subset_changed": subset_changed,
        "subset_flagged": int(np.asarray(misrated, dtype=bool).sum()) if misrated is not None else None,
        "distributions": distributions,
        "long_tail": long_tail,
        "composition": composition,
        "examples": examples,
        "duplicates": duplicates,
    }


def _duplicate_summary(subset, curation: Mapping[str, Any], pool, config: PublishConfig) -> dict[str, Any]:
    """Duplicate groups of the pool (from the curation report) with example texts, and repeats in the subset."""
    found = curation.get("structure", {}).get("duplicates") if isinstance(curation.get("structure"), Mapping) else None
    if not found:
        return {}
    rows = pool if pool is not None and not isinstance(pool, Mapping) else None
    largest = []
    for size, row in found["largest"]:
        text = None
        if rows is not None and 0 <= row < len(rows):
            drop = (config.embedding_column, config.curation_columns.posterior)
            text = _row_text({c: v for c, v in rows[int(row)].items() if c not in drop})
        largest.append({"size": int(size), "text": text})
    codes = _column(subset, config.curation_columns.duplicate_group)
    repeats = None
    if codes is not None:
        c = np.asarray(codes, dtype=np.int64)
        c = c[c >= 0]
        repeats = int(c.size - np.unique(c).size)
    return {**{k: found[k] for k in ("n_groups", "n_rows", "n_redundant")}, "largest": largest,
            "subset_repeats": repeats}


def _finite(x) -> float | None:
    x = float(x)
    return x if math.isfinite(x) else None


# ---------------------------------------------------------------------------------------------------- figures
def _figure_pngs(subset, pool, summary: dict, report: dict, config: PublishConfig) -> dict[str, bytes]:
    """Render every figure the data allow, as ``{"figures/<name>.png": png bytes}``."""
    from . import plots

    cols = config.curation_columns
    out: dict[str, bytes] = {}
    T = (report.get("curation") or {}).get("transition_matrix")
    if T is not None:
        out[f"{FIGURES_DIR}/transition_matrix.png"] = plots.png_bytes(plots.plot_transition_matrix(T))
    raters = (report.get("curation") or {}).get("raters")
    if raters:
        fig = plots.plot_rater_matrices([s["transition_matrix"] for s in raters["summary"]], raters["names"])
        out[f"{FIGURES_DIR}/rater_matrices.png"] = plots.png_bytes(fig)
    if summary["distributions"]:
        fig = plots.plot_rating_distributions(summary["distributions"], title="Rating distribution")
        out[f"{FIGURES_DIR}/rating_distribution.png"] = plots.png_bytes(fig)
    sub_lt = _column(subset, cols.long_tail)
    if sub_lt is not None and np.isfinite(np.asarray(sub_lt, dtype=np.float64)).any():
        pool_lt = _column(pool, cols.long_tail)
        lt = summary["long_tail"]
        label = f"cut within curated score {lt['cut_score']}: {lt['cut']:.3g}" if "cut" in lt else None
        fig = plots.plot_long_tail(pool_lt if pool_lt is not None else sub_lt,
                                   selected_scores=sub_lt if pool_lt is not None else None,
                                   cut=lt.get("cut"), cut_label=label)
        out[f"{FIGURES_DIR}/long_tail.png"] = plots.png_bytes(fig)
    comp = summary["composition"]
    if comp and comp["subset"]:
        fig = plots.plot_composition(comp["pool"], comp["subset"], title=f"Composition by `{comp['column']}`")
        out[f"{FIGURES_DIR}/composition.png"] = plots.png_bytes(fig)
    return out


# ---------------------------------------------------------------------------------------------------- card
def _fmt(value, digits: int = 3) -> str:
    if value is None:
        return NOT_RECORDED
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:.{digits}g}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def _curation_method(curation: Mapping[str, Any]) -> str | None:
    """The curation method, with the joint model's second stage (neighbourhood prior) when it was tried."""
    method = curation.get("method")
    stage = (curation.get("joint") or {}).get("neighbourhood_prior") or {}
    if method != "joint" or "heldout_gain_second" not in stage:
        return method
    if stage.get("used"):
        return "joint: EM over the k-NN graph, then the neighbourhood prior (it predicted held-out ratings better)"
    return ("joint: EM over the k-NN graph (the neighbourhood prior was tried and not kept: it predicted held-out "
            "ratings worse)")


def _card_context(summary: dict, report: dict, config: PublishConfig, figures: Sequence[str]) -> dict[str, Any]:
    """Template variables shared by the Markdown card and the HTML report (plain data, no markup)."""
    source = report.get("source") or {}
    rating = report.get("rating") or {}
    embedding = report.get("embedding") or {}
    curation = report.get("curation") or {}
    selection = report.get("selection") or {}
    knn = curation.get("knn") or {}
    clus = curation.get("clusterability") or {}
    k = summary["num_classes"]
    dataset = source.get("dataset")

    knn_text = NOT_RECORDED
    if knn:
        knn_text = f"{knn.get('method', '?')}, k = {knn.get('k', '?')}"
        recall = knn.get("recall")
        knn_text += f", recall@k = {recall:.3f}" if isinstance(recall, (int, float)) else ", recall not measured"
    selected = summary["num_rows"]
    n_pool = selection.get("n_pool") or curation.get("n")
    provenance = [
        ("Source dataset", dataset),
        ("Source revision", source.get("revision")),
        ("Source licence", source.get("license")),
        ("Rater", " / ".join(str(rating[x]) for x in ("backend", "model") if rating.get(x)) or None),
        ("Rating mode", rating.get("mode")),
        ("Prompt-template hash", rating.get("template_hash")),
        ("Embedder", " / ".join(str(embedding[x]) for x in ("backend", "model") if embedding.get(x)) or None),
        ("Embedding dimension", embedding.get("dim")),
        ("k-NN", knn_text if knn else None),
        ("Curation method", _curation_method(curation)),
        ("Number of scores K", f"{k} (inferred from the largest rating)"
         if k is not None and summary.get("num_classes_inferred") else k),
        ("Rows rated / pool", f"{_fmt(curation.get('n_rated'))} / {_fmt(curation.get('n'))}" if curation else None),
        ("Ratings flagged / changed by curation",
         f"{_fmt(curation.get('n_flagged'))} / {_fmt(curation.get('n_changed'))}" if curation else None),
        ("Curation guard", f"{clus.get('status', 'trust')} (trust {clus['gate']:.2f})"
         if isinstance(clus.get("gate"), (int, float)) else None),
        ("Selection strategy", selection.get("strategy")),
        ("Selected rows", f"{selected:,}" + (f" of {int(n_pool):,} ({selected / n_pool:.1%})" if n_pool else "")),
    ]
    options = []
    selection_cfg = selection.get("config")
    if selection_cfg is None:  # a flat selection report: show its scalar settings
        shown = {"strategy", "k", "n_pool", "n_selected"}
        selection_cfg = {key: value for key, value in selection.items()
                         if key not in shown and (value is None or isinstance(value, (str, int, float, bool)))}
    for stage, cfg in (("curation", curation.get("config")), ("selection", selection_cfg)):
        for key, value in sorted((cfg or {}).items()):
            options.append((f"{stage}.{key}", json.dumps(value, default=str)))

    T = curation.get("transition_matrix")
    labels = [str(i) for i in range(len(T))] if T else []
    matrix_rows = [(labels[i], [f"{float(v):.3f}" for v in row]) for i, row in enumerate(T)] if T else []
    dist = summary["distributions"]
    dist_rows = [(str(s), [_fmt(counts[s]) for counts in dist.values()]) for s in range(k)] if dist and k else []
    comp = summary["composition"]
    comp_rows = []
    if comp:
        n_sub = sum(comp["subset"].values()) or 1
        n_pool_c = sum((comp["pool"] or {}).values()) or None
        for name in list(comp["subset"])[:20]:
            n = comp["subset"][name]
            p = (comp["pool"] or {}).get(name)
            comp_rows.append((name, f"{n:,}", f"{n / n_sub:.1%}",
                              f"{p:,}" if p is not None else "–",
                              f"{p / n_pool_c:.1%}" if p is not None and n_pool_c else "–"))

    unknown = [name for name, value in provenance if value is None]
    summary_sentence = (
        f"A {selected:,}-row subset" + (f" of [`{dataset}`](https://huggingface.co/datasets/{dataset})"
                                        if dataset and "/" in str(dataset) else f" of `{dataset}`" if dataset else "")
        + (f" ({selected / n_pool:.1%} of {int(n_pool):,} rows)" if n_pool else "")
        + ", selected with [DS2](https://arxiv.org/abs/2410.10877): every sample was rated, "
        + ("the ratings were checked for k-NN consensus between embeddings and kept as rated, because the curation "
           "guard found that neighbours here do not share the rated quality (see below), "
           if clus.get("status") == "withheld" else
           "the noisy ratings were corrected with a score transition matrix estimated from k-NN agreement between "
           "embeddings, ")
        + "and the highest-scored samples were kept, each duplicate once."
    ) if summary["curated"] or curation else (
        f"A {selected:,}-row subset" + (f" of `{dataset}`" if dataset else "")
        + " published with ds2-hf. Its rows carry no DS2 curation columns, so the curation details below are "
        "not recorded."
    )
    return {
        "pretty_name": config.pretty_name or _default_name(dataset),
        "summary_sentence": summary_sentence,
        "summary_sentence_plain": re.sub(r"\[([^\]]+)\]\([^)]+\)", r"\1", summary_sentence).replace("`", ""),
        "provenance": [(name, _fmt(value)) for name, value in provenance],
        "unknown": unknown,
        "options": options,
        "matrix_labels": labels,
        "matrix_rows": matrix_rows,
        "dist_names": list(dist),
        "dist_rows": dist_rows,
        "long_tail": summary["long_tail"],
        "composition_column": comp.get("column") if comp else None,
        "composition_rows": comp_rows,
        "examples": summary["examples"],
        "guard": _guard_context(clus),
        "matrix_withheld": clus.get("status") == "withheld",
        "duplicates": summary.get("duplicates") or {},
        "command": report.get("command"),
        "figures": {Path(f).stem: f for f in figures},
        "columns": _column_docs(summary["columns_present"], config),
        "citation": CITATION,
        "num_rows": selected,
        "subset_changed": summary.get("subset_changed"),
        "subset_flagged": summary.get("subset_flagged"),
        "curated": summary["curated"],
        "split": config.split,
        "load_id": config.repo_id,
        **_rater_context(curation.get("raters")),
    }


def _guard_context(clus: Mapping[str, Any]) -> dict[str, Any]:
    """The curation guard's verdict, advice and checks, as plain strings for the card."""
    if not clus.get("verdict"):
        return {}
    checks = [(c["name"], "passed" if c["passed"] else ("failed" if c["gate"] <= 0 else f"partial ({c['gate']:.2f})"),
               c["summary"]) for c in clus.get("checks", [])]
    return {"status": clus.get("status"), "verdict": clus["verdict"], "advice": clus.get("advice") or "",
            "checks": checks}


def _rater_context(raters: Mapping[str, Any] | None) -> dict[str, Any]:
    """The per-rater table, trust line and audit line of a fused curation (several rating columns)."""
    if not raters:
        return {"raters": [], "raters_trust": None, "raters_audit": None}
    rows = [(s["name"], f"{s['n_rated']:,}", f"{s['accuracy']:.3f}", f"{s['bias']:+.3f}",
             f"{s['agreement_with_fused']:.3f}") for s in raters["summary"]]
    audit = raters.get("audit")
    audit_line = None
    if audit:
        moved = ", ".join(f"{s['name']} {a['accuracy_shift']:+.3f}" for s, a in zip(raters["summary"], audit["raters"]))
        audit_line = (f"{audit['n_audited']:,} rows carry trusted audit scores; they moved the estimated accuracies by "
                      f"{moved} and changed the fused score of {audit['changed_rows']:.1%} of the other rows.")
    return {"raters": rows, "raters_trust": raters["trust"], "raters_audit": audit_line}


def _default_name(dataset) -> str:
    return f"{str(dataset).split('/')[-1]} (DS2 subset)" if dataset else "DS2 subset"


def _column_docs(present: Sequence[str], config: PublishConfig) -> list[tuple[str, str]]:
    cols = config.curation_columns
    docs = {
        config.rating_column: "raw LLM rating, integer 0..K-1 (null when the rater failed)",
        cols.curated_rating: "rating after DS2 curation, integer 0..K-1",
        cols.confidence: "confidence of the curated rating, float in [0, 1]",
        cols.misrated: "true when curation judged the raw rating wrong",
        cols.long_tail: "long-tail (rarity) score in embedding space, higher = rarer",
        cols.posterior: "posterior over the K true scores (sums to 1)",
    }
    return [(c, docs[c]) for c in present if c in docs]


def _card_data(subset_features, summary: dict, report: dict, config: PublishConfig, num_bytes: int,
               download_size: int):
    import datasets
    from datasets.info import DatasetInfosDict
    from datasets.splits import SplitDict, SplitInfo
    from datasets.utils.metadata import MetadataConfigs
    from huggingface_hub import DatasetCardData

    source = report.get("source") or {}
    rating = report.get("rating") or {}
    tags = ["ds2", "data-selection"]
    if rating:
        tags.append("synthetic-ratings")
    tags += [t for t in _as_list(config.tags) if t not in tags]
    card_data = DatasetCardData(
        pretty_name=config.pretty_name or _default_name(source.get("dataset")),
        license=config.license or source.get("license") or "unknown",
        language=_as_list(config.language or source.get("language")) or None,
        task_categories=list(config.task_categories) or None,
        size_categories=[_size_category(summary["num_rows"])],
        source_datasets=[str(source["dataset"])] if source.get("dataset") else None,
        tags=tags,
    )
    info = datasets.DatasetInfo(features=subset_features, dataset_size=num_bytes, download_size=download_size)
    info.splits = SplitDict()
    info.splits.add(SplitInfo(name=config.split, num_bytes=num_bytes, num_examples=summary["num_rows"]))
    DatasetInfosDict({"default": info}).to_dataset_card_data(card_data)
    MetadataConfigs({"default": {"data_files": [{"split": config.split, "path": f"{DATA_DIR}/{config.split}-*"}]}}
                    ).to_dataset_card_data(card_data)
    curation = report.get("curation") or {}
    selection = report.get("selection") or {}
    embedding = report.get("embedding") or {}
    ds2 = {
        "num_classes": summary["num_classes"],
        "curation_method": curation.get("method"),
        "selection_strategy": selection.get("strategy"),
        "selected": summary["num_rows"],
        "pool": selection.get("n_pool") or curation.get("n"),
        "rater_model": rating.get("model"),
        "prompt_template_hash": rating.get("template_hash"),
        "embedding_model": embedding.get("model"),
        "knn_recall": (curation.get("knn") or {}).get("recall"),
        "source_revision": source.get("revision"),
    }
    card_data["ds2"] = {key: value for key, value in ds2.items() if value is not None}
    return card_data


def _template_path(name: str) -> Path:
    path = resources.files("ds2_hf") / "cards" / name
    if not path.is_file():
        raise FileNotFoundError(
            f"card template {name!r} is missing from the installed package (expected {path}); reinstall ds2-hf"
        )
    return Path(str(path))


def _render_card(card_data, context: dict):
    from huggingface_hub import DatasetCard

    from ._import_utils import require

    require("jinja2", extra=None, purpose="rendering the dataset card")
    return DatasetCard.from_template(card_data, template_path=_template_path("dataset_card.md"), ctx=context)


# ---------------------------------------------------------------------------------------------------- save
def _validate_subset(subset) -> None:
    import datasets

    if isinstance(subset, datasets.DatasetDict):
        raise TypeError(
            f"save_subset takes one split (a datasets.Dataset), got a DatasetDict with splits {list(subset)}; "
            f"pass e.g. subset['train']"
        )
    if not isinstance(subset, datasets.Dataset):
        raise TypeError(f"subset must be a datasets.Dataset, got {type(subset).__name__}")
    if subset.num_rows == 0:
        raise ValueError("the subset is empty (0 rows); there is nothing to publish. Check the selection size k.")


def _prepare(subset, report, source, pool, config: PublishConfig):
    _validate_subset(subset)
    if pool is not None and not isinstance(pool, Mapping):
        import datasets

        if not isinstance(pool, datasets.Dataset):
            raise TypeError(f"pool must be a datasets.Dataset or a mapping of arrays, got {type(pool).__name__}")
    report = _normalise_report(report, source)
    summary = _summarize(subset, report, pool, config)
    return report, summary


def build_card(subset, *, report: Mapping[str, Any] | None = None, source: str | Mapping | None = None,
               pool=None, config: PublishConfig | None = None, **options):
    """Render the dataset card of a subset without writing anything.

    Parameters are those of :func:`save_subset`. The card links figures under ``figures/`` that only
    :func:`save_subset` writes.

    Returns
    -------
    huggingface_hub.DatasetCard
        ``card.data`` holds the YAML metadata, ``str(card)`` the README text.
    """
    config = _make_config(config, options)
    report, summary = _prepare(subset, report, source, pool, config)
    published = subset.select_columns(_published_columns(subset, config))
    names = _expected_figures(summary, report, subset, config)
    card_data = _card_data(published.features, summary, report, config, published.data.nbytes, 0)
    return _render_card(card_data, _card_context(summary, report, config, names))


def _expected_figures(summary, report, subset, config) -> list[str]:
    if not config.figures:
        return []
    names = []
    if (report.get("curation") or {}).get("transition_matrix") is not None:
        names.append("transition_matrix.png")
    if (report.get("curation") or {}).get("raters"):
        names.append("rater_matrices.png")
    if summary["distributions"]:
        names.append("rating_distribution.png")
    if config.curation_columns.long_tail in subset.column_names:
        names.append("long_tail.png")
    if summary["composition"]:
        names.append("composition.png")
    return [f"{FIGURES_DIR}/{n}" for n in names]


def _write_shards(published, folder: Path, config: PublishConfig) -> tuple[list[str], int]:
    num_bytes = published.data.nbytes if published._indices is None else int(
        published.data.nbytes * published.num_rows / max(len(published.data), 1))
    num_shards = max(1, math.ceil(num_bytes / _parse_size(config.max_shard_size)))
    num_shards = min(num_shards, published.num_rows)
    (folder / DATA_DIR).mkdir(parents=True, exist_ok=True)
    files = []
    for index in range(num_shards):
        shard = published.shard(num_shards=num_shards, index=index, contiguous=True)
        rel = f"{DATA_DIR}/{config.split}-{index:05d}-of-{num_shards:05d}.parquet"
        shard.to_parquet(str(folder / rel))
        files.append(rel)
    return files, num_bytes


def save_subset(
    subset,
    folder: str | os.PathLike,
    *,
    report: Mapping[str, Any] | None = None,
    source: str | Mapping[str, Any] | None = None,
    pool=None,
    config: PublishConfig | None = None,
    overwrite: bool = False,
    **options,
) -> Path:
    """Write a subset, its dataset card, figures and curation report to ``folder`` in the Hub's layout.

    Parameters
    ----------
    subset : datasets.Dataset
        The selected rows: user columns plus, when curated, ``rating``, ``curated_rating``,
        ``curation_confidence``, ``misrated``, ``long_tail_score`` (and ``embedding``, dropped by default).
        Missing curation columns are fine: the card then says what is not recorded.
    folder : str or path
        Destination. Must be empty or absent unless ``overwrite=True``.
    report : dict, optional
        The curation report (keys ``curation``, ``selection``, ``rating``, ``embedding``, ``source``,
        ``command``; all optional), as produced by the curation and selection stages.
    source : str or dict, optional
        The source dataset id, or ``{"dataset", "revision", "license", "language"}``; overrides
        ``report["source"]``.
    pool : datasets.Dataset or mapping of str to array-like, optional
        The full curated pool (or just its ``rating``, ``curated_rating``, ``long_tail_score`` and category
        arrays, each shape (N,)) for the pool-vs-subset distributions, long-tail histogram and composition.
    config : PublishConfig, optional
        Publishing options; any :class:`PublishConfig` field may also be passed as a keyword.
    overwrite : bool, default False
        Replace a previous save in ``folder``: only ``README.md``, ``ds2_report.json``, ``data/`` and
        ``figures/`` are replaced; other files are left alone.

    Returns
    -------
    pathlib.Path
        ``folder``.

    Raises
    ------
    ValueError
        Empty subset, a bad option, or ``folder`` holds files and ``overwrite`` is False.
    TypeError
        ``subset`` is not a :class:`datasets.Dataset`, or an unknown option.

    Examples
    --------
    >>> import datasets, ds2_hf
    >>> ds = datasets.Dataset.from_dict({"text": ["x", "y"], "rating": [3, 5], "curated_rating": [4, 5]})
    >>> path = ds2_hf.save_subset(ds, "/tmp/ds2-doc-subset", report={"command": "ds2 run ..."}, overwrite=True)
    >>> sorted(p.name for p in path.iterdir())
    ['README.md', 'data', 'ds2_report.json', 'figures']
    """
    config = _make_config(config, options)
    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise ValueError(f"{str(folder)!r} is a file, not a folder; choose a folder path for the subset")
    existing = sorted(p.name for p in folder.iterdir()) if folder.is_dir() else []
    if existing and not overwrite:
        raise ValueError(
            f"folder {str(folder)!r} is not empty (it holds {existing[:5]}{' ...' if len(existing) > 5 else ''}); "
            f"refusing to write into it. Choose an empty folder, or pass overwrite=True (--overwrite) to replace "
            f"{list(MANAGED)} and leave other files alone."
        )
    report, summary = _prepare(subset, report, source, pool, config)
    published = subset.select_columns(_published_columns(subset, config))

    folder.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{folder.name}.", dir=folder.parent))
    try:
        data_files, num_bytes = _write_shards(published, staging, config)
        download_size = sum((staging / f).stat().st_size for f in data_files)
        pngs = _figure_pngs(subset, pool, summary, report, config) if config.figures else {}
        for rel, png in pngs.items():
            (staging / rel).parent.mkdir(parents=True, exist_ok=True)
            (staging / rel).write_bytes(png)
        figures = sorted(pngs)
        card_data = _card_data(published.features, summary, report, config, num_bytes, download_size)
        card = _render_card(card_data, _card_context(summary, report, config, figures))
        (staging / CARD_FILE).write_text(str(card), encoding="utf-8")
        payload = {"report": report, "summary": summary, "files": {"data": data_files, "figures": figures},
                   "publish": _config_record(config)}
        (staging / REPORT_FILE).write_text(json.dumps(payload, indent=2) + "\n", encoding="utf-8")

        folder.mkdir(parents=True, exist_ok=True)
        for name in MANAGED:
            target = folder / name
            if target.is_dir() and not target.is_symlink():
                shutil.rmtree(target)
            elif target.exists() or target.is_symlink():
                target.unlink()
            if (staging / name).exists():
                os.replace(staging / name, target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    others = sorted(set(existing) - set(MANAGED))
    if others:
        logger.warning("kept files in %s that are not part of the subset layout: %s", folder, others)
    logger.info("saved %d rows to %s (%d data file(s), %d figure(s))", summary["num_rows"], folder,
                len(data_files), len(figures))
    return folder


def _config_record(config: PublishConfig) -> dict[str, Any]:
    """The options the card text depends on, stored so ``ds2 report`` renders the same content later."""
    return {
        "pretty_name": config.pretty_name,
        "license": config.license,
        "language": _as_list(config.language) or None,
        "split": config.split,
        "repo_id": config.repo_id,
        "rating_column": config.rating_column,
        "curation_columns": dataclasses.asdict(config.curation_columns),
    }


def _config_from_record(record: Mapping[str, Any]) -> PublishConfig:
    record = dict(record or {})
    cols = record.pop("curation_columns", None)
    known = {f.name for f in dataclasses.fields(PublishConfig)}
    kwargs = {k: v for k, v in record.items() if k in known and v is not None}
    if cols:
        kwargs["curation_columns"] = C.CurationColumns(**cols)
    return PublishConfig(**kwargs)


def load_summary(folder: str | os.PathLike) -> dict[str, Any]:
    """Read ``ds2_report.json`` of a folder written by :func:`save_subset` (``{"report", "summary", ...}``)."""
    path = Path(folder) / REPORT_FILE
    if not path.is_file():
        raise FileNotFoundError(
            f"{str(path)!r} does not exist: {str(folder)!r} was not written by ds2_hf.save_subset / `ds2 run`"
        )
    return json.loads(path.read_text(encoding="utf-8"))


# ---------------------------------------------------------------------------------------------------- push
def _resolve_token(token: str | None) -> str:
    from huggingface_hub import get_token

    token = token or get_token()
    if not token:
        raise PushError(
            "no Hugging Face token found. Log in with `hf auth login`, set the HF_TOKEN environment variable, "
            "or pass token=... (a token with write access to the target namespace)."
        )
    return token


def _validate_repo_id(repo_id: str) -> None:
    from huggingface_hub.utils import HFValidationError, validate_repo_id

    if not isinstance(repo_id, str) or not repo_id:
        raise ValueError(f"repo_id must be a non-empty string like 'user/name' or 'org/name', got {repo_id!r}")
    try:
        validate_repo_id(repo_id)
    except HFValidationError as err:
        raise ValueError(
            f"invalid repo id {repo_id!r}: use 'name' or 'namespace/name' with letters, digits, '-', '_' and '.' "
            f"(at most 96 characters, no '--' or '..'). Details: {err}"
        ) from None


def _default_commit_message(folder: Path) -> tuple[str, str]:
    try:
        payload = load_summary(folder)
    except (FileNotFoundError, json.JSONDecodeError):
        return "Upload dataset with ds2-hf", ""
    report, summary = payload.get("report", {}), payload.get("summary", {})
    selection, curation = report.get("selection") or {}, report.get("curation") or {}
    rating = report.get("rating") or {}
    n, pool = summary.get("num_rows"), selection.get("n_pool") or curation.get("n")
    message = f"Add DS2 subset: {n:,} rows" if isinstance(n, int) else "Add DS2 subset"
    if pool:
        message += f" of {int(pool):,}"
    details = [f"{k} {v}" for k, v in (("strategy", selection.get("strategy")),
                                       ("curation", curation.get("method")),
                                       ("rater", rating.get("model"))) if v]
    if details:
        message += f" ({', '.join(details)})"
    description = ""
    if report.get("command"):
        description = f"Reproduce with:\n\n    {report['command']}\n"
    return message, description


def _http_error(err, repo_id: str, revision: str, endpoint: str) -> PushError:
    status = getattr(getattr(err, "response", None), "status_code", None)
    server = getattr(err, "server_message", None) or ""
    where = f"{repo_id!r} (revision {revision!r}) on {endpoint}"
    hints = {
        401: "the token was rejected (invalid or expired). Create a write token at "
             "https://huggingface.co/settings/tokens and log in again with `hf auth login` or set HF_TOKEN.",
        403: "the token may not write there. Use a token with write access to the namespace (for an "
             "organisation, be a member with write rights) or publish under your own namespace.",
        404: "the repository or the branch was not found. Check the repo id and revision; the token must be "
             "able to see the repository.",
        409: "the repository changed during the upload or the name conflicts with another repository. "
             "Retry the push.",
    }
    if status in hints:
        hint = hints[status]
    elif status is not None and status >= 500:
        hint = "the Hub had a server error; nothing was committed. Retry later."
    else:
        hint = "see the server message."
    detail = f" Server said: {server}" if server else ""
    return PushError(f"push to {where} failed with HTTP {status}: {hint}{detail}")


def push_folder(
    folder: str | os.PathLike,
    repo_id: str,
    *,
    private: bool | None = None,
    revision: str | None = None,
    token: str | None = None,
    endpoint: str | None = None,
    commit_message: str | None = None,
    commit_description: str | None = None,
    prune: bool = True,
) -> PushResult:
    """Upload a folder written by :func:`save_subset` to a Hub dataset repository in one commit.

    Creates the repository (and the branch) when needed, then commits every file of the folder at once with
    :meth:`huggingface_hub.HfApi.create_commit`, the single-commit primitive behind ``upload_folder``. Files
    already on the Hub byte for byte are skipped, so re-pushing the same folder makes no commit.

    Parameters
    ----------
    folder : str or path
        A folder with ``README.md`` and ``data/`` (from :func:`save_subset` or ``ds2 run``).
    repo_id : str
        ``"name"`` (your namespace), ``"user/name"`` or ``"org/name"``.
    private : bool, optional
        Visibility of a newly created repository (an existing one keeps its visibility). Default: the
        namespace's default (public unless the organisation says otherwise).
    revision : str, optional
        Branch to commit to; created from ``main`` if missing. Default ``"main"``.
    token : str, optional
        Hub token. Default: ``HF_TOKEN``, else the cached login (``hf auth login``). Never printed or stored.
    endpoint : str, optional
        Hub address. Default: ``HF_ENDPOINT`` if set, else https://huggingface.co.
    commit_message, commit_description : str, optional
        Default: a summary of the subset ("Add DS2 subset: 1,000 rows of 300,000 (strategy ds2, ...)") and the
        command that reproduces it.
    prune : bool, default True
        Delete files under ``data/`` and ``figures/`` of the repository that the folder no longer has (stale
        shards of a previous push), in the same commit.

    Returns
    -------
    PushResult

    Raises
    ------
    ValueError
        Invalid repo id, or ``folder`` is not a dataset folder.
    PushError
        No token, or the Hub refused (401/403/404/409/5xx): the message names the cause and the fix.
    """
    from huggingface_hub import CommitOperationAdd, CommitOperationDelete, HfApi
    from huggingface_hub import constants as hf_constants
    from huggingface_hub.errors import HfHubHTTPError

    folder = Path(folder)
    _validate_repo_id(repo_id)
    if not (folder / CARD_FILE).is_file() or not (folder / DATA_DIR).is_dir():
        raise ValueError(
            f"{str(folder)!r} is not a dataset folder in Hub layout (README.md and data/ are required); "
            f"write one with ds2_hf.save_subset(subset, folder) or `ds2 run ... --out FOLDER`"
        )
    files = sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*")
                   if p.is_file() and not any(part.startswith(".") for part in p.relative_to(folder).parts))
    revision = revision or hf_constants.DEFAULT_REVISION
    endpoint = (endpoint or os.environ.get("HF_ENDPOINT") or hf_constants.ENDPOINT).rstrip("/")
    token = _resolve_token(token)
    default_message, default_description = _default_commit_message(folder)
    api = HfApi(endpoint=endpoint, token=token)
    full_id = repo_id
    try:
        repo_url = api.create_repo(repo_id, repo_type="dataset", private=private, exist_ok=True)
        full_id = repo_url.repo_id or repo_id
        if revision != hf_constants.DEFAULT_REVISION:
            api.create_branch(full_id, branch=revision, repo_type="dataset", exist_ok=True)
        head_before = api.dataset_info(full_id, revision=revision).sha
        operations: list = [CommitOperationAdd(path_in_repo=f, path_or_fileobj=str(folder / f)) for f in files]
        if prune:
            from fnmatch import fnmatch

            remote = api.list_repo_files(full_id, repo_type="dataset", revision=revision)
            operations += [CommitOperationDelete(path_in_repo=f) for f in remote
                           if f not in files and any(fnmatch(f, p) for p in PRUNE_PATTERNS)]
        info = api.create_commit(
            full_id,
            operations=operations,
            commit_message=commit_message or default_message,
            commit_description=commit_description if commit_description is not None else default_description,
            repo_type="dataset",
            revision=revision,
        )
    except HfHubHTTPError as err:
        raise _http_error(err, full_id, revision, endpoint) from None
    head = info.oid
    changed = head != head_before
    result = PushResult(
        repo_id=full_id,
        url=str(repo_url),
        revision=revision,
        commit_oid=head,
        commit_url=info.commit_url,
        changed=changed,
        files=tuple(files),
    )
    logger.info("%s %s (%s)", "pushed to" if changed else "already up to date:", result.url, result.commit_url)
    return result


def push_subset(
    subset,
    repo_id: str,
    *,
    report: Mapping[str, Any] | None = None,
    source: str | Mapping[str, Any] | None = None,
    pool=None,
    config: PublishConfig | None = None,
    folder: str | os.PathLike | None = None,
    overwrite: bool = False,
    private: bool | None = None,
    revision: str | None = None,
    token: str | None = None,
    endpoint: str | None = None,
    commit_message: str | None = None,
    prune: bool = True,
    **options,
) -> PushResult:
    """Save a subset in Hub layout (:func:`save_subset`) and push it in one commit (:func:`push_folder`).

    Parameters
    ----------
    subset, report, source, pool, config, **options
        As for :func:`save_subset`.
    repo_id, private, revision, token, endpoint, commit_message, prune
        As for :func:`push_folder`.
    folder : str or path, optional
        Keep the staged files here (subject to ``overwrite``); default: a temporary folder, removed afterwards.

    Returns
    -------
    PushResult

    Examples
    --------
    >>> result = ds2_hf.push_subset(subset, "my-org/alpaca-ds2-1k", report=report, private=True)  # doctest: +SKIP
    >>> result.commit_url  # doctest: +SKIP
    """
    _validate_repo_id(repo_id)
    _resolve_token(token)  # fail before the (possibly long) save when no token can be found
    if folder is not None:
        path = save_subset(subset, folder, report=report, source=source, pool=pool, config=config,
                           overwrite=overwrite, repo_id=repo_id, **options)
        return push_folder(path, repo_id, private=private, revision=revision, token=token, endpoint=endpoint,
                           commit_message=commit_message, prune=prune)
    with tempfile.TemporaryDirectory(prefix="ds2-push-") as tmp:
        path = save_subset(subset, Path(tmp) / "subset", report=report, source=source, pool=pool, config=config,
                           repo_id=repo_id, **options)
        return push_folder(path, repo_id, private=private, revision=revision, token=token, endpoint=endpoint,
                           commit_message=commit_message, prune=prune)


_REPORT_SECTIONS = ("curation", "selection", "rating", "embedding", "source", "command")


def read_reports(paths: Sequence[str | os.PathLike]) -> dict[str, Any]:
    """Merge report JSON files into one report dict (later files win, section by section).

    A file holding a full report (keys ``curation``, ``selection``, ``rating``, ``embedding``, ``source``,
    ``command``) is merged as is; a flat selection report (as ``ds2 select --report`` writes, with a
    ``strategy`` key) becomes the ``selection`` section; a ``ds2_report.json`` of a saved folder contributes its
    ``report``.
    """
    merged: dict[str, Any] = {}
    for path in paths:
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"report file {str(path)!r} does not exist")
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as err:
            raise ValueError(f"report file {str(path)!r} is not valid JSON: {err}") from None
        if not isinstance(data, dict):
            raise ValueError(f"report file {str(path)!r} must hold a JSON object, got {type(data).__name__}")
        if "report" in data and "summary" in data:
            data = data["report"]
        if not any(key in data for key in _REPORT_SECTIONS) and "strategy" in data:
            data = {"selection": data}
        unknown = sorted(set(data) - set(_REPORT_SECTIONS))
        if unknown:
            logger.warning("report %s: ignoring unknown top-level key(s) %s", path, unknown)
        for key in _REPORT_SECTIONS:
            if key not in data:
                continue
            if isinstance(data[key], dict) and isinstance(merged.get(key), dict):
                merged[key] = {**merged[key], **data[key]}
            else:
                merged[key] = data[key]
    return merged
