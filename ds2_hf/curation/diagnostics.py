"""Clusterability: do a sample's neighbours tell anything about its true score, on the data at hand?

k-NN curation rests on one assumption: samples close in embedding space share their true quality. When the
embedding does not see what the rater rates (say, sentiment under a topic-level embedding), neighbours share
something else, and correcting ratings towards them makes ratings worse. :func:`assess_clusterability`
measures the assumption without ground truth and turns it into a *gate* in [0, 1] that scales every
correction (the back-off):

* ``heldout_gain``: how much better each sample's own rating is predicted from its neighbours' ratings than
  from the rating marginal (mean log-likelihood ratio, nats per rated row; 0 = neighbours carry nothing).
* ``latent_gain``: how much better the latent-true-score model predicts held-out ratings than the best
  "ratings are the truth" model on the same neighbours. Positive only when neighbours agree with each other
  *beyond* what the raw ratings already explain, i.e. when there is noise that they can correct.
* ``gate = clip(latent_gain / (GATE_SCALE * H), 0, 1)``, where ``H`` is the entropy of the rating
  marginal: full trust once the latent model explains 2% of the rating entropy better than the raw
  ratings, none when it explains nothing more; linear in between.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np

#: Fraction of the rating entropy the latent model must explain beyond the raw ratings for full trust.
GATE_SCALE = 0.02


@dataclass
class Clusterability:
    """Diagnostic of k-NN clusterability (see the module docstring). JSON-ready via :meth:`to_dict`."""

    heldout_gain: float
    latent_gain: float
    rating_entropy: float
    explained: float
    agreement: float
    agreement_random: float
    agreement_lift: float
    gate: float
    verdict: str
    per_class: list = field(default_factory=list)

    def to_dict(self) -> dict:
        return {k: (round(v, 5) if isinstance(v, float) else v) for k, v in asdict(self).items()}


def gate_from_gains(latent_gain: float, rating_entropy: float, scale: float = GATE_SCALE) -> float:
    """Map the latent model's held-out advantage to a trust factor in [0, 1]."""
    if rating_entropy <= 0:
        return 0.0
    return float(np.clip(latent_gain / (scale * rating_entropy), 0.0, 1.0))


def verdict(gate: float, heldout_gain: float, explained: float) -> str:
    """Plain-language verdict for reports and dataset cards."""
    pct = f"{100 * explained:.1f}%"
    if gate >= 0.999:
        return (
            f"Strong: a sample's neighbours predict its rating well ({heldout_gain:.3f} nats per sample, {pct} "
            "of the rating entropy) and agree beyond what the raw ratings explain, so rating noise is "
            "detectable. Curation was applied in full."
        )
    if gate > 0.0:
        return (
            f"Partial: neighbours carry some information about ratings ({heldout_gain:.3f} nats per sample, "
            f"{pct} of the rating entropy) but only weakly beyond the raw ratings, so corrections were shrunk "
            f"towards the raw ratings (trust factor {gate:.2f})."
        )
    return (
        f"Weak: neighbours explain little about ratings beyond the raw ratings themselves ({heldout_gain:.3f} "
        f"nats per sample, {pct} of the rating entropy): the embedding does not appear to see what the rater "
        "rates. Curation was withheld and ratings kept as rated; consider an embedding closer to the rated "
        "quality."
    )


def agreement_stats(y: np.ndarray, nbr_ids: np.ndarray, num_classes: int) -> tuple[float, float]:
    """Rate at which a rated sample and its nearest rated neighbour share a rating, and the chance rate."""
    rated = y >= 0
    first = nbr_ids[:, 0]
    both = rated & (y[first] >= 0)
    agree = float((y[both] == y[first[both]]).mean()) if both.any() else float("nan")
    r = np.bincount(y[rated], minlength=num_classes) / max(rated.sum(), 1)
    return agree, float((r**2).sum())


def assess_clusterability(
    y: np.ndarray,
    nbr_ids: np.ndarray,
    *,
    num_classes: int,
    heldout_gain: float,
    latent_gain: float,
    per_row_gain: np.ndarray | None = None,
    scale: float = GATE_SCALE,
) -> Clusterability:
    """Assemble the diagnostic from held-out gains (computed by :func:`ds2_hf.curation.joint.select_joint`).

    Parameters
    ----------
    y : ndarray (N,) int, ``-1`` = unrated
    nbr_ids : ndarray (N, k)
    heldout_gain, latent_gain : float
        Nats per rated row (see the module docstring).
    per_row_gain : ndarray (N,), optional
        Per-row held-out log-likelihood ratio against the marginal, for the per-class breakdown.
    """
    K = num_classes
    rated = y >= 0
    r = np.bincount(y[rated], minlength=K) / max(rated.sum(), 1)
    H = float(-(r[r > 0] * np.log(r[r > 0])).sum())
    agree, chance = agreement_stats(y, nbr_ids, K)
    lift = (agree - chance) / (1 - chance) if chance < 1 else 0.0
    per_class = []
    for c in range(K):
        m = rated & (y == c)
        nn = m & (y[nbr_ids[:, 0]] >= 0)
        entry = {"rating": c, "n": int(m.sum()),
                 "agreement": round(float((y[nbr_ids[nn, 0]] == c).mean()), 4) if nn.any() else None}
        if per_row_gain is not None and m.any():
            entry["heldout_gain"] = round(float(np.nanmean(per_row_gain[m])), 5)
        per_class.append(entry)
    gate = gate_from_gains(latent_gain, H, scale)
    explained = heldout_gain / H if H > 0 else 0.0
    return Clusterability(
        heldout_gain=float(heldout_gain), latent_gain=float(latent_gain), rating_entropy=H,
        explained=float(explained), agreement=agree, agreement_random=chance, agreement_lift=float(lift),
        gate=gate, verdict=verdict(gate, heldout_gain, explained), per_class=per_class,
    )
