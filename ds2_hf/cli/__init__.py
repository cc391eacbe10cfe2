"""The ``ds2`` command line: ``ds2 rate | embed | curate | select | run | push | report | simulate``.

Each sub-command lives in its own module of this package and exposes ``add_parser(subparsers)``, which
registers the command (its help and description) and sets ``func`` to the function that runs it, and
``add_arguments(parser)``, which adds its options, most of them generated from the configuration dataclasses
(:func:`ds2_hf.cli.common.add_config_arguments`). Only the command being run gets its options, so ``ds2 --help``
imports no configuration (nor numpy) and is instant. A failure prints one line and exits with the status
:mod:`ds2_hf.cli.errors` gives it (2 for a usage error, 1 for a runtime failure); ``ds2 --debug ...`` shows the
traceback.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys

from .errors import explain

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


#: ``build_parser(ALL)`` adds the options of every command (for documentation and tests).
ALL = "*"


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The ``ds2`` parser with every command, and the options of ``command`` (every command's with :data:`ALL`)."""
    parser = argparse.ArgumentParser(
        prog="ds2",
        description="DS2 data selection: rate samples with an LLM, embed them, curate the noisy ratings, select a "
        "small, clean, diverse subset and publish it.",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log debug messages")
    parser.add_argument("--debug", action="store_true",
                        help="show the full traceback when a command fails (default: one line naming the problem)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, module in COMMANDS.items():  # a command whose module fails to import fails the parser, loudly
        mod = importlib.import_module(f"ds2_hf.cli.{module}")
        p = mod.add_parser(sub)
        if command in (name, ALL):
            mod.add_arguments(p)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser(next((a for a in argv if not a.startswith("-")), None))  # global flags take no value
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
    except (Exception, KeyboardInterrupt) as err:  # noqa: BLE001 - classified below; a bug is re-raised
        verdict = None if args.debug else explain(err)
        if verdict is None:
            raise
        status, message = verdict
        print(f"ds2 {args.command}: error: {message}", file=sys.stderr)
        return status

if __name__ == "__main__":
    sys.exit(main())
