#!/usr/bin/env python
"""Rating on Ray Data against the loopback server: all rows rated, a re-run sends nothing, and the wall time
against the plain remote backend on the same server in the same run.

    python scripts/bench/bench_ray_rating.py --rows 2000 --json bench_ray_rating.json

The server (tests/rating/server.py) hosts a tiny random-weight model and answers one request at a time; with
``--latency`` it holds every answer back that long outside its model lock, like a remote endpoint's network
delay. Both paths use the ``vllm-server`` dialect in ``logprobs`` mode and a fresh rating cache; the plain path
sends ``--concurrency`` requests at a time, the Ray path runs ``--actors`` request actors (default: the same
number, an eighth of a CPU each) on a local Ray with 2 CPUs (started once, before the timed runs).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests" / "rating"))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=2000)
    ap.add_argument("--latency", type=float, default=0.0)
    ap.add_argument("--concurrency", type=int, default=8, help="plain path: concurrent requests")
    ap.add_argument("--actors", type=int, default=None, help="Ray path: request actors (default: --concurrency)")
    ap.add_argument("--ray-batch-size", type=int, default=16)
    ap.add_argument("--json", default=None)
    args = ap.parse_args()
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    import datasets
    import ray
    import torch

    torch.set_num_threads(1)
    logging.getLogger("httpx").setLevel(logging.WARNING)
    from conftest import build_wordlevel
    from server import FaultPlan, ModelServer

    from ds2_hf.rating import RatingConfig, rate
    from ds2_hf.rating.ray_engine import RayOptions

    datasets.disable_progress_bars()
    tmp = tempfile.mkdtemp(prefix="ds2-bench-ray-")
    rows = [{"instruction": f"Explain topic {i} in {2 + i % 5} sentences.", "output": f"Topic {i} matters. " * (1 + i % 4)}
            for i in range(args.rows)]
    ds = datasets.Dataset.from_list(rows)
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    ray.data.DataContext.get_current().enable_progress_bars = False
    out = {"rows": args.rows, "latency": args.latency}
    with ModelServer(build_wordlevel(os.path.join(tmp, "model")), latency=args.latency) as srv:
        def cfg(name):
            return RatingConfig(model="tiny", backend="vllm-server", base_url=srv.base_url, mode="logprobs",
                                top_logprobs=len(srv.tok), max_concurrency=args.concurrency, timeout=300,
                                cache_path=os.path.join(tmp, f"{name}.sqlite"))

        rate(datasets.Dataset.from_list(rows[:8]), cfg("warm"), engine="ray")  # Ray workers up, processor built
        for name, kw in (("plain", {}), ("ray", {"engine": "ray", "ray": RayOptions(concurrency=args.actors,
                                                                                   batch_size=args.ray_batch_size)})):
            srv.faults = FaultPlan()
            t = time.perf_counter()
            rated, stats = rate(ds, cfg(name), **kw)
            out[name] = {"seconds": round(time.perf_counter() - t, 2), "requests": srv.faults.requests,
                         "rated": sum(r is not None for r in rated["rating"]), "failed": dict(stats.failed)}
            print(name, out[name], flush=True)
        srv.faults = FaultPlan()
        t = time.perf_counter()
        rated, stats = rate(ds, cfg("ray"), engine="ray")
        out["ray_rerun"] = {"seconds": round(time.perf_counter() - t, 2), "requests": srv.faults.requests,
                            "cached": stats.cached}
        print("ray re-run", out["ray_rerun"], flush=True)
    out["ray_over_plain"] = round(out["ray"]["seconds"] / out["plain"]["seconds"], 2)
    print(json.dumps(out), flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
