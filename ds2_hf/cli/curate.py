"""``ds2 curate INPUT OUTPUT``: add curated ratings, confidence, mis-rated flags and long-tail scores."""

from __future__ import annotations

import argparse

from ..columns import EMBEDDING, RATING
from .common import add_output_options, check_outputs, stage_report, write_report


def add_curation_args(p: argparse.ArgumentParser, *, several_raters: bool = False) -> None:
    """Curation options shared by ``ds2 curate`` and ``ds2 run`` (``several_raters``: repeatable --rating-column)."""
    g = p.add_argument_group("curation")
    g.add_argument("--method", choices=("joint", "faithful"), default="joint",
                   help="joint (default; most accurate) or faithful (the paper's reference algorithm)")
    g.add_argument("--num-classes", type=int, default=6, help="score classes 0..K-1 (default: 6, the paper's 0-5)")
    if several_raters:
        g.add_argument("--rating-column", action="append", metavar="COLUMN",
                       help=f"ratings to curate (default: {RATING}); repeat it to fuse several raters into one score")
        g.add_argument("--no-embeddings", action="store_true",
                       help="with several --rating-column: fuse the raters alone, without embeddings")
    else:
        g.add_argument("--rating-column", default=RATING, help=f"ratings to curate (default: {RATING})")
    g.add_argument("--embedding-column", default=EMBEDDING, help=f"embeddings (default: {EMBEDDING})")
    g.add_argument("--confidence-threshold", type=float,
                   help="minimum confidence to change a rating (default: 0.5 faithful, 0 joint)")
    g.add_argument("--backoff", dest="backoff", action="store_true", default=None,
                   help="shrink corrections when neighbours carry little information (default: on for joint)")
    g.add_argument("--no-backoff", dest="backoff", action="store_false", help="never shrink corrections")
    g.add_argument("--neighbourhood-prior", choices=("auto", "on", "off"), default="auto",
                   help="joint only: the second stage (neighbours' leave-one-out posteriors as each row's prior); "
                   "auto (default) keeps it when it predicts held-out ratings better")
    g.add_argument("--duplicate-quirk", action="store_true",
                   help="faithful only: reproduce the reference code's doubled dataset (comparison only)")
    g.add_argument("--group-column", default="auto",
                   help="prompt of each row, for pools with several responses per prompt: responses to one prompt "
                   "are never evidence for each other. auto (default): the prompt read from the rows' text, used "
                   "when some prompt repeats; none: ignore prompt groups")
    g.add_argument("--audit-column", metavar="COLUMN",
                   help="trusted ratings (people, a strong model) on some rows, null elsewhere: with one rater the "
                   "guard withholds corrections that disagree with them; with several --rating-column they anchor "
                   "the estimates")
    g.add_argument("--no-duplicates", dest="find_duplicates", action="store_false",
                   help="do not look for rows with the same response (default: copies are not evidence for each "
                   "other, and a selection takes each duplicate group once)")
    g.add_argument("--near-duplicate-threshold", type=float, default=0.995,
                   help="cosine similarity from which rows of different prompts are near duplicates "
                   "(default: 0.995; 1.01 = exact duplicates only)")
    g.add_argument("--knn-method", choices=("auto", "exact", "ivf", "hnsw"), default="auto",
                   help="k-NN search (default: auto = exact for small data, IVF with measured recall above)")
    g.add_argument("--knn-max-seconds", type=float, default=3600.0,
                   help="longest estimated k-NN search that may start (default 3600; 0 = no limit); above it the "
                   "search escalates or stops with the estimate")
    g.add_argument("--seed", type=int, default=0, help="seed of every random draw (default: 0)")
    g.add_argument("--overwrite", action="store_true", help="replace existing curation columns")


def curator_from_args(args: argparse.Namespace):
    from ..curation import CurationConfig, Curator
    from ..knn import KnnConfig

    config = CurationConfig(
        method=args.method, num_classes=args.num_classes, confidence_threshold=args.confidence_threshold,
        backoff=args.backoff, duplicate_quirk=args.duplicate_quirk, seed=args.seed,
        neighbourhood_prior={"auto": "auto", "on": True, "off": False}[args.neighbourhood_prior],
        knn=KnnConfig(method=args.knn_method, seed=args.seed, max_seconds=args.knn_max_seconds or None),
        near_duplicate_threshold=None if args.near_duplicate_threshold > 1 else args.near_duplicate_threshold,
    )
    columns = args.rating_column if isinstance(args.rating_column, list) else None
    audit = getattr(args, "audit_column", None)
    if columns is not None and len(columns) > 1:
        return Curator(config, rating_columns=columns, audit_column=audit, overwrite=args.overwrite,
                       embedding_column=None if args.no_embeddings else args.embedding_column)
    if getattr(args, "no_embeddings", False):
        raise ValueError("--no-embeddings fuses several raters alone: give --rating-column more than once")
    group = None if args.group_column.lower() == "none" else args.group_column
    return Curator(config, rating_column=columns[0] if columns else (args.rating_column or RATING),
                   embedding_column=args.embedding_column, overwrite=args.overwrite, group_column=group,
                   audit_column=audit, find_duplicates=args.find_duplicates)


def print_summary(report, file=None) -> None:
    """Print a short human-readable summary of a curation report (a ``CurationInfo`` or ``Curator.report_``)."""
    from ..report import CurationInfo

    info = CurationInfo.from_dict(report, where="curation")
    K = info.num_classes
    print(f"curation ({info.method}): {info.n_rated} rated rows, {info.n_unrated} unrated; "
          f"{info.n_flagged} flagged, {info.n_changed} changed", file=file)
    if info.knn is not None:
        recall = f", recall@{info.knn.k} {info.knn.recall:.3f}" if info.knn.recall is not None else ""
        print(f"k-NN graph: {info.knn.method}{recall}", file=file)
    stage = info.neighbourhood_prior
    if "heldout_gain_second" in stage:
        print(f"neighbourhood prior: {'kept' if stage['used'] else 'not kept'} (held-out gain "
              f"{stage['heldout_gain_second']:.4f} against {stage['heldout_gain_first']:.4f} nats for the first stage)",
              file=file)
    print("estimated transition matrix T[true, rated]:", file=file)
    print("  true\\rated " + " ".join(f"{j:>6d}" for j in range(K)), file=file)
    for i, row in enumerate(info.transition_matrix):
        print(f"  {i:>10d} " + " ".join(f"{v:6.3f}" for v in row), file=file)
    print("counts raw     : " + " ".join(f"{c:>6d}" for c in info.counts_raw), file=file)
    print("counts curated : " + " ".join(f"{c:>6d}" for c in info.counts_curated), file=file)
    dup = info.duplicates
    if dup is not None and dup.n_groups:
        print(f"duplicates     : {dup.n_rows} rows in {dup.n_groups} groups (largest "
              f"{dup.largest[0][0]} rows); a selection takes one row of each", file=file)
    if info.clusterability is not None:
        print("guard          : " + info.clusterability.verdict, file=file)
        if info.clusterability.advice:
            print("                 " + info.clusterability.advice, file=file)
    if info.raters is not None:
        print_raters(info.raters.to_dict(), file=file)


def print_raters(raters: dict, file=None) -> None:
    """The per-rater table of a fused curation report: accuracy, bias, agreement with the fused score."""
    print(f"raters (estimated; {'with' if raters['embeddings'] else 'without'} embeddings):", file=file)
    print(f"  {'rater':24s} {'rated':>8s} {'accuracy':>9s} {'bias':>7s} {'agrees with fused':>18s}", file=file)
    for s in raters["summary"]:
        print(f"  {s['name'][:24]:24s} {s['n_rated']:>8d} {s['accuracy']:>9.3f} {s['bias']:>+7.3f} "
              f"{s['agreement_with_fused']:>18.3f}", file=file)
    print("  " + raters["trust"], file=file)
    audit = raters.get("audit")
    if audit:
        moved = ", ".join(f"{s['name']} {a['accuracy_shift']:+.3f}" for s, a in zip(raters["summary"], audit["raters"]))
        print(f"  audit: {audit['n_audited']} trusted rows moved the estimated accuracies by {moved} and changed "
              f"{audit['changed_rows']:.1%} of the other rows' fused scores", file=file)


def add_parser(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "curate",
        help="curate noisy ratings with k-NN consensus",
        description="Estimate the rater's score transition matrix, flag mis-rated rows, correct them and score "
        "each row's rarity. Adds curated_rating, curation_confidence, misrated, long_tail_score, duplicate_group "
        "(and curation_posterior with the joint method). A guard checks that neighbours share the rated quality "
        "and withholds the corrections when they do not; its verdict is printed and written to the report. INPUT "
        "needs a rating column and an embedding column (run `ds2 embed` first, or `ds2 run`, which embeds when "
        "needed), or --embeddings FILE.npy.",
        epilog="examples:\n  ds2 curate pool_emb.parquet curated.parquet --report curation.json\n"
        "  ds2 curate pool_emb/ curated/ --method faithful\n"
        "  ds2 curate pool_emb/ fused/ --rating-column gpt --rating-column llama --audit-column human\n"
        "  ds2 curate rated.parquet curated.parquet --embeddings emb_f16.npy",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("input", help="Hub id, data file (.parquet/.jsonl/.json/.csv) or dataset folder")
    p.add_argument("output", help="output .parquet/.jsonl/.csv file, or a folder (save_to_disk)")
    p.add_argument("--split", default="train", help="split to read when INPUT has several (default: train)")
    add_output_options(p, report="the curation: transition matrix, guard, k-NN, duplicates, options")
    p.add_argument("--embeddings", metavar="FILE.npy",
                   help="take the embeddings from an (N, d) .npy file (float16 or float32, row i for INPUT's row i; "
                   "memory-mapped) instead of INPUT's embedding column")
    add_curation_args(p, several_raters=True)
    p.set_defaults(func=run)
    return p


def run(args: argparse.Namespace) -> int:
    from .. import io
    from ..report import CurationInfo

    check_outputs(args)
    curator = curator_from_args(args)
    ds = io.load(args.input, split=args.split)
    if args.embeddings:
        _fit_on_npy(curator, ds, args.embeddings)
        out = curator.transform(ds)
    else:
        out = curator.fit_transform(ds)
    io.save(out, args.output, overwrite=args.overwrite_output)
    write_report(args, stage_report(args, curation=CurationInfo.from_dict(curator.report_, where="curation")))
    print_summary(curator.report_)
    print(f"wrote {len(out)} rows to {args.output}")
    return 0


def _fit_on_npy(curator, ds, path: str) -> None:
    """Fit ``curator`` on INPUT (ratings, text) and the embeddings of a ``.npy`` file (memory-mapped, not copied)."""
    from ..knn import load_embeddings

    emb = load_embeddings(path)
    if len(emb) != len(ds):
        raise ValueError(
            f"--embeddings {path!r} holds {len(emb)} rows but the input has {len(ds)}; the file needs one row per "
            "input row, in the same order"
        )
    curator.fit(ds, embeddings=emb)
