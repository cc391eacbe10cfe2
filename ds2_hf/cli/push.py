"""``ds2 push FOLDER REPO_ID``: publish a subset to the Hugging Face Hub in one commit."""

from __future__ import annotations

import argparse
import sys


def add_parser(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "push",
        help="publish a subset (parquet + dataset card + figures + report) to the Hub in one commit",
        description="Upload FOLDER to the Hub dataset repository REPO_ID in a single commit, creating the "
        "repository (and branch) when needed. FOLDER is a subset folder in Hub layout (README.md, data/, figures/, "
        "ds2_report.json; written by `ds2 run --out` or ds2_hf.save_subset), pushed as it is. It may also be any "
        "dataset (a .parquet/.jsonl/.csv file, a data folder or a save_to_disk folder, e.g. from `ds2 select`): "
        "the card, figures and report are then built first, from --report files and the optional --pool. "
        "The token comes from HF_TOKEN or the cached login (`hf auth login`) and is never printed; HF_ENDPOINT "
        "selects another Hub. Files already on the Hub byte for byte are skipped, so pushing twice makes one commit.",
        epilog="examples:\n"
        "  ds2 push my-subset my-org/alpaca-ds2-1k --private\n"
        "  ds2 push subset.parquet me/alpaca-ds2-1k --report curation.json --report selection.json "
        "--pool curated.parquet --license cc-by-nc-4.0\n"
        "  ds2 push my-subset me/alpaca-ds2-1k --revision v2 --message 'Re-curate with k=50'",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("folder", metavar="FOLDER", help="subset folder in Hub layout, or a dataset file / folder")
    p.add_argument("repo_id", metavar="REPO_ID", help="'name', 'user/name' or 'org/name'")
    p.add_argument("--private", action="store_true", default=None,
                   help="create the repository as private (an existing repository keeps its visibility)")
    p.add_argument("--revision", help="branch to commit to, created from main if missing (default: main)")
    p.add_argument("--endpoint", help="Hub address (default: $HF_ENDPOINT or https://huggingface.co)")
    p.add_argument("--message", help="commit message (default: a summary of the subset)")
    p.add_argument("--no-prune", dest="prune", action="store_false",
                   help="keep files under data/ and figures/ of the repository that FOLDER does not have")
    built = p.add_argument_group("when FOLDER is a plain dataset (card built on the fly)")
    built.add_argument("--split", default="train", help="split to read when FOLDER has several (default: train)")
    built.add_argument("--report", action="append", default=[], metavar="JSON",
                       help="report JSON to describe the subset (repeatable; later files win)")
    built.add_argument("--pool", metavar="PATH", help="the full curated pool, for pool-vs-subset figures")
    built.add_argument("--source", help="source dataset id (overrides the report)")
    built.add_argument("--license", help="licence id for the card (default: the source's, else unknown)")
    built.add_argument("--language", action="append", help="ISO 639-1 language code (repeatable)")
    built.add_argument("--pretty-name", help="title of the dataset card")
    built.add_argument("--keep-embedding", action="store_true", help="publish the embedding column too")
    built.add_argument("--composition-column", metavar="COLUMN",
                       help="column whose values the card counts in the subset and the pool (e.g. generator); "
                       "default: auto (source, dataset, category, task, ...); none: no composition")
    p.set_defaults(func=run)
    return p


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from .. import io
    from ..publish import CARD_FILE, DATA_DIR, PushError, push_folder, push_subset
    from ..report import Report

    folder = Path(args.folder)
    in_layout = (folder / CARD_FILE).is_file() and (folder / DATA_DIR).is_dir()
    build_options = [name for name in ("pool", "source", "license", "language", "pretty_name", "keep_embedding",
                                       "composition_column", "report") if getattr(args, name)]
    if in_layout and build_options:
        flags = ", ".join(f"--{n.replace('_', '-')}" for n in build_options)
        raise ValueError(
            f"{str(folder)!r} already holds a dataset card; {flags} only apply when FOLDER is a plain dataset. "
            f"Re-create the folder with ds2_hf.save_subset(..., overwrite=True) to change the card."
        )
    push = dict(private=args.private, revision=args.revision, endpoint=args.endpoint,
                commit_message=args.message, prune=args.prune)
    try:
        if in_layout:
            result = push_folder(folder, args.repo_id, **push)
        else:
            report = Report.read_many(args.report)  # a bad report file fails before the data are read
            subset = io.load(args.folder, split=args.split)
            pool = io.load(args.pool, split=args.split) if args.pool else None
            options = {k: v for k, v in (("license", args.license), ("language", args.language),
                                         ("pretty_name", args.pretty_name)) if v}
            if args.composition_column:
                options["composition_column"] = (None if args.composition_column.lower() == "none"
                                                 else args.composition_column)
            result = push_subset(subset, args.repo_id, report=report, source=args.source, pool=pool,
                                 keep_embedding=args.keep_embedding, **options, **push)
    except PushError as err:
        print(f"ds2 push: error: {err}", file=sys.stderr)
        return 1
    if result.changed:
        print(f"pushed {len(result.files)} files to {result.url} ({result.revision}): {result.commit_url}")
    else:
        print(f"{result.url} ({result.revision}) already holds these files; no new commit ({result.commit_url})")
    return 0
