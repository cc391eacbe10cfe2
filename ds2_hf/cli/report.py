"""``ds2 report PATH``: the curation report as one standalone HTML page (figures inline)."""

from __future__ import annotations

import argparse


def add_parser(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "report",
        help="render the curation report as a standalone HTML page",
        description="Render the content of the dataset card (provenance, transition matrix, rating distributions, "
        "long-tail cut, composition, corrected examples, reproducing command) as one HTML file with the figures "
        "inlined, for sharing without publishing. PATH is a subset folder written by `ds2 run --out` or "
        "ds2_hf.save_subset, or any dataset (file, data folder, save_to_disk folder), described by --report files.",
        epilog="examples:\n"
        "  ds2 report my-subset                      # writes my-subset/ds2_report.html\n"
        "  ds2 report subset.parquet -o report.html --report selection.json --pool curated.parquet",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("path", metavar="PATH", help="subset folder in Hub layout, or a dataset file / folder")
    p.add_argument("-o", "--output", help="HTML file to write (default: PATH/ds2_report.html for a subset folder)")
    p.add_argument("--split", default="train", help="split to read when PATH has several (default: train)")
    p.add_argument("--report", action="append", default=[], metavar="JSON",
                   help="report JSON describing a plain dataset (repeatable; later files win)")
    p.add_argument("--pool", metavar="PATH", help="the full curated pool, for pool-vs-subset figures")
    p.add_argument("--composition-column", metavar="COLUMN",
                   help="a plain dataset: the column whose values the report counts (default: auto; none: no "
                   "composition)")
    p.add_argument("--overwrite-output", action="store_true", help="replace the HTML file when it exists")
    p.set_defaults(func=run)
    return p


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from .. import io
    from ..publish import HTML_FILE, REPORT_FILE, write_report_html
    from ..report import Report

    path = Path(args.path)
    overwrite = args.overwrite_output
    if (path / REPORT_FILE).is_file():
        if args.report or args.pool or args.composition_column:
            raise ValueError(f"{str(path)!r} already holds {REPORT_FILE}; --report, --pool and --composition-column "
                             "only apply to a plain dataset")
        out = write_report_html(path, args.output or path / HTML_FILE, overwrite=overwrite)
    else:
        if not args.output:
            raise ValueError(f"{str(path)!r} is not a subset folder (no {REPORT_FILE}); pass -o REPORT.html")
        report = Report.read_many(args.report)
        subset = io.load(args.path, split=args.split)
        pool = io.load(args.pool, split=args.split) if args.pool else None
        options = {}
        if args.composition_column:
            options["composition_column"] = None if args.composition_column.lower() == "none" else \
                args.composition_column
        out = write_report_html(subset, args.output, overwrite=overwrite, report=report, pool=pool, **options)
    print(f"wrote the report to {out} ({out.stat().st_size / 1024:.0f} KiB)")
    return 0
