"""DS2 data selection, live: curate noisy LLM ratings and pick a small, clean, diverse subset, on a CPU.

Start from the demo pool shipped with ``ds2-hf`` (805 AlpacaEval instructions x 8 models, rated by a GPT-4-turbo
judge) or upload a .jsonl / .csv / .parquet file with an integer rating column. The app embeds every row with
WordLlama (offline, CPU), estimates the rater's score transition matrix from k-NN consensus, checks that the
neighbours share the rated quality (the curation guard: it withholds corrections when they do not, and says why),
flags mis-rated rows, suggests curated scores and selects the top ``k`` (curated score, the rows curation is sure
of first, then long-tail rarity; each duplicate answer once). The curated pool stays in the session: changing
``k`` selects again from it without embedding or curating again. The subset downloads as parquet, as JSON lines
and as its dataset-card folder (zip).

This module is the Gradio UI only. What it reads lives in ``space_data`` (uploads, their checks, the offline
rater, the tables) and what it computes in ``space_pipeline`` (curate, select again, present, downloads): pure
functions of their inputs, tested without a server.
"""

import dataclasses
import shutil
import tempfile

from ds2_hf import columns as C
from ds2_hf.validation import InputError

from space_data import (MAX_UPLOAD_MB, MAX_UPLOAD_ROWS, PREVIEW_CHARS, RATE_ROW_CAP, TABLE_ROWS, UPLOAD_TYPES,
                        check_columns, column_widths, load_pool, offline_rater_available, rate_upload)
from space_pipeline import (DEFAULT_K, DEFAULT_METHOD, Session, curate, curation_methods, present, reselect,
                            write_downloads)


def _show(session: Session, *, pool_views: bool = True):
    """The values of the app's outputs for ``session`` (its downloads written to its work folder).

    ``pool_views=False`` (a new ``k``) keeps the transition figure and the flagged rows shown: they depend on the
    curated pool alone.
    """
    import gradio as gr

    out = present(session, pool_views=pool_views)
    downloads = [gr.DownloadButton(value=path, interactive=True) for path in write_downloads(session, session.workdir)]
    selected, flagged = (gr.Dataframe(value=frame, column_widths=column_widths(frame)) if frame is not None
                         else gr.skip() for frame in (out.selected, out.flagged))
    transition = out.transition_figure if pool_views else gr.skip()
    return (out.summary, transition, out.distribution_figure, out.composition_figure, selected, flagged,
            *downloads, session)


ERROR_TITLE = "Cannot run DS2 on this input"
_OUTPUTS = 10  # summary, 3 figures, 2 tables, 3 downloads, the session
NO_POOL = "Press **Run DS2** to curate a pool; a new k then selects again from it, without curating again."


def _failed(err: Exception) -> tuple:
    """The outputs after a bad input: the message where the summary goes, every result cleared, no session."""
    import gradio as gr

    nothing = gr.DownloadButton(value=None, interactive=False)
    return (f"### {ERROR_TITLE}\n\n{err}", None, None, None, None, None, nothing, nothing, nothing, None)


def _run(upload, rating_column, template, k, demo_rows, method, seed, rate_offline=False, previous=None):
    try:
        pool = load_pool(upload, demo_rows=None if upload else int(demo_rows), seed=int(seed))
        template = (template or "").strip() or None
        rating_column = (rating_column or "").strip() or C.RATING
        if rate_offline:
            if not upload:
                raise InputError("upload a file to rate it with SmolLM2 (the demo data are rated already)")
            check_columns(pool, rating_column=None, template=template)
            pool, rating_column = rate_upload(pool, template=template), C.RATING
        report = None
        if not upload:
            from ds2_hf.demo import demo_report

            report = demo_report()
        session = curate(pool, k=int(k), rating_column=rating_column, method=method, seed=int(seed),
                         allow_empty_classes=bool(rate_offline), template=template, report=report)
    except (ValueError, ImportError, FileNotFoundError) as err:  # InputError, FormatError, ... are ValueErrors
        _forget(previous)  # its results are cleared from the page
        return _failed(err)
    workdir = previous.workdir if previous is not None else tempfile.mkdtemp(prefix="ds2-space-")
    curations = previous.curations + 1 if previous is not None else 1
    selections = previous.selections + 1 if previous is not None else 1
    return _show(dataclasses.replace(session, workdir=workdir, curations=curations, selections=selections))


def _reselect(k, session):
    import gradio as gr

    if session is None:  # nothing curated yet, or the session expired
        return (NO_POOL, *(gr.skip(),) * (_OUTPUTS - 1))
    if k is None or int(k) == session.k:
        return (gr.skip(),) * _OUTPUTS  # nothing new: keep what is shown
    try:
        session = reselect(session, k=int(k))
    except ValueError as err:
        return (f"### {ERROR_TITLE}\n\n{err}", *(gr.skip(),) * (_OUTPUTS - 1))  # the last subset stays
    return _show(session, pool_views=False)


def _forget(session) -> None:
    """Delete a finished session's downloads."""
    if session is not None and session.workdir:
        shutil.rmtree(session.workdir, ignore_errors=True)


def build_app():
    """The Gradio Blocks app: ``/run`` curates and selects; changing ``k`` selects again (``/reselect``)."""
    import gradio as gr

    from ds2_hf.demo import NUM_ROWS

    with gr.Blocks(title="DS2 data selection", delete_cache=(3600, 3600)) as app:  # served files live an hour
        gr.Markdown(
            "# DS2: curate noisy LLM ratings, select a clean and diverse subset\n"
            "LLM raters make mistakes. [DS2](https://arxiv.org/abs/2410.10877) (ICLR 2025) learns the rater's "
            "*score transition matrix* from the agreement of each sample's nearest neighbours, flags mis-rated "
            "samples, suggests corrected scores and selects the best, rarest rows. This Space runs "
            "the `ds2-hf` library on a CPU with WordLlama embeddings.\n\n"
            "**Demo data**: 805 AlpacaEval instructions answered by 8 models, rated by a GPT-4-turbo judge "
            "(tatsu-lab/alpaca_eval, Apache-2.0), including `NullModel`, a judge-gaming output the judge rated high. "
            f"Or upload your own .jsonl / .csv / .parquet (up to {MAX_UPLOAD_MB} MB and {MAX_UPLOAD_ROWS:,} rows) "
            "with an integer rating column (0-5) and text columns. Changing k after a run selects again from the "
            "curated pool, without curating again."
        )
        session = gr.State(None, time_to_live=3600, delete_callback=_forget)
        idle = {"interactive": False}
        with gr.Row():
            with gr.Column(scale=1):
                upload = gr.File(label="Your data (optional)", file_types=list(UPLOAD_TYPES), type="filepath",
                                 elem_id="upload")
                rate_offline = gr.Checkbox(
                    value=False, visible=offline_rater_available(),
                    label=f"Rate the upload with SmolLM2-135M-Instruct on this CPU (first {RATE_ROW_CAP} rows; a "
                    "weak rater, for trying the pipeline, not for real selection)")
                rating_column = gr.Textbox(value=C.RATING, label="Rating column (integers 0-5, nulls allowed)")
                template = gr.Textbox(value="", label="Row template (optional)",
                                      placeholder="{question}\\n\\n{answer}: your text columns in braces; empty = "
                                      "detect messages, instruction/output, prompt/completion or text")
                demo_rows = gr.Slider(500, NUM_ROWS, value=NUM_ROWS, step=100, label="Demo rows to use")
                k = gr.Number(value=DEFAULT_K, precision=0, minimum=1, label="Subset size k", elem_id="subset-k")
                method = gr.Dropdown(curation_methods(), value=DEFAULT_METHOD, label="Curation method")
                seed = gr.Number(value=0, precision=0, label="Seed")
                button = gr.Button("Run DS2", variant="primary")
            with gr.Column(scale=2):
                summary = gr.Markdown(elem_id="summary")
                with gr.Row():  # the figures carry their own titles: no label badge over them
                    transition = gr.Plot(label="Transition matrix", show_label=False)
                    composition = gr.Plot(label="Subset composition", show_label=False)
                distribution = gr.Plot(label="Rating distributions", show_label=False)
                with gr.Row():  # enabled once there is a subset
                    parquet = gr.DownloadButton("Download subset (parquet)", elem_id="download-parquet", **idle)
                    jsonl = gr.DownloadButton("Download subset (jsonl)", elem_id="download-jsonl", **idle)
                    card = gr.DownloadButton("Download card folder (zip)", elem_id="download-zip", **idle)
        table_options = dict(wrap=True, max_height=600, max_chars=PREVIEW_CHARS)
        selected = gr.Dataframe(label=f"Selected rows (best first; first {TABLE_ROWS})", elem_id="selected-rows",
                                **table_options)
        flagged = gr.Dataframe(label=f"Rows flagged as mis-rated (first {TABLE_ROWS})", **table_options)
        outputs = [summary, transition, distribution, composition, selected, flagged, parquet, jsonl, card, session]
        button.click(_run, inputs=[upload, rating_column, template, k, demo_rows, method, seed, rate_offline, session],
                     outputs=outputs, api_name="run")
        k.change(_reselect, inputs=[k, session], outputs=outputs, api_name="reselect", trigger_mode="always_last")
    return app


demo = build_app()

if __name__ == "__main__":
    demo.launch(max_file_size=f"{MAX_UPLOAD_MB}mb")
