"""Real instruction pools with instance-dependent synthetic raters, for the real-ratings benchmark.

The text is real (ShareGPT conversations, T0 prompt/completion pairs from ``../shared/data``), embedded with
WordLlama exactly as ``ds2_hf.embed`` does; the truth and the ratings are drawn here with a seed, so accuracy can
be measured. Every rater is *instance-dependent*: its errors depend on a property of the sample, not only on the
true score, which is what real LLM raters do and what class-conditional benchmarks never test.

ShareGPT (no quality labels): the truth is a property the rater is asked to rate but that a topic-level embedding
barely sees, the length of the answer (6 equal-frequency buckets of the assistant's characters).

* ``flip35``: the truth, redrawn uniformly over the 6 scores with probability 0.35 ("length-bucketed ratings with
  35% flips", the issue's case).
* ``verbose``: over-rates answers heavy in markup (lists, headings, code fences: at least the median count) by one
  score, then 15% uniform redraws.
* ``prompt``: rates the prompt instead of the answer: the bucket of the user's characters, 15% redraws.

T0 (templated prompts of 34 source datasets): the truth is one score per source dataset, drawn from the public
generator's prior ``[.08 .15 .25 .31 .18 .03]``, so samples of one dataset share their true score (the
clusterability DS2 assumes; a dataset's templates share its passages, so one score per template would not be).

* ``flip35``: as above.
* ``length``: shifted by +1 for the longest third of completions and -1 for the shortest third, 15% redraws.
* ``prompt``: the bucket of the prompt's characters, 15% redraws.
"""

from __future__ import annotations

import glob
import gzip
import json
import os
import re
from pathlib import Path

import numpy as np

K = 6
PRIOR = np.array([0.08, 0.15, 0.25, 0.31, 0.18, 0.03])
RATERS = {"sharegpt": ("flip35", "verbose", "prompt"), "t0": ("flip35", "length", "prompt")}
_TWO_TOKEN = {"adversarial_qa", "ag_news", "amazon_polarity", "app_reviews", "cnn_dailymail", "common_gen",
              "commonsense_qa", "cosmos_qa", "dbpedia_14", "glue_mrpc", "glue_qqp", "kilt_tasks", "multi_news",
              "paws_labeled", "rotten_tomatoes", "social_i", "wiki_bio", "wiki_hop", "wiki_qa"}
_MARKUP = re.compile(r"^\s*([-*+]\s|\d+[.)]\s|#{1,6}\s|```)", re.MULTILINE)


def bucket(values: np.ndarray, k: int = K) -> np.ndarray:
    """Equal-frequency buckets ``0..k-1`` (higher value, higher bucket)."""
    edges = np.quantile(values, np.linspace(0, 1, k + 1)[1:-1])
    return np.searchsorted(edges, values, side="right").astype(np.int64)


def redraw(scores: np.ndarray, rate: float, rng: np.random.Generator) -> np.ndarray:
    """Each score replaced with probability ``rate`` by a uniform draw over ``0..K-1``."""
    out = scores.copy()
    hit = rng.random(len(out)) < rate
    out[hit] = rng.integers(0, K, int(hit.sum()))
    return out


def _root(data_dir) -> Path:
    return Path(data_dir or Path(__file__).resolve().parents[2].parent / "shared" / "data")


def _embed(records: list[dict], cache: Path):
    """WordLlama embeddings of rows given in a format ``ds2_hf.embed`` reads, cached as .npy."""
    if cache.exists():
        return np.load(cache)
    import datasets

    import ds2_hf

    ds = ds2_hf.embed(datasets.Dataset.from_list(records), backend="wordllama")
    emb = np.asarray(ds["embedding"], dtype=np.float32)
    cache.parent.mkdir(parents=True, exist_ok=True)
    np.save(cache, emb)
    return emb


def load_sharegpt(*, data_dir=None, cache_dir=".bench_cache") -> dict:
    """The 4,967 non-empty ShareGPT conversations: embeddings and the text features the raters use."""
    path = _root(data_dir) / "sharegpt_v3_subset" / "sharegpt_v3_first5000.jsonl.gz"
    rows = [r for r in map(json.loads, gzip.open(path, "rt", encoding="utf-8")) if r["conversations"]]
    records = [{"conversations": r["conversations"]} for r in rows]
    emb = _embed(records, Path(cache_dir) / "sharegpt_wordllama256.npy")
    answers = ["\n".join(t["value"] for t in r["conversations"] if t["from"] not in ("human", "user", "system"))
               for r in rows]
    prompts = ["\n".join(t["value"] for t in r["conversations"] if t["from"] in ("human", "user")) for r in rows]
    return {"embeddings": emb, "answer_chars": np.array([len(a) for a in answers]),
            "prompt_chars": np.array([len(p) for p in prompts]),
            "markup": np.array([len(_MARKUP.findall(a)) for a in answers])}


def load_t0(*, n: int = 20000, seed: int = 0, data_dir=None, cache_dir=".bench_cache") -> dict:
    """A seeded sample of ``n`` T0 prompt/completion rows with the id of their source dataset."""
    files = sorted(glob.glob(str(_root(data_dir) / "t0_train_50k_per_template" / "*.jsonl.gz")))
    if not files:
        raise FileNotFoundError(f"no T0 files under {_root(data_dir)}; pass --data-dir")
    names = []
    for f in files:
        parts = os.path.basename(f).split("_")
        names.append("_".join(parts[:2]) if "_".join(parts[:2]) in _TWO_TOKEN else parts[0])
    datasets_ = sorted(set(names))
    rows = []
    for f, name in zip(files, names):
        t = datasets_.index(name)
        for line in gzip.open(f, "rt", encoding="utf-8"):
            r = json.loads(line)
            rows.append((r["prompt"], r["completion"].replace("<|endoftext|>", "").strip(), t))
    pick = np.sort(np.random.default_rng(seed).choice(len(rows), min(n, len(rows)), replace=False))
    rows = [rows[i] for i in pick]
    records = [{"prompt": p, "completion": c} for p, c, _ in rows]
    emb = _embed(records, Path(cache_dir) / f"t0_{len(rows)}_{seed}_wordllama256.npy")
    return {"embeddings": emb, "source": np.array([t for _, _, t in rows]),
            "completion_chars": np.array([len(c) for _, c, _ in rows]),
            "prompt_chars": np.array([len(p) for p, _, _ in rows]), "n_sources": len(datasets_)}


def sharegpt_task(pool: dict, rater: str, *, n: int | None = None, seed: int = 0) -> dict:
    """Embeddings, truth and ratings of one ShareGPT task (``n`` rows sampled with ``seed``, or all)."""
    rng = np.random.default_rng([seed, 1])
    idx = np.arange(len(pool["embeddings"]))
    if n is not None and n < len(idx):
        idx = np.sort(np.random.default_rng(seed).choice(len(idx), n, replace=False))
    true = bucket(pool["answer_chars"][idx])
    if rater == "flip35":
        rated = redraw(true, 0.35, rng)
    elif rater == "verbose":
        heavy = pool["markup"][idx] >= np.median(pool["markup"][idx])
        rated = redraw(np.minimum(true + heavy, K - 1), 0.15, rng)
    elif rater == "prompt":
        rated = redraw(bucket(pool["prompt_chars"][idx]), 0.15, rng)
    else:
        raise ValueError(f"unknown ShareGPT rater {rater!r}; expected one of {RATERS['sharegpt']}")
    return {"embeddings": pool["embeddings"][idx], "true": true, "rated": rated}


def t0_task(pool: dict, rater: str, *, seed: int = 0) -> dict:
    """Embeddings, truth (one score per source dataset) and ratings of one T0 task."""
    rng = np.random.default_rng([seed, 2])
    per_source = np.random.default_rng([seed, 3]).choice(K, pool["n_sources"], p=PRIOR)
    true = per_source[pool["source"]]
    if rater == "flip35":
        rated = redraw(true, 0.35, rng)
    elif rater == "length":
        third = bucket(pool["completion_chars"], 3) - 1  # -1, 0, +1
        rated = redraw(np.clip(true + third, 0, K - 1), 0.15, rng)
    elif rater == "prompt":
        rated = redraw(bucket(pool["prompt_chars"]), 0.15, rng)
    else:
        raise ValueError(f"unknown T0 rater {rater!r}; expected one of {RATERS['t0']}")
    return {"embeddings": pool["embeddings"], "true": true, "rated": rated}


if __name__ == "__main__":  # a quick look at the tasks' raw accuracy
    cache = os.environ.get("DS2_BENCH_CACHE", ".bench_cache")
    sg = load_sharegpt(cache_dir=cache)
    for r in RATERS["sharegpt"]:
        t = sharegpt_task(sg, r)
        print("sharegpt", r, round(float((t["rated"] == t["true"]).mean()), 3))
    t0 = load_t0(cache_dir=cache)
    for r in RATERS["t0"]:
        t = t0_task(t0, r)
        print("t0", r, round(float((t["rated"] == t["true"]).mean()), 3))
