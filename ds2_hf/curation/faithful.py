"""The reference DS2 curation (HOC + SimiFeat 'rank' + confidence gate), computed from one global k-NN graph.

The reference draws a random subsample in every HOC round (50) and detection epoch (51) and runs a k-NN search
inside it. Walking each sampled point's sorted global neighbour list and keeping the first members of that
round's sample gives exactly the same neighbours, so one graph replaces 101 searches. Rows whose list runs out
before ``k`` members are found are searched exactly against the sample (counted in the report).

``duplicate_quirk=True`` reproduces the reference's doubled dataset (every row present twice, see the project's
algorithm notes) without materialising ``2N`` rows: each neighbour ``j`` expands to the pair ``(j, j + N)``.
It exists for comparison with the reference only.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..knn import KnnGraph
from .evidence import progress_bar
from .transition import average_counts, count_triples, estimate_transition


@dataclass
class SampledNeighbours:
    """The first ``k`` neighbours of each sampled point among the members of the sample."""

    base: np.ndarray  # (|S|, k) int64, base row ids (0..N-1) of the neighbours
    sims: np.ndarray  # (|S|, k) float32 cosine similarities
    n_fallback: int  # rows searched exactly because the global list ran out


def sample_neighbours(
    graph: KnnGraph, x: np.ndarray, sample: np.ndarray, k: int, *, duplicate_quirk: bool = False
) -> SampledNeighbours:
    """Neighbours of every point of ``sample`` restricted to ``sample`` (self excluded).

    Parameters
    ----------
    graph : KnnGraph
        Global graph over the ``N`` base rows.
    x : ndarray (N, d)
        Unit embeddings (used only for rows whose global list holds fewer than ``k`` sample members).
    sample : ndarray of int64
        Sampled row ids: in ``0..N-1``, or in ``0..2N-1`` with ``duplicate_quirk``.
    k : int
        Neighbours to return per sampled point.
    """
    n = len(graph)
    L = 2 * n if duplicate_quirk else n
    in_s = np.zeros(L, dtype=bool)
    in_s[sample] = True
    base_of_s = sample % n
    ids = graph.indices[base_of_s]
    sims = graph.similarities[base_of_s]
    if duplicate_quirk:
        other = np.where(sample < n, sample + n, sample - n)
        raw = np.concatenate([other[:, None], np.stack([ids, ids + n], axis=2).reshape(len(sample), -1)], axis=1)
        base = np.concatenate([base_of_s[:, None], np.repeat(ids, 2, axis=1)], axis=1)
        sim = np.concatenate([np.ones((len(sample), 1), np.float32), np.repeat(sims, 2, axis=1)], axis=1)
    else:
        raw, base, sim = ids, ids, sims
    member = in_s[raw]
    order = np.argsort(~member, axis=1, kind="stable")[:, :k]
    out_base = np.take_along_axis(base, order, axis=1)
    out_sim = np.take_along_axis(sim, order, axis=1)
    short = np.flatnonzero(member.sum(axis=1) < k)
    for start in range(0, len(short), 2048):
        rows = short[start : start + 2048]
        s = x[base_of_s[rows]] @ x[base_of_s].T  # (rows, |S|): similarity to every sample member
        s[np.arange(len(rows)), rows] = -np.inf  # a row's own position in the sample is itself
        top = np.argsort(-s, axis=1, kind="stable")[:, :k]
        out_base[rows] = base_of_s[top]
        out_sim[rows] = np.take_along_axis(s, top, axis=1)
    return SampledNeighbours(out_base, out_sim, int(len(short)))


def graph_size_needed(n: int, sample_size: int, k: int, *, duplicate_quirk: bool) -> int:
    """Global neighbours to keep so that almost every sampled row finds ``k`` sample members."""
    L = 2 * n if duplicate_quirk else n
    s = sample_size / L
    per_neighbour = 2 * s if duplicate_quirk else s
    return int(min(n - 1, np.ceil(1.6 * k / per_neighbour) + 16))


@dataclass
class FaithfulResult:
    T: np.ndarray
    p: np.ndarray
    hoc_loss: float
    misrated: np.ndarray  # (N,) bool
    noise_score: np.ndarray  # (N,) float, Laplace-smoothed fraction of epochs flagged; higher = more likely mis-rated
    suggested: np.ndarray  # (N,) int64
    confidence: np.ndarray  # (N,) float, 0 where not flagged
    times_sampled: np.ndarray  # (N,) int
    n_fallback_rows: int


def run_faithful(
    x: np.ndarray,
    y: np.ndarray,
    graph: KnnGraph,
    *,
    num_classes: int,
    num_rounds: int = 50,
    num_epochs: int = 51,
    sample_size: int = 50000,
    k: int = 10,
    solver: str = "adam",
    max_step: int = 1501,
    lr: float = 0.1,
    duplicate_quirk: bool = False,
    seed: int = 0,
    progress: bool = False,
) -> FaithfulResult:
    """Run the reference HOC estimator and SimiFeat 'rank' detection on rated rows.

    Parameters
    ----------
    x : ndarray (N, d) float32, unit rows
    y : ndarray (N,) int64 in ``0..K-1`` (rated rows only)
    graph : KnnGraph over ``x`` with enough neighbours (see :func:`graph_size_needed`)
    num_rounds, num_epochs, sample_size, k, max_step, lr : reference defaults
    solver : "adam" (reference) or "lbfgs"
    duplicate_quirk : reproduce the reference's doubled dataset
    seed : seed of every random draw
    """
    K = num_classes
    n = len(y)
    L = 2 * n if duplicate_quirk else n
    ss = min(sample_size, int(0.9 * L))
    rng = np.random.default_rng(seed)
    counts, n_fallback = [], 0
    for _ in progress_bar(range(num_rounds), desc="HOC rounds", unit="round", progress=progress):
        S = rng.choice(L, ss, replace=False)
        nb = sample_neighbours(graph, x, S, 2, duplicate_quirk=duplicate_quirk)
        n_fallback += nb.n_fallback
        counts.append(count_triples(y[S % n], y[nb.base[:, 0]], y[nb.base[:, 1]], K))
    est = average_counts(counts)
    te = estimate_transition(est, solver=solver, max_step=max_step, lr=lr, seed=int(rng.integers(2**31)))
    T, p = te.T, te.p
    r = _noise_rates(T, p, np.bincount(y, minlength=K) / n)

    times, noisy = np.zeros(n, np.int64), np.zeros(n, np.int64)
    suggest = np.zeros((n, K), np.int64)
    for _ in progress_bar(range(num_epochs), desc="detection epochs", unit="epoch", progress=progress):
        S = rng.choice(L, ss, replace=False)
        nb = sample_neighbours(graph, x, S, k - 1, duplicate_quirk=duplicate_quirk)
        n_fallback += nb.n_fallback
        base = S % n
        flag, pred = _detect(y, base, nb, k, r, K)
        times[base] += 1  # a row drawn twice (the doubled pool) counts once, as in the reference
        hit = np.zeros(n, bool)
        hit[base[flag]] = True
        noisy += hit
        pairs = np.unique(base[flag] * K + pred[flag])
        suggest[pairs // K, pairs % K] += 1

    noise_score = (noisy + 1.0) / (times + 2.0)
    misrated = noise_score > 0.5
    sm = (suggest + 1.0) / (suggest.sum(axis=1, keepdims=True) + K)
    sm[np.arange(n), y] = -1.0
    suggested = sm.argmax(axis=1)
    confidence = np.where(misrated, sm.max(axis=1) * noise_score, 0.0)
    return FaithfulResult(T, p, te.loss, misrated, noise_score, suggested, confidence, times, n_fallback)


def _noise_rates(T: np.ndarray, p: np.ndarray, p_org: np.ndarray) -> np.ndarray:
    """The reference's share of rows to flag per rated class: ``1 - P(true = c | rated = c)``, clipped to
    [0.05, 0.95]."""
    with np.errstate(divide="ignore", invalid="ignore"):
        post_diag = np.where(p_org > 0, np.diag(T) * p / p_org, 1.0)  # P(true = c | rated = c)
    r = 1.0 - np.minimum(post_diag, 1.0)
    return np.where(r >= 1.0, 0.95, np.where(r <= 0.0, 0.05, r))


def _detect(y: np.ndarray, base: np.ndarray, nb, k: int, r: np.ndarray, K: int) -> tuple[np.ndarray, np.ndarray]:
    """One detection epoch of SimiFeat 'rank': the flags of the sampled rows ``base`` and their neighbour vote."""
    ys = y[base]
    d = 1.0 - nb.sims.astype(np.float64)
    w_self = 1.0 - (2.0 * d[:, 0] - d[:, 1])
    cnt = np.zeros((len(base), K))
    cnt[np.arange(len(base)), ys] += w_self
    np.add.at(cnt, (np.repeat(np.arange(len(base)), k - 1), y[nb.base].ravel()), (1.0 - d).ravel())
    q = cnt / np.maximum(np.linalg.norm(cnt, axis=1, keepdims=True), 1e-12)
    score = -np.log(q[np.arange(len(base)), ys] + 1e-8)
    flag = np.zeros(len(base), bool)
    for c in range(K):
        cls = ys == c
        if cls.any():
            flag[cls] = score[cls] >= np.percentile(score[cls], 100.0 * (1.0 - r[c]))
    return flag, cnt.argmax(axis=1)
