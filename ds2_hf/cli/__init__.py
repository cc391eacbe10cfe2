"""The ``ds2`` command line: ``ds2 rate | embed | curate | select | run | push | report | simulate``.

Each sub-command lives in its own module of this package and exposes ``add_parser(subparsers)``, which
registers the command and sets ``func`` to the function that runs it. Heavy imports happen inside those
functions, so ``ds2 --help`` is instant.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys

# command name -> module inside ds2_hf.cli
COMMANDS = {
    "rate": "rate",
    "embed": "embed",
    "curate": "curate",
    "select": "select",
    "run": "run",
    "push": "push",
    "report": "report",
    "simulate": "simulate",
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="ds2",
        description="DS2 data selection: rate samples with an LLM, embed them, curate the noisy ratings, select a "
        "small, clean, diverse subset and publish it.",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log debug messages")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for module in COMMANDS.values():  # a command whose module fails to import fails the whole parser, loudly
        importlib.import_module(f"ds2_hf.cli.{module}").add_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    argv = list(sys.argv[1:] if argv is None else argv)
    args = parser.parse_args(argv)
    args.argv = argv  # the exact command, recorded in reports and dataset cards
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO, format="%(levelname)s %(name)s: %(message)s"
    )
    if not args.verbose:
        logging.getLogger("faiss.loader").setLevel(logging.WARNING)  # its CPU-feature probing is noise
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except (ValueError, KeyError, FileNotFoundError, ImportError) as err:
        # A missing column raises KeyError, whose str() is the repr of its message: print the message itself.
        message = err.args[0] if isinstance(err, KeyError) and len(err.args) == 1 else err
        print(f"ds2 {args.command}: error: {message}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
