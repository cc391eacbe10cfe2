"""Small pools with known answers, shared by the selection tests."""

from __future__ import annotations

import datasets
import numpy as np

# A hand-made pool: the DS2 rule orders it 2, 6, 0, 3 (score 5, long-tail desc, ties by index), 1 (4), 5 (3);
# row 4 is unrated and never chosen by a score-based strategy.
SCORES = [5, 4, 5, 5, None, 3, 5]
LONG_TAIL = [0.2, 0.9, 0.7, 0.2, 1.0, 0.5, 0.7]
DS2_ORDER = [2, 6, 0, 3, 1, 5]


def make_pool(n_extra_cols: bool = True) -> datasets.Dataset:
    data = {
        "id": list(range(7)),
        "text": ["a" * n for n in (3, 10, 1, 7, 50, 2, 5)],
        "curated_rating": SCORES,
        "long_tail_score": LONG_TAIL,
    }
    if n_extra_cols:
        data["rating"] = [4, 4, 5, 2, None, 3, 5]
        data["source"] = ["x"] * 7
    features = datasets.Features(
        {
            **{c: datasets.Value("string") for c in ("text", "source") if c in data},
            "id": datasets.Value("int64"),
            "curated_rating": datasets.Value("int8"),
            "long_tail_score": datasets.Value("float32"),
            **({"rating": datasets.Value("int8")} if "rating" in data else {}),
        }
    )
    return datasets.Dataset.from_dict(data, features=features)


def ids(ds: datasets.Dataset) -> list[int]:
    return ds["id"][:]


def clustered(n_per=20, outliers=3, d=8, seed=0):
    rng = np.random.default_rng(seed)
    centers = rng.normal(size=(3, d))
    x = np.concatenate([c + 0.05 * rng.normal(size=(n_per, d)) for c in centers] + [rng.normal(size=(outliers, d)) * 3])
    return x.astype(np.float32)
