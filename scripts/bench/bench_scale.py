#!/usr/bin/env python
"""Does scale cost accuracy? The same rows curated alone and pooled, and each curation against its ceiling.

Why two measurements
--------------------
The public generator keeps clusters at about 100 rows whatever ``N``, so a larger ``N`` adds clusters and
topics rather than rows per cluster: its 300k draw is a different dataset from its 50k draw, not a larger
sample of it. Comparing the accuracy of the two mixes what the library loses at scale (sampled model
selection, approximate k-NN, one set of parameters for a large pool) with how hard each draw is.

* **Pooled draws** separate the two. ``--draws D`` independent ``--n``-row draws are curated one by one, then
  as one ``D x n`` dataset (every draw keeps its embeddings and ratings), with the default configuration
  (``KnnConfig()``: IVF search above ``N^2 d = 1e12``). Accuracy is compared on the same rows.
* **The ceiling** (:func:`ds2_hf.simulate.curation_ceiling`) measures how hard a draw is for the joint model:
  the accuracy of its posterior when the prior, ``T`` and the neighbour matrix ``M`` are set to their true values
  (computed from the ground truth with the neighbour weights the curation selected), next to the curated
  accuracy, and the accuracy of the weighted majority of the neighbours' true scores (the geometry alone).

Usage::

    python scripts/bench/bench_scale.py --presets gpt-like mistral-like llama-like --draws 6 --n 50000
    python scripts/bench/bench_scale.py --n 300000 --seeds 0 1 2 --no-pool --ceiling
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

from bench_accuracy import PRESETS, PUBLIC_SYNTH, synth_data


def curate(x, y, true, K, *, knn_method="auto", nprobe=None, with_ceiling=False) -> dict:
    from ds2_hf.curation import CurationConfig, curate_scores
    from ds2_hf.knn import KnnConfig
    from ds2_hf.simulate import curation_ceiling

    t = time.perf_counter()
    knn = KnnConfig(method=knn_method) if nprobe is None else KnnConfig(method=knn_method, nprobe=nprobe,
                                                                         max_nprobe=nprobe)
    res = curate_scores(x, y, config=CurationConfig(num_classes=K, knn=knn, progress=False))
    out = {"hit": res.curated == true, "seconds": round(time.perf_counter() - t, 1), "details": res.details,
           "knn": res.report["knn"]}
    if with_ceiling:
        c = curation_ceiling(res, y, true)
        out["ceiling"] = {"oracle_parameters": c["acc_ceiling"], "neighbour_true_majority": c["acc_neighbour_majority"]}
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--presets", nargs="*", default=list(PRESETS))
    ap.add_argument("--n", type=int, default=50000, help="rows per draw")
    ap.add_argument("--dim", type=int, default=256)
    ap.add_argument("--draws", type=int, default=6, help="independent draws pooled into one dataset")
    ap.add_argument("--seeds", type=int, nargs="*", help="generator seeds of the draws (default 0..draws-1)")
    ap.add_argument("--no-pool", action="store_true", help="curate each draw alone only")
    ap.add_argument("--pooled-knn", choices=("auto", "exact", "ivf"), default="auto",
                    help="k-NN search of the pooled curation (the draws alone use the default)")
    ap.add_argument("--pooled-nprobe", type=int, help="fixed nprobe of the pooled IVF search (default: KnnConfig's rule)")
    ap.add_argument("--ceiling", action="store_true", help="also compute each curation's ceiling")
    ap.add_argument("--synth", choices=("public", "own"), default="public" if PUBLIC_SYNTH.exists() else "own")
    ap.add_argument("--cache", default=str(Path(tempfile.gettempdir()) / "ds2_bench_cache"))
    ap.add_argument("--out", help="write all results as JSON here")
    a = ap.parse_args(argv)
    seeds = a.seeds if a.seeds else list(range(a.draws))
    results = []
    for preset in a.presets:
        draws = [synth_data(a.n, a.dim, preset, s, a.synth, Path(a.cache)) for s in seeds]
        K = len(draws[0]["T"])
        alone = [curate(d["embeddings"], d["rated"], d["true"], K, with_ceiling=a.ceiling) for d in draws]
        row = {"preset": preset, "n": a.n, "dim": a.dim, "seeds": seeds,
               "alone": [float(r["hit"].mean()) for r in alone],
               "alone_selected": [[r["details"][k] for k in ("k", "alpha", "beta", "gamma")] for r in alone]}
        if a.ceiling:
            row["alone_ceiling"] = [r["ceiling"] for r in alone]
        line = f"{preset:13s} {a.n}-row draws {seeds}: alone {np.round(row['alone'], 4)} mean {np.mean(row['alone']):.4f}"
        if len(draws) > 1 and not a.no_pool:
            x = np.concatenate([d["embeddings"] for d in draws])
            pooled = curate(x, np.concatenate([d["rated"] for d in draws]), np.concatenate([d["true"] for d in draws]),
                            K, knn_method=a.pooled_knn, nprobe=a.pooled_nprobe, with_ceiling=a.ceiling)
            per_draw = pooled["hit"].reshape(len(draws), a.n).mean(1)
            row.update(pooled=per_draw.tolist(), pooled_seconds=pooled["seconds"], pooled_knn=pooled["knn"],
                       pooled_selected=[pooled["details"][k] for k in ("k", "alpha", "beta", "gamma")],
                       pooled_minus_alone=float(per_draw.mean() - np.mean(row["alone"])))
            if a.ceiling:
                row["pooled_ceiling"] = pooled["ceiling"]
            line += (f" | pooled ({len(x)} rows, {pooled['knn'].get('method')}, recall {pooled['knn'].get('recall')}) "
                     f"{np.round(per_draw, 4)} mean {per_draw.mean():.4f} | pooled - alone "
                     f"{100 * row['pooled_minus_alone']:+.3f} points")
        print(line, flush=True)
        if a.ceiling:
            for s, r in zip(seeds, alone):
                c = r["ceiling"]
                print(f"    seed {s}: curated {r['hit'].mean():.4f}, ceiling (true p, T, M) {c['oracle_parameters']:.4f}, "
                      f"neighbours' true-score majority {c['neighbour_true_majority']:.4f}", flush=True)
        results.append(row)
    if a.out:
        Path(a.out).write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
