"""The curation guard: can k-NN consensus be trusted on the data at hand? Measured without ground truth.

k-NN curation rests on one assumption: samples close in embedding space share their true quality. When the
embedding does not see what the rater rates (sentiment under a topic-level embedding; the quality of one answer
among several answers to the same prompt), neighbours share something else (a topic, a prompt, its difficulty),
and correcting ratings towards them makes the ratings worse. From embeddings and one rating per row the two
cases can fit the same latent-class model, so the guard runs every check the available information allows and
trusts curation only as far as the weakest check does. Each :class:`Check` gives a trust factor in [0, 1]; the
*gate* is their minimum and scales every correction (the back-off, :func:`ds2_hf.curation.core.curate_scores`):

``neighbours``
    Do neighbours predict a sample's rating, and does the latent-true-score model predict held-out ratings
    better than a "ratings are the truth" model on the same neighbours? ``heldout_gain`` is the mean held-out
    log-likelihood ratio against the rating marginal (nats per rated row), ``latent_gain`` the latent model's
    advantage; trust ``clip(latent_gain / (GATE_SCALE * H), 0, 1)`` with ``H`` the rating entropy.
``scale``
    Do the latent scores line up with the rating scale? A rater is informative when each true score is rated as
    itself more often than as any other score (a diagonally dominant ``T``; the identifiability condition of
    HOC-style estimation). When the fitted ``T`` has a true score that is mostly rated as another, the latent
    classes are not the rated quality but whatever the neighbours share: trust 0.
``groups`` (given a prompt / group column)
    Other responses to a row's prompt are never used as its evidence (:mod:`ds2_hf.curation.structure`). The
    check reports how much of the neighbourhood they took and how well the prompt alone predicts a rating.
``audit`` (given a column of trusted ratings on some rows)
    On the audited rows, do the proposed corrections agree with the audit more often than the raw ratings?
    Trust 0 when they agree less.
``raters`` (given several rating columns)
    Several raters identify each row's true score without neighbours. If neighbours share that quality, the
    neighbourhood prior (which never sees the row's own ratings) predicts on which rows the raters agree: the
    row-level correlation of observed agreement with what the neighbourhood adds to the implied agreement. Full
    trust from ``RATERS_CORRELATION`` (0.1); on simulated clusters rated by three raters (3k and 20k rows, the
    expensive rater on all or 20% of them) it is 0.15-0.18, with the rows' ratings shuffled -0.01-0.03.
    Withholding there means falling back to the raters alone (:mod:`ds2_hf.curation.fused`), not to the raw
    ratings.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np

#: Fraction of the rating entropy the latent model must explain beyond the raw ratings for full trust.
GATE_SCALE = 0.02
#: Score classes with a smaller estimated prior are not held to the scale check (too few rows to estimate).
SCALE_MIN_SHARE = 0.02
#: Row-level correlation of observed and k-NN-implied inter-rater agreement for full trust (the raters check).
RATERS_CORRELATION = 0.1


@dataclass
class Check:
    """One test of the guard.

    Attributes
    ----------
    name : str
        ``"neighbours"``, ``"scale"``, ``"groups"`` or ``"audit"``.
    gate : float
        Trust this check allows, in [0, 1] (1 = no objection).
    passed : bool
        ``gate >= 1``.
    summary : str
        One plain sentence: what was measured and what it means.
    values : dict
        The numbers behind it (JSON-ready).
    """

    name: str
    gate: float
    summary: str
    values: dict = field(default_factory=dict)

    @property
    def passed(self) -> bool:
        return self.gate >= 0.999

    def to_dict(self) -> dict:
        return {"name": self.name, "gate": round(float(self.gate), 5), "passed": self.passed,
                "summary": self.summary, "values": self.values}


@dataclass
class Clusterability:
    """The guard's diagnostic (see the module docstring). JSON-ready via :meth:`to_dict`.

    Attributes
    ----------
    heldout_gain, latent_gain : float
        Nats per rated row (the ``neighbours`` check).
    rating_entropy : float
        Entropy of the rating marginal, nats.
    explained : float
        ``heldout_gain / rating_entropy``.
    agreement, agreement_random, agreement_lift : float
        Rate at which a row and its nearest rated neighbour share a rating, the chance rate, and the lift
        ``(agreement - chance) / (1 - chance)``.
    gate : float
        Trust in [0, 1]: the minimum over ``checks``.
    verdict : str
        Plain-language verdict for reports, cards, the CLI and the Space.
    advice : str
        What information would let curation act (empty when it acted in full).
    checks : list of Check
    per_class : list of dict
        Per rating value: rows, nearest-neighbour agreement and held-out gain.
    """

    heldout_gain: float
    latent_gain: float
    rating_entropy: float
    explained: float
    agreement: float
    agreement_random: float
    agreement_lift: float
    gate: float
    verdict: str
    advice: str = ""
    checks: list = field(default_factory=list)
    per_class: list = field(default_factory=list)

    @property
    def status(self) -> str:
        """``"applied"``, ``"shrunk"`` or ``"withheld"``."""
        return "applied" if self.gate >= 0.999 else "shrunk" if self.gate > 0 else "withheld"

    def check(self, name: str) -> Check | None:
        return next((c for c in self.checks if c.name == name), None)

    def to_dict(self) -> dict:
        out = {k: (round(v, 5) if isinstance(v, float) else v) for k, v in asdict(self).items() if k != "checks"}
        out["status"] = self.status
        out["checks"] = [c.to_dict() for c in self.checks]
        return out


def gate_from_gains(latent_gain: float, rating_entropy: float, scale: float = GATE_SCALE) -> float:
    """Map the latent model's held-out advantage to a trust factor in [0, 1]."""
    if rating_entropy <= 0:
        return 0.0
    return float(np.clip(latent_gain / (scale * rating_entropy), 0.0, 1.0))


def check_neighbours(heldout_gain: float, latent_gain: float, rating_entropy: float,
                     scale: float = GATE_SCALE) -> Check:
    """The ``neighbours`` check: held-out gains against the rating entropy."""
    gate = gate_from_gains(latent_gain, rating_entropy, scale)
    pct = f"{100 * heldout_gain / rating_entropy:.1f}%" if rating_entropy > 0 else "0%"
    if gate >= 0.999:
        text = (f"neighbours predict a sample's rating ({heldout_gain:.3f} nats per sample, {pct} of the rating "
                "entropy) and agree beyond what the raw ratings explain")
    elif gate > 0:
        text = (f"neighbours carry some information about ratings ({heldout_gain:.3f} nats per sample, {pct} of "
                "the rating entropy) but little beyond the raw ratings")
    else:
        text = (f"neighbours explain nothing about ratings beyond the raw ratings themselves ({heldout_gain:.3f} "
                f"nats per sample, {pct} of the rating entropy): the embedding does not appear to see what the "
                "rater rates")
    return Check("neighbours", gate, text, {"heldout_gain": round(float(heldout_gain), 5),
                                            "latent_gain": round(float(latent_gain), 5)})


def check_scale(T: np.ndarray, prior: np.ndarray, *, min_share: float = SCALE_MIN_SHARE) -> Check:
    """The ``scale`` check: is every (sufficiently common) true score rated as itself more often than as any other?

    Parameters
    ----------
    T : ndarray (K, K)
        Estimated ``T[true, rated]``, rows sum to 1.
    prior : ndarray (K,)
        Estimated true-score prior; classes below ``min_share`` are not checked.

    Examples
    --------
    >>> import numpy as np
    >>> check_scale(np.array([[0.8, 0.2], [0.3, 0.7]]), np.array([0.5, 0.5])).passed
    True
    >>> check_scale(np.array([[0.8, 0.2], [0.6, 0.4]]), np.array([0.5, 0.5])).summary.split(":")[0]
    'the latent scores do not line up with the rating scale'
    """
    T = np.asarray(T, dtype=np.float64)
    K = len(T)
    off = np.where(np.eye(K, dtype=bool), -np.inf, T)
    rival = off.argmax(axis=1)
    margin = np.diag(T) - T[np.arange(K), rival]
    considered = np.flatnonzero(np.asarray(prior) >= min_share)
    failing = [int(z) for z in considered if margin[z] < 0]
    values = {"margins": np.round(margin, 4).tolist(), "failing": failing}
    if not failing:
        worst = float(margin[considered].min()) if considered.size else float("nan")
        return Check("scale", 1.0, "every true score is rated as itself more often than as any other score "
                     f"(smallest margin {worst:.2f})", values)
    z = min(failing, key=lambda c: margin[c])
    r = int(rival[z])
    text = (f"the latent scores do not line up with the rating scale: the fitted model says a sample whose true "
            f"score is {z} is rated {r} more often ({100 * T[z, r]:.0f}%) than {z} ({100 * T[z, z]:.0f}%)"
            + (f", and likewise for score(s) {[c for c in failing if c != z]}" if len(failing) > 1 else "")
            + ". What neighbours share here is not the rated quality (a topic, a prompt, its difficulty)")
    return Check("scale", 0.0, text, values)


def check_groups(structure, prompt_gain: float | None) -> Check | None:
    """The ``groups`` check: report what the prompt groups removed from the evidence (never withholds by itself)."""
    if structure is None or structure.groups is None:
        return None
    share = structure.group_share or 0.0
    text = (f"{structure.n_grouped_rows} rows answer {structure.n_groups} prompts with several responses; "
            f"responses to a row's own prompt ({100 * share:.0f}% of its 10 nearest neighbours) were not used as "
            "evidence, since they share the prompt rather than the answer's quality")
    if prompt_gain is not None:
        text += (f"; the prompt alone predicts a rating {'better' if prompt_gain > 0 else 'no better'} than the "
                 f"rating marginal ({prompt_gain:+.3f} nats per sample)")
    return Check("groups", 1.0, text, {**structure.to_dict(),
                                       "prompt_gain": None if prompt_gain is None else round(prompt_gain, 5)})


def check_audit(raw: np.ndarray, proposed: np.ndarray, audit: np.ndarray | None) -> Check | None:
    """The ``audit`` check: on audited rows where curation would change the rating, who agrees with the audit?

    ``raw``, ``proposed`` and ``audit`` are (N,) int with ``-1`` for missing; trust 0 when the proposed ratings
    agree with the audit on fewer changed rows than the raw ratings do.
    """
    if audit is None:
        return None
    rows = (audit >= 0) & (raw >= 0)
    changed = rows & (proposed != raw)
    wins, losses = int((changed & (proposed == audit)).sum()), int((changed & (raw == audit)).sum())
    values = {"n_audited": int(rows.sum()), "n_changed": int(changed.sum()), "wins": wins, "losses": losses,
              "raw_agreement": round(float((raw[rows] == audit[rows]).mean()), 5) if rows.any() else None,
              "curated_agreement": round(float((proposed[rows] == audit[rows]).mean()), 5) if rows.any() else None}
    if not changed.any():
        return Check("audit", 1.0, f"curation would change none of the {int(rows.sum())} audited rows", values)
    if losses > wins:
        return Check("audit", 0.0, f"on the {int(rows.sum())} audited rows, the raw rating matches the audit in "
                     f"{losses} of the {int(changed.sum())} rows curation would change and the curated rating in "
                     f"only {wins}: the corrections go the wrong way", values)
    return Check("audit", 1.0, f"on the audited rows curation would change, the curated rating matches the audit "
                 f"in {wins} and the raw rating in {losses}", values)


def check_raters(observed: np.ndarray, implied: np.ndarray, baseline: np.ndarray | None = None, *,
                 scale: float = RATERS_CORRELATION) -> Check:
    """The ``raters`` check: does the k-NN prior predict where several raters agree (row-level correlation)?

    ``observed`` and ``implied`` are (N,) per-row agreement rates (:func:`ds2_hf.curation.raters.rater_agreement`,
    nan where fewer than two raters rated). ``baseline`` is the agreement the raters alone imply (the global
    prior): it differs between rows only by which raters rated them, and is subtracted, so the correlation
    measures what the neighbourhood adds. Trust ``clip(corr / scale, 0, 1)``.
    """
    if baseline is not None:
        implied = implied - baseline
    ok = ~(np.isnan(observed) | np.isnan(implied))
    if ok.sum() < 3 or np.std(observed[ok]) == 0 or np.std(implied[ok]) == 0:
        return Check("raters", 1.0, "too few rows rated by two raters to compare their agreement with the "
                     "neighbours", {"rows": int(ok.sum())})
    corr = float(np.corrcoef(observed[ok], implied[ok])[0, 1])
    gate = float(np.clip(corr / scale, 0.0, 1.0))
    values = {"rows": int(ok.sum()), "correlation": round(corr, 5), "observed": round(float(observed[ok].mean()), 5)}
    if gate >= 0.999:
        text = (f"the neighbours predict on which rows the raters agree (correlation {corr:.2f} over "
                f"{int(ok.sum()):,} rows rated by two raters or more): they share the quality the raters rate")
    else:
        text = (f"the neighbours hardly predict on which rows the raters agree (correlation {corr:.2f}): what they "
                "share is not the quality the raters rate, so the raters' own agreement decides")
    return Check("raters", gate, text, values)


def verdict(checks: list[Check], gate: float, *, fallback: str = "the raw ratings") -> tuple[str, str]:
    """Plain-language verdict and advice for reports and dataset cards.

    ``fallback`` names what corrections shrink towards: the raw ratings (one rater) or the raters alone.
    """
    by_name = {c.name: c for c in checks}
    notes = [c.summary for c in checks if c.name == "groups"]
    tail = (" " + notes[0][0].upper() + notes[0][1:] + ".") if notes else ""
    if gate >= 0.999:
        passed = [c.summary for c in checks if c.name != "groups"]
        return ("Strong: " + "; ".join(passed) + ". The neighbours share the rated quality, so rating noise is "
                f"detectable. Curation was applied in full.{tail}", "")
    blocking = min(checks, key=lambda c: c.gate)
    advice = _advice(by_name)
    if gate > 0:
        return (f"Partial: {blocking.summary}. Corrections were shrunk towards {fallback} (trust factor "
                f"{gate:.2f}): only changes the model is near-certain of were made.{tail}", advice)
    kept = "the ratings kept as rated" if fallback == "the raw ratings" else f"the score taken from {fallback}"
    return (f"Withheld: {blocking.summary}. The k-NN corrections were withheld and {kept}.{tail}", advice)


def _advice(by_name: dict) -> str:
    tips = []
    if "groups" not in by_name:
        tips.append("if several rows answer the same prompt, name the prompt column (group_column / "
                    "--group-column) so those answers are not taken as evidence for each other")
    if "audit" not in by_name and "raters" not in by_name:
        tips.append("trusted ratings on a sample of rows (audit_column / --audit-column) or a second rater "
                    "(rating_columns / --rating-column twice) let the guard test the corrections directly")
    tips.append("an embedding that sees the rated quality (of the response, not only its topic) gives the "
                "neighbours something to agree on")
    return "To let curation act: " + "; ".join(tips) + "."


def agreement_stats(y: np.ndarray, nbr_ids: np.ndarray, num_classes: int) -> tuple[float, float]:
    """Rate at which a rated sample and its nearest rated neighbour share a rating, and the chance rate."""
    rated = y >= 0
    first = nbr_ids[:, 0]
    both = rated & (first >= 0) & (y[np.maximum(first, 0)] >= 0)
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
    transition: np.ndarray | None = None,
    prior: np.ndarray | None = None,
    extra: tuple = (),
) -> Clusterability:
    """Run the guard's checks and assemble the diagnostic.

    Parameters
    ----------
    y : ndarray (N,) int, ``-1`` = unrated
    nbr_ids : ndarray (N, k)
        The evidence graph's neighbour ids (``-1`` padding allowed).
    heldout_gain, latent_gain : float
        Nats per rated row (see the module docstring).
    per_row_gain : ndarray (N,), optional
        Per-row held-out log-likelihood ratio against the marginal, for the per-class breakdown.
    transition, prior : ndarray (K, K) and (K,), optional
        The fitted ``T`` and true-score prior, for the ``scale`` check (skipped without them).
    extra : tuple of Check or None
        Further checks (``groups``, ``audit``); ``None`` entries are ignored.
    """
    K = num_classes
    rated = y >= 0
    r = np.bincount(y[rated], minlength=K) / max(rated.sum(), 1)
    H = float(-(r[r > 0] * np.log(r[r > 0])).sum())
    agree, chance = agreement_stats(y, nbr_ids, K)
    lift = (agree - chance) / (1 - chance) if chance < 1 else 0.0
    first = nbr_ids[:, 0]
    per_class = []
    for c in range(K):
        m = rated & (y == c)
        nn = m & (first >= 0) & (y[np.maximum(first, 0)] >= 0)
        entry = {"rating": c, "n": int(m.sum()),
                 "agreement": round(float((y[first[nn]] == c).mean()), 4) if nn.any() else None}
        if per_row_gain is not None and m.any():
            entry["heldout_gain"] = round(float(np.nanmean(per_row_gain[m])), 5)
        per_class.append(entry)
    checks = [check_neighbours(heldout_gain, latent_gain, H, scale)]
    if transition is not None and prior is not None:
        checks.append(check_scale(transition, prior))
    checks += [c for c in extra if c is not None]
    gate = float(min(c.gate for c in checks))
    text, advice = verdict(checks, gate)
    return Clusterability(
        heldout_gain=float(heldout_gain), latent_gain=float(latent_gain), rating_entropy=H,
        explained=float(heldout_gain / H if H > 0 else 0.0), agreement=agree, agreement_random=chance,
        agreement_lift=float(lift), gate=gate, verdict=text, advice=advice, checks=checks, per_class=per_class,
    )
