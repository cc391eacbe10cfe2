"""``ds2 simulate OUTPUT``: a synthetic pool with known true scores, to try curation end to end."""

from __future__ import annotations

import argparse


def add_parser(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "simulate",
        help="write a synthetic rated pool with known true scores",
        description="Write clustered unit embeddings whose clusters carry a known true score, rated through a "
        "known transition matrix (columns: embedding, rating, true_rating). Curate it and compare "
        "curated_rating with true_rating to see what curation recovers.",
        epilog="example:\n  ds2 simulate sim.parquet --n 20000 --transition llama-like && ds2 curate sim.parquet cur.parquet",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.set_defaults(func=run)
    return p


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("output", help="output .parquet/.jsonl file or folder")
    p.add_argument("--n", type=int, default=10000, help="rows (default: 10000)")
    p.add_argument("--dim", type=int, default=256, help="embedding dimension (default: 256)")
    p.add_argument("--transition", default="gpt-like",
                   help="gpt-like, mistral-like, llama-like, or a float diagonal (default: gpt-like)")
    p.add_argument("--seed", type=int, default=0)


def run(args: argparse.Namespace) -> int:
    import datasets

    from .. import io
    from ..simulate import simulate

    try:
        transition = float(args.transition)
    except ValueError:
        transition = args.transition
    sim = simulate(args.n, args.dim, transition=transition, seed=args.seed)
    features = datasets.Features({"embedding": datasets.List(datasets.Value("float32"), length=args.dim),
                                  "rating": datasets.Value("int8"), "true_rating": datasets.Value("int8")})
    ds = datasets.Dataset.from_dict({"embedding": sim.embeddings, "rating": sim.rated, "true_rating": sim.true},
                                    features=features)
    io.save(ds, args.output)
    print(f"wrote {len(ds)} rows to {args.output}; rated accuracy {(sim.rated == sim.true).mean():.3f}")
    return 0
