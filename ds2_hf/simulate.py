"""Ground truth for curation: simulated embeddings with known true scores, and known noise injected into real data.

Use :func:`inject_noise` to check curation on your own embeddings: take rows whose true score you trust (or a
clean label column), draw ratings through a transition matrix you choose, curate, and measure how much of the
injected noise comes back (:func:`evaluate_curation`).

Examples
--------
>>> from ds2_hf.simulate import simulate
>>> data = simulate(2000, 32, transition="gpt-like", seed=0)
>>> data.embeddings.shape, data.rated.shape
((2000, 32), (2000,))
>>> round(float((data.rated == data.true).mean()), 2) < 0.9   # noisy
True
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

#: True-score prior used by default: mass in the middle, top score rare.
DEFAULT_PRIOR = np.array([0.08, 0.15, 0.25, 0.31, 0.18, 0.03])

#: Rater noise shaped after the paper's Figure 3: ``T[i, j] = P(rated = j | true = i)``.
TRANSITION_PRESETS: dict[str, np.ndarray] = {
    "gpt-like": np.array(
        [
            [0.76, 0.19, 0.04, 0.01, 0.00, 0.00],
            [0.10, 0.72, 0.14, 0.03, 0.01, 0.00],
            [0.02, 0.10, 0.74, 0.12, 0.02, 0.00],
            [0.00, 0.02, 0.11, 0.76, 0.10, 0.01],
            [0.00, 0.01, 0.03, 0.16, 0.74, 0.06],
            [0.00, 0.00, 0.02, 0.06, 0.20, 0.72],
        ]
    ),
    "mistral-like": np.array(
        [
            [0.60, 0.20, 0.05, 0.12, 0.03, 0.00],
            [0.05, 0.58, 0.17, 0.17, 0.03, 0.00],
            [0.02, 0.12, 0.58, 0.24, 0.04, 0.00],
            [0.01, 0.06, 0.10, 0.70, 0.12, 0.01],
            [0.00, 0.03, 0.05, 0.27, 0.60, 0.05],
            [0.00, 0.02, 0.04, 0.14, 0.25, 0.55],
        ]
    ),
    "llama-like": np.array(
        [
            [0.45, 0.10, 0.08, 0.27, 0.07, 0.03],
            [0.08, 0.42, 0.15, 0.27, 0.06, 0.02],
            [0.05, 0.12, 0.42, 0.33, 0.06, 0.02],
            [0.03, 0.08, 0.10, 0.65, 0.12, 0.02],
            [0.03, 0.03, 0.06, 0.35, 0.48, 0.05],
            [0.02, 0.03, 0.05, 0.25, 0.25, 0.40],
        ]
    ),
}


def transition_matrix(spec, num_classes: int | None = None) -> np.ndarray:
    """A row-stochastic ``(K, K)`` matrix from a preset name, an array, or a float diagonal.

    ``spec`` may be a preset name (:data:`TRANSITION_PRESETS`), a ``(K, K)`` array-like (rows are normalised),
    or a float ``a``: diagonal ``a`` and the rest spread uniformly (needs ``num_classes``).
    """
    if isinstance(spec, str):
        if spec not in TRANSITION_PRESETS:
            raise ValueError(f"unknown transition preset {spec!r}; expected one of {sorted(TRANSITION_PRESETS)}")
        T = TRANSITION_PRESETS[spec].astype(float)
    elif np.isscalar(spec):
        if not num_classes:
            raise ValueError("a scalar transition (diagonal) needs num_classes")
        a = float(spec)
        T = np.full((num_classes, num_classes), (1 - a) / max(num_classes - 1, 1))
        np.fill_diagonal(T, a)
    else:
        T = np.asarray(spec, dtype=float)
    if T.ndim != 2 or T.shape[0] != T.shape[1] or (T < 0).any():
        raise ValueError(f"a transition matrix must be square and non-negative; got shape {T.shape}")
    return T / T.sum(axis=1, keepdims=True)


def inject_noise(true_scores, transition, *, seed: int = 0) -> np.ndarray:
    """Draw a rating for every row from row ``true_scores[i]`` of ``transition``.

    Parameters
    ----------
    true_scores : array-like of int, shape (N,)
        Known true scores in ``0..K-1``.
    transition : str, float or array-like (K, K)
        See :func:`transition_matrix`.
    seed : int
        Seed of the draw.

    Returns
    -------
    ndarray of int64, shape (N,)
    """
    true = np.asarray(true_scores, dtype=np.int64)
    K = int(true.max()) + 1 if true.size else 0
    T = transition_matrix(transition, num_classes=K if np.isscalar(transition) else None)
    if true.size and (true.min() < 0 or true.max() >= len(T)):
        raise ValueError(f"true scores must lie in 0..{len(T) - 1}, got {true.min()}..{true.max()}")
    u = np.random.default_rng(seed).random(len(true))
    cum = np.cumsum(T, axis=1)
    return np.minimum((u[:, None] > cum[true]).sum(axis=1), len(T) - 1).astype(np.int64)


@dataclass
class SimulatedData:
    """Embeddings with known true scores and noisy ratings (see :func:`simulate`)."""

    embeddings: np.ndarray  # (N, d) float32, unit rows
    true: np.ndarray  # (N,) int64
    rated: np.ndarray  # (N,) int64
    transition: np.ndarray  # (K, K) generating T
    prior: np.ndarray  # (K,) generating prior
    cluster: np.ndarray  # (N,) int64


def simulate(
    n: int,
    dim: int = 256,
    *,
    transition="gpt-like",
    prior=None,
    seed: int = 0,
    n_clusters: int | None = None,
    spread: float = 0.6,
    intrinsic_dim: int = 16,
    noise: float = 0.15,
    violate: float = 0.05,
) -> SimulatedData:
    """Clustered unit embeddings whose clusters carry one true score each, rated through a known ``T``.

    Every cluster centre shares a common direction (as real sentence embeddings do); points vary inside a
    low-dimensional per-cluster subspace plus a little isotropic noise. A fraction ``violate`` of points get a
    true score different from their cluster's, breaking k-NN clusterability in a controlled way.

    Parameters
    ----------
    n, dim : int
        Rows and embedding dimension.
    transition : str, float or array-like
        Rater noise (see :func:`transition_matrix`); default the ``"gpt-like"`` preset.
    prior : array-like, optional
        True-score prior (default :data:`DEFAULT_PRIOR`, or uniform when ``transition`` has another size).
    seed : int
        The same seed gives the same embeddings and true scores whatever the transition.
    n_clusters : int, optional
        Default ``max(4 K, n // 100)``.
    spread, intrinsic_dim, noise, violate : float / int
        Cluster radius, per-cluster subspace dimension, isotropic noise and fraction of violators.
    """
    T = transition_matrix(transition, num_classes=len(prior) if prior is not None else 6)
    K = len(T)
    p = np.asarray(prior if prior is not None else (DEFAULT_PRIOR if K == 6 else np.full(K, 1 / K)), float)
    p = p / p.sum()
    data_rng, rate_seed = np.random.default_rng([seed, 1]), seed
    C = n_clusters or max(4 * K, n // 100)
    per_class = np.maximum(1, np.round(p * C)).astype(int)
    cl_score = np.repeat(np.arange(K), per_class)
    C = len(cl_score)
    weight = np.concatenate([p[c] * data_rng.dirichlet(np.full(m, 2.0)) for c, m in enumerate(per_class)])
    cluster = data_rng.choice(C, size=n, p=weight / weight.sum())
    true = cl_score[cluster].copy()
    viol = data_rng.random(n) < violate
    for c in range(K):
        m = viol & (true == c)
        q = p.copy()
        q[c] = 0
        true[m] = data_rng.choice(K, size=int(m.sum()), p=q / q.sum())

    common = data_rng.standard_normal(dim)
    common /= np.linalg.norm(common)
    centres = data_rng.standard_normal((C, dim))
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    centres = np.sqrt(0.5) * common + np.sqrt(0.5) * centres
    emb = np.empty((n, dim), dtype=np.float32)
    for j in range(C):
        idx = np.flatnonzero(cluster == j)
        if idx.size == 0:
            continue
        basis = data_rng.standard_normal((intrinsic_dim, dim)) / np.sqrt(dim)
        local = data_rng.standard_normal((idx.size, intrinsic_dim)) / np.sqrt(intrinsic_dim)
        x = centres[j] + spread * (local @ basis)  # about `spread` in norm
        x += noise * data_rng.standard_normal((idx.size, dim)) / np.sqrt(dim)
        emb[idx] = x / np.linalg.norm(x, axis=1, keepdims=True)
    rated = inject_noise(true, T, seed=rate_seed)
    return SimulatedData(emb, true.astype(np.int64), rated, T, p, cluster.astype(np.int64))


@dataclass
class MultiResponseData(SimulatedData):
    """Several responses per prompt (see :func:`simulate_multi_response`); ``prompt`` is each row's prompt id."""

    prompt: np.ndarray | None = None  # (N,) int64
    difficulty: np.ndarray | None = None  # (n_prompts,) int64 shift of the rater's view per prompt


def simulate_multi_response(
    n_prompts: int,
    responses: int = 4,
    dim: int = 64,
    *,
    transition="gpt-like",
    prior=None,
    difficulty: int = 2,
    response_noise: float = 0.3,
    seed: int = 0,
) -> MultiResponseData:
    """A multi-response pool whose neighbours share the prompt's difficulty but not the answer's quality.

    Every prompt gets ``responses`` answers whose true qualities are drawn independently from ``prior``. Answers
    embed next to their prompt (the prompt's direction plus ``response_noise`` of noise unrelated to quality), so
    a row's nearest neighbours are the other answers to its prompt. The rater sees the quality shifted by the
    prompt's difficulty (a uniform integer in ``-difficulty..difficulty``, clipped to the scale), then through
    ``T``: answers to one prompt share a bias in their ratings, and nothing about their true quality. k-NN
    consensus that trusts these neighbours pulls every answer towards its prompt's level; prompt groups
    (``groups=data.prompt``) keep them out of the evidence.

    Examples
    --------
    >>> from ds2_hf.simulate import simulate_multi_response
    >>> data = simulate_multi_response(300, 4, seed=0)
    >>> data.embeddings.shape, int(data.prompt.max()) + 1
    ((1200, 64), 300)
    """
    T = transition_matrix(transition, num_classes=len(prior) if prior is not None else 6)
    K = len(T)
    p = np.asarray(prior if prior is not None else (DEFAULT_PRIOR if K == 6 else np.full(K, 1 / K)), float)
    p = p / p.sum()
    rng = np.random.default_rng([seed, 2])
    n = n_prompts * responses
    prompt = np.repeat(np.arange(n_prompts), responses)
    centres = rng.standard_normal((n_prompts, dim))
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    x = centres[prompt] + response_noise * rng.standard_normal((n, dim)) / np.sqrt(dim)
    emb = (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)
    true = rng.choice(K, size=n, p=p)
    shift = rng.integers(-difficulty, difficulty + 1, n_prompts)
    rated = inject_noise(np.clip(true + shift[prompt], 0, K - 1), T, seed=seed)
    return MultiResponseData(emb, true.astype(np.int64), rated, T, p, prompt.astype(np.int64), prompt=prompt,
                             difficulty=shift)


def evaluate_curation(true, rated, curated, *, transition=None, transition_est=None, flagged=None,
                      long_tail=None, k: int | None = None) -> dict:
    """Score a curation against ground truth: accuracy before/after, T error, flag precision/recall, top-k quality.

    Parameters
    ----------
    true, rated, curated : array-like of int, shape (N,)
    transition, transition_est : array-like (K, K), optional
        True and estimated transition matrices (for ``T_mae``).
    flagged : array-like of bool, optional
    long_tail : array-like of float, optional
        Tie-breaker of the top-k selection (higher first); zeros when absent.
    k : int, optional
        Size of the top-k selection (default ``N // 30``).
    """
    true, rated, curated = (np.asarray(a, dtype=np.int64) for a in (true, rated, curated))
    n = len(true)
    out = {
        "n": int(n),
        "acc_rated": float((rated == true).mean()),
        "acc_curated": float((curated == true).mean()),
        "mae_rated": float(np.abs(rated - true).mean()),
        "mae_curated": float(np.abs(curated - true).mean()),
        "n_changed": int((curated != rated).sum()),
    }
    if transition is not None and transition_est is not None:
        out["T_mae"] = float(np.abs(np.asarray(transition_est) - np.asarray(transition)).mean())
    if flagged is not None:
        f = np.asarray(flagged, bool)
        wrong = rated != true
        out["flag_precision"] = float((f & wrong).sum() / max(f.sum(), 1))
        out["flag_recall"] = float((f & wrong).sum() / max(wrong.sum(), 1))
    k = k or max(1, n // 30)
    lt = np.zeros(n) if long_tail is None else np.asarray(long_tail, float)
    top = np.lexsort((-lt, -curated))[:k]
    top_raw = np.lexsort((-lt, -rated))[:k]
    out["topk"] = int(k)
    out["topk_mean_true_curated"] = float(true[top].mean())
    out["topk_mean_true_raw"] = float(true[top_raw].mean())
    return out


def curation_ceiling(result, ratings, true) -> dict:
    """How close a joint curation came to the best accuracy its own evidence allows.

    The *ceiling* is the accuracy of the joint posterior built from exactly the evidence the curation used (its
    k-NN graph, selected number of neighbours and weights, forward and reverse votes, and the neighbourhood-prior
    stage when the curation used it) when the true-score prior, the transition matrix ``T`` and the neighbour
    matrix ``M`` are set to their values computed from ``true`` instead of estimated. The gap between the curated
    accuracy and the ceiling is what better parameter estimation could still win; the ceiling itself is limited
    by the graph. The weighted majority of the
    neighbours' *true* scores (the same votes with perfect ratings) measures the graph alone.

    Parameters
    ----------
    result : CurationResult
        From :func:`ds2_hf.curation.curate_scores` with ``method="joint"`` (the default).
    ratings, true : array-like of int, shape (N,)
        The ratings that were curated (``-1`` = unrated) and the true scores in ``0..K-1``.

    Returns
    -------
    dict
        ``acc_rated``, ``acc_curated``, ``acc_ceiling`` and ``acc_neighbour_majority`` (accuracy against ``true``
        over all rows, in [0, 1], higher = better) and ``gap = acc_ceiling - acc_curated``. The ceiling is that of
        the posterior before any back-off towards the raw ratings.

    Examples
    --------
    >>> from ds2_hf.curation import curate_scores
    >>> data = simulate(3000, 16, seed=0)
    >>> res = curate_scores(data.embeddings, data.rated, progress=False)
    >>> c = curation_ceiling(res, data.rated, data.true)
    >>> c["acc_ceiling"] > c["acc_rated"]
    True
    """
    from .curation.evidence import EdgeWeights, Evidence, SharedNeighbours, Weighting
    from .curation.joint import JointModel, JointState
    from .curation.neighbourhood import neighbourhood_prior, posterior_under_prior

    report = result.report or {}
    if report.get("method") != "joint" or result.graph is None:
        raise ValueError(
            f"curation_ceiling needs a joint curation with its graph (got method={report.get('method')!r}); "
            "curate with method='joint', the default"
        )
    y = np.asarray(ratings, dtype=np.int64)
    true = np.asarray(true, dtype=np.int64)
    n, K = len(y), report["num_classes"]
    if len(true) != n or len(result.curated) != n:
        raise ValueError(f"ratings ({n}), true ({len(true)}) and the curation ({len(result.curated)}) differ in length")
    if true.min() < 0 or true.max() >= K:
        raise ValueError(f"true scores must lie in 0..{K - 1}; found {true.min()}..{true.max()}")
    d, cfg = result.details, report["config"]
    k, a, b, c = d["k"], d["alpha"], d["beta"], d.get("gamma", 0.0)
    ids, sims = result.graph.indices[:, :k], result.graph.similarities[:, :k]
    kmax = min(max(cfg["joint_ks"]), result.graph.indices.shape[1])
    shared = SharedNeighbours.of(result.graph.indices[:, :kmax]) if c else None
    weighting = Weighting(k, a, b, c)
    # The curation's own evidence; one M-step on the true scores gives the true p, T and M for it.
    model = JointModel.build(y, y, ids, sims, weighting, num_classes=K, symmetric=cfg["symmetric"], shared=shared)
    onehot = np.eye(K)[true]
    p, T, M = model.m_step(onehot, eps=1e-12)  # the true parameters, barely smoothed
    log_posterior = model.e_step(JointState(T, p, M, onehot), log=True)
    posterior = np.exp(log_posterior)
    if d.get("neighbourhood_prior", {}).get("used"):  # the second stage too, on the true-parameter posteriors
        prior = neighbourhood_prior(JointState(T, p, M, posterior, log_posterior=log_posterior), y, ids,
                                    EdgeWeights(ids, sims, weighting, shared), symmetric=cfg["symmetric"])
        posterior = posterior_under_prior(prior, T, y)[0]
    ceiling = posterior.argmax(axis=1)
    # The same forward votes with every rated neighbour voting its true score: the graph alone.
    majority = Evidence.build(y, np.where(y >= 0, true, -1), ids, sims, K, weighting, shared=shared).votes
    acc = {"acc_rated": float((y == true).mean()), "acc_curated": float((result.curated == true).mean()),
           "acc_ceiling": float((ceiling == true).mean()),
           "acc_neighbour_majority": float((majority.argmax(axis=1) == true).mean())}
    acc["gap"] = acc["acc_ceiling"] - acc["acc_curated"]
    return acc
