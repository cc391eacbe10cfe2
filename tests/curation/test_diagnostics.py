"""The curation guard (ds2_hf.curation.diagnostics): its checks, the gate and the verdict."""

import numpy as np
import pytest

from ds2_hf.curation import curate_scores
from ds2_hf.curation.diagnostics import Check, check_audit, check_neighbours, check_scale, verdict
from ds2_hf.simulate import DEFAULT_PRIOR, TRANSITION_PRESETS, inject_noise


@pytest.mark.parametrize("preset", sorted(TRANSITION_PRESETS))
def test_scale_check_passes_every_informative_rater(preset):
    T = TRANSITION_PRESETS[preset] / TRANSITION_PRESETS[preset].sum(1, keepdims=True)
    c = check_scale(T, DEFAULT_PRIOR)
    assert c.passed and c.values["failing"] == []
    assert min(c.values["margins"]) > 0.05


def test_scale_check_names_a_true_score_that_is_mostly_rated_as_another():
    T = np.full((4, 4), 0.1) + np.eye(4) * 0.6
    T[2] = [0.6, 0.1, 0.2, 0.1]  # true 2 is rated 0 most of the time
    c = check_scale(T, np.full(4, 0.25))
    assert not c.passed and c.gate == 0.0 and c.values["failing"] == [2]
    assert "true score is 2 is rated 0 more often (60%) than 2 (20%)" in c.summary


def test_scale_check_ignores_classes_too_rare_to_estimate():
    T = np.eye(3) * 0.8 + 0.1
    T[2] = [0.5, 0.3, 0.2]
    assert check_scale(T, np.array([0.6, 0.39, 0.01])).passed
    assert not check_scale(T, np.array([0.6, 0.3, 0.1])).passed


def test_neighbours_check_ramps_with_the_latent_gain():
    H = 1.5
    assert check_neighbours(0.3, 0.0, H).gate == 0.0
    assert check_neighbours(0.3, 0.5 * 0.02 * H, H).gate == pytest.approx(0.5)
    assert check_neighbours(0.3, 0.1, H).passed


def test_audit_check_counts_wins_and_losses_on_changed_rows():
    raw = np.array([0, 1, 2, 3, 4, 5, 1, 2])
    proposed = np.array([1, 1, 3, 3, 4, 4, 2, 2])
    audit = np.array([1, -1, 3, -1, 4, 5, 1, -1])  # changed & audited: rows 0 (win), 2 (win), 5 (loss), 6 (loss)
    c = check_audit(raw, proposed, audit)
    assert (c.values["wins"], c.values["losses"], c.values["n_changed"]) == (2, 2, 4) and c.passed
    audit[0] = 0  # now raw wins on row 0 too
    c = check_audit(raw, proposed, audit)
    assert not c.passed and "go the wrong way" in c.summary
    assert check_audit(raw, proposed, None) is None


def test_verdict_says_why_and_what_would_let_curation_act():
    checks = [Check("neighbours", 1.0, "neighbours predict ratings"),
              Check("scale", 0.0, "the latent scores do not line up with the rating scale")]
    text, advice = verdict(checks, 0.0)
    assert text.startswith("Withheld: the latent scores do not line up") and "kept as rated" in text
    assert "--group-column" in advice and "--audit-column" in advice
    text, advice = verdict([Check("neighbours", 1.0, "n"), Check("scale", 1.0, "s")], 1.0)
    assert text.startswith("Strong") and advice == ""


def test_audit_withholds_corrections_that_disagree_with_trusted_ratings(sim_gpt):
    """The same good curation, audited twice: by the truth (kept) and by the raw ratings' errors (withheld)."""
    y, true = sim_gpt.rated, sim_gpt.true
    audit = np.full(len(y), -1)
    rows = np.random.default_rng(0).choice(len(y), 400, replace=False)
    audit[rows] = true[rows]
    good = curate_scores(sim_gpt.embeddings, y, audit=audit, progress=False)
    assert good.clusterability.check("audit").passed and good.clusterability.status == "applied"
    audit[rows] = y[rows]  # an "audit" that repeats the raw ratings: every correction disagrees with it
    bad = curate_scores(sim_gpt.embeddings, y, audit=audit, progress=False)
    assert bad.clusterability.check("audit").gate == 0.0
    assert (bad.curated == y).all() and bad.clusterability.verdict.startswith("Withheld: on the 400 audited rows")


def test_only_an_audit_reveals_a_rater_that_rates_the_topic(rng):
    """Half the ratings follow the topic, not the quality. From one rating per row this is indistinguishable from
    "the topic is the quality" (a consistent latent-class model): the single-rater checks pass and curation pulls
    ratings towards the topic. Trusted ratings on 5% of the rows show the corrections go the wrong way."""
    n, K = 3000, 4
    topic = rng.integers(0, 12, n)
    centres = rng.standard_normal((12, 16))
    x = (centres[topic] + 0.3 * rng.standard_normal((n, 16))).astype(np.float32)
    true = rng.integers(0, K, n)  # quality independent of the topic
    y = inject_noise(np.where(rng.random(n) < 0.5, topic % K, true), 0.9, seed=2)
    blind = curate_scores(x, y, num_classes=K, progress=False)
    assert blind.clusterability.status == "applied" and (blind.curated == true).mean() < (y == true).mean() - 0.1
    audit = np.where(rng.random(n) < 0.05, true, -1)
    res = curate_scores(x, y, num_classes=K, audit=audit, progress=False)
    assert res.clusterability.status == "withheld" and not res.clusterability.check("audit").passed
    assert (res.curated == y).all()
