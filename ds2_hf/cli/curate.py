"""``ds2 curate INPUT OUTPUT``: add curated ratings, confidence, mis-rated flags and long-tail scores."""

from __future__ import annotations

import argparse
import dataclasses

from ..columns import EMBEDDING, RATING
from .common import (
    add_config_arguments, add_stage_arguments, check_outputs, column_or_none, config_values, load_input, stage_report,
    write_report,
)


#: The k-NN options a command exposes (the rest keep their defaults; ``knn.seed`` is ``--seed``).
KNN_OPTIONS = ("method", "max_seconds", "device", "target_recall", "nprobe", "cell_size", "coarse_nprobe",
               "max_memory_gb", "threads")


def add_curation_args(p: argparse.ArgumentParser, *, several_raters: bool = False) -> None:
    """Curation options shared by ``ds2 curate`` and ``ds2 run`` (``several_raters``: repeatable --rating-column):
    one per field of :class:`~ds2_hf.CurationConfig` and of the exposed :class:`~ds2_hf.knn.KnnConfig` fields,
    plus the columns of :class:`~ds2_hf.Curator`."""
    from ..curation import CurationConfig
    from ..knn import KnnConfig

    add_config_arguments(p, CurationConfig, title="curation (ds2_hf.CurationConfig)", exclude=("knn", "progress"),
                         notes={"near_duplicate_threshold": "Above 1 (e.g. 1.01): exact duplicates only."})
    add_config_arguments(p, KnnConfig, title="k-NN graph (ds2_hf.knn.KnnConfig)", prefix="knn_",
                         include=KNN_OPTIONS, notes={"max_seconds": "0: no limit."})
    g = p.add_argument_group("columns (ds2_hf.Curator)")
    if several_raters:
        g.add_argument("--rating-column", action="append", metavar="COLUMN",
                       help=f"ratings to curate (default: {RATING}); repeat it to fuse several raters into one score")
        g.add_argument("--no-embeddings", action="store_true",
                       help="with several --rating-column: fuse the raters alone, without embeddings")
    else:
        g.add_argument("--rating-column", default=RATING, help=f"ratings to curate (default: {RATING})")
    g.add_argument("--embedding-column", default=EMBEDDING, help=f"embeddings (default: {EMBEDDING})")
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
    g.add_argument("--overwrite", action="store_true", help="replace existing curation columns")


def curation_config(args: argparse.Namespace):
    """The :class:`~ds2_hf.CurationConfig` the options describe."""
    from ..curation import CurationConfig
    from ..knn import KnnConfig

    values = config_values(args, CurationConfig)
    if values.get("near_duplicate_threshold", 0) > 1:
        values["near_duplicate_threshold"] = None
    knn = config_values(args, KnnConfig, prefix="knn_")
    if knn.get("max_seconds") == 0:
        knn["max_seconds"] = None
    config = CurationConfig(**values)
    return dataclasses.replace(config, knn=KnnConfig(**knn, seed=config.seed))


def curator_from_args(args: argparse.Namespace):
    from ..curation import Curator

    config = curation_config(args)
    columns = args.rating_column if isinstance(args.rating_column, list) else None
    audit = getattr(args, "audit_column", None)
    if columns is not None and len(columns) > 1:
        return Curator(config, rating_columns=columns, audit_column=audit, overwrite=args.overwrite,
                       embedding_column=None if args.no_embeddings else args.embedding_column)
    if getattr(args, "no_embeddings", False):
        raise ValueError("--no-embeddings fuses several raters alone: give --rating-column more than once")
    return Curator(config, rating_column=columns[0] if columns else (args.rating_column or RATING),
                   embedding_column=args.embedding_column, overwrite=args.overwrite,
                   group_column=column_or_none(args.group_column), audit_column=audit,
                   find_duplicates=args.find_duplicates)


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
        finalists = stage.get("finalists", [])
        tried = f"; the best of {len(finalists)} finalists" if len(finalists) > 1 else ""
        print(f"neighbourhood prior: {'kept' if stage['used'] else 'not kept'} (held-out gain "
              f"{stage['heldout_gain_second']:.4f} against {stage['heldout_gain_first']:.4f} nats for the first stage"
              f"{tried})", file=file)
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
    p.set_defaults(func=run)
    return p


def add_arguments(p: argparse.ArgumentParser) -> None:
    add_stage_arguments(p, report="the curation: transition matrix, guard, k-NN, duplicates, options")
    p.add_argument("--embeddings", metavar="FILE.npy",
                   help="take the embeddings from an (N, d) .npy file (float16 or float32, row i for INPUT's row i; "
                   "memory-mapped) instead of INPUT's embedding column")
    add_curation_args(p, several_raters=True)


def run(args: argparse.Namespace) -> int:
    from .. import io
    from ..pipeline import check_inputs, check_ratings
    from ..report import CurationInfo

    check_outputs(args)
    curator = curator_from_args(args)
    ds = load_input(args.input, split=args.split, what="curate")
    if args.embeddings:
        check_ratings(ds, curator)
        _fit_on_npy(curator, ds, args.embeddings)
        out = curator.transform(ds)
    else:
        check_inputs(ds, curator, embed=False)  # every problem of the ratings and embeddings, in one message
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
