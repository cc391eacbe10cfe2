"""Compatibility alias of :mod:`ds2_hf.publish.html` (the HTML report moved into the publishing package)."""

from .publish.html import render_report_html, write_report_html  # noqa: F401
