"""The curation report as one standalone HTML page, for people who do not publish to the Hub.

It shows the same content as the dataset card (provenance, transition matrix, rating distributions, long-tail
cut, composition, corrected examples, the reproducing command, citation) with the figures inlined as base64 PNGs,
so the single file can be mailed, attached to an issue or opened offline.

Examples
--------
>>> import ds2_hf
>>> folder = ds2_hf.save_subset(subset, "my-subset", report=report)           # doctest: +SKIP
>>> ds2_hf.write_report_html("my-subset")                                      # doctest: +SKIP
PosixPath('my-subset/ds2_report.html')
"""

from __future__ import annotations

import base64
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ..report import Report
from .card import card_context, template_path
from .config import HTML_FILE, PublishConfig, make_config
from .figures import render_figures
from .save import prepare, read_folder

__all__ = ["render_report_html", "write_report_html"]


def _render(context: dict[str, Any], pngs: Mapping[str, bytes]) -> str:
    from .._import_utils import require

    jinja2 = require("jinja2", purpose="rendering the HTML report")
    env = jinja2.Environment(autoescape=True, keep_trailing_newline=True, undefined=jinja2.StrictUndefined)
    template = env.from_string(template_path("report.html").read_text(encoding="utf-8"))
    figures = {Path(name).stem: base64.b64encode(png).decode("ascii") for name, png in pngs.items()}
    return template.render(ctx=_Lenient(context), figures=_Lenient(figures))


class _Lenient(dict):
    """Attribute access to a dict for the template; a missing key reads as None (e.g. an absent figure)."""

    def __getattr__(self, name: str):
        value = self.get(name)
        return _Lenient(value) if isinstance(value, dict) else value


def render_report_html(
    source,
    *,
    report: Report | Mapping[str, Any] | None = None,
    pool=None,
    config: PublishConfig | None = None,
    **options,
) -> str:
    """Render the HTML report of a saved subset folder or of an in-memory subset.

    Parameters
    ----------
    source : str, path or datasets.Dataset
        A folder written by :func:`ds2_hf.save_subset` (its ``ds2_report.json`` and ``figures/`` are used as they
        are, after checking its manifest), or a :class:`datasets.Dataset` subset (the summary and figures are
        computed now).
    report, pool, config, **options
        As for :func:`ds2_hf.save_subset`; only used when ``source`` is a Dataset.

    Returns
    -------
    str
        A complete HTML document with inline figures.

    Raises
    ------
    FileNotFoundError
        ``source`` is a folder without ``ds2_report.json``.
    """
    import datasets

    if isinstance(source, datasets.Dataset):
        config = make_config(config, options)
        typed, summary = prepare(source, report, None, pool, config)
        pngs = render_figures(source, pool, summary, typed, config)
        return _render(card_context(summary, typed, config, sorted(pngs)), pngs)
    folder = Path(source)
    saved = read_folder(folder)
    pngs = {name: (folder / name).read_bytes() for name in saved.figures if (folder / name).is_file()}
    return _render(card_context(saved.summary, saved.report, saved.config, sorted(pngs)), pngs)


def write_report_html(source, out: str | os.PathLike | None = None, *, overwrite: bool = False, **kwargs) -> Path:
    """Write :func:`render_report_html` to ``out`` (default: ``<folder>/ds2_report.html``), atomically.

    An existing ``out`` is replaced only with ``overwrite=True``.
    """
    from ..atomic import check_writable, write_text

    if out is None:
        if not isinstance(source, (str, os.PathLike)):
            raise ValueError("pass out=... (an .html path) when rendering an in-memory subset")
        out = Path(source) / HTML_FILE
    out = check_writable(out, overwrite=overwrite, flag="overwrite=True (--overwrite-output)")
    return write_text(out, render_report_html(source, **kwargs), overwrite=overwrite)
