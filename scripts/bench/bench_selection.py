"""Time the selection strategies on a synthetic pool (default 100k rows x 256-d embeddings).

The ``diversity`` strategy (DEITA-style greedy filter) is the only one whose cost grows with the pool and the
budget: it is exact, so its work is about ``n_considered * n_kept * d`` multiply-adds. Two geometries bracket it:

* ``duplicates``: 2,000 tight clusters, so most rows are near-duplicates of a kept row (the filter walks the
  whole pool and rejects most of it);
* ``spread``: isotropic Gaussian vectors, nothing is rejected (the filter stops after ``k`` rows, but with
  ``k=None`` keeps everything: the quadratic worst case).

Usage::

    python scripts/bench/bench_selection.py                       # 100k x 256, k = 1000, 10000, all
    python scripts/bench/bench_selection.py --n 20000 --k 1000    # a quick run

Prints a Markdown table (seconds are the best of ``--repeat`` runs of :func:`ds2_hf.selection.select_indices`;
the ``select()`` row times the full Dataset path, including reading the embedding column).
"""

from __future__ import annotations

import argparse
import time

import numpy as np


def make_pool(kind: str, n: int, d: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Embeddings (float32, unit rows), integer scores 0-5 and a long-tail score."""
    rng = np.random.default_rng(seed)
    if kind == "duplicates":
        centers = rng.standard_normal((2000, d)).astype(np.float32)
        centers /= np.linalg.norm(centers, axis=1, keepdims=True)
        x = centers[rng.integers(0, len(centers), n)] + 0.02 * rng.standard_normal((n, d)).astype(np.float32)
    elif kind == "spread":
        x = rng.standard_normal((n, d)).astype(np.float32)
    else:
        raise ValueError(f"unknown pool kind {kind!r}")
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    scores = rng.integers(0, 6, n).astype(np.float64)
    long_tail = rng.random(n)
    return x, scores, long_tail


def best_of(repeat: int, fn) -> tuple[float, object]:
    best, out = float("inf"), None
    for _ in range(repeat):
        t = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t)
    return best, out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=100_000, help="pool size (default: 100000)")
    parser.add_argument("--dim", type=int, default=256, help="embedding dimension (default: 256)")
    parser.add_argument("--k", type=int, nargs="+", default=[1000, 10_000, 0],
                        help="budgets to time; 0 = no budget (filter the whole pool)")
    parser.add_argument("--kinds", nargs="+", default=["duplicates", "spread"], help="pool geometries")
    parser.add_argument("--threshold", type=float, default=0.9, help="diversity threshold (default: 0.9)")
    parser.add_argument("--repeat", type=int, default=1, help="runs per cell; the best is reported")
    parser.add_argument("--skip-dataset", action="store_true", help="do not time the datasets.Dataset path")
    args = parser.parse_args(argv)

    from ds2_hf.selection import select_indices

    print(f"pool: n={args.n}, d={args.dim}, diversity_threshold={args.threshold}\n")
    print("| pool | strategy | k | kept | considered | seconds |")
    print("| --- | --- | --- | --- | --- | --- |")
    for kind in args.kinds:
        x, scores, long_tail = make_pool(kind, args.n, args.dim)
        k_ds2 = min(10_000, args.n)
        t, top = best_of(args.repeat, lambda: select_indices("ds2", k=k_ds2, scores=scores, long_tail=long_tail))
        print(f"| {kind} | ds2 | {k_ds2} | {len(top)} | - | {t:.3f} |")
        for k in args.k:
            budget = k or None
            details: dict = {}
            t, kept = best_of(args.repeat, lambda: select_indices(
                "diversity", k=budget, scores=scores, long_tail=long_tail, embeddings=x,
                diversity_threshold=args.threshold, details=details))
            print(f"| {kind} | diversity | {budget or 'all'} | {len(kept)} | {details['n_considered']} | {t:.2f} |")

        if not args.skip_dataset:
            import datasets

            from ds2_hf.selection import select

            features = datasets.Features({
                "curated_rating": datasets.Value("float32"),
                "long_tail_score": datasets.Value("float32"),
                "embedding": datasets.List(datasets.Value("float32"), length=args.dim),
            })
            ds = datasets.Dataset.from_dict(
                {"curated_rating": scores, "long_tail_score": long_tail, "embedding": x}, features=features
            )
            k = 10_000 if args.n > 10_000 else args.n // 2
            t, sub = best_of(
                args.repeat, lambda: select(ds, k, strategy="diversity", diversity_threshold=args.threshold)
            )
            print(f"| {kind} | diversity via select() | {k} | {len(sub)} | - | {t:.2f} |")


if __name__ == "__main__":
    main()
