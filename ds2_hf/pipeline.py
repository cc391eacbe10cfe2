"""The one DS2 pipeline: (rate), embed, curate, select, save, push, with a typed report of every stage.

``ds2 run``, the Space and user code call :func:`run_pipeline`; the stage commands (``ds2 rate | embed | curate |
select``) build their report sections with the same :mod:`ds2_hf.report` constructors, so a subset made stage by
stage on the command line gets the same dataset card as one made here.

Every check that can fail on the inputs (the output folder, the Hub token and repository id, the rating column
and its values) runs before the first expensive step (rating, embedding, curation).

Examples
--------
>>> import ds2_hf
>>> from ds2_hf.demo import demo_report, load_demo
>>> result = ds2_hf.run_pipeline(load_demo(num_rows=400), selection=ds2_hf.SelectionConfig(k=20),
...                              curator=ds2_hf.Curator(progress=False), report=demo_report())  # doctest: +SKIP
>>> result.subset.num_rows, result.report.curation.clusterability.status  # doctest: +SKIP
(20, 'withheld')
"""

from __future__ import annotations

import dataclasses
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .report import CurationInfo, EmbeddingInfo, RatingInfo, Report, SelectionInfo, SourceInfo

logger = logging.getLogger(__name__)

__all__ = ["PipelineResult", "run_pipeline", "check_outputs", "check_ratings"]


@dataclass
class PipelineResult:
    """What :func:`run_pipeline` produced.

    Attributes
    ----------
    pool : datasets.Dataset
        Every input row with the rating (when rated), embedding and curation columns.
    subset : datasets.Dataset
        The selected rows, best first, every column kept.
    report : ds2_hf.report.Report
        Source, rating, embedding, curation, selection and command, typed.
    folder : pathlib.Path or None
        The subset folder written (``output``), else None.
    pushed : ds2_hf.PushResult or None
        The Hub commit (``push_to``), else None.
    """

    pool: Any
    subset: Any
    report: Report
    folder: Path | None = None
    pushed: Any = None


def run_pipeline(
    data,
    *,
    rating=None,
    embedding=None,
    curator=None,
    selection=None,
    output: str | os.PathLike | None = None,
    overwrite: bool = False,
    publish=None,
    push_to: str | None = None,
    private: bool | None = None,
    token: str | None = None,
    report: Report | None = None,
) -> PipelineResult:
    """Rate (optionally), embed (when needed), curate, select, and save / push the subset with its card.

    Parameters
    ----------
    data : datasets.Dataset or str or path
        The pool, or where to load it from (a Hub id, a data file or folder; recorded as the report's source).
    rating : ds2_hf.RatingConfig, optional
        Rate every row first with this configuration (local engine). Default: the rows are already rated.
    embedding : ds2_hf.EmbeddingConfig, optional
        How to embed the rows when the curator's embedding column is missing. Default ``EmbeddingConfig()``
        (``backend="auto"``: BGE-large when the Hub is reachable, else WordLlama); unused when the column exists.
    curator : ds2_hf.Curator, optional
        An unfitted curator holding the curation options and columns. Default ``Curator()``.
    selection : ds2_hf.SelectionConfig, optional
        Selection options. Default ``SelectionConfig()``; without ``k`` or ``fraction``, ``k`` is N/30 (the
        paper's 10k of 300k).
    output : str or path, optional
        Write the subset folder here (:func:`ds2_hf.save_subset`).
    overwrite : bool, default False
        Replace a previous subset folder at ``output``.
    publish : ds2_hf.PublishConfig, optional
        Card and layout options of the folder.
    push_to : str, optional
        Also push the folder to this Hub dataset repository in one commit.
    private, token : optional
        Visibility of a new repository and the Hub token (default: ``HF_TOKEN`` or the cached login).
    report : ds2_hf.report.Report, optional
        What is known from before (e.g. the source's licence, how the ratings were made, the command line).

    Returns
    -------
    PipelineResult

    Raises
    ------
    ValueError
        Before any expensive step: an output folder that holds files (without ``overwrite``) or cannot be
        written, an invalid repository id, no rows, a missing rating column or invalid ratings.
    ds2_hf.PushError
        ``push_to`` without a token, or the Hub refused the upload.
    """
    from .curation import Curator
    from .selection import SelectionConfig

    curator = curator if curator is not None else Curator()
    selection = selection if selection is not None else SelectionConfig()
    check_outputs(output, overwrite, push_to, token)
    dataset, report = _load(data, report if report is not None else Report())
    if rating is not None:
        dataset, report = _rate(dataset, rating, report)
    check_ratings(dataset, curator)
    dataset, report = _embed(dataset, curator, embedding, report)
    pool = curator.fit_transform(dataset)
    report = dataclasses.replace(report, curation=CurationInfo.from_dict(curator.report_, where="curation"))
    subset, report = _select(pool, selection, report)
    result = PipelineResult(pool=pool, subset=subset, report=report)
    if push_to is not None:  # the card's loading snippet names the repository it is pushed to
        from .publish import PublishConfig

        publish = dataclasses.replace(publish or PublishConfig(), repo_id=push_to)
    if output is not None:
        from .publish import save_subset

        result.folder = save_subset(subset, output, report=report, pool=pool, config=publish, overwrite=overwrite)
    if push_to is not None:
        from .publish import push_folder, push_subset

        result.pushed = (push_folder(result.folder, push_to, private=private, token=token)
                         if result.folder is not None else
                         push_subset(subset, push_to, report=report, pool=pool, config=publish, private=private,
                                     token=token))
    return result


def check_outputs(output, overwrite: bool = False, push_to: str | None = None, token: str | None = None) -> None:
    """Refuse, before any work, an output folder that holds files or cannot be written, and a bad push target.

    Raises
    ------
    ValueError
        ``output`` is a file, holds files (without ``overwrite``) or cannot be written; ``push_to`` is not a
        repository id.
    ds2_hf.PushError
        ``push_to`` is given and no Hub token can be found.
    """
    if output is not None:
        from .atomic import check_writable

        folder = Path(output)
        if folder.exists() and not folder.is_dir():
            raise ValueError(f"{str(folder)!r} is a file, not a folder; choose a folder for the subset")
        if folder.is_dir() and any(folder.iterdir()) and not overwrite:
            raise ValueError(
                f"output folder {str(folder)!r} is not empty; choose an empty folder, or pass --overwrite-output "
                "(overwrite=True) to replace a previous run's files (other files in the folder are left alone)"
            )
        check_writable(folder, overwrite=True)
    if push_to is not None:
        from .publish.push import resolve_token, validate_repo_id

        validate_repo_id(push_to)
        resolve_token(token)


def _load(data, report: Report) -> tuple[Any, Report]:
    if isinstance(data, (str, os.PathLike)):
        from . import io

        dataset = io.load(data)
        source = report.source.to_dict() if report.source else {}
        given = SourceInfo.of(data).to_dict()
        report = dataclasses.replace(report, source=SourceInfo.from_dict(
            {**given, **{k: v for k, v in source.items() if v is not None and v != {}}}, where="source"))
    else:
        dataset = data
    if len(dataset) == 0:
        where = report.source.dataset if report.source and report.source.dataset else "the dataset"
        raise ValueError(f"{where} has no rows; there is nothing to curate")
    return dataset, report


def _rate(dataset, config, report: Report) -> tuple[Any, Report]:
    from .rating import rate

    rated, stats = rate(dataset, config)
    logger.info("rating: %s", stats)
    return rated, dataclasses.replace(report, rating=RatingInfo.from_config(config, stats))


def check_ratings(dataset, curator) -> None:
    """Check the curator's rating column before any embedding: present, integer in ``0..K-1``, some rated.

    Raises
    ------
    ValueError
        The column is missing (naming the columns and the fix) or its values are invalid (naming rows).
    """
    import numpy as np

    from .curation.core import validate_ratings

    columns = curator.rating_columns or [curator.rating_column]
    missing = [c for c in columns if c not in dataset.column_names]
    if missing:
        raise ValueError(
            f"column {missing[0]!r} not found (columns: {dataset.column_names}); rate the rows first "
            "(`ds2 rate`, ds2_hf.rating.rate) or name the rating column (--rating-column, rating_column=...)"
        )
    if curator.rating_columns:
        return  # several raters: the fusion validates its rating matrix
    arrow = dataset.with_format("arrow", columns=columns)[:][columns[0]]
    try:
        values = np.asarray(arrow.to_numpy(zero_copy_only=False), dtype=np.float64)
    except (TypeError, ValueError):
        sample = [v for v in arrow.to_pylist() if v is not None][:3]
        raise ValueError(
            f"column {columns[0]!r} must hold integer ratings 0..{curator.config.num_classes - 1} (or nulls), but "
            f"it holds {arrow.type} values such as {sample}; map them to integers first"
        ) from None
    validate_ratings(values, len(dataset), curator.config.num_classes,
                     allow_empty_classes=curator.config.allow_empty_classes)


def _embed(dataset, curator, embedding, report: Report) -> tuple[Any, Report]:
    """Embed the rows when the curator's embedding column is missing, and record the embedder."""
    column = curator.embedding_column
    if column is None or column in dataset.column_names:
        return dataset, report
    from .embedding import EmbeddingConfig, Embedder, embed

    config = embedding if embedding is not None else EmbeddingConfig()
    config = Embedder(dataclasses.replace(config, column=column)).config  # "auto" resolved: the report names it
    dataset = embed(dataset, config)
    dim = dataset.features[column].length
    return dataset, dataclasses.replace(report, embedding=EmbeddingInfo.from_config(config, dim))


def _select(pool, config, report: Report) -> tuple[Any, Report]:
    from .selection import select

    if config.k is None and config.fraction is None:
        config = dataclasses.replace(config, k=max(1, len(pool) // 30))
    subset, selected = select(pool, config=config, return_report=True)
    return subset, dataclasses.replace(report, selection=SelectionInfo.from_report(selected))
