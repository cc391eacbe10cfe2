"""``ds2 select INPUT OUTPUT -k K``: keep the best K rows by the DS2 rule or a baseline strategy."""

from __future__ import annotations

import argparse
import textwrap

from .common import (
    add_config_arguments, add_formatter_arguments, add_stage_arguments, check_outputs, config_values,
    formatter_from_args, load_input, stage_report, write_report,
)


def add_parser(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "select",
        help="select a small subset (DS2 rule or a baseline)",
        description=textwrap.fill(
            "Select the best K rows of INPUT and write them, with every column, to OUTPUT (best first). "
            "Strategies: confident (default) = curated score desc, within a score the rows curation is sure of "
            "first (posterior of that score >= 0.99, then >= 0.9: --confidence-tiers), then long-tail score desc; "
            "ds2 = curated score "
            "desc, then long-tail score desc (the paper's rule); score = top by "
            "score, optionally only rows with score >= --threshold (AlpaGasus); random = seeded sample; length = "
            "longest conversations; knn = largest mean distance to the nearest neighbours; diversity = DEITA-style: "
            "walk the score order and skip rows whose cosine similarity to a kept row exceeds "
            "--diversity-threshold. Rows with a null rating are never selected by confident, ds2, score or "
            "diversity. Every strategy takes at most one row of each duplicate group (the duplicate_group column "
            "that `ds2 curate` writes, else exact duplicates of the response text) unless --keep-duplicates.",
            width=100,
            break_on_hyphens=False,
        ),
        epilog="examples:\n"
        "  ds2 select curated.parquet subset.parquet -k 1000\n"
        "  ds2 select curated/ alpagasus.jsonl --strategy score --score-column rating --threshold 4.5\n"
        "  ds2 select curated/ deita.parquet -k 10000 --strategy diversity --diversity-threshold 0.9\n"
        "  ds2 select pool.jsonl random.parquet --fraction 0.05 --strategy random --seed 1 --report report.json",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.set_defaults(func=run)
    return p


def add_arguments(p: argparse.ArgumentParser) -> None:
    from ..selection import SelectionConfig

    add_stage_arguments(p, report="the selection: strategy, budget, score counts, options")
    add_config_arguments(p, SelectionConfig, title="selection (ds2_hf.SelectionConfig)", exclude=("formatter",))
    add_formatter_arguments(p, purpose=" for --strategy length")


def run(args: argparse.Namespace) -> int:
    from .. import io
    from ..report import SelectionInfo
    from ..selection import SelectionConfig, select

    check_outputs(args)
    # no rendering option given: None, the default, recorded as the API records it
    config = SelectionConfig(**config_values(args, SelectionConfig), formatter=formatter_from_args(args))
    dataset = load_input(args.input, split=args.split, what="select")
    subset, report = select(dataset, config=config, return_report=True)
    dest = io.save(subset, args.output, overwrite=args.overwrite_output)
    write_report(args, stage_report(args, selection=SelectionInfo.from_report(report)))
    counts = f", scores {report.score_counts}" if report.score_counts else ""
    print(f"selected {report.n_selected} of {report.n_pool} rows with strategy {report.strategy!r}{counts}; "
          f"wrote {dest}")
    return 0
