"""Options of the publishing stage and the names of the files a subset folder holds."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from .. import columns as C

REPORT_FILE = "ds2_report.json"
HTML_FILE = "ds2_report.html"
CARD_FILE = "README.md"
MANIFEST_FILE = "ds2_manifest.json"
DATA_DIR = "data"
FIGURES_DIR = "figures"
#: Paths :func:`ds2_hf.save_subset` owns inside a folder (replaced by ``overwrite=True``; nothing else is touched).
MANAGED = (CARD_FILE, REPORT_FILE, HTML_FILE, MANIFEST_FILE, DATA_DIR, FIGURES_DIR)
#: Columns the ``"auto"`` composition looks for, in order (the first that holds strings is used).
COMPOSITION_CANDIDATES = ("source", "dataset", "category", "task", "domain", "subset", "origin", "task_name")

_SIZE_CATEGORIES = (
    (1_000, "n<1K"),
    (10_000, "1K<n<10K"),
    (100_000, "10K<n<100K"),
    (1_000_000, "100K<n<1M"),
    (10_000_000, "1M<n<10M"),
    (100_000_000, "10M<n<100M"),
    (1_000_000_000, "100M<n<1B"),
)


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
        Extra tags, added to ``ds2``, ``data-selection`` and the tag of the ratings' origin
        (``synthetic-ratings`` for ratings made by an LLM for this selection, ``llm-judge-ratings`` for an
        evaluation's judge ratings, none for ratings supplied with the data).
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
    composition_column : str or None, default "auto"
        Column giving each row's source / category / generator for the composition table and figure; ``"auto"``
        picks the first of :data:`COMPOSITION_CANDIDATES` that holds strings; ``None`` leaves composition out.
        (``ds2 run | push | report --composition-column``; not the curation's ``group_column``, which names
        each row's prompt.)
    figures : bool, default True
        Render the PNG figures.
    rating_column : str, default "rating"
        Column with the raw (rated) score.
    curation_columns : ds2_hf.columns.CurationColumns
        Names of the curation outputs (``curated_rating``, ``curation_confidence``, ...).
    embedding_column : str, default "embedding"
        Column dropped unless ``keep_embedding``.
    repo_id : str, optional
        Hub id shown in the card's loading snippet (:func:`ds2_hf.push_subset` sets it).
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
    composition_column: str | None = "auto"
    figures: bool = True
    rating_column: str = C.RATING
    curation_columns: C.CurationColumns = field(default_factory=C.CurationColumns)
    embedding_column: str = C.EMBEDDING
    repo_id: str | None = None

    def __post_init__(self) -> None:
        if self.num_examples < 0:
            raise ValueError(f"num_examples must be >= 0, got {self.num_examples}")
        parse_size(self.max_shard_size)
        if not self.split or not self.split.replace("_", "").replace("-", "").isalnum():
            raise ValueError(f"split={self.split!r} must be a non-empty name of letters, digits, '_' or '-'")

    def record(self) -> dict[str, Any]:
        """The options the card text depends on, stored so ``ds2 report`` renders the same content later."""
        return {
            "pretty_name": self.pretty_name,
            "license": self.license,
            "language": as_list(self.language) or None,
            "split": self.split,
            "repo_id": self.repo_id,
            "rating_column": self.rating_column,
            "curation_columns": dataclasses.asdict(self.curation_columns),
        }

    @classmethod
    def from_record(cls, record: Mapping[str, Any] | None) -> PublishConfig:
        """The inverse of :meth:`record` (unknown keys of other releases are ignored)."""
        record = dict(record or {})
        cols = record.pop("curation_columns", None)
        known = {f.name for f in dataclasses.fields(cls)}
        kwargs = {k: v for k, v in record.items() if k in known and v is not None}
        if cols:
            kwargs["curation_columns"] = C.CurationColumns(**cols)
        return cls(**kwargs)


def make_config(config: PublishConfig | None, options: Mapping[str, Any]) -> PublishConfig:
    """``config`` (default ``PublishConfig()``) with keyword ``options`` applied; unknown names are an error."""
    config = config or PublishConfig()
    if not options:
        return config
    valid = {f.name for f in dataclasses.fields(PublishConfig)}
    unknown = sorted(set(options) - valid)
    if unknown:
        raise TypeError(f"unknown publishing option(s) {unknown}; valid options are {sorted(valid)}")
    return dataclasses.replace(config, **options)


def parse_size(size: int | str) -> int:
    """Bytes of ``500MB`` / ``1GiB`` / an int; ValueError naming the accepted forms otherwise."""
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


def size_category(n: int) -> str:
    """The Hub's ``size_categories`` bucket of ``n`` rows."""
    for bound, name in _SIZE_CATEGORIES:
        if n < bound:
            return name
    return "n>1T"


def as_list(value) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        return [value]
    return [str(v) for v in value]
