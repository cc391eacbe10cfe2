#!/usr/bin/env python
"""Which ranking makes the purest subset without losing diversity? The rules compared on the same curation.

Each draw of the public generator is curated once with the default (``ds2_hf.curation.curate_scores``); the top
N/30 rows are then taken by each rule:

* ``ds2``: curated score desc, long-tail desc (the paper);
* ``confident@t``: curated score desc, rows whose posterior gives that score at least each of the tiers ``t`` first,
  long-tail desc (``strategy="confident"``, ``confidence_tiers=t``; the default is ``(0.99, 0.9)``);
* ``odds``: curated score desc, then the decade of the posterior odds of that score (``floor(log10(p / (1 - p)))``:
  0.9, 0.99, 0.999, ...) desc, then long-tail desc;
* ``posterior``: curated score desc, posterior probability of that score desc (no long-tail);
* ``expected``: posterior expected score desc.

Reported per rule: the subset's mean true score and share of true top-class rows (purity), and two diversity
measures, the generator clusters it covers and its mean long-tail score.

Usage::

    python scripts/bench/bench_selection_rules.py --n 20000 --preset-n 50000
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

PRESETS = ("gpt-like", "mistral-like", "llama-like")


def rules(res) -> dict[str, np.ndarray]:
    from ds2_hf.selection import select_indices

    q = res.posterior.astype(np.float64)
    cur = res.curated
    pc = q[np.arange(len(cur)), np.maximum(cur, 0)]
    scores = np.where(cur < 0, np.nan, cur)
    out = {"ds2": select_indices("ds2", k=None, scores=scores, long_tail=res.long_tail)}
    for t in ((0.9,), (0.99,), (0.99, 0.9)):
        out[f"confident@{'+'.join(map(str, t))}"] = select_indices("confident", k=None, scores=scores,
                                                                   long_tail=res.long_tail, posterior=q,
                                                                   confidence_tiers=t)
    decade = np.floor(np.log10(np.maximum(pc, 1e-12) / np.maximum(1.0 - pc, 1e-12)))
    out["odds"] = np.lexsort((-res.long_tail, -decade, -cur))
    out["posterior"] = np.lexsort((-pc, -cur))
    out["expected"] = np.argsort(-(q @ np.arange(q.shape[1])), kind="stable")
    return out


def main(argv=None) -> int:
    import bench_real

    from ds2_hf.curation import curate_scores

    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--n", type=int, default=20000, help="rows per sweep draw (default 20000)")
    ap.add_argument("--preset-n", type=int, default=50000, help="rows of the default-geometry draws (0: skip)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--cache", default=str(Path(tempfile.gettempdir()) / "ds2_bench_cache"))
    ap.add_argument("--out")
    a = ap.parse_args(argv)
    rows = []
    print(f"{'draw':30s} {'rule':14s} {'mean true':>9s} {'top share':>9s} {'clusters':>8s} {'long-tail':>9s}")
    draws = [(a.preset_n, p, ()) for p in PRESETS if a.preset_n]
    draws += [(a.n, p, extra) for extra in bench_real.SWEEP.values() for p in PRESETS]
    for n, preset, extra in draws:
        d = bench_real.public_draw(n, preset, extra, a.seed, Path(a.cache))
        cluster = d["cluster"]
        res = curate_scores(d["embeddings"], d["rated"], seed=a.seed, progress=False)
        k = len(d["true"]) // 30
        label = f"{preset} {n // 1000}k {' '.join(extra) or 'default'}"
        for name, order in rules(res).items():
            top = order[:k]
            row = {"draw": label, "rule": name, "mean_true": float(d["true"][top].mean()),
                   "top_share": float((d["true"][top] == 5).mean()), "clusters": int(len(np.unique(cluster[top]))),
                   "long_tail": float(res.long_tail[top].mean())}
            rows.append(row)
            print(f"{label:30s} {name:14s} {row['mean_true']:9.3f} {row['top_share']:9.3f} {row['clusters']:8d} "
                  f"{row['long_tail']:9.4f}", flush=True)
    if a.out:
        Path(a.out).write_text(json.dumps(rows, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
