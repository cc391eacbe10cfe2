"""``ds2 report PATH``: the curation report as one standalone HTML page (figures inline)."""

from __future__ import annotations

import argparse

from .common import CARD_OPTIONS, add_config_arguments, add_plain_dataset_arguments, card_options, load_input


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
    p.set_defaults(func=run)
    return p


def add_arguments(p: argparse.ArgumentParser) -> None:
    from ..publish import PublishConfig

    p.add_argument("path", metavar="PATH", help="subset folder in Hub layout, or a dataset file / folder")
    p.add_argument("-o", "--output", help="HTML file to write (default: PATH/ds2_report.html for a subset folder)")
    p.add_argument("--overwrite-output", action="store_true", help="replace the HTML file when it exists")
    add_plain_dataset_arguments(p.add_argument_group("when PATH is a plain dataset"))
    add_config_arguments(p, PublishConfig, title="the report, when PATH is a plain dataset (ds2_hf.PublishConfig)",
                         include=CARD_OPTIONS, notes={"composition_column": "On the command line: none."})


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from ..publish import HTML_FILE, REPORT_FILE, PublishConfig, write_report_html
    from ..report import Report

    path = Path(args.path)
    overwrite = args.overwrite_output
    card = card_options(args)
    if (path / REPORT_FILE).is_file():
        if args.report or args.pool or card:
            raise ValueError(f"{str(path)!r} already holds {REPORT_FILE}; --report, --pool and the card options only "
                             "apply to a plain dataset")
        out = write_report_html(path, args.output or path / HTML_FILE, overwrite=overwrite)
    else:
        if not args.output:
            raise ValueError(f"{str(path)!r} is not a subset folder (no {REPORT_FILE}); pass -o REPORT.html")
        report = Report.read_many(args.report)
        subset = load_input(args.path, split=args.split, what="report")
        pool = load_input(args.pool, split=args.split, what="report") if args.pool else None
        out = write_report_html(subset, args.output, overwrite=overwrite, report=report, pool=pool,
                                config=PublishConfig(**card))
    print(f"wrote the report to {out} ({out.stat().st_size / 1024:.0f} KiB)")
    return 0
