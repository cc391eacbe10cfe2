"""What the DS2 Space computes: curate a pool once with the library's one pipeline, select again from the curated
pool for every new ``k``, present the result (summary, figures, tables), and write the subset for download.

The curated pool of a visitor lives in a :class:`Session` (the app keeps it in ``gr.State``): :func:`reselect`
runs only the selection and the card, never the embedding or the curation again. Downloads are written by the
library's writers: :func:`ds2_hf.save_subset` (the card folder, zipped) and :func:`ds2_hf.io.save` (parquet,
JSON lines), each atomically.
"""

from __future__ import annotations

import dataclasses
import os
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

import ds2_hf
from ds2_hf import columns as C
from ds2_hf import plots
from ds2_hf.embedding import EmbeddingConfig
from ds2_hf.formats import Formatter
from ds2_hf.report import SelectionInfo
from ds2_hf.validation import InputError

from space_data import NUM_CLASSES, TABLE_ROWS, check_columns, table

DEFAULT_K = 500
DEFAULT_DIM = 256
DEFAULT_METHOD = "default"
SUBSET_NAME = "ds2-subset"


@dataclass
class Session:
    """The curated pool of one visitor and its current subset: what selecting again needs.

    ``curations`` and ``selections`` count the runs of each stage in this session (shown in the summary).
    """

    pool: Any  # datasets.Dataset: the rows with the embedding and curation columns
    subset: Any  # datasets.Dataset: the selected rows, best first
    report: Any  # ds2_hf.report.Report
    k: int
    rating_column: str = C.RATING
    num_classes: int = NUM_CLASSES
    group: str | None = None
    template: str | None = None
    curations: int = 1
    selections: int = 1
    workdir: str | None = None  # where this session's downloads are written


@dataclass
class PipelineOutput:
    """What one run of the app shows (all plain Python / NumPy / pandas, nothing Gradio-specific)."""

    summary: str
    transition_figure: Any  # None when left out (present(..., pool_views=False))
    distribution_figure: Any
    composition_figure: Any | None
    selected: Any  # pandas.DataFrame
    flagged: Any  # pandas.DataFrame (None when left out)
    curated: Any  # datasets.Dataset: the pool with the curation columns added



def summarize(result, *, k: int, group_column: str | None = None) -> str:
    """Markdown summary of a run, read from its typed report: pool, guard, duplicates, flagged rows, the subset."""
    names = C.CurationColumns()
    curation = result.report.curation
    n, n_rated = curation.n, curation.n_rated
    lines = [f"**Pool**: {n:,} rows, {n_rated:,} rated" + (f", {n - n_rated:,} unrated" if n > n_rated else "") + "."]
    guard = curation.clusterability
    if guard is not None:
        lines.append(f"**Curation guard: {guard.status}** (trust {guard.gate:.2f}). {guard.verdict}")
        lines.append("\n".join(f"- `{c.name}`: {c.result.split(' ')[0]} ({c.summary})" for c in guard.checks))
        if guard.advice:
            lines.append(f"*{guard.advice}*")
    if guard is None or guard.status != "withheld":
        T, prior = np.asarray(curation.transition_matrix), np.asarray(curation.true_prior)
        lines.append(f"**Estimated rater accuracy** (sum over scores of prior x diagonal of T): "
                     f"{float(np.sum(prior * np.diag(T))):.1%}.")
    lines.append(f"**Flagged as mis-rated**: {curation.n_flagged:,} rows ({curation.n_flagged / n:.1%}); "
                 f"**changed**: {curation.n_changed:,}.")
    dup = curation.duplicates
    if dup is not None and dup.n_groups:
        lines.append(f"**Duplicates**: {dup.n_rows:,} rows in {dup.n_groups:,} groups (the largest: "
                     f"{dup.largest[0][0]:,} copies of one answer); the subset takes at most one row of each.")
    subset = result.subset
    lines.append(f"**Selected**: {subset.num_rows:,} of the requested {k:,} rows (curated score desc; within a "
                 "score, the rows curation is sure of first; then long-tail score desc).")
    cur = [v for v in subset[names.curated_rating] if v is not None]
    if cur:
        lines.append(f"**Curated scores in the subset**: {dict(sorted(_count(cur).items()))}.")
    if group_column and group_column in subset.column_names:
        top = sorted(_count(subset[group_column]).items(), key=lambda kv: -kv[1])[:8]
        lines.append(f"**Subset by `{group_column}`**: " + ", ".join(f"{g} {n}" for g, n in top) + ".")
    return "\n\n".join(lines)


def _count(values) -> dict:
    out: dict = {}
    for v in values:
        out[v] = out.get(v, 0) + 1
    return out


def curate(
    dataset,
    *,
    k: int = DEFAULT_K,
    rating_column: str = C.RATING,
    num_classes: int = NUM_CLASSES,
    method: str = DEFAULT_METHOD,
    seed: int = 0,
    dim: int = DEFAULT_DIM,
    allow_empty_classes: bool = False,
    template: str | None = None,
    report=None,
) -> Session:
    """Embed, curate and select with the library's one pipeline (:func:`ds2_hf.run_pipeline`).

    Parameters
    ----------
    dataset : datasets.Dataset
        The pool, with an integer ``rating_column`` (nulls allowed).
    k : int
        Subset size.
    rating_column : str
        Column of raw ratings in ``0..num_classes-1``.
    num_classes : int
        Number of rating classes K.
    method : str
        Curation method passed to :class:`ds2_hf.Curator` (``"default"`` = its default).
    seed : int
        Seed of the curation.
    dim : int
        WordLlama dimension (64, 128 or 256).
    allow_empty_classes : bool
        Accept a score no row is rated with (a weak rater's ratings).
    template : str, optional
        A :meth:`str.format` template over the columns that renders each row's text (default: auto-detected).
    report : ds2_hf.report.Report, optional
        What is known of the pool (its source, how it was rated), for the card.
    """
    if int(k) < 1:
        raise InputError(f"k={k} must be at least 1")
    template = template or None
    check_columns(dataset, rating_column=rating_column, template=template)
    stale = [c for c in C.CurationColumns().names() if c in dataset.column_names]
    if stale:  # an already curated upload: this run recomputes those columns
        dataset = dataset.remove_columns(stale)
    options = {} if method in (None, "", DEFAULT_METHOD) else {"method": method}
    curator = ds2_hf.Curator(rating_column=rating_column, num_classes=num_classes, seed=seed, progress=False,
                             allow_empty_classes=allow_empty_classes, **options)
    embedding = EmbeddingConfig(backend="wordllama", dim=dim, formatter=Formatter(template=template))
    result = ds2_hf.run_pipeline(dataset, embedding=embedding, curator=curator, report=report,
                                 selection=ds2_hf.SelectionConfig(k=int(k)))
    group = next((c for c in ("generator", "dataset", "source") if c in dataset.column_names), None)
    return Session(pool=result.pool, subset=result.subset, report=result.report, k=int(k),
                   rating_column=rating_column, num_classes=num_classes, group=group, template=template)


def reselect(session: Session, *, k: int) -> Session:
    """Select the top ``k`` again from the session's curated pool: no embedding, no curation.

    Returns
    -------
    Session
        A new session with the subset, the report's selection section and ``selections`` updated.
    """
    from ds2_hf.selection import select

    if int(k) < 1:
        raise InputError(f"k={k} must be at least 1")
    subset, selected = select(session.pool, config=ds2_hf.SelectionConfig(k=int(k)), return_report=True)
    report = dataclasses.replace(session.report, selection=SelectionInfo.from_report(selected))
    return dataclasses.replace(session, subset=subset, report=report, k=int(k), selections=session.selections + 1)


def present(session: Session, *, pool_views: bool = True) -> PipelineOutput:
    """The summary, figures and tables of a session's subset.

    ``pool_views=False`` leaves out what depends on the curated pool alone, the transition figure and the table
    of flagged rows (``None``): a new ``k`` does not change them.
    """
    curation, subset, K = session.report.curation, session.subset, session.num_classes
    labels = [str(i) for i in range(K)]
    selected = np.bincount([v for v in subset[C.CURATED_RATING] if v is not None], minlength=K)
    distribution = plots.plot_rating_distributions(
        {"raw rating": curation.counts_raw, "curated": curation.counts_curated, "selected (curated)": selected[:K]},
        labels=labels, title="Ratings: raw pool vs curated pool vs selected subset",
    )
    transition = flagged = None
    if pool_views:
        transition = plots.plot_transition_matrix(curation.transition_matrix, labels=labels,
                                                  title="Estimated score transition matrix T")
        misrated = np.asarray(session.pool.with_format("numpy", columns=[C.MISRATED])[:][C.MISRATED], dtype=bool)
        flagged = session.pool.select(np.flatnonzero(misrated)[:TABLE_ROWS])
    composition = None
    if session.group is not None:
        composition = plots.plot_composition(_count(session.pool[session.group]), _count(subset[session.group]),
                                             title=f"Subset composition by {session.group}")
    runs = (f"**This session**: curated {session.curations} time(s), selected {session.selections} time(s) (a new "
            "k selects again from the curated pool, without curating again).")
    show = dict(rating_column=session.rating_column, template=session.template)
    return PipelineOutput(
        summary=summarize(session, k=session.k, group_column=session.group) + "\n\n" + runs,
        transition_figure=transition,
        distribution_figure=distribution,
        composition_figure=composition,
        selected=table(subset, **show),
        flagged=None if flagged is None else table(flagged, **show),
        curated=session.pool,
    )


def run_pipeline(dataset, *, k: int = DEFAULT_K, **options) -> PipelineOutput:
    """:func:`curate` then :func:`present`: what the app shows for ``dataset`` (options as in :func:`curate`)."""
    return present(curate(dataset, k=k, **options))


def write_downloads(session: Session, folder: str | os.PathLike) -> list[Path]:
    """Write the session's subset for download: parquet, JSON lines and its dataset-card folder as a zip.

    :func:`ds2_hf.save_subset` writes the folder (card, figures, report, manifest; the embedding column dropped);
    :func:`ds2_hf.io.save` writes the same rows and columns (the ones ``save_subset`` publishes) to the files.

    Returns
    -------
    list of pathlib.Path
        ``[<folder>/ds2-subset.parquet, <folder>/ds2-subset.jsonl, <folder>/ds2-subset.zip]``.
    """
    from ds2_hf import io
    from ds2_hf.atomic import staged
    from ds2_hf.publish import PublishConfig
    from ds2_hf.publish.save import published_columns

    folder, config = Path(folder), PublishConfig()
    card_folder = ds2_hf.save_subset(session.subset, folder / SUBSET_NAME, report=session.report, pool=session.pool,
                                     config=config, overwrite=True)
    published = session.subset.select_columns(published_columns(session.subset, config))
    paths = [io.save(published, folder / f"{SUBSET_NAME}{suffix}", overwrite=True) for suffix in (".parquet", ".jsonl")]
    archive = folder / f"{SUBSET_NAME}.zip"
    with staged(archive, overwrite=True) as tmp, zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED) as zf:
        for file in sorted(p for p in card_folder.rglob("*") if p.is_file()):
            zf.write(file, Path(SUBSET_NAME) / file.relative_to(card_folder))
    return [*paths, archive]


def curation_methods() -> list[str]:
    """Methods offered in the UI: ``"default"`` plus whatever :mod:`ds2_hf.curation` declares in ``METHODS``."""
    try:
        import ds2_hf.curation as curation

        declared = list(getattr(curation, "METHODS", ()))
    except ImportError:
        declared = []
    return [DEFAULT_METHOD] + [m for m in declared if m != DEFAULT_METHOD]
