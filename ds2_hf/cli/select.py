"""``ds2 select INPUT OUTPUT -k K``: keep the best K rows by the DS2 rule or a baseline strategy."""

from __future__ import annotations

import argparse
import textwrap

from ..columns import EMBEDDING, LONG_TAIL_SCORE
from .common import add_output_options, check_outputs, stage_report, write_report

_STRATEGIES = ("confident", "ds2", "score", "random", "length", "knn", "diversity")  # = selection.STRATEGIES
_TIE_BREAKS = ("index", "random")  # = ds2_hf.selection.TIE_BREAKS
_STYLES = ("reference", "tulu", "plain")  # = ds2_hf.formats.STYLES


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
    p.add_argument("input", help="Hub id, data file (.parquet/.jsonl/.json/.csv), data folder or save_to_disk folder")
    p.add_argument("output", help="output .parquet/.jsonl/.csv file, or a folder (save_to_disk)")
    p.add_argument("--split", default="train", help="split to read when INPUT has several (default: train)")
    budget = p.add_mutually_exclusive_group()
    budget.add_argument("-k", "--k", type=int, help="number of rows to select (default: all eligible rows, ranked)")
    budget.add_argument("--fraction", type=float, help="select this share of the pool instead, in (0, 1]")
    p.add_argument("--strategy", choices=_STRATEGIES, default="confident",
                   help="selection strategy (default: confident; ds2 = the paper's rule)")
    p.add_argument("--confidence-tiers", type=float, nargs="+", default=[0.99, 0.9], metavar="P",
                   help="confident: within a score, rows whose posterior gives it at least the first P come first, "
                   "then the next P, ... (default: 0.99 0.9)")
    p.add_argument("--keep-duplicates", dest="deduplicate", action="store_false",
                   help="allow several rows of one duplicate group (default: at most one)")
    p.add_argument("--score-column", help="score column (default: curated_rating, else rating)")
    p.add_argument("--long-tail-column", default=LONG_TAIL_SCORE,
                   help=f"long-tail score column (default: {LONG_TAIL_SCORE})")
    p.add_argument("--threshold", type=float, help="keep only rows with score >= THRESHOLD before ranking")
    p.add_argument("--seed", type=int, default=0, help="seed for --strategy random and --tie-break random (default: 0)")
    p.add_argument("--tie-break", choices=_TIE_BREAKS, default="index",
                   help="order of rows with equal keys (default: index)")
    p.add_argument("--length-column", help="length: numeric column to rank by (default: length of the rendered text)")
    p.add_argument("--format", default="auto", help="length: row format (default: auto-detect)")
    p.add_argument("--template", help='length: str.format template over the row, e.g. "{question}\\n\\n{answer}"')
    p.add_argument("--style", choices=_STYLES, default="reference", help="length: text style (default: reference)")
    p.add_argument("--embedding-column", default=EMBEDDING, help=f"embedding column (default: {EMBEDDING})")
    p.add_argument("--diversity-threshold", type=float, default=0.9,
                   help="diversity: maximum cosine similarity to a kept row (default: 0.9, as DEITA)")
    p.add_argument("--knn-k", type=int, default=10, help="knn: neighbours to average (default: 10)")
    add_output_options(p, report="the selection: strategy, budget, score counts, options")
    p.set_defaults(func=run)
    return p


def run(args: argparse.Namespace) -> int:
    from .. import io
    from ..formats import Formatter
    from ..report import SelectionInfo
    from ..selection import SelectionConfig, select

    check_outputs(args)
    formatter = Formatter(format=args.format, template=args.template, style=args.style)
    config = SelectionConfig(
        strategy=args.strategy,
        k=args.k,
        fraction=args.fraction,
        score_column=args.score_column,
        long_tail_column=args.long_tail_column,
        threshold=args.threshold,
        seed=args.seed,
        tie_break=args.tie_break,
        length_column=args.length_column,
        formatter=None if formatter == Formatter() else formatter,  # the default, recorded as the API records it
        embedding_column=args.embedding_column,
        diversity_threshold=args.diversity_threshold,
        knn_k=args.knn_k,
        confidence_tiers=tuple(args.confidence_tiers),
        deduplicate=args.deduplicate,
    )
    dataset = io.load(args.input, split=args.split)
    subset, report = select(dataset, config=config, return_report=True)
    dest = io.save(subset, args.output, overwrite=args.overwrite_output)
    write_report(args, stage_report(args, selection=SelectionInfo.from_report(report)))
    counts = f", scores {report.score_counts}" if report.score_counts else ""
    print(f"selected {report.n_selected} of {report.n_pool} rows with strategy {report.strategy!r}{counts}; "
          f"wrote {dest}")
    return 0
