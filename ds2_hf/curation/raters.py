"""How good is each rater? Per-rater summaries of a fused model, the audit set's effect, and inter-rater agreement.

All functions are ground-truth free: they read a fitted model (:func:`ds2_hf.curation.fusion.fuse_ratings`) and
the ratings.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


def rater_accuracy(T: np.ndarray, p: np.ndarray) -> np.ndarray:
    """``sum_z p(z) T_r[z, z]``: the probability that each rater gives a row its true score; shape (R,), in [0, 1]."""
    return np.einsum("z,rzz->r", p, np.atleast_3d(T) if T.ndim == 3 else T[None])


def rater_bias(T: np.ndarray, p: np.ndarray) -> np.ndarray:
    """``sum_z p(z) sum_y T_r[z, y] (y - z)``: mean rating minus mean true score, in score points; shape (R,).

    Positive = the rater over-rates, negative = it under-rates.
    """
    K = T.shape[-1]
    diff = np.arange(K)[None, :] - np.arange(K)[:, None]  # (z, y) -> y - z
    return np.einsum("z,rzy,zy->r", p, T, diff)


def summarize_raters(T: np.ndarray, p: np.ndarray, ratings: np.ndarray, fused: np.ndarray, *,
                     names=None) -> list[dict]:
    """One JSON-ready record per rater: its estimated ``T``, accuracy, bias and agreement with the fused score.

    Parameters
    ----------
    T : ndarray (R, K, K)
        Estimated transition matrices (rows = true score).
    p : ndarray (K,)
        Estimated true-score prior.
    ratings : ndarray (N, R) int
        The ratings, ``-1`` where a rater did not rate a row.
    fused : ndarray (N,) int
        The fused score of each row (the posterior argmax).
    names : sequence of str, optional
        Rater names (default ``rater 0``, ``rater 1``, ...).

    Returns
    -------
    list of dict
        ``name``, ``n_rated``, ``accuracy`` (estimated, in [0, 1], higher = better), ``bias`` (score points,
        positive = over-rates), ``agreement_with_fused`` (share of its rated rows whose rating equals the fused
        score) and ``transition_matrix`` (K x K lists).

    Examples
    --------
    >>> import numpy as np
    >>> T = np.stack([np.eye(2), [[0.6, 0.4], [0.0, 1.0]]])
    >>> Y = np.array([[0, 0], [1, 1], [0, 1], [1, -1]])
    >>> [round(s["bias"], 2) for s in summarize_raters(T, np.array([0.5, 0.5]), Y, np.array([0, 1, 0, 1]))]
    [0.0, 0.2]
    """
    R = T.shape[0]
    names = list(names) if names is not None else [f"rater {r}" for r in range(R)]
    acc, bias = rater_accuracy(T, p), rater_bias(T, p)
    out = []
    for r in range(R):
        rated = ratings[:, r] >= 0
        agree = float((ratings[rated, r] == fused[rated]).mean()) if rated.any() else float("nan")
        out.append({"name": str(names[r]), "n_rated": int(rated.sum()), "accuracy": round(float(acc[r]), 4),
                    "bias": round(float(bias[r]), 4), "agreement_with_fused": round(agree, 4),
                    "transition_matrix": np.round(T[r], 4).tolist()})
    return out


def trust_line(summary: list[dict]) -> str:
    """Plain-language advice on which rater to trust, from :func:`summarize_raters`.

    Examples
    --------
    >>> trust_line([{"name": "a", "accuracy": 0.74, "bias": 0.02}, {"name": "b", "accuracy": 0.5, "bias": 0.31}])
    'Trust a most: it gives the true score to an estimated 74% of rows, against 50% for b. b over-rates by 0.31 points on average.'
    """
    ranked = sorted(summary, key=lambda s: -s["accuracy"])
    best, rest = ranked[0], ranked[1:]
    others = ", ".join(f"{s['accuracy']:.0%} for {s['name']}" for s in rest)
    line = f"Trust {best['name']} most: it gives the true score to an estimated {best['accuracy']:.0%} of rows"
    line += f", against {others}." if others else "."
    skewed = [s for s in summary if abs(s["bias"]) >= 0.1]
    for s in skewed:
        line += f" {s['name']} {'over' if s['bias'] > 0 else 'under'}-rates by {abs(s['bias']):.2f} points on average."
    return line


def audit_shift(with_audit, without_audit, ratings: np.ndarray, audit: np.ndarray) -> dict:
    """How far a trusted audit column moved the fused estimates (two :class:`FusionResult` of the same rows).

    Returns
    -------
    dict
        ``n_audited``; per rater: ``T_shift`` (mean absolute change of ``T_r``), ``accuracy_shift`` (change of the
        estimated accuracy, with minus without), ``observed_accuracy_on_audit`` (the share of audited rows the rater
        scored as the audit did, where it rated them) next to ``accuracy`` with and without the audit; and
        ``changed_rows`` (share of the unaudited rows whose fused score the audit changed).
    """
    T1, T0 = with_audit.transition_matrices, without_audit.transition_matrices
    acc1 = rater_accuracy(T1, with_audit.true_prior)
    acc0 = rater_accuracy(T0, without_audit.true_prior)
    audited = audit >= 0
    per_rater = []
    for r in range(T1.shape[0]):
        both = audited & (ratings[:, r] >= 0)
        observed = float((ratings[both, r] == audit[both]).mean()) if both.any() else None
        per_rater.append({"T_shift": round(float(np.abs(T1[r] - T0[r]).mean()), 5),
                          "accuracy_with_audit": round(float(acc1[r]), 4),
                          "accuracy_without_audit": round(float(acc0[r]), 4),
                          "accuracy_shift": round(float(acc1[r] - acc0[r]), 4),
                          "observed_accuracy_on_audit": None if observed is None else round(observed, 4),
                          "n_audited_rated": int(both.sum())})
    rest = ~audited
    changed = (with_audit.posterior.argmax(1) != without_audit.posterior.argmax(1))[rest]
    return {"n_audited": int(audited.sum()), "raters": per_rater,
            "changed_rows": round(float(changed.mean()) if changed.size else 0.0, 5)}


@dataclass
class RaterAgreement:
    """Observed inter-rater agreement next to what a fitted model implies (:func:`rater_agreement`).

    Attributes
    ----------
    observed : ndarray (N,) float64
        Per row, the share of its pairs of raters that gave the same score; nan where fewer than two raters rated.
    implied : ndarray (N,) float64
        Per row, the probability of that agreement under the model, ``sum_z prior_i(z) P(r and s agree | z)``
        averaged over the same pairs; nan where fewer than two raters rated.
    pairs : list of dict
        Per pair of raters ``(r, s)``: ``n`` co-rated rows, ``observed`` and ``implied`` agreement rates.
    """

    observed: np.ndarray
    implied: np.ndarray
    pairs: list

    @property
    def observed_rate(self) -> float:
        """Mean observed agreement over the rows at least two raters rated."""
        return float(np.nanmean(self.observed))

    @property
    def implied_rate(self) -> float:
        """Mean implied agreement over the same rows."""
        return float(np.nanmean(self.implied))


def rater_agreement(ratings: np.ndarray, prior: np.ndarray, transition_matrices: np.ndarray) -> RaterAgreement:
    """Row-level agreement between raters, observed and as implied by a fitted model. No ground truth needed.

    Under the model, raters ``r`` and ``s`` agree on row ``i`` with probability
    ``sum_z prior_i(z) sum_y T_r[z, y] T_s[z, y]``. Pass a ``prior`` that never saw the row's own ratings, so the
    implied agreement is a prediction, not a fit: ``FusionResult.prior`` (the neighbourhood prior, or the
    global prior for raters alone). When the k-NN model is right, rows whose neighbours point to a score the raters
    rate consistently agree more often, and ``implied`` tracks ``observed`` row by row; when neighbours share
    topic but not quality, the neighbourhood prior says little and ``implied`` stays near the global rate.
    A guard can compare the two (rates, or a row-level correlation or log-likelihood).

    Parameters
    ----------
    ratings : ndarray (N, R) int
        ``-1`` where a rater did not rate a row; R >= 2.
    prior : ndarray (N, K) or (K,)
        Each row's (or one global) distribution of the true score, rows sum to 1.
    transition_matrices : ndarray (R, K, K)
        ``T_r[z, y]``, rows sum to 1.

    Returns
    -------
    RaterAgreement

    Examples
    --------
    >>> import numpy as np
    >>> T = np.stack([np.eye(2), np.eye(2)])  # two perfect raters always agree
    >>> res = rater_agreement(np.array([[0, 0], [1, 1], [1, -1]]), np.array([0.5, 0.5]), T)
    >>> res.observed.tolist()[:2], res.implied.tolist()[:2], res.pairs[0]["n"]
    ([1.0, 1.0], [1.0, 1.0], 2)
    """
    Y = np.asarray(ratings)
    T = np.asarray(transition_matrices, dtype=np.float64)
    R = Y.shape[1]
    if R < 2 or T.shape[0] != R:
        raise ValueError(f"rater agreement needs >= 2 raters and one T per rater; got ratings {Y.shape}, T {T.shape}")
    pi = np.broadcast_to(np.asarray(prior, np.float64), (len(Y), T.shape[1]))
    obs, imp, cnt = np.zeros(len(Y)), np.zeros(len(Y)), np.zeros(len(Y))
    pairs = []
    for r in range(R):
        for s in range(r + 1, R):
            both = (Y[:, r] >= 0) & (Y[:, s] >= 0)
            agree = (Y[:, r] == Y[:, s]) & both
            p_agree = pi @ (T[r] * T[s]).sum(axis=1)  # (N,)
            obs += agree
            imp += np.where(both, p_agree, 0.0)
            cnt += both
            pairs.append({"raters": (r, s), "n": int(both.sum()),
                          "observed": round(float(agree[both].mean()), 5) if both.any() else None,
                          "implied": round(float(p_agree[both].mean()), 5) if both.any() else None})
    with np.errstate(invalid="ignore", divide="ignore"):
        return RaterAgreement(np.where(cnt > 0, obs / cnt, np.nan), np.where(cnt > 0, imp / cnt, np.nan), pairs)
