"""``ds2 push FOLDER REPO_ID``: publish a subset to the Hugging Face Hub in one commit."""

from __future__ import annotations

import argparse

from .common import CARD_OPTIONS, add_config_arguments, add_plain_dataset_arguments, card_options, load_input


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
    p.set_defaults(func=run)
    return p


def add_arguments(p: argparse.ArgumentParser) -> None:
    from ..publish import PublishConfig

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
    add_plain_dataset_arguments(built)
    built.add_argument("--source", help="source dataset id (overrides the report)")
    add_config_arguments(p, PublishConfig, title="the card, when FOLDER is a plain dataset (ds2_hf.PublishConfig)",
                         include=CARD_OPTIONS, notes={"composition_column": "On the command line: none."})


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from ..publish import CARD_FILE, DATA_DIR, PublishConfig, push_folder, push_subset
    from ..report import Report

    folder = Path(args.folder)
    in_layout = (folder / CARD_FILE).is_file() and (folder / DATA_DIR).is_dir()
    card = card_options(args)
    if in_layout and (card or args.pool or args.source or args.report):
        raise ValueError(
            f"{str(folder)!r} already holds a dataset card; --report, --pool, --source and the card options only "
            "apply when FOLDER is a plain dataset. Re-create the folder with ds2_hf.save_subset(..., overwrite=True) "
            "to change the card."
        )
    push = dict(private=args.private, revision=args.revision, endpoint=args.endpoint,
                commit_message=args.message, prune=args.prune)
    if in_layout:
        result = push_folder(folder, args.repo_id, **push)
    else:
        report = Report.read_many(args.report)  # a bad report file fails before the data are read
        subset = load_input(args.folder, split=args.split, what="push")
        pool = load_input(args.pool, split=args.split, what="push") if args.pool else None
        result = push_subset(subset, args.repo_id, report=report, source=args.source, pool=pool,
                             config=PublishConfig(**card), **push)
    if result.changed:
        print(f"pushed {len(result.files)} files to {result.url} ({result.revision}): {result.commit_url}")
    else:
        print(f"{result.url} ({result.revision}) already holds these files; no new commit ({result.commit_url})")
    return 0
