"""Choosing the joint model's number of neighbours and neighbour weights by held-out likelihood.

Every candidate :class:`~ds2_hf.curation.evidence.Weighting` ``(k, alpha, beta, gamma)`` is fitted on at most
``selection_rows`` random rows (each keeping its neighbours in the full pool) and scored by the mean log-likelihood
of each row's own rating predicted from its neighbours alone, over the rating marginal; the best is refitted on
every row. The cost of the search is therefore that of ``selection_rows`` rows, whatever the pool's size; the
refit and the shared-neighbour similarities (when a ``gamma > 0`` is searched) are the only steps over all rows.

:func:`select_stage` then decides whether the second stage, the neighbourhood prior, is kept, and on which
candidate: the selected one or the best of each other ``gamma``. The first stage's best candidate is not always the
best base for the second stage, so each of these finalists is refitted on every row and given the second stage, and
the curation keeps whichever model, the selected first stage or a finalist's second stage, predicts held-out ratings
best over every rated row.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .evidence import EdgeWeights, SharedNeighbours, Weighting, incoming_edges, incoming_votes, progress_bar
from .joint import JointModel, JointState
from .neighbourhood import fit_neighbourhood


@dataclass(frozen=True)
class Candidate:
    """One candidate weighting, fitted on the selection rows."""

    weighting: Weighting
    state: JointState  # fitted on the selection rows (every row when the pool is no larger than selection_rows)
    heldout_gain: float  # nats per rated selection row over the rating marginal


@dataclass
class JointSelection:
    """The selected joint model and the evidence behind it."""

    state: JointState  # fitted on every row
    k: int
    alpha: float
    beta: float
    heldout_gain: float  # nats per rated row over the marginal, selected joint model
    degenerate_gain: float  # nats per rated row over the marginal, best "ratings are the truth" model
    candidates: list  # [k, alpha, beta, gamma, heldout_gain] of every candidate
    gamma: float = 0.0  # exponent of the shared-neighbour similarity in the weights
    shared: SharedNeighbours | None = None  # (N, k_max) shared-neighbour similarities when a gamma > 0 was searched
    heldout: np.ndarray | None = None  # (N,) held-out log-likelihood of each own rating (nan if unrated)
    runners_up: tuple[Candidate, ...] = ()  # the best candidate of every other gamma, on the selection rows

    @property
    def weighting(self) -> Weighting:
        return Weighting(self.k, self.alpha, self.beta, self.gamma)


def rating_log_marginal(y: np.ndarray, num_classes: int) -> np.ndarray:
    """``log`` of the rated rows' share of each score, shape (K,), floored at ``log 1e-12``: the baseline of every
    held-out gain (nats per rated row over predicting each rating by the marginal)."""
    rated = y >= 0
    return np.log(np.maximum(np.bincount(y[rated], minlength=num_classes) / max(int(rated.sum()), 1), 1e-12))


def select_joint(y: np.ndarray, nbr_ids: np.ndarray, sims: np.ndarray, *, num_classes: int,
                 ks: tuple[int, ...] = (10, 20, 40), alphas: tuple[float, ...] = (0.25, 0.5, 1.0),
                 betas: tuple[float, ...] = (0.0, 10.0), gammas: tuple[float, ...] = (0.0, 2.0),
                 selection_rows: int = 50000, max_iter: int = 100, symmetric: bool = True, seed: int = 0,
                 progress: bool = False) -> JointSelection:
    """Choose the number of neighbours and the neighbour weights by held-out likelihood, then fit every row.

    Each candidate ``(k, alpha, beta, gamma)`` is fitted, warm-started from a strong-weight solution, on at most
    ``selection_rows`` random rows (each keeping its neighbours in the full pool) and scored by the mean
    held-out log-likelihood gain over the rating marginal. The best candidate is refitted on all rows.
    With ``symmetric`` (default), a row's evidence also includes the votes of the rows that have it among
    their neighbours (:func:`~ds2_hf.curation.evidence.reverse_votes`), which measurably improves both held-out
    likelihood and accuracy. Candidates with ``gamma > 0`` weight neighbours by the shared-neighbour similarity
    of the ``max(ks)``-neighbour lists (:class:`~ds2_hf.curation.evidence.SharedNeighbours`, computed once).
    The best "ratings are the truth" model over the same grid is scored too: the difference is the evidence
    that the latent-true-score model explains the ratings better than the raw ratings themselves.
    ``progress`` shows bars of the shared neighbours, the candidates and the final EM.

    Examples
    --------
    >>> from ds2_hf.knn import build_knn_graph
    >>> from ds2_hf.simulate import simulate
    >>> data = simulate(2000, 16, seed=0)
    >>> g = build_knn_graph(data.embeddings, 20, progress=False)
    >>> sel = select_joint(data.rated, g.indices, g.similarities, num_classes=6, ks=(10, 20), gammas=(0.0,))
    >>> len(sel.candidates), sel.k in (10, 20), bool(sel.heldout_gain > sel.degenerate_gain)
    (12, True, True)
    """
    K = num_classes
    ks = tuple(sorted({min(k, nbr_ids.shape[1]) for k in ks}))
    gammas = tuple(sorted({float(g) for g in gammas}))
    n = len(y)
    rated = y >= 0
    marg = rating_log_marginal(y, K)
    rng = np.random.default_rng(seed)
    sel = np.sort(rng.choice(n, selection_rows, replace=False)) if n > selection_rows else np.arange(n)
    ys, ids_s, sims_s = y[sel], nbr_ids[sel], sims[sel]
    ok = ys >= 0
    shared = SharedNeighbours.of(nbr_ids[:, : max(ks)], progress=progress) if any(gammas) else None
    shared_s = shared[sel] if shared is not None else None
    edges = incoming_edges(y, nbr_ids[:, : max(ks)], sel) if symmetric and len(sel) < n else None

    def gain(state: JointState, model: JointModel) -> float:
        ll = model.heldout(state)
        return float(np.mean(ll[ok] - marg[ys[ok]]))

    def model_for(w: Weighting) -> JointModel:
        # a sample's reverse votes come from the incoming edges; over every row, build computes them
        reverse = None if edges is None else incoming_votes(y, sims, shared, edges, len(sel), K, w.alpha, w.beta,
                                                            w.gamma, w.k)
        return JointModel.build(ys, y, ids_s, sims_s, w, num_classes=K, symmetric=symmetric, shared=shared_s,
                                reverse=reverse)

    base = model_for(Weighting(ks[len(ks) // 2], 1.0, 0.0, 0.0)).fit(max_iter=max_iter)
    deg_best, candidates, by_gamma = -np.inf, [], {}
    grid = [Weighting(k, a, b, c) for k in ks for c in gammas for a in alphas for b in betas]
    for w in progress_bar(grid, desc="joint model selection", unit="candidate", progress=progress):
        model = model_for(w)
        st = model.fit(base, max_iter=max_iter)
        g = gain(st, model)
        candidates.append([int(w.k), float(w.alpha), float(w.beta), w.gamma, round(g, 5)])
        if w.gamma not in by_gamma or g > by_gamma[w.gamma].heldout_gain:
            by_gamma[w.gamma] = Candidate(w, st, g)
        deg_best = max(deg_best, gain(model.degenerate(), model))
    best = max(by_gamma.values(), key=lambda c: c.heldout_gain)
    w = best.weighting
    st, heldout = refit_joint(y, nbr_ids, sims, best, num_classes=K, symmetric=symmetric, shared=shared,
                              max_iter=max_iter, progress=progress)
    runners_up = tuple(c for gamma, c in sorted(by_gamma.items()) if gamma != w.gamma)
    return JointSelection(st, int(w.k), float(w.alpha), float(w.beta), float(best.heldout_gain), float(deg_best),
                          candidates, w.gamma, shared, heldout, runners_up)


def refit_joint(y: np.ndarray, nbr_ids: np.ndarray, sims: np.ndarray, candidate: Candidate, *, num_classes: int,
                symmetric: bool = True, shared: SharedNeighbours | None = None, max_iter: int = 100,
                progress: bool = False) -> tuple[JointState, np.ndarray]:
    """A candidate's model over every row: ``(state, heldout)``, its state and each row's held-out log-likelihood.

    The EM starts from the candidate's fit on the selection rows (none is run when those were every row);
    ``heldout`` (N,) is ``log P(own rating | neighbours)``, ``nan`` for unrated rows.
    """
    model = JointModel.build(y, y, nbr_ids, sims, candidate.weighting, num_classes=num_classes,
                             symmetric=symmetric, shared=shared)
    state = candidate.state
    if len(state.posterior) != len(y):
        state = model.fit(state, max_iter=max_iter, progress=progress)
    return state, model.heldout(state)


@dataclass
class StageChoice:
    """The model a joint curation keeps: the selected first stage, or a finalist's neighbourhood prior."""

    state: JointState  # its posteriors over every row, T and p
    first_iterations: int  # EM iterations of the first stage it builds on
    weighting: Weighting
    heldout: np.ndarray  # (N,) held-out log-likelihood of each own rating (nan if unrated)
    heldout_gain: float  # nats per rated row over the marginal, on the selection's rows (as JointSelection's)
    details: dict  # the report's ``neighbourhood_prior`` section


def select_stage(sel: JointSelection, y: np.ndarray, nbr_ids: np.ndarray, sims: np.ndarray, *,
                 prior: bool | str = "auto", symmetric: bool = True, max_iter: int = 100, blocks: list | None = None,
                 progress: bool = False) -> StageChoice:
    """Keep the first stage, or the neighbourhood prior over the finalist that predicts held-out ratings best.

    The finalists are the selected candidate and ``sel.runners_up`` (the best of every other gamma), each refitted
    on every row (:func:`refit_joint`) and given the second stage
    (:func:`~ds2_hf.curation.neighbourhood.fit_neighbourhood`, with ``blocks`` as its leave-one-out blocks). With
    ``prior="auto"`` the best second stage is kept when its mean held-out gain over every rated row beats the
    selected first stage's; ``True`` always keeps it, ``False`` never fits it.

    Returns
    -------
    StageChoice
        ``details`` holds ``used``, ``heldout_gain_first`` (the selected first stage, every rated row),
        ``heldout_gain_second`` (the best second stage), its EM ``iterations``, and ``finalists``:
        ``[k, alpha, beta, gamma, first-stage gain, second-stage gain]`` of each finalist, nats per rated row.

    Examples
    --------
    >>> from ds2_hf.knn import build_knn_graph
    >>> from ds2_hf.simulate import simulate
    >>> data = simulate(3000, 16, transition="llama-like", spread=1.0, seed=0)
    >>> g = build_knn_graph(data.embeddings, 40, progress=False)
    >>> sel = select_joint(data.rated, g.indices, g.similarities, num_classes=6)
    >>> choice = select_stage(sel, data.rated, g.indices, g.similarities)
    >>> len(choice.details["finalists"]), choice.details["used"]
    (2, True)
    """
    rated = y >= 0
    log_marginal = rating_log_marginal(y, len(sel.state.p))[y[rated]]

    def mean_gain(heldout: np.ndarray) -> float:
        return float(np.mean(heldout[rated] - log_marginal))

    def first_stage(details: dict) -> StageChoice:
        return StageChoice(sel.state, sel.state.iterations, sel.weighting, sel.heldout, sel.heldout_gain, details)

    if prior is False:
        return first_stage({"used": False})
    g1 = mean_gain(sel.heldout)
    def finalist_fits():
        """``(weighting, first stage over every row, its gain there, its gain on the selection rows)``, lazily."""
        yield sel.weighting, sel.state, g1, sel.heldout_gain
        for cand in sel.runners_up:
            first, heldout = refit_joint(y, nbr_ids, sims, cand, num_classes=len(sel.state.p), symmetric=symmetric,
                                         shared=sel.shared, max_iter=max_iter, progress=progress)
            yield cand.weighting, first, mean_gain(heldout), cand.heldout_gain

    finalists, best = [], None
    for w, first, g_first, g_sel in finalist_fits():
        ids = nbr_ids[:, : w.k]
        second = fit_neighbourhood(first, y, ids, EdgeWeights(ids, sims, w, sel.shared if w.gamma else None),
                                   symmetric=symmetric, max_iter=max_iter, blocks=blocks, progress=progress)
        g2 = mean_gain(second.heldout)
        finalists.append([int(w.k), float(w.alpha), float(w.beta), float(w.gamma), round(g_first, 5), round(g2, 5)])
        if best is None or g2 > best[0]:
            # the finalist's gain on the selection rows, shifted by what the second stage adds on every row
            best = (g2, w, first, second, g_sel + (g2 - g_first))
        del second
    g2, w, first, second, gain2 = best
    used = prior is True or g2 > g1
    details = {"used": bool(used), "heldout_gain_first": round(g1, 5), "heldout_gain_second": round(g2, 5),
               "iterations": second.state.iterations, "finalists": finalists}
    if not used:
        return first_stage(details)
    return StageChoice(second.state, first.iterations, w, second.heldout, gain2, details)
