"""Write a subset folder in the Hub's layout, as a whole: parquet shards, card, figures, report and manifest.

The folder is staged next to its destination and renamed into place in one step (:mod:`ds2_hf.atomic`), so a
process killed mid-write leaves the previous folder or the new one, never a mix; ``ds2_manifest.json`` records
the row count and the hash of every file, and readers and :func:`ds2_hf.push_folder` check it.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import os
import shutil
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..atomic import check_writable, staged
from ..report import Report, SourceInfo
from .card import card_context, card_data, render_card
from .config import CARD_FILE, DATA_DIR, MANAGED, REPORT_FILE, PublishConfig, make_config, parse_size
from .figures import plan_figures, render_figures
from .manifest import verify_folder, write_manifest
from .summary import Summary, summarize

logger = logging.getLogger(__name__)


@dataclass
class SavedSubset:
    """What ``ds2_report.json`` of a saved folder holds, typed."""

    report: Report
    summary: Summary
    config: PublishConfig
    data_files: list
    figures: list


def as_report(report: Report | Mapping[str, Any] | None, source: str | Mapping[str, Any] | None = None) -> Report:
    """A typed :class:`Report` from a Report, a report dict of any layout or None, with ``source`` applied."""
    typed = dataclasses.replace(Report.from_dict(report)) if report is not None else Report()
    if source is None:
        return typed
    given = SourceInfo.of(source) if isinstance(source, (str, os.PathLike)) else SourceInfo.from_dict(source)
    base = typed.source.to_dict() if typed.source else {}
    base.update({k: v for k, v in given.to_dict().items() if v is not None and v != {}})
    typed.source = SourceInfo.from_dict(base, where="source")
    return typed


def validate_subset(subset) -> None:
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


def prepare(subset, report, source, pool, config: PublishConfig) -> tuple[Report, Summary]:
    """Validate the inputs; return the typed report and the card's summary."""
    validate_subset(subset)
    if pool is not None and not isinstance(pool, Mapping):
        import datasets

        if not isinstance(pool, datasets.Dataset):
            raise TypeError(f"pool must be a datasets.Dataset or a mapping of arrays, got {type(pool).__name__}")
    typed = as_report(report, source)
    return typed, summarize(subset, typed, pool, config)


def published_columns(subset, config: PublishConfig) -> list[str]:
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


def build_card(subset, *, report: Report | Mapping[str, Any] | None = None, source: str | Mapping | None = None,
               pool=None, config: PublishConfig | None = None, **options):
    """Render the dataset card of a subset without writing anything.

    Parameters are those of :func:`save_subset`. The card links the figures under ``figures/`` that
    :func:`save_subset` would write (the same rules decide both).

    Returns
    -------
    huggingface_hub.DatasetCard
        ``card.data`` holds the YAML metadata, ``str(card)`` the README text.
    """
    config = make_config(config, options)
    typed, summary = prepare(subset, report, source, pool, config)
    published = subset.select_columns(published_columns(subset, config))
    names = [f.path for f in plan_figures(subset, pool, summary, typed, config)]
    data = card_data(published.features, summary, typed, config, published.data.nbytes, 0)
    return render_card(data, card_context(summary, typed, config, names))


def _write_shards(published, folder: Path, config: PublishConfig) -> tuple[list[str], int]:
    if published._indices is not None:  # a selection: its own table, so the card's sizes are those of the rows
        published = published.flatten_indices()
    num_bytes = published.data.nbytes
    num_shards = min(max(1, math.ceil(num_bytes / parse_size(config.max_shard_size))), published.num_rows)
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
    report: Report | Mapping[str, Any] | None = None,
    source: str | Mapping[str, Any] | None = None,
    pool=None,
    config: PublishConfig | None = None,
    overwrite: bool = False,
    **options,
) -> Path:
    """Write a subset, its dataset card, figures, report and manifest to ``folder`` in the Hub's layout.

    Parameters
    ----------
    subset : datasets.Dataset
        The selected rows: user columns plus, when curated, ``rating``, ``curated_rating``,
        ``curation_confidence``, ``misrated``, ``long_tail_score`` (and ``embedding``, dropped by default).
        Missing curation columns are fine: the card then says what is not recorded.
    folder : str or path
        Destination. Must be empty or absent unless ``overwrite=True``.
    report : ds2_hf.report.Report or dict, optional
        What the earlier stages recorded (sections ``source``, ``rating``, ``embedding``, ``curation``,
        ``selection``, ``command``; all optional); a dict of any layout :class:`~ds2_hf.report.Report` reads.
    source : str or dict, optional
        The source dataset id or path, or ``{"dataset", "revision", "license", "language"}``; overrides the
        report's ``source``.
    pool : datasets.Dataset or mapping of str to array-like, optional
        The full curated pool (or just its ``rating``, ``curated_rating``, ``long_tail_score`` and composition
        arrays, each shape (N,)) for the pool-vs-subset distributions, long-tail histogram and composition.
    config : PublishConfig, optional
        Publishing options; any :class:`PublishConfig` field may also be passed as a keyword.
    overwrite : bool, default False
        Replace a previous save in ``folder``. The new folder is written beside it and exchanged with it in one
        step; files of the old folder that are not part of the layout are carried over.

    Returns
    -------
    pathlib.Path
        ``folder``.

    Raises
    ------
    ValueError
        Empty subset, a bad option, ``folder`` holds files and ``overwrite`` is False, or it cannot be written.
    TypeError
        ``subset`` is not a :class:`datasets.Dataset`, or an unknown option.

    Examples
    --------
    >>> import datasets, tempfile, ds2_hf
    >>> ds = datasets.Dataset.from_dict({"text": ["x", "y"], "rating": [3, 5], "curated_rating": [4, 5]})
    >>> folder = tempfile.mkdtemp() + "/subset"
    >>> path = ds2_hf.save_subset(ds, folder, report={"command": "ds2 run ..."})
    >>> sorted(p.name for p in path.iterdir())
    ['README.md', 'data', 'ds2_manifest.json', 'ds2_report.json', 'figures']
    """
    config = make_config(config, options)
    folder = Path(folder)
    existing = _check_folder(folder, overwrite)
    typed, summary = prepare(subset, report, source, pool, config)
    published = subset.select_columns(published_columns(subset, config))
    with staged(folder, overwrite=True) as tmp:
        tmp.mkdir()
        data_files, num_bytes = _write_shards(published, tmp, config)
        pngs = render_figures(subset, pool, summary, typed, config)
        for rel, png in pngs.items():
            (tmp / rel).parent.mkdir(parents=True, exist_ok=True)
            (tmp / rel).write_bytes(png)
        download_size = sum((tmp / f).stat().st_size for f in data_files)
        data = card_data(published.features, summary, typed, config, num_bytes, download_size)
        (tmp / CARD_FILE).write_text(str(render_card(data, card_context(summary, typed, config, sorted(pngs)))),
                                     encoding="utf-8")
        payload = {"report": typed.to_dict(), "summary": summary.to_dict(),
                   "files": {"data": data_files, "figures": sorted(pngs)}, "publish": config.record()}
        (tmp / REPORT_FILE).write_text(json.dumps(payload, indent=2) + "\n", encoding="utf-8")
        write_manifest(tmp, [*data_files, *sorted(pngs), CARD_FILE, REPORT_FILE], num_rows=summary.num_rows,
                       split=config.split)
        _carry_over(folder, tmp, [name for name in existing if name not in MANAGED])
    logger.info("saved %d rows to %s (%d data file(s), %d figure(s))", summary.num_rows, folder,
                len(data_files), len(pngs))
    return folder


def _check_folder(folder: Path, overwrite: bool) -> list[str]:
    """The names in an existing ``folder``; refuse a file, a non-empty folder without ``overwrite``, no access."""
    if folder.exists() and not folder.is_dir():
        raise ValueError(f"{str(folder)!r} is a file, not a folder; choose a folder path for the subset")
    existing = sorted(p.name for p in folder.iterdir()) if folder.is_dir() else []
    if existing and not overwrite:
        raise ValueError(
            f"folder {str(folder)!r} is not empty (it holds {existing[:5]}{' ...' if len(existing) > 5 else ''}); "
            f"refusing to write into it. Choose an empty folder, or pass overwrite=True (--overwrite-output) to "
            f"replace {list(MANAGED)} and leave other files alone."
        )
    check_writable(folder, overwrite=True)
    return existing


def _carry_over(old: Path, new: Path, names: list[str]) -> None:
    """Hard-link (else copy) the files of ``old`` that are not part of the layout into the staged ``new``."""
    def link(src, dst):
        try:
            os.link(src, dst)
        except OSError:
            shutil.copy2(src, dst)

    for name in names:
        src = old / name
        if src.is_dir() and not src.is_symlink():
            shutil.copytree(src, new / name, copy_function=link, symlinks=True)
        else:
            shutil.copy2(src, new / name, follow_symlinks=False) if src.is_symlink() else link(src, new / name)
    if names:
        logger.warning("kept files in %s that are not part of the subset layout: %s", old, names)


def load_summary(folder: str | os.PathLike) -> dict[str, Any]:
    """The raw ``ds2_report.json`` of a folder written by :func:`save_subset` (``{"report", "summary", ...}``)."""
    path = Path(folder) / REPORT_FILE
    if not path.is_file():
        raise FileNotFoundError(
            f"{str(path)!r} does not exist: {str(folder)!r} was not written by ds2_hf.save_subset / `ds2 run`"
        )
    return json.loads(path.read_text(encoding="utf-8"))


def read_folder(folder: str | os.PathLike) -> SavedSubset:
    """The typed content of a saved folder's ``ds2_report.json``, after checking the folder's manifest."""
    verify_folder(folder)
    payload = load_summary(folder)
    files = payload.get("files", {})
    return SavedSubset(report=Report.from_dict(payload, where=f"{str(Path(folder) / REPORT_FILE)!r}"),
                       summary=Summary.from_dict(payload["summary"]),
                           config=PublishConfig.from_record(payload.get("publish")),
                       data_files=list(files.get("data", [])), figures=list(files.get("figures", [])))
