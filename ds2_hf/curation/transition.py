"""Score transition matrix estimation by high-order consensus (HOC) of 2-NN clusters.

``T[i, j] = P(rated = j | true = i)`` (rows are true scores) and ``p[i] = P(true = i)``. Under 2-NN clusterability
a point and its two nearest neighbours share a true score, so the frequencies of their rating triples are

* ``c1 = p @ T``,
* ``c2[a, b] = sum_r p_r T[r, a] T[r, b]``,
* ``c3[a, b, c] = sum_r p_r T[r, a] T[r, b] T[r, c]``,

and ``(T, p)`` are recovered by matching these to the observed frequencies. The solve is a 42-parameter
problem (softmax logits of ``T`` rows and of ``p``); the loss and its gradient are computed in closed form, so
the reference's 1,500 Adam steps take milliseconds here, and L-BFGS reaches a tighter optimum still.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.optimize import minimize
from scipy.special import softmax


@dataclass
class ConsensusCounts:
    """Empirical first-, second- and third-order consensus frequencies, each summing to 1."""

    c1: np.ndarray  # (K,)
    c2: np.ndarray  # (K, K)
    c3: np.ndarray  # (K, K, K)


def count_triples(y0: np.ndarray, y1: np.ndarray, y2: np.ndarray, num_classes: int) -> ConsensusCounts:
    """Frequencies of the rating triples ``(self, 1st NN, 2nd NN)`` (vectorised ``bincount``)."""
    K = num_classes
    n = len(y0)
    c3 = np.bincount((y0 * K + y1) * K + y2, minlength=K**3).reshape(K, K, K) / n
    return ConsensusCounts(c3.sum(axis=(1, 2)), c3.sum(axis=2), c3)


def average_counts(counts: list[ConsensusCounts]) -> ConsensusCounts:
    """The mean of per-round frequencies (the reference averages rounds this way)."""
    return ConsensusCounts(
        np.mean([c.c1 for c in counts], axis=0),
        np.mean([c.c2 for c in counts], axis=0),
        np.mean([c.c3 for c in counts], axis=0),
    )


def analytical_consensus(T: np.ndarray, p: np.ndarray) -> ConsensusCounts:
    """The consensus frequencies implied by ``(T, p)`` under 2-NN clusterability."""
    return ConsensusCounts(p @ T, T.T @ (p[:, None] * T), np.einsum("r,ra,rb,rc->abc", p, T, T, T))


def _loss_and_grad(theta: np.ndarray, est: ConsensusCounts, K: int, squared: bool = False) -> tuple[float, np.ndarray]:
    """Reference loss ``|c1 - e1| + |c2 - e2|_F + |c3 - e3|_F`` (unsquared norms) and its gradient.

    ``squared=True`` uses the smooth sum of squared norms instead (what L-BFGS needs to converge).
    """
    Tl = theta[: K * K].reshape(K, K)
    pl = theta[K * K :]
    T = softmax(Tl, axis=1)
    p = softmax(pl)
    model = analytical_consensus(T, p)
    loss = 0.0
    grads = []
    for m, e in ((model.c1, est.c1), (model.c2, est.c2), (model.c3, est.c3)):
        diff = m - e
        if squared:
            loss += float((diff**2).sum())
            grads.append(2.0 * diff)
            continue
        norm = float(np.sqrt((diff**2).sum()))
        loss += norm
        grads.append(diff / norm if norm > 0 else np.zeros_like(diff))
    g1, g2, g3 = grads
    # d loss / d p_r and d loss / d T_ra
    dp = T @ g1 + np.einsum("ab,ra,rb->r", g2, T, T) + np.einsum("abc,ra,rb,rc->r", g3, T, T, T)
    dT = p[:, None] * (g1[None, :] + T @ (g2 + g2.T).T + _d3(g3, T))
    # through the softmaxes
    dTl = T * (dT - (dT * T).sum(axis=1, keepdims=True))
    dpl = p * (dp - (dp * p).sum())
    return loss, np.concatenate([dTl.ravel(), dpl])


def _d3(g3: np.ndarray, T: np.ndarray) -> np.ndarray:
    """d/dT[r, a] of sum_abc g3[a,b,c] T[r,a] T[r,b] T[r,c] (per unit p_r)."""
    return (
        np.einsum("abc,rb,rc->ra", g3, T, T)
        + np.einsum("bac,rb,rc->ra", g3, T, T)
        + np.einsum("bca,rb,rc->ra", g3, T, T)
    )


@dataclass
class TransitionEstimate:
    """Result of :func:`estimate_transition`."""

    T: np.ndarray  # (K, K), rows sum to 1
    p: np.ndarray  # (K,)
    loss: float
    steps: int


def estimate_transition(
    est: ConsensusCounts,
    *,
    solver: str = "lbfgs",
    max_step: int = 1501,
    lr: float = 0.1,
    seed: int = 0,
) -> TransitionEstimate:
    """Solve for ``(T, p)`` matching the observed consensus frequencies.

    Parameters
    ----------
    est : ConsensusCounts
        Observed frequencies (:func:`count_triples`, averaged over rounds).
    solver : {"lbfgs", "adam"}
        ``"adam"`` reproduces the reference: ``max_step - 1`` Adam updates with learning rate ``lr`` from
        ``T_logits = 5 I - 1`` and ``p_logits = 1/K + U(0, 0.1)``, returning the final iterate.
        ``"lbfgs"`` starts from the same point and runs L-BFGS to convergence on the smooth squared-norm
        version of the loss (same minimiser when the model fits exactly; the reported loss is the reference's).
    seed : int
        Seed of the ``p`` initialisation noise.
    """
    K = len(est.c1)
    rng = np.random.default_rng(seed)
    theta0 = np.concatenate([(5.0 * np.eye(K) - 1.0).ravel(), 1.0 / K + 0.1 * rng.random(K)])
    if solver == "adam":
        theta = theta0.copy()
        m = np.zeros_like(theta)
        v = np.zeros_like(theta)
        b1, b2, eps = 0.9, 0.999, 1e-8
        for t in range(1, max_step):
            _, g = _loss_and_grad(theta, est, K)
            m = b1 * m + (1 - b1) * g
            v = b2 * v + (1 - b2) * g * g
            theta -= lr * (m / (1 - b1**t)) / (np.sqrt(v / (1 - b2**t)) + eps)
        loss = _loss_and_grad(theta, est, K)[0]
        steps = max_step - 1
    elif solver == "lbfgs":
        res = minimize(_loss_and_grad, theta0, args=(est, K, True), jac=True, method="L-BFGS-B",
                       options={"maxiter": 5000, "maxcor": 30, "gtol": 1e-10, "ftol": 1e-14})
        theta, steps = res.x, int(res.nit)
        loss = _loss_and_grad(theta, est, K)[0]
    else:
        raise ValueError(f"solver={solver!r} is not supported; expected 'lbfgs' or 'adam'")
    T = softmax(theta[: K * K].reshape(K, K), axis=1)
    p = softmax(theta[K * K :])
    return TransitionEstimate(T, p, float(loss), steps)
