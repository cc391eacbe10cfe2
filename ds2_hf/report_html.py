"""The curation report as one standalone HTML page, for people who do not publish to the Hub.

It shows the same content as the dataset card (provenance, transition matrix, rating distributions, long-tail
cut, composition, corrected examples, the reproducing command, citation) with the figures inlined as base64 PNGs,
so the single file can be mailed, attached to an issue or opened offline.

Examples
--------
>>> import ds2_hf
>>> from ds2_hf.report_html import write_report_html
>>> folder = ds2_hf.save_subset(subset, "my-subset", report=report)           # doctest: +SKIP
>>> write_report_html("my-subset")                                             # doctest: +SKIP
PosixPath('my-subset/ds2_report.html')
"""

from __future__ import annotations

import base64
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from . import hub

__all__ = ["render_report_html", "write_report_html"]

HTML_FILE = hub.HTML_FILE


def _render(context: dict[str, Any], pngs: Mapping[str, bytes]) -> str:
    from ._import_utils import require

    jinja2 = require("jinja2", purpose="rendering the HTML report")
    env = jinja2.Environment(autoescape=True, keep_trailing_newline=True, undefined=jinja2.StrictUndefined)
    template = env.from_string(hub._template_path("report.html").read_text(encoding="utf-8"))
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
    report: Mapping[str, Any] | None = None,
    pool=None,
    config: hub.PublishConfig | None = None,
    **options,
) -> str:
    """Render the HTML report of a saved subset folder or of an in-memory subset.

    Parameters
    ----------
    source : str, path or datasets.Dataset
        A folder written by :func:`ds2_hf.save_subset` (its ``ds2_report.json`` and ``figures/`` are used as they
        are), or a :class:`datasets.Dataset` subset (the summary and figures are computed now).
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
        config = hub._make_config(config, options)
        full_report, summary = hub._prepare(source, report, None, pool, config)
        pngs = hub._figure_pngs(source, pool, summary, full_report, config) if config.figures else {}
        context = hub._card_context(summary, full_report, config, sorted(pngs))
        return _render(context, pngs)
    folder = Path(source)
    payload = hub.load_summary(folder)
    config = hub._config_from_record(payload.get("publish") or {})
    figures = (payload.get("files") or {}).get("figures") or []
    pngs = {name: (folder / name).read_bytes() for name in figures if (folder / name).is_file()}
    context = hub._card_context(payload["summary"], payload.get("report") or {}, config, sorted(pngs))
    return _render(context, pngs)


def write_report_html(source, out: str | os.PathLike | None = None, **kwargs) -> Path:
    """Write :func:`render_report_html` to ``out`` (default: ``<folder>/ds2_report.html``) and return the path."""
    if out is None:
        if not isinstance(source, (str, os.PathLike)):
            raise ValueError("pass out=... (an .html path) when rendering an in-memory subset")
        out = Path(source) / HTML_FILE
    out = Path(out)
    html = render_report_html(source, **kwargs)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(html, encoding="utf-8")
    return out
