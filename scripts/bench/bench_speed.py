#!/usr/bin/env python
"""Speed and memory of curation (k-NN graph + transition matrix + detection + long-tail), embeddings given.

Each configuration runs in its own process so its peak RSS is its own. The embeddings are simulated with the
public generator ``../shared/bench/synth.py`` when it is present (the geometry the targets refer to), else with
``ds2_hf.simulate``; their generation is timed separately and not counted, and its memory is reported apart.

Usage::

    python scripts/bench/bench_speed.py --n 300000 --dim 1024 --method joint
    python scripts/bench/bench_speed.py --n 1000000 --dim 256 --method joint --accuracy
    python scripts/bench/bench_speed.py --n 300000 --dim 1024 --repeat 3   # three processes, then the medians
    python scripts/bench/bench_speed.py --grid            # the BENCHMARKS.md table, one process per run
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

PUBLIC_SYNTH = Path(__file__).resolve().parents[2].parent / "shared" / "bench" / "synth.py"

GRID = [
    ("50000", "1024", "joint"),
    ("50000", "1024", "faithful"),
    ("300000", "1024", "joint"),
    ("300000", "1024", "faithful"),
    ("300000", "256", "joint"),
    ("300000", "256", "faithful"),
    ("1000000", "256", "joint"),
]


def rss_gb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2


def one(n: int, dim: int, method: str, seed: int, accuracy: bool, knn: str) -> dict:
    import numpy as np

    from ds2_hf.curation import curate_scores
    from ds2_hf.knn import KnnConfig
    from ds2_hf.simulate import simulate

    t = time.perf_counter()
    if PUBLIC_SYNTH.exists():
        sys.path.insert(0, str(PUBLIC_SYNTH.parent))
        import synth

        g = synth.generate(n, dim, synth.get_T("gpt-like"), synth.P_DEFAULT, seed=seed)
        sim = SimpleNamespace(embeddings=g["embeddings"], rated=g["rated"], true=g["true"], transition=g["T"])
        del g
    else:
        sim = simulate(n, dim, transition="gpt-like", seed=seed)
    gen = time.perf_counter() - t
    rss_data = rss_gb()
    t = time.perf_counter()
    res = curate_scores(sim.embeddings, sim.rated, method=method, seed=seed, progress=False,
                        knn=KnnConfig(method=knn, seed=seed))
    wall = time.perf_counter() - t
    out = {
        "n": n, "dim": dim, "method": method, "seconds": round(wall, 1), "generate_seconds": round(gen, 1),
        "peak_rss_gb": round(rss_gb(), 2), "rss_after_data_gb": round(rss_data, 2),
        "knn": res.report["knn"], "timings": res.report["timings"],
    }
    if accuracy:
        out["acc_rated"] = round(float((sim.rated == sim.true).mean()), 4)
        out["acc_curated"] = round(float((res.curated == sim.true).mean()), 4)
        out["T_mae"] = round(float(np.abs(res.transition_matrix - sim.transition).mean()), 4)
    return out


def repeat(args: list[str], times: int) -> dict:
    """Run ``args`` (one configuration) ``times`` times, each in its own process; print every run and the medians."""
    import statistics

    runs = []
    for _ in range(max(1, times)):
        line = subprocess.run(args, check=True, capture_output=True, text=True).stdout.strip().splitlines()[-1]
        print(line, flush=True)
        runs.append(json.loads(line))
    med = {key: round(statistics.median(r[key] for r in runs), 2) for key in ("seconds", "peak_rss_gb")}
    med["knn_seconds"] = round(statistics.median(r["timings"]["knn"] for r in runs), 1)
    out = {"median_of": len(runs), "n": runs[0]["n"], "dim": runs[0]["dim"], "method": runs[0]["method"], **med}
    print(json.dumps(out), flush=True)
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--n", type=int, default=50000)
    ap.add_argument("--dim", type=int, default=1024)
    ap.add_argument("--method", choices=("joint", "faithful"), default="joint")
    ap.add_argument("--knn", choices=("auto", "exact", "ivf"), default="auto")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--accuracy", action="store_true", help="also report accuracy against the simulated truth")
    ap.add_argument("--repeat", type=int, default=1, help="run this many processes and print the medians")
    ap.add_argument("--grid", action="store_true", help="run the BENCHMARKS.md grid (with --repeat per row)")
    a = ap.parse_args(argv)
    if a.grid:
        for n, dim, method in GRID:
            repeat([sys.executable, __file__, "--n", n, "--dim", dim, "--method", method, "--accuracy"], a.repeat)
        return 0
    if a.repeat > 1:
        args = [sys.executable, __file__, "--n", str(a.n), "--dim", str(a.dim), "--method", a.method, "--knn", a.knn,
                "--seed", str(a.seed)] + (["--accuracy"] if a.accuracy else [])
        repeat(args, a.repeat)
        return 0
    print(json.dumps(one(a.n, a.dim, a.method, a.seed, a.accuracy, a.knn)), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
