#!/usr/bin/env python
"""Real-ratings benchmark: does curation, and the subset it selects, beat the raw ratings on real data?

Suites
------
``demo``
    The shipped demo (``ds2_hf.load_demo``): 8 models' answers to 805 AlpacaEval instructions with real
    GPT-4-turbo judge ratings, embedded with WordLlama. Its second judge, ``pref_alpaca_eval_gpt4`` (AlpacaEval-1
    GPT-4 against another baseline, 3,223 rows), is the independent reference. Reported: Spearman agreement of
    the (curated) rating with that judge, the mean rating per generator and whether it keeps the raw order, the
    rows changed, the guard's verdict, and for subsets of N/30 (214) and 500 rows: the share of NullModel (one
    judge-gaming answer repeated 805 times), the share of rows whose response repeats one already in the subset,
    and the independent judge's mean score of the subset.
``pools``
    ShareGPT (1,500 and 4,967 conversations) and a 20k T0 sample, rated by instance-dependent synthetic raters
    (``realpools.py``). Reported: accuracy raw -> curated against the known truth, and the purity of the top
    N/30: its mean true score and its share of true top-class rows.
``sweep``
    The public generator (``../shared/bench/synth.py``) at ``--sweep-n`` rows, each preset, over its geometry:
    ``--violate`` 0.05 / 0.10 / 0.15, ``--spread`` 0.8 / 1.0, ``--intrinsic-dim`` 8 / 32, and priors with more or
    fewer top scores; plus each preset at ``--preset-n`` rows with the default geometry. Accuracy, T MAE and
    top-N/30 purity.
``text``
    AG News, SMS spam, SST-2 and TREC with injected class-conditional noise (``realdata.py``).

Methods: ``raw`` (the ratings as rated), ``default`` (``ds2_hf`` defaults: joint curation with the guard, the
pool's prompt groups and duplicates where it has them, and the ``confident`` selection with one row per
duplicate group), ``faithful`` and ``reference`` (the paper's method without / with the reference code's doubled
dataset), ``cleanlab`` (the peer baseline of ``bench_accuracy.py``). Every method but the default selects by the
paper's rule (score desc, long-tail desc) on its own scores; all share one k-NN graph per dataset.

Usage::

    python scripts/bench/bench_real.py --suites demo pools text --out real.json
    python scripts/bench/bench_real.py --suites sweep --sweep-n 20000 --preset-n 50000 --out sweep.json
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
PUBLIC_SYNTH = HERE.parents[1].parent / "shared" / "bench" / "synth.py"
METHODS = ("raw", "default", "faithful", "reference", "cleanlab")
PRESETS = ("gpt-like", "mistral-like", "llama-like")
SWEEP = {
    "violate 0.05": (), "violate 0.10": ("--violate", "0.10"), "violate 0.15": ("--violate", "0.15"),
    "spread 0.8": ("--spread", "0.8"), "spread 1.0": ("--spread", "1.0"),
    "intrinsic-dim 8": ("--intrinsic-dim", "8"), "intrinsic-dim 32": ("--intrinsic-dim", "32"),
    "more top scores": ("--p-json", "[0.05, 0.10, 0.20, 0.30, 0.20, 0.15]"),
    "fewer top scores": ("--p-json", "[0.10, 0.18, 0.28, 0.30, 0.13, 0.01]"),
}


def public_draw(n: int, preset: str, extra: tuple, seed: int, cache: Path, dim: int = 256) -> dict:
    """A draw of the public generator (cached as .npz)."""
    tag = "_".join([str(n), str(dim), preset, str(seed), *extra]).translate(str.maketrans(" ,[]", "____", "-"))
    path = cache / f"synth_{tag}.npz"
    if not path.exists():
        cache.mkdir(parents=True, exist_ok=True)
        subprocess.run([sys.executable, str(PUBLIC_SYNTH), "--n", str(n), "--dim", str(dim), "--preset", preset,
                        "--seed", str(seed), "--no-check", "--out", str(path), *extra], check=True,
                       stdout=subprocess.DEVNULL)
    z = np.load(path)
    return {k: z[k] for k in ("embeddings", "true", "rated", "T", "cluster")}


def ds2_order(scores: np.ndarray, long_tail: np.ndarray) -> np.ndarray:
    """The paper's selection order: score desc, then long-tail desc; unrated (negative) rows last."""
    return np.lexsort((-long_tail, -np.where(scores < 0, -np.inf, scores)))


def run_methods(d: dict, methods, *, K: int, seed: int = 0, groups=None, duplicates=None) -> dict:
    """Curate ``d`` (embeddings, rated) with each method; each result has curated, order (best first), T, gate."""
    from bench_accuracy import cleanlab_curate

    from ds2_hf.curation import curate_scores
    from ds2_hf.knn import KnnConfig, build_knn_graph
    from ds2_hf.selection import select_indices

    x, y = d["embeddings"], d["rated"]
    graph = build_knn_graph(x, min(60, len(y) - 1), config=KnnConfig(seed=seed), progress=False)
    lt = (1.0 - graph.similarities[:, :10].astype(np.float64)).mean(axis=1)
    out = {}
    for m in methods:
        t = time.perf_counter()
        if m == "raw":
            r = {"curated": y, "order": ds2_order(y, lt), "T": None}
        elif m == "cleanlab":
            c = cleanlab_curate(x, np.maximum(y, 0), K, graph)
            r = {"curated": np.where(y >= 0, c["curated"], -1), "T": c["T_est"]}
            r["order"] = ds2_order(r["curated"], c["long_tail"])
        else:
            opts = {"method": "joint"} if m == "default" else {"method": "faithful", "duplicate_quirk": m == "reference"}
            struct = {"groups": groups, "duplicates": duplicates} if m == "default" else {}
            res = curate_scores(x, y, num_classes=K, seed=seed, progress=False, graph=graph, **struct, **opts)
            r = {"curated": res.curated, "T": res.transition_matrix, "result": res}
            if m == "default":
                r["order"] = select_indices("confident", k=None, scores=np.where(res.curated < 0, np.nan, res.curated),
                                            long_tail=res.long_tail, posterior=res.posterior,
                                            duplicates=res.duplicate_group)
                r["gate"] = res.clusterability.gate
                r["status"] = res.clusterability.status
                r["verdict"] = res.clusterability.verdict
            else:
                r["order"] = ds2_order(res.curated, res.long_tail)
        r["seconds"] = round(time.perf_counter() - t, 2)
        out[m] = r
    return out


def truth_metrics(d: dict, r: dict, K: int) -> dict:
    true, rated, cur = d["true"], d["rated"], np.asarray(r["curated"])
    top = r["order"][: max(1, len(true) // 30)]
    row = {"acc_rated": float((rated == true).mean()), "acc_curated": float((cur == true).mean()),
           "changed": int((cur != rated).sum()), "topk_mean": float(true[top].mean()),
           "topk_top_share": float((true[top] == K - 1).mean())}
    if r.get("T") is not None and "T" in d:
        row["T_mae"] = float(np.abs(np.asarray(r["T"]) - d["T"]).mean())
    for key in ("gate", "status", "seconds"):
        if key in r:
            row[key] = r[key]
    return row


def truth_rows(suite: str, label: str, d: dict, a, K: int = 6) -> list[dict]:
    """Every method on one dataset with known truth: one printed line and one result row each."""
    rows = []
    for m, r in run_methods(d, a.methods, K=K, seed=a.seed).items():
        s = truth_metrics(d, r, K)
        rows.append({"suite": suite, "data": label, "method": m, **s})
        print(_line(label, m, s), flush=True)
    return rows


def _line(label: str, method: str, s: dict) -> str:
    t = f"{s['T_mae']:.3f}" if "T_mae" in s else "  -  "
    return (f"{label:34s} {method:9s} acc {s['acc_rated']:.3f} -> {s['acc_curated']:.3f}  T {t}  top-k "
            f"{s['topk_mean']:.3f} / {s['topk_top_share']:.3f}  {s.get('status', '')}")


# ------------------------------------------------------------------------------------------------------- suites


def suite_demo(a) -> list[dict]:
    from scipy.stats import spearmanr

    import ds2_hf
    from ds2_hf.selection.duplicates import exact_duplicate_groups, pool_text_keys

    ds = ds2_hf.load_demo()
    cache = Path(a.cache) / "demo_wordllama256.npy"
    if cache.exists():
        emb = np.load(cache)
    else:
        emb = np.asarray(ds2_hf.embed(ds, backend="wordllama")["embedding"], dtype=np.float32)
        cache.parent.mkdir(parents=True, exist_ok=True)
        np.save(cache, emb)
    y = np.array([-1 if r is None else r for r in ds["rating"]])
    ref = np.array([np.nan if r is None else r for r in ds["pref_alpaca_eval_gpt4"]], dtype=float)
    gen = np.array(ds["generator"])
    prompts, responses, chars = pool_text_keys(ds)
    dup_exact = exact_duplicate_groups(prompts, responses, chars)
    null = gen == "NullModel"
    d = {"embeddings": emb, "rated": y}
    order_raw = ("claude-2", "gpt-3.5-turbo-0301", "vicuna-13b")
    rows = []
    for label, struct in (("demo (prompt groups, duplicates)", {"groups": prompts, "duplicates": dup_exact}),
                          ("demo (core, no structure passed)", {})):
        results = run_methods(d, a.methods if struct else ("default",), K=6, seed=a.seed, **struct)
        for m, r in results.items():
            cur = np.asarray(r["curated"], dtype=float)
            cur[cur < 0] = np.nan
            ok = ~np.isnan(ref) & ~np.isnan(cur)
            means = {g: round(float(np.nanmean(cur[gen == g])), 3) for g in sorted(set(gen)) if (gen == g).any()
                     and not np.isnan(cur[gen == g]).all()}
            weak = max(means[g] for g in ("alpaca-7b", "falcon-7b-instruct", "pythia-12b-mix-sft"))
            kept = all(means[a_] > means[b] for a_, b in zip(order_raw, order_raw[1:])) and means["vicuna-13b"] > weak
            row = {"suite": "demo", "data": label, "method": m, "spearman": float(spearmanr(cur[ok], ref[ok])[0]),
                   "n_reference": int(ok.sum()), "changed": int((cur[y >= 0] != y[y >= 0]).sum()),
                   "generator_means": means, "order_kept": bool(kept), "status": r.get("status"),
                   "verdict": r.get("verdict")}
            for k in (214, 500):
                top = r["order"][:k]
                codes = dup_exact[top]
                repeats = int(sum(np.bincount(codes[codes >= 0]).clip(1) - 1)) if (codes >= 0).any() else 0
                row[f"subset_{k}"] = {"nullmodel_share": float(null[top].mean()), "repeat_share": repeats / len(top),
                                      "judge_mean": float(np.nanmean(ref[top]))}
            rows.append(row)
            s = row["subset_214"], row["subset_500"]
            print(f"{label:34s} {m:9s} spearman {row['spearman']:.3f} changed {row['changed']:5d} order "
                  f"{'kept' if kept else 'LOST'}  NullModel {s[0]['nullmodel_share']:.2f}/{s[1]['nullmodel_share']:.2f}"
                  f"  repeats {s[0]['repeat_share']:.2f}/{s[1]['repeat_share']:.2f}  judge {s[0]['judge_mean']:.3f}/"
                  f"{s[1]['judge_mean']:.3f}  {row['status'] or ''}", flush=True)
    return rows


def suite_pools(a) -> list[dict]:
    import realpools

    rows = []
    sg = realpools.load_sharegpt(data_dir=a.data_dir, cache_dir=a.cache)
    t0 = realpools.load_t0(data_dir=a.data_dir, cache_dir=a.cache)
    tasks = [(f"sharegpt {n or 4967} {r}", lambda n=n, r=r: realpools.sharegpt_task(sg, r, n=n, seed=a.seed))
             for r in realpools.RATERS["sharegpt"] for n in (1500, None) if "sharegpt" in a.pools]
    tasks += [(f"t0 20k {r}", lambda r=r: realpools.t0_task(t0, r, seed=a.seed)) for r in realpools.RATERS["t0"]
              if "t0" in a.pools]
    for label, make in tasks:
        rows += truth_rows("pools", label, make(), a)
    return rows


def suite_sweep(a) -> list[dict]:
    rows = []
    jobs = [(f"{p} {a.preset_n // 1000}k default", a.preset_n, p, ()) for p in PRESETS if a.preset_n]
    jobs += [(f"{p} {a.sweep_n // 1000}k {name}", a.sweep_n, p, extra) for name, extra in SWEEP.items()
             for p in PRESETS]
    for label, n, preset, extra in jobs:
        rows += truth_rows("sweep", label, public_draw(n, preset, extra, a.seed, Path(a.cache)), a)
    return rows


def suite_text(a) -> list[dict]:
    import realdata

    rows = []
    for name in realdata.DATASETS:
        d = realdata.load(name, data_dir=a.data_dir, cache_dir=a.cache)
        rows += truth_rows("text", name, d, a, K=len(d["T"]))
    return rows


SUITES = {"demo": suite_demo, "pools": suite_pools, "sweep": suite_sweep, "text": suite_text}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--suites", nargs="*", default=["demo", "pools", "text"], choices=sorted(SUITES))
    ap.add_argument("--methods", nargs="*", default=list(METHODS), choices=METHODS)
    ap.add_argument("--pools", nargs="*", default=["sharegpt", "t0"], choices=("sharegpt", "t0"))
    ap.add_argument("--sweep-n", type=int, default=20000, help="rows per sweep draw (default 20000)")
    ap.add_argument("--preset-n", type=int, default=50000, help="rows of the default-geometry draws (0: skip)")
    ap.add_argument("--data-dir", help="the shared data folder (default ../shared/data)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--cache", default=str(Path(tempfile.gettempdir()) / "ds2_bench_cache"))
    ap.add_argument("--out", help="write every result as JSON here")
    a = ap.parse_args(argv)
    rows = []
    for name in a.suites:
        rows += SUITES[name](a)
    if a.out:
        Path(a.out).write_text(json.dumps(rows, indent=1, default=float) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
