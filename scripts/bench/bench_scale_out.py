#!/usr/bin/env python
"""The k-NN graph and curation at 1M-10M rows on one machine: float16 embeddings memory-mapped from disk.

Three steps, each its own process so that each peak RSS is its own:

    # 1. data: float16 embeddings + ratings in DIR (generation is not timed; synth.py at 10M x 256 needs ~15 GB)
    python scripts/bench/bench_scale_out.py generate --n 10000000 --dim 256 --out /data/g10m
    python scripts/bench/bench_scale_out.py generate --n 10000000 --dim 256 --geometry isotropic --out /data/i10m
    # 2. the k-NN graph alone (k = 40), with its cost estimates, escalation steps and recall
    python scripts/bench/bench_scale_out.py knn --data /data/i10m
    # 3. the default curation on the memory-mapped embeddings, accuracy against the ground truth
    python scripts/bench/bench_scale_out.py curate --data /data/g10m

The issue-17 targets, each run alone on the machine (2 cores, 24 GB): 10M x 256 curated within 60 min and 20 GB
peak RSS, its accuracy no more than 0.5 points below the same generator's 1M figure; 1M x 1024 within 10 min:

    python scripts/bench/bench_scale_out.py generate --n 1000000 --dim 256 --out /data/g1m
    python scripts/bench/bench_scale_out.py curate --data /data/g1m            # the 1M accuracy to compare with
    python scripts/bench/bench_scale_out.py generate --n 10000000 --dim 256 --out /data/g10m
    python scripts/bench/bench_scale_out.py curate --data /data/g10m
    python scripts/bench/bench_scale_out.py generate --n 1000000 --dim 1024 --out /data/g1m1024
    python scripts/bench/bench_scale_out.py curate --data /data/g1m1024

``synth`` is the public generator ``../shared/bench/synth.py`` (gpt-like noise, seed 0; ``ds2_hf.simulate``
when absent); ``isotropic`` is unit Gaussian noise written block by block (no structure: the worst case for
approximate search), with ratings drawn through the gpt-like matrix from a random true score. Every step prints
one JSON line with its wall time and the process's peak RSS.
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import time
from pathlib import Path

import numpy as np

PUBLIC_SYNTH = Path(__file__).resolve().parents[2].parent / "shared" / "bench" / "synth.py"
BLOCK = 1 << 18


def rss_gb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2


def generate(args) -> dict:
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    t = time.perf_counter()
    emb = np.lib.format.open_memmap(out / "emb_f16.npy", mode="w+", dtype=np.float16, shape=(args.n, args.dim))
    if args.geometry == "isotropic":
        from ds2_hf.simulate import DEFAULT_PRIOR, TRANSITION_PRESETS

        rng = np.random.default_rng(args.seed)
        for s in range(0, args.n, BLOCK):
            x = rng.standard_normal((min(BLOCK, args.n - s), args.dim)).astype(np.float32)
            emb[s : s + len(x)] = x / np.linalg.norm(x, axis=1, keepdims=True)
        T = np.asarray(TRANSITION_PRESETS["gpt-like"])
        true = rng.choice(len(T), size=args.n, p=DEFAULT_PRIOR)
        rated = (rng.random(args.n)[:, None] > np.cumsum(T, axis=1)[true]).sum(1).clip(0, len(T) - 1)
    elif PUBLIC_SYNTH.exists():
        sys.path.insert(0, str(PUBLIC_SYNTH.parent))
        import synth

        g = synth.generate(args.n, args.dim, synth.get_T("gpt-like"), synth.P_DEFAULT, seed=args.seed)
        for s in range(0, args.n, BLOCK):
            emb[s : s + BLOCK] = g["embeddings"][s : s + BLOCK]
        true, rated = g["true"], g["rated"]
    else:
        from ds2_hf.simulate import simulate

        sim = simulate(args.n, args.dim, transition="gpt-like", seed=args.seed)
        emb[:] = sim.embeddings
        true, rated = sim.true, sim.rated
    emb.flush()
    np.save(out / "true.npy", np.asarray(true, dtype=np.int8))
    np.save(out / "rated.npy", np.asarray(rated, dtype=np.int8))
    return {"step": "generate", "n": args.n, "dim": args.dim, "geometry": args.geometry,
            "seconds": round(time.perf_counter() - t, 1), "peak_rss_gb": round(rss_gb(), 2)}


def knn(args) -> dict:
    from ds2_hf.knn import build_knn_graph, load_embeddings

    x = load_embeddings(Path(args.data) / "emb_f16.npy")
    cfg = _knn_config(args)
    t = time.perf_counter()
    g = build_knn_graph(x, args.k, config=cfg, progress=True)
    out = {"step": "knn", "n": len(x), "dim": x.shape[1], "seconds": round(time.perf_counter() - t, 1),
           "peak_rss_gb": round(rss_gb(), 2), "graph": g.summary()}
    if args.compare_in_memory:  # the same graph from a float32 copy in memory, in this process, right after
        t = time.perf_counter()
        m = build_knn_graph(np.asarray(x, dtype=np.float32), args.k, config=cfg, progress=True)
        out["in_memory"] = {"seconds": round(time.perf_counter() - t, 1), "recall": m.recall,
                            "same_neighbours": round(float((m.indices == g.indices).mean()), 4)}
        out["memory_mapped_over_in_memory"] = round(out["seconds"] / out["in_memory"]["seconds"], 2)
    return out


def curate(args) -> dict:
    from ds2_hf.curation import curate_scores
    from ds2_hf.knn import KnnGraph, load_embeddings

    d = Path(args.data)
    x = load_embeddings(d / "emb_f16.npy")
    rated, true = np.load(d / "rated.npy").astype(np.int64), np.load(d / "true.npy").astype(np.int64)
    graph = None
    if args.graph:  # a graph saved by an earlier run (--save-graph): the curation alone
        g = Path(args.graph)
        info = json.loads((g / "graph.json").read_text())
        graph = KnnGraph(np.load(g / "indices.npy", mmap_mode="r"), np.load(g / "similarities.npy", mmap_mode="r"),
                         info["method"], info["recall"], info["info"])
    duplicates = None if args.duplicate_share is None else _copy_pairs(len(x), args.duplicate_share)
    t = time.perf_counter()
    res = curate_scores(x, rated, duplicates=duplicates, progress=True, knn=_knn_config(args), graph=graph)
    out = {"step": "curate", "n": len(x), "dim": x.shape[1], "seconds": round(time.perf_counter() - t, 1),
           "peak_rss_gb": round(rss_gb(), 2), "acc_rated": round(float((rated == true).mean()), 4),
           "acc_curated": round(float((res.curated == true).mean()), 4), "knn": res.report["knn"],
           "joint": {key: res.report["joint"][key] for key in ("k", "alpha", "beta", "gamma", "iterations")},
           "neighbourhood_prior": res.report["joint"]["neighbourhood_prior"], "timings": res.report["timings"],
           "duplicate_share": args.duplicate_share}
    if args.save_graph and res.graph is not None:
        g = Path(args.save_graph)
        g.mkdir(parents=True, exist_ok=True)
        np.save(g / "indices.npy", res.graph.indices)
        np.save(g / "similarities.npy", res.graph.similarities)
        (g / "graph.json").write_text(json.dumps({"method": res.graph.method, "recall": res.graph.recall,
                                                  "info": res.graph.info}, default=str))
    return out


def _copy_pairs(n: int, share: float) -> np.ndarray:
    """Duplicate-group labels with ``share`` of the rows in pairs (random rows, seed 0), ``-1`` elsewhere.

    ``share=0`` is what a text pool without copies passes: a labelling in which no row shares a label.
    """
    labels = np.full(n, -1, np.int64)
    rows = np.random.default_rng(0).choice(n, int(n * share) // 2 * 2, replace=False)
    labels[rows] = np.arange(len(rows)) // 2
    return labels


def _knn_config(args):
    from ds2_hf.knn import KnnConfig

    extra = {} if args.max_flat_cells is None else {"max_flat_cells": args.max_flat_cells}
    return KnnConfig(max_seconds=args.max_seconds, **extra)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="step", required=True)
    g = sub.add_parser("generate")
    g.add_argument("--n", type=int, required=True)
    g.add_argument("--dim", type=int, default=256)
    g.add_argument("--geometry", choices=("synth", "isotropic"), default="synth")
    g.add_argument("--seed", type=int, default=0)
    g.add_argument("--out", required=True)
    for name in ("knn", "curate"):
        s = sub.add_parser(name)
        s.add_argument("--data", required=True)
        s.add_argument("--k", type=int, default=40)
        s.add_argument("--max-seconds", type=float, default=3600.0)
        s.add_argument("--max-flat-cells", type=int, default=None,
                       help="KnnConfig.max_flat_cells: e.g. 1024 makes the 1M graph use the two-level cells of 10M")
        s.add_argument("--compare-in-memory", action="store_true",
                       help="knn: also build the graph from a float32 copy in memory, for the time ratio")
        s.add_argument("--save-graph", default=None, help="curate: write the graph used to this folder")
        s.add_argument("--graph", default=None, help="curate: a graph written by --save-graph (the curation alone)")
        s.add_argument("--duplicate-share", type=float, default=None,
                       help="curate: pass duplicate groups, this share of the rows in random pairs (0: a labelling "
                            "with no copies, as a text pool without copies gives)")
    args = ap.parse_args(argv)
    print(json.dumps({"generate": generate, "knn": knn, "curate": curate}[args.step](args), default=str), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
