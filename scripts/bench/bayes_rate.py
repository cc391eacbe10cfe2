#!/usr/bin/env python
"""The best accuracy any curation could reach on a public-generator draw: its Bayes rate.

The public generator (``../shared/bench/synth.py``) places every cluster in a known 16-dimensional subspace of
its topic, at a known offset, with a known isotropic spread; the true score of a row is its cluster's score
except for the violators; ratings are drawn through a known ``T``. Knowing all of that, the Bayes-optimal guess
of a row's true score from its embedding and its own rating is

    argmax_s  P(s | x) T[s, y],    P(s | x) = sum_c P(c | x) Pi[score(c), s],

with ``P(c | x)`` the Gaussian posterior over the sibling clusters of the row's topic and ``Pi`` the
probability of a true score given the cluster's score (violators included). No method that sees only the
embeddings and the ratings can do better on average, so this bounds every curation, and the gap between it and
:func:`ds2_hf.simulate.curation_ceiling` (the same posterior as the default's, on k-NN evidence, with the true
parameters) is what the k-NN evidence itself leaves out.

The generator does not return its centres and subspaces, so they are recomputed by replaying its random
streams (the script checks that the replay reproduces the draw's true scores and clusters exactly, and stops
with an error otherwise).

Usage::

    python scripts/bench/bayes_rate.py --n 50000 --seeds 0 1 2 --presets gpt-like mistral-like llama-like
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import sys
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from bench_accuracy import PRESETS, PUBLIC_SYNTH


def load_generator(path: Path = PUBLIC_SYNTH):
    if not path.exists():
        raise SystemExit(f"the public generator was not found at {path}; this benchmark needs ../shared/bench")
    spec = importlib.util.spec_from_file_location("public_synth", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def geometry(synth, n: int, dim: int, seed: int, *, spread=0.6, topic_size=3, sep=0.5, intrinsic_dim=16,
             violate=0.05, size_conc=2.0, anisotropy=0.5) -> dict:
    """Replay the generator's data stream (its defaults) up to the embeddings; return the hidden geometry."""
    p = synth.P_DEFAULT / synth.P_DEFAULT.sum()
    K = len(p)
    rng = np.random.default_rng(np.random.SeedSequence(seed).spawn(2)[0])
    n_clusters = max(4 * K, n // 100)
    cl_score = np.repeat(np.arange(K), np.maximum(1, np.round(p * n_clusters)).astype(int))
    C = len(cl_score)
    cl_weight = np.empty(C)
    for c in range(K):
        m = cl_score == c
        cl_weight[m] = p[c] * rng.dirichlet(np.full(m.sum(), size_conc))
    cluster = rng.choice(C, size=n, p=cl_weight / cl_weight.sum())
    true = cl_score[cluster].copy()
    violating = rng.random(n) < violate
    for c in range(K):
        m = violating & (true == c)
        q = p.copy()
        q[c] = 0.0
        true[m] = rng.choice(K, size=m.sum(), p=q / q.sum())
    n_topics = int(np.ceil(C / topic_size))
    topic_of = rng.permutation(np.arange(C) % n_topics)
    g = synth._unit(rng.standard_normal(dim))
    r = rng.standard_normal((n_topics, dim))
    r -= np.outer(r @ g, g)
    r = synth._unit(r)
    a = np.sqrt(anisotropy)
    topic_c = a * g[None, :] + np.sqrt(1.0 - a * a) * r
    bases = synth._unit(rng.standard_normal((n_topics, intrinsic_dim, dim)))
    off = synth._unit(rng.standard_normal((C, intrinsic_dim)))
    return {"cl_score": cl_score, "cl_weight": cl_weight, "cluster": cluster, "true": true, "topic_of": topic_of,
            "topic_c": topic_c, "bases": bases, "offsets": sep * off, "var": spread**2 / intrinsic_dim}


def bayes_rate(x: np.ndarray, y: np.ndarray, T: np.ndarray, geo: dict) -> dict:
    """Accuracy of the Bayes-optimal true-score guess, and of the Bayes-optimal cluster guess."""
    n, K = len(y), T.shape[0]
    cluster, cl_score = geo["cluster"], geo["cl_score"]
    topic = geo["topic_of"][cluster]  # topics are far apart (cosine ~0.5): the topic is never in doubt
    # P(true score | cluster score), violators included, from the draw itself
    Pi = np.zeros((K, K))
    np.add.at(Pi, (cl_score[cluster], geo["true"]), 1.0)
    Pi /= np.maximum(Pi.sum(1, keepdims=True), 1.0)
    p_score = np.zeros((n, K))
    best_cluster = np.full(n, -1)
    for tp in np.unique(topic):
        rows = np.flatnonzero(topic == tp)
        sibs = np.flatnonzero(geo["topic_of"] == tp)
        centre, B = geo["topic_c"][tp], geo["bases"][tp]
        # undo the unit normalisation along the topic centre, then read coordinates in the topic's subspace
        z = x[rows] / (x[rows] @ centre)[:, None] - centre
        u = np.linalg.lstsq(B.T, z.T, rcond=None)[0].T
        logp = np.log(geo["cl_weight"][sibs])[None, :] - (
            ((u[:, None, :] - geo["offsets"][sibs][None]) ** 2).sum(-1) / (2 * geo["var"]))
        post = np.exp(logp - logp.max(1, keepdims=True))
        post /= post.sum(1, keepdims=True)
        p_score[rows] = post @ Pi[cl_score[sibs]]
        best_cluster[rows] = sibs[post.argmax(1)]
    guess = (p_score * T[:, y].T).argmax(1)
    return {"bayes_rate": float((guess == geo["true"]).mean()),
            "bayes_cluster_id": float((best_cluster == cluster).mean())}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--n", type=int, default=50000)
    ap.add_argument("--dim", type=int, default=256)
    ap.add_argument("--seeds", type=int, nargs="*", default=[0])
    ap.add_argument("--presets", nargs="*", default=list(PRESETS), choices=PRESETS)
    ap.add_argument("--no-curation", action="store_true", help="skip the default curation and its ceiling")
    ap.add_argument("--out", help="write the rows as JSON")
    a = ap.parse_args(argv)

    synth = load_generator()
    rows = []
    for seed in a.seeds:
        geo = None
        for preset in a.presets:
            T = synth.get_T(preset)
            d = synth.generate(a.n, a.dim, T, synth.P_DEFAULT, seed=seed)
            if geo is None:
                geo = geometry(synth, a.n, a.dim, seed)
                if not (np.array_equal(geo["true"], d["true"]) and np.array_equal(geo["cluster"], d["cluster"])):
                    raise SystemExit("replaying the generator did not reproduce its draw: synth.py has changed; "
                                     "update geometry() to its new random stream")
            row = {"preset": preset, "seed": seed, "n": a.n, "acc_rated": float((d["rated"] == d["true"]).mean())}
            row.update(bayes_rate(d["embeddings"].astype(np.float64), d["rated"], T, geo))
            if not a.no_curation:
                from ds2_hf.curation import CurationConfig, curate_scores
                from ds2_hf.simulate import curation_ceiling

                res = curate_scores(d["embeddings"], d["rated"], config=CurationConfig(progress=False))
                c = curation_ceiling(res, d["rated"], d["true"])
                row.update(acc_curated=float((res.curated == d["true"]).mean()), acc_ceiling=c["acc_ceiling"])
            rows.append(row)
            print(json.dumps({k: round(v, 4) if isinstance(v, float) else v for k, v in row.items()}), flush=True)
    if a.out:
        Path(a.out).write_text(json.dumps(rows, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
