#!/usr/bin/env python
"""Several raters, one curated score: fusion against baselines, on the public generator and on real ratings.

Synthetic (``--synth``): the public generator's draw (``../shared/bench/synth.py --n 50000 --dim 256 --seed 0``)
gives the embeddings and true scores; the gpt-like, mistral-like and llama-like raters are drawn
*independently* on the same rows (``ds2_hf.simulate.inject_noise``, seeds 1, 2, 3; synth.py's own ``rated``
columns reuse one random stream across presets). Two scenarios:

* ``all``: the three raters on every row;
* ``gpt10``: gpt-like on a random 10% of the rows, the other two on every row.

Methods, side by side: ``fused`` (``ds2_hf.curation.fusion.fuse_ratings`` with the k-NN graph), ``fused-alone``
(the raters without embeddings), ``majority`` (most frequent rating; ties to the one nearest the mean),
``mean`` (rounded mean rating), ``crowdkit-ds`` (crowd-kit ``DawidSkene``), ``crowdlab`` (cleanlab
``get_label_quality_multiannotator`` with out-of-sample k-NN predicted probabilities: similarity-weighted
ratings of all raters on the 20 nearest neighbours), and ``alone:<rater>`` (each rater curated alone by the
default ``curate_scores``, on the rows it rated).

Real (``--real``): ``../shared/data/ds2_raw_scores`` (3 x 300,932 real ratings, no text; 0 = low or failed). The
three raters fused without embeddings: each rater's estimated T, accuracy and bias; and a held-out check: for
each rater c, its ratings on a random 20% of rows are hidden, the model is fitted on the rest, and
``P(y_c | the other two)`` from the fused model is scored (mean log-likelihood) against ``P(y_c | y_a)`` and
``P(y_c | y_b)`` (empirical conditional tables of one other rater, fitted on the other 80%), the marginal, and,
for context, the full table ``P(y_c | y_a, y_b)``.

Usage::

    python scripts/bench/bench_fusion.py --synth --real --out bench_fusion.json
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
PRESETS = ("gpt-like", "mistral-like", "llama-like")
RAW = HERE.parents[1].parent / "shared" / "data" / "ds2_raw_scores"
REAL_RATERS = ("gpt-4o-mini", "llama-3.1-8b-instruct", "mistral-7b-v0.3-instruct")


# -- baselines -------------------------------------------------------------------------------------------------
def mean_vote(Y: np.ndarray, K: int) -> np.ndarray:
    return np.clip(np.rint(np.nanmean(np.where(Y >= 0, Y, np.nan), axis=1)), 0, K - 1).astype(np.int64)


def crowdkit_ds(Y: np.ndarray, K: int) -> dict:
    import pandas as pd
    from crowdkit.aggregation import DawidSkene

    i, r = np.nonzero(Y >= 0)
    df = pd.DataFrame({"task": i, "worker": r, "label": Y[i, r]})
    ds = DawidSkene(n_iter=100)
    labels = ds.fit_predict(df)
    out = np.full(len(Y), -1)
    out[labels.index.to_numpy()] = labels.to_numpy()
    T = np.zeros((Y.shape[1], K, K))
    for w in range(Y.shape[1]):  # errors_: rows (worker, observed label), columns true label
        e = ds.errors_.loc[w].reindex(index=range(K), columns=range(K)).fillna(0).to_numpy()
        T[w] = e.T
    return {"fused": out, "T": T}


def knn_pred_probs(Y: np.ndarray, graph, K: int, k: int = 20) -> np.ndarray:
    """Out-of-sample class probabilities: similarity-weighted ratings of every rater on the k nearest neighbours."""
    ids, sims = graph.indices[:, :k], np.clip(graph.similarities[:, :k], 0, None)
    probs = np.full((len(Y), K), 1e-3)
    for r in range(Y.shape[1]):
        y = Y[ids, r]
        ok = y >= 0
        np.add.at(probs, (np.repeat(np.arange(len(Y)), k)[ok.ravel()], y[ok]), sims[ok])
    return probs / probs.sum(1, keepdims=True)


def crowdlab(Y: np.ndarray, graph, K: int) -> dict:
    from cleanlab.multiannotator import get_label_quality_multiannotator

    labels = np.where(Y >= 0, Y, np.nan)
    out = get_label_quality_multiannotator(labels, knn_pred_probs(Y, graph, K), verbose=False)
    return {"fused": out["label_quality"]["consensus_label"].to_numpy().astype(np.int64)}


def curated_alone(x, y: np.ndarray, K: int, seed: int) -> np.ndarray:
    """One rater curated by the default ``curate_scores`` on the rows it rated; -1 elsewhere."""
    from ds2_hf.curation import curate_scores

    rows = np.flatnonzero(y >= 0)
    out = np.full(len(y), -1)
    out[rows] = curate_scores(x[rows], y[rows], num_classes=K, seed=seed, progress=False).curated
    return out


# -- synthetic -------------------------------------------------------------------------------------------------
def synth_raters(n: int, dim: int, seed: int, cache: Path) -> tuple[dict, np.ndarray, np.ndarray]:
    from bench_accuracy import synth_data

    from ds2_hf.simulate import inject_noise, transition_matrix

    d = synth_data(n, dim, "gpt-like", seed, "public", cache)
    Y = np.stack([inject_noise(d["true"], p, seed=seed + 1 + r) for r, p in enumerate(PRESETS)], axis=1)
    return d, Y, np.stack([transition_matrix(p) for p in PRESETS])


def run_synth(a, cache: Path) -> list[dict]:
    from ds2_hf.curation.fusion import fuse_ratings, majority_vote
    from ds2_hf.knn import build_knn_graph

    d, Y_all, T_true = synth_raters(a.n, a.dim, a.seed, cache)
    x, true, K = d["embeddings"], d["true"], len(d["p"])
    graph = build_knn_graph(x, 40, progress=False)
    Y_gpt10 = Y_all.copy()
    keep = np.random.default_rng(a.seed).random(len(Y_all)) < 0.10
    Y_gpt10[~keep, 0] = -1
    results = []
    for scenario, Y in (("all", Y_all), ("gpt10", Y_gpt10)):
        methods = {
            "fused": lambda Y=Y: _fusion(fuse_ratings(Y, graph=graph, num_classes=K, seed=a.seed, progress=False)),
            "fused-alone": lambda Y=Y: _fusion(fuse_ratings(Y, num_classes=K)),
            "majority": lambda Y=Y: {"fused": majority_vote(Y, K)},
            "mean": lambda Y=Y: {"fused": mean_vote(Y, K)},
            "crowdkit-ds": lambda Y=Y: crowdkit_ds(Y, K),
            "crowdlab": lambda Y=Y: crowdlab(Y, graph, K),
        }
        for r, name in enumerate(PRESETS):
            methods[f"alone:{name}"] = lambda Y=Y, r=r: {"fused": curated_alone(x, Y[:, r], K, a.seed)}
        for method, fn in methods.items():
            t = time.perf_counter()
            out = fn()
            sec = time.perf_counter() - t
            fused = out["fused"]
            covered = fused >= 0
            row = {"data": f"synth-{a.n}", "scenario": scenario, "method": method, "seconds": round(sec, 2),
                   "accuracy": float((fused == true).mean()),
                   "accuracy_on_rated_rows": float((fused[covered] == true[covered]).mean())}
            if "T" in out:
                row["T_mae"] = [round(float(np.abs(out["T"][r] - T_true[r]).mean()), 5) for r in range(len(PRESETS))]
            for key in ("details",):
                if key in out:
                    row[key] = out[key]
            results.append(row)
            tm = " ".join(f"{v:.4f}" for v in row.get("T_mae", []))
            print(f"{scenario:6s} {method:20s} acc {row['accuracy']:.4f} (rated rows {row['accuracy_on_rated_rows']:.4f})"
                  f"  T MAE {tm:22s} {sec:6.1f} s", flush=True)
    return results


def _fusion(res) -> dict:
    d = {k: v for k, v in res.details.items() if k != "candidates"}
    return {"fused": res.posterior.argmax(1), "T": res.transition_matrices, "details": d}


# -- real ratings ----------------------------------------------------------------------------------------------
def load_raw_scores(folder: Path = RAW) -> np.ndarray:
    import torch

    cols = [np.asarray(torch.load(folder / r / "output_scores.pt", weights_only=True), np.int64) for r in REAL_RATERS]
    return np.stack(cols, axis=1)


def _table(a: np.ndarray, c: np.ndarray, K: int) -> np.ndarray:
    """Laplace-smoothed ``P(c | a)``, rows = a."""
    t = np.ones((K, K))
    np.add.at(t, (a, c), 1.0)
    return t / t.sum(1, keepdims=True)


def heldout_check(Y: np.ndarray, K: int, *, test_fraction: float = 0.2, seed: int = 0) -> list[dict]:
    from ds2_hf.curation.fusion import fuse_ratings

    rng = np.random.default_rng(seed)
    test = rng.random(len(Y)) < test_fraction
    out = []
    for c in range(Y.shape[1]):
        a, b = [r for r in range(Y.shape[1]) if r != c]
        masked = Y.copy()
        masked[test, c] = -1
        res = fuse_ratings(masked, num_classes=K)
        yc = Y[test, c]
        pred = res.posterior[test] @ res.transition_matrices[c]
        tr = ~test
        marg = np.bincount(Y[tr, c], minlength=K) + 1.0
        pair = np.ones((K, K, K))
        np.add.at(pair, (Y[tr, a], Y[tr, b], Y[tr, c]), 1.0)
        pair /= pair.sum(2, keepdims=True)
        ll = {
            "fused (from both others)": np.log(pred[np.arange(len(yc)), yc]).mean(),
            f"single rater {REAL_RATERS[a]}": np.log(_table(Y[tr, a], Y[tr, c], K)[Y[test, a], yc]).mean(),
            f"single rater {REAL_RATERS[b]}": np.log(_table(Y[tr, b], Y[tr, c], K)[Y[test, b], yc]).mean(),
            "marginal": np.log((marg / marg.sum())[yc]).mean(),
            "full table P(c | a, b) (context)": np.log(pair[Y[test, a], Y[test, b], yc]).mean(),
        }
        row = {"target": REAL_RATERS[c], "n_test": int(test.sum()), "loglik": {k: round(float(v), 5) for k, v in ll.items()}}
        singles = [v for k, v in ll.items() if k.startswith("single")]
        row["fused_beats_every_single_rater"] = bool(ll["fused (from both others)"] > max(singles))
        out.append(row)
        print(f"held-out {REAL_RATERS[c]:26s} " + "  ".join(f"{k}: {v:.4f}" for k, v in row["loglik"].items()),
              flush=True)
    return out


def run_real(K: int = 6) -> dict:
    from ds2_hf.curation.fusion import fuse_ratings
    from ds2_hf.curation.raters import summarize_raters, trust_line

    Y = load_raw_scores()
    t = time.perf_counter()
    res = fuse_ratings(Y, num_classes=K)
    sec = time.perf_counter() - t
    summary = summarize_raters(res.transition_matrices, res.true_prior, Y, res.posterior.argmax(1), names=REAL_RATERS)
    print(f"ds2_raw_scores: {len(Y)} rows, fused without embeddings in {sec:.1f} s")
    print("estimated true prior: " + " ".join(f"{v:.3f}" for v in res.true_prior))
    for s in summary:
        print(f"  {s['name']:26s} accuracy {s['accuracy']:.3f}  bias {s['bias']:+.3f}  agreement with fused "
              f"{s['agreement_with_fused']:.3f}  diag(T) " + " ".join(f"{v:.2f}" for v in np.diag(s["transition_matrix"])))
    print("  " + trust_line(summary))
    return {"n": len(Y), "seconds": round(sec, 2), "true_prior": np.round(res.true_prior, 4).tolist(),
            "raters": summary, "trust": trust_line(summary), "heldout": heldout_check(Y, K)}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--synth", action="store_true", help="the public generator scenarios")
    ap.add_argument("--real", action="store_true", help="the real ds2_raw_scores ratings")
    ap.add_argument("--n", type=int, default=50000)
    ap.add_argument("--dim", type=int, default=256)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--cache", default=str(Path(tempfile.gettempdir()) / "ds2_bench_cache"))
    ap.add_argument("--out", help="write all results as JSON here")
    a = ap.parse_args(argv)
    if not (a.synth or a.real):
        ap.error("choose --synth and/or --real")
    results = {}
    if a.synth:
        results["synth"] = run_synth(a, Path(a.cache))
    if a.real:
        results["real"] = run_real()
    if a.out:
        Path(a.out).write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
