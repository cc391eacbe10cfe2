"""Real text with clean class labels for the accuracy benchmark: TREC, AG News, SST-2 and SMS spam from a local
copy (``--data-dir``, default ``../shared/data``), embedded with WordLlama (256-d, offline) and cached as .npz.

Noise is injected by :func:`ds2_hf.simulate.inject_noise` through a fixed, seeded transition matrix per dataset:
binary sets use ``[[0.80, 0.20], [0.25, 0.75]]``; multi-class sets use diagonal 0.60 with the remaining mass
spread by a seeded Dirichlet draw.
"""

from __future__ import annotations

import csv
import os
from pathlib import Path

import numpy as np

DATASETS = ("ag_news", "sms_spam", "sst2", "trec")


def _read(name: str, root: Path) -> tuple[list[str], np.ndarray]:
    texts, labels = [], []
    if name == "sst2":
        for line in open(root / "sst2" / "stsa.binary.train", encoding="utf-8", errors="replace"):
            if line.strip():
                labels.append(int(line[0]))
                texts.append(line[2:].strip())
    elif name == "ag_news":
        with open(root / "ag_news" / "test.csv", encoding="utf-8") as f:
            for row in csv.DictReader(f):
                labels.append(int(row["label"]) - 1)
                texts.append(f"{row['title']}. {row['description']}")
    elif name == "trec":
        for line in open(root / "trec" / "TREC.train.all", encoding="latin-1"):
            if line.strip():
                lab, text = line.split(" ", 1)
                labels.append(lab.split(":")[0])
                texts.append(text.strip())
        classes = sorted(set(labels))
        labels = [classes.index(c) for c in labels]
    elif name == "sms_spam":
        for line in open(root / "sms_spam" / "SMSSpamCollection", encoding="utf-8", errors="replace"):
            if "\t" in line:
                lab, text = line.split("\t", 1)
                labels.append(int(lab == "spam"))
                texts.append(text.strip())
    else:
        raise ValueError(f"unknown dataset {name!r}; expected one of {DATASETS}")
    return texts, np.asarray(labels, dtype=np.int64)


def noise_matrix(num_classes: int, seed: int = 0) -> np.ndarray:
    if num_classes == 2:
        return np.array([[0.80, 0.20], [0.25, 0.75]])
    rng = np.random.default_rng(seed)
    T = np.zeros((num_classes, num_classes))
    for i in range(num_classes):
        off = rng.dirichlet(np.ones(num_classes - 1)) * 0.40
        T[i, np.arange(num_classes) != i] = off
        T[i, i] = 0.60
    return T


def load(name: str, *, data_dir: str | os.PathLike | None = None, cache_dir: str | os.PathLike = ".bench_cache",
         seed: int = 0) -> dict:
    """Embeddings, clean labels and injected noisy ratings of one dataset (embeddings cached on disk)."""
    from ds2_hf.simulate import inject_noise

    root = Path(data_dir or Path(__file__).resolve().parents[2].parent / "shared" / "data")
    if not cache_dir:
        cache_dir = ".bench_cache"
    cache = Path(cache_dir) / f"{name}_wordllama256.npz"
    if cache.exists():
        z = np.load(cache)
        emb, true = z["embeddings"], z["true"]
    else:
        from ds2_hf.embedding import embed_texts, EmbeddingConfig

        texts, true = _read(name, root)
        emb = embed_texts(texts, EmbeddingConfig(backend="wordllama"))
        cache.parent.mkdir(parents=True, exist_ok=True)
        np.savez(cache, embeddings=emb, true=true)
    K = int(true.max()) + 1
    T = noise_matrix(K, seed)
    rated = inject_noise(true, T, seed=seed)
    return {"embeddings": emb, "true": true, "rated": rated, "T": T, "p": np.bincount(true, minlength=K) / len(true)}
