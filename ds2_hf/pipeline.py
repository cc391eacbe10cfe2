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
from .validation import EmbeddingError, EmptyInputError, InputError, few, validate_ratings

logger = logging.getLogger(__name__)

__all__ = ["PipelineResult", "run_pipeline", "check_embedding_column", "check_inputs", "check_outputs", "check_ratings",
           "check_text"]


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
        Its ``formatter`` (a row template, say) also renders the rows for the curator's duplicate and prompt-group
        finder when the curator has no formatter of its own, so that both read the same text.
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
    ds2_hf.validation.InputError
        Before any expensive step (:func:`check_outputs`, :func:`check_inputs`): an output folder that holds files
        (without ``overwrite``) or cannot be written, an invalid repository id, no rows, a missing rating column or
        invalid ratings, text that cannot be rendered, a bad embedding column; every problem in one message.
    ds2_hf.PushError
        ``push_to`` without a token, or the Hub refused the upload.
    """
    from .curation import Curator
    from .formats import Formatter
    from .selection import SelectionConfig

    curator = curator if curator is not None else Curator()
    if curator.formatter is None and embedding is not None and embedding.formatter != Formatter():
        curator.set_params(formatter=embedding.formatter)  # one rendering of the rows for embedding and duplicates
    selection = selection if selection is not None else SelectionConfig()
    check_outputs(output, overwrite, push_to, token)
    dataset, report = _load(data, report if report is not None else Report())
    check_inputs(dataset, curator, rating=rating, embedding=embedding)
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
    ds2_hf.validation.InputError
        ``output`` is a file, holds files (without ``overwrite``) or cannot be written; ``push_to`` is not a
        repository id.
    ds2_hf.PushError
        ``push_to`` is given and no Hub token can be found, or the Hub rejects it or allows it only to read.
    """
    if output is not None:
        from .atomic import check_writable

        folder = Path(output)
        if folder.exists() and not folder.is_dir():
            raise InputError(f"{str(folder)!r} is a file, not a folder; choose a folder for the subset")
        if folder.is_dir() and any(folder.iterdir()) and not overwrite:
            raise InputError(
                f"output folder {str(folder)!r} is not empty; choose an empty folder, or pass --overwrite-output "
                "(overwrite=True) to replace a previous run's files (other files in the folder are left alone)"
            )
        check_writable(folder, overwrite=True)
    if push_to is not None:
        from .publish.push import check_push_access, resolve_token, validate_repo_id

        validate_repo_id(push_to)
        check_push_access(resolve_token(token))


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
        raise EmptyInputError(f"{where} has no rows; there is nothing to curate")
    return dataset, report


def _rate(dataset, config, report: Report) -> tuple[Any, Report]:
    from .rating import rate

    rated, stats = rate(dataset, config)
    logger.info("rating: %s", stats)
    return rated, dataclasses.replace(report, rating=RatingInfo.from_config(config, stats))


def check_inputs(dataset, curator, *, rating=None, embedding=None, embed: bool = True) -> None:
    """Check everything the stages will read, before any rating, embedding or curation, and report every problem
    in one message: the rating column (unless ``rating`` will make it), the text the rater or the embedder will
    render, and the embedding column when it is there.

    Parameters
    ----------
    dataset : datasets.Dataset
    curator : ds2_hf.Curator
        Names the rating, embedding and audit columns and the scale.
    rating : ds2_hf.RatingConfig, optional
        The rows will be rated first: their text must render; the rating column is not needed yet.
    embedding : ds2_hf.EmbeddingConfig, optional
        How rows are rendered for embedding, when the embedding column is missing (default ``EmbeddingConfig()``).
    embed : bool, default True
        Whether a missing embedding column will be made (False: it must be there).

    Raises
    ------
    ds2_hf.validation.InputError
        One problem as it is (a :class:`~ds2_hf.validation.RatingError`, ...), several joined in one message.
    """
    checks = []
    if rating is None:
        checks.append(lambda: check_ratings(dataset, curator))
    formatters = []
    if rating is not None:
        from .formats import Formatter

        formatters.append(("rating", Formatter(format=rating.format, template=rating.template, style=rating.style)))
    column = curator.embedding_column
    if column is not None and column not in dataset.column_names and embed:
        from .embedding import EmbeddingConfig

        formatters.append(("embedding", (embedding if embedding is not None else EmbeddingConfig()).formatter))
    elif column is not None:
        checks.append(lambda: check_embedding_column(dataset, column))
    checks += [lambda stage=stage, f=f: check_text(dataset, f, stage=stage) for stage, f in formatters]
    problems = []
    for check in checks:
        try:
            check()
        except InputError as err:
            problems.append(err)
    if len(problems) == 1:
        raise problems[0]
    if problems:
        raise InputError(f"{len(problems)} problems with the input: "
                         + " ".join(f"({i}) {err}" for i, err in enumerate(problems, 1)))


def check_ratings(dataset, curator) -> None:
    """Check the curator's rating column before any embedding: present, integer in ``0..K-1``, some rated.

    Raises
    ------
    ds2_hf.validation.InputError
        The column is missing (naming the columns and the fix).
    ds2_hf.validation.RatingError
        Its values are invalid: words, fractions, values off the scale (naming the rows), or nothing to curate.
    """
    import numpy as np

    columns = curator.rating_columns or [curator.rating_column]
    missing = [c for c in columns if c not in dataset.column_names]
    if missing:
        raise InputError(
            f"column {missing[0]!r} not found (columns: {dataset.column_names}); rate the rows first "
            "(`ds2 rate`, ds2_hf.rating.rate) or name the rating column (--rating-column, rating_column=...)"
        )
    if curator.rating_columns:
        return  # several raters: the fusion validates its rating matrix
    config = curator.resolved_config()
    arrow = dataset.with_format("arrow", columns=columns)[:][columns[0]]
    numeric = pa_is_numeric(arrow.type)
    values = np.asarray(arrow.to_numpy(zero_copy_only=False), dtype=np.float64) if numeric else arrow.to_pylist()
    validate_ratings(values, len(dataset), config.num_classes, name=f"ratings in column {columns[0]!r}",
                     allow_empty_classes=config.allow_empty_classes)


def pa_is_numeric(arrow_type) -> bool:
    """Whether an Arrow column type holds numbers (ints, floats, booleans) or only nulls."""
    import pyarrow as pa

    return (pa.types.is_integer(arrow_type) or pa.types.is_floating(arrow_type) or pa.types.is_boolean(arrow_type)
            or pa.types.is_null(arrow_type))


def check_text(dataset, formatter, *, stage: str) -> None:
    """The columns ``formatter`` renders for ``stage`` (rating, embedding) exist.

    Raises
    ------
    ds2_hf.validation.InputError
        No known row format fits the columns, or a template names a missing column.
    """
    import string

    try:
        fmt = formatter.resolve(dataset.column_names)
    except ValueError as err:  # formats.FormatError: no known format fits
        raise InputError(f"{stage}: {err}") from None
    if fmt == "template":
        wanted = {f for _, f, _, _ in string.Formatter().parse(formatter.template) if f}
        missing = sorted(wanted - set(dataset.column_names))
        if missing:
            raise InputError(f"{stage}: the template names column(s) {missing} that the input does not have "
                             f"(columns: {dataset.column_names}); fix the template")


def check_embedding_column(dataset, column: str) -> None:
    """The embedding column holds one vector of numbers per row, all of one length (read from Arrow, no copy).

    Raises
    ------
    ds2_hf.validation.EmbeddingError
        No such column, not a list column, null rows or rows of another length (named).
    """
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    if column not in dataset.column_names:
        raise EmbeddingError(f"column {column!r} not found (columns: {dataset.column_names}); embed the rows first "
                             "(`ds2 embed`, ds2_hf.embed), name the embedding column (--embedding-column, "
                             "embedding_column=...) or give the vectors (--embeddings FILE.npy)")
    arrow = dataset.with_format("arrow", columns=[column])[:][column]
    kind = arrow.type
    if not (pa.types.is_list(kind) or pa.types.is_large_list(kind) or pa.types.is_fixed_size_list(kind)) or not \
            pa_is_numeric(kind.value_type):
        raise EmbeddingError(f"column {column!r} must hold one vector of numbers per row; it holds {kind}. Embed "
                             "the rows (`ds2 embed`, ds2_hf.embed) or name the embedding column (--embedding-column)")
    if pa.types.is_fixed_size_list(kind) and arrow.null_count == 0:
        return
    lengths = pc.list_value_length(arrow).to_numpy(zero_copy_only=False)
    lengths = np.where(np.isnan(lengths.astype(float)), -1, lengths).astype(np.int64)
    nulls = np.flatnonzero(lengths < 0)
    common = np.bincount(lengths[lengths >= 0]).argmax() if (lengths >= 0).any() else 0
    odd = np.flatnonzero((lengths >= 0) & (lengths != common))
    parts = [f"rows {few(nulls)} have no vector (null)"] if nulls.size else []
    parts += [f"rows {few(odd)} do not have length {common}"] if odd.size else []
    if parts:
        raise EmbeddingError(f"column {column!r} has mixed dimensions or missing rows: {'; '.join(parts)}. Every row "
                             "needs a vector of the same length: re-embed those rows with one model, or drop them")


def _embed(dataset, curator, embedding, report: Report) -> tuple[Any, Report]:
    """Embed the rows when the curator's embedding column is missing, and record the embedder."""
    column = curator.embedding_column
    if column is None or column in dataset.column_names:
        return dataset, report
    from .embedding import EmbeddingConfig, Embedder, drop_empty, embed

    config = embedding if embedding is not None else EmbeddingConfig()
    config = Embedder(dataclasses.replace(config, column=column)).config  # "auto" resolved: the report names it
    dataset, skipped = drop_empty(dataset, config)  # empty conversations: refused, or left out and recorded
    dataset = embed(dataset, config)
    dim = dataset.features[column].length
    info = EmbeddingInfo.from_config(config, dim, skipped=skipped)
    return dataset, dataclasses.replace(report, embedding=info)


def _select(pool, config, report: Report) -> tuple[Any, Report]:
    from .selection import select

    if config.k is None and config.fraction is None:
        config = dataclasses.replace(config, k=max(1, len(pool) // 30))
    subset, selected = select(pool, config=config, return_report=True)
    return subset, dataclasses.replace(report, selection=SelectionInfo.from_report(selected))
