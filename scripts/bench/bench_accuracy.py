#!/usr/bin/env python
"""Accuracy benchmark of score curation against ground truth.

Data
----
* ``synth``: clustered embeddings with known true scores rated through the ``gpt-like``, ``mistral-like`` and
  ``llama-like`` transition matrices. The public generator ``../shared/bench/synth.py`` is used when it is
  present (``--synth public``, the default when found; the targets in BENCHMARKS.md refer to it), otherwise
  ``ds2_hf.simulate`` (``--synth own``).
* ``real``: TREC, AG News, SST-2 and SMS spam embedded with WordLlama (256-d) with noise injected through a known
  matrix (``scripts/bench/realdata.py``).

Methods
-------
``reference`` (faithful + the reference's duplicate quirk), ``faithful`` (without it), ``joint`` (the default of
``ds2_hf.curate``), and the peer baseline ``cleanlab`` (``find_label_issues`` on out-of-sample k-NN predicted
probabilities: similarity-weighted votes of the 20 nearest neighbours; issues relabelled to the argmax; T from
``estimate_py_and_noise_matrices_from_probabilities``).

Metrics: T mean absolute error, prior L1 error, rated -> curated accuracy, flag precision / recall, and the
mean true score of the top N/30 rows sorted by (score desc, long-tail desc).

Usage::

    python scripts/bench/bench_accuracy.py --sizes 10000 50000 --out bench_accuracy.json
    python scripts/bench/bench_accuracy.py --real --methods joint cleanlab
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
PRESETS = ("gpt-like", "mistral-like", "llama-like")
METHODS = ("reference", "faithful", "joint", "cleanlab")


def synth_data(n: int, dim: int, preset: str, seed: int, source: str, cache: Path) -> dict:
    if source == "public":
        path = cache / f"synth_{n}_{dim}_{preset}_{seed}.npz"
        if not path.exists():
            cache.mkdir(parents=True, exist_ok=True)
            subprocess.run([sys.executable, str(PUBLIC_SYNTH), "--n", str(n), "--dim", str(dim), "--preset", preset,
                            "--seed", str(seed), "--no-check", "--out", str(path)], check=True,
                           stdout=subprocess.DEVNULL)
        d = dict(np.load(path))
        return {k: d[k] for k in ("embeddings", "true", "rated", "T", "p")}
    from ds2_hf.simulate import simulate

    s = simulate(n, dim, transition=preset, seed=seed)
    return {"embeddings": s.embeddings, "true": s.true, "rated": s.rated, "T": s.transition, "p": s.prior}


def cleanlab_curate(x: np.ndarray, y: np.ndarray, K: int, graph) -> dict:
    """The peer baseline: cleanlab on similarity-weighted 20-NN votes (out-of-sample: self excluded)."""
    from cleanlab.count import estimate_py_and_noise_matrices_from_probabilities
    from cleanlab.filter import find_label_issues

    ids, sims = graph.indices[:, :20], np.clip(graph.similarities[:, :20], 0, None)
    probs = np.zeros((len(y), K))
    np.add.at(probs, (np.repeat(np.arange(len(y)), ids.shape[1]), y[ids].ravel()), sims.ravel())
    probs = (probs + 1e-3) / (probs + 1e-3).sum(1, keepdims=True)
    issues = find_label_issues(y, probs)
    curated = np.where(issues, probs.argmax(1), y)
    py, noise, _, _ = estimate_py_and_noise_matrices_from_probabilities(y, probs)
    lt = (1.0 - graph.similarities[:, :10]).mean(1)
    return {"T_est": noise.T, "p_est": py, "curated": curated, "flagged": issues, "long_tail": lt}


def run_method(method: str, d: dict, K: int, graph, seed: int, knn_method: str) -> dict:
    from ds2_hf.curation import curate_scores
    from ds2_hf.knn import KnnConfig

    if method == "cleanlab":
        return cleanlab_curate(d["embeddings"], d["rated"], K, graph)
    options = {"method": "joint"} if method == "joint" else {"method": "faithful", "duplicate_quirk": method == "reference"}
    res = curate_scores(d["embeddings"], d["rated"], num_classes=K, seed=seed, progress=False,
                        knn=KnnConfig(method=knn_method, seed=seed), graph=graph, **options)
    out = {"T_est": res.transition_matrix, "p_est": res.true_prior, "curated": res.curated, "flagged": res.misrated,
           "long_tail": res.long_tail, "graph": res.graph}
    if res.clusterability is not None:
        out["gate"] = res.clusterability.gate
        out["verdict"] = res.clusterability.verdict.split(":")[0]
    out["knn"] = res.report["knn"]
    return out


def score(d: dict, r: dict) -> dict:
    true, rated, cur = d["true"], d["rated"], np.asarray(r["curated"])
    n = len(true)
    wrong = rated != true
    f = np.asarray(r["flagged"], bool)
    k = max(1, n // 30)
    lt = np.asarray(r["long_tail"], float)
    top = np.lexsort((-lt, -cur))[:k]
    out = {
        "T_mae": float(np.abs(np.asarray(r["T_est"]) - d["T"]).mean()),
        "p_l1": float(np.abs(np.asarray(r["p_est"]).ravel() - d["p"]).sum()),
        "acc_rated": float((rated == true).mean()),
        "acc_curated": float((cur == true).mean()),
        "flag_precision": float((f & wrong).sum() / max(f.sum(), 1)),
        "flag_recall": float((f & wrong).sum() / max(wrong.sum(), 1)),
        "topk_true_curated": float(true[top].mean()),
        "topk_true_raw": float(true[np.lexsort((-lt, -rated))[:k]].mean()),
    }
    for key in ("gate", "verdict"):
        if key in r:
            out[key] = r[key]
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sizes", type=int, nargs="*", default=[10000, 50000], help="synthetic sizes (none: skip)")
    ap.add_argument("--dim", type=int, default=256)
    ap.add_argument("--presets", nargs="*", default=list(PRESETS))
    ap.add_argument("--methods", nargs="*", default=list(METHODS), choices=METHODS)
    ap.add_argument("--real", action="store_true", help="also run the real-text datasets")
    ap.add_argument("--real-only", action="store_true", help="run only the real-text datasets")
    ap.add_argument("--data-dir", help="folder with trec/ ag_news/ sst2/ sms_spam/ (default ../shared/data)")
    ap.add_argument("--synth", choices=("public", "own"), default="public" if PUBLIC_SYNTH.exists() else "own")
    ap.add_argument("--knn", choices=("auto", "exact", "ivf"), default="auto", help="k-NN search of every method")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--cache", default=str(Path(tempfile.gettempdir()) / "ds2_bench_cache"))
    ap.add_argument("--out", help="write all results as JSON here")
    a = ap.parse_args(argv)

    from ds2_hf.knn import KnnConfig, build_knn_graph

    cache = Path(a.cache)
    jobs = []
    if not a.real_only:
        jobs += [(f"synth-{p}", n, lambda n=n, p=p: synth_data(n, a.dim, p, a.seed, a.synth, cache))
                 for n in a.sizes for p in a.presets]
    if a.real or a.real_only:
        import realdata

        jobs += [(name, None, lambda name=name: realdata.load(name, data_dir=a.data_dir, cache_dir=cache))
                 for name in realdata.DATASETS]
    results = []
    print(f"{'data':22s} {'N':>7s} {'method':10s} {'T_mae':>6s} {'acc raw->cur':>14s} {'prec/rec':>11s} "
          f"{'top-k true':>10s} {'sec':>6s}  gate")
    for name, _, load in jobs:
        d = load()
        K = len(d["T"])
        n = len(d["true"])
        graph = build_knn_graph(d["embeddings"], 40 if n > 2000 else 20,
                                config=KnnConfig(method=a.knn, seed=a.seed), progress=False)
        for method in a.methods:
            t = time.perf_counter()
            r = run_method(method, d, K, graph, a.seed, a.knn)
            sec = time.perf_counter() - t
            s = score(d, r)
            row = {"data": name, "n": n, "dim": int(d["embeddings"].shape[1]), "method": method,
                   "seconds": round(sec, 2), "knn": r.get("knn", graph.summary()), **s}
            results.append(row)
            print(f"{name:22s} {n:7d} {method:10s} {s['T_mae']:6.3f} {s['acc_rated']:6.3f} -> {s['acc_curated']:5.3f} "
                  f"{s['flag_precision']:5.3f}/{s['flag_recall']:5.3f} {s['topk_true_curated']:10.3f} {sec:6.1f}  "
                  f"{s.get('gate', '')}", flush=True)
    if a.out:
        Path(a.out).write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
