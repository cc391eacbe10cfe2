"""What every data-writing command shares: output safety (``--overwrite-output``, checked before any work) and
the typed report it writes (``--report FILE``)."""

from __future__ import annotations

import argparse

OVERWRITE_OUTPUT = "--overwrite-output"


def add_output_options(p: argparse.ArgumentParser, *, report: str) -> None:
    """``--report FILE`` (this stage's section of the typed report) and ``--overwrite-output``."""
    p.add_argument("--report", metavar="FILE",
                   help=f"also write the report as JSON to FILE ({report}); `ds2 report` and `ds2 push` read it, "
                   "several such files combine")
    p.add_argument("--overwrite-output", action="store_true",
                   help="replace OUTPUT (and the --report file) when they exist (default: refuse); the new file is "
                   "written beside the old one and renamed over it, so an interruption loses neither")


def check_outputs(args: argparse.Namespace, *paths) -> None:
    """Before any work: refuse existing outputs without ``--overwrite-output`` and outputs that cannot be written."""
    from ..atomic import check_writable

    for path in (args.output, getattr(args, "report", None), *paths):
        if path:
            check_writable(path, overwrite=args.overwrite_output, flag=OVERWRITE_OUTPUT)


def stage_report(args: argparse.Namespace, **sections):
    """The report of one stage command: its input as the source, the section(s) given, its command line."""
    from ..report import CommandInfo, Report, SourceInfo

    return Report(source=SourceInfo.of(args.input), command=CommandInfo.of(args.argv), **sections)


def write_report(args: argparse.Namespace, report) -> None:
    if args.report:
        report.write(args.report, overwrite=args.overwrite_output)
