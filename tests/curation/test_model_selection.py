"""Model selection: the first stage's candidate, and the (finalist, stage) pair the curation keeps."""

from dataclasses import replace

import numpy as np
import pytest

from ds2_hf.curation.evidence import EdgeWeights
from ds2_hf.curation.model_selection import Candidate, refit_joint, select_joint, select_stage
from ds2_hf.curation.neighbourhood import fit_neighbourhood
from ds2_hf.knn import build_knn_graph
from ds2_hf.simulate import simulate


@pytest.fixture(scope="module")
def llama():
    """Overlapping clusters and the pull-to-3 rater, where the second stage helps (test_neighbourhood.py)."""
    data = simulate(4000, 32, transition="llama-like", seed=0, spread=1.0)
    return data, build_knn_graph(data.embeddings, 40, progress=False)


def _weak_and_strong(data, g, selection_rows=50000):
    """A deliberately weak selection (k=10, a low nearest weight, gamma 0) and the best gamma-2 candidate."""
    y = data.rated
    weak = select_joint(y, g.indices, g.similarities, num_classes=6, ks=(10,), alphas=(0.25,), betas=(10.0,),
                        gammas=(0.0,), selection_rows=selection_rows)
    strong = select_joint(y, g.indices, g.similarities, num_classes=6, ks=(40,), gammas=(2.0,),
                          selection_rows=selection_rows)
    return weak, strong


def _accuracy(state, data):
    return float((state.posterior.argmax(1) == data.true).mean())


def test_runners_up_are_the_best_of_every_other_gamma(llama):
    data, g = llama
    sel = select_joint(data.rated, g.indices, g.similarities, num_classes=6, ks=(10, 20, 40))
    assert [c.weighting.gamma for c in sel.runners_up] == [c for c in (0.0, 2.0) if c != sel.gamma]
    for cand in sel.runners_up:
        of_gamma = [c for c in sel.candidates if c[3] == cand.weighting.gamma]
        assert round(cand.heldout_gain, 5) == max(c[-1] for c in of_gamma)
        assert cand.heldout_gain <= sel.heldout_gain
    one_gamma = select_joint(data.rated, g.indices, g.similarities, num_classes=6, ks=(20,), gammas=(0.0,))
    assert one_gamma.runners_up == ()


def test_a_better_base_for_the_second_stage_is_found_among_the_finalists(llama):
    """The selected first stage is weak on purpose; the runner-up's second stage predicts held-out ratings better,
    is kept, and recovers more of the injected noise than the second stage over the selected candidate."""
    data, g = llama
    y = data.rated
    weak, strong = _weak_and_strong(data, g)
    sel = replace(weak, shared=strong.shared,
                  runners_up=(Candidate(strong.weighting, strong.state, strong.heldout_gain),))
    choice = select_stage(sel, y, g.indices, g.similarities)
    greedy = select_stage(replace(sel, runners_up=()), y, g.indices, g.similarities, prior=True)
    (w1, *_, g1_weak, g2_weak), (w2, *_, g1_strong, g2_strong) = [
        (tuple(f[:4]), *f[4:]) for f in choice.details["finalists"]]
    assert w1 == (10, 0.25, 10.0, 0.0) and w2 == (40, strong.alpha, strong.beta, 2.0)
    assert g2_strong > max(g2_weak, choice.details["heldout_gain_first"])  # the draw is what the test needs
    assert choice.details["used"] and choice.weighting == strong.weighting
    assert choice.details["heldout_gain_second"] == g2_strong
    assert _accuracy(choice.state, data) > _accuracy(greedy.state, data) + 0.1
    assert _accuracy(choice.state, data) > _accuracy(weak.state, data) + 0.1
    # the reported gain: the runner-up's on the selection rows, shifted by what its second stage adds
    assert choice.heldout_gain == pytest.approx(strong.heldout_gain + g2_strong - g1_strong, abs=2e-5)


def test_without_runners_up_the_stage_is_the_selected_candidates_second_stage(llama):
    data, g = llama
    y = data.rated
    sel = select_joint(y, g.indices, g.similarities, num_classes=6, gammas=(0.0,))
    assert sel.runners_up == ()
    choice = select_stage(sel, y, g.indices, g.similarities, prior=True)
    ids = g.indices[:, : sel.k]
    direct = fit_neighbourhood(sel.state, y, ids, EdgeWeights(ids, g.similarities, sel.weighting))
    np.testing.assert_array_equal(choice.state.posterior, direct.state.posterior)
    np.testing.assert_array_equal(choice.heldout, direct.heldout)
    assert choice.weighting == sel.weighting and choice.first_iterations == sel.state.iterations
    off = select_stage(sel, y, g.indices, g.similarities, prior=False)
    assert off.state is sel.state and off.details == {"used": False}


def test_auto_keeps_the_first_stage_when_no_second_stage_beats_it():
    """Strongly overlapping clusters and a mild rater (test_neighbourhood.py): every finalist's second stage
    over-smooths, so the selected first stage is kept, with each finalist's gains reported."""
    data = simulate(4000, 32, transition="gpt-like", seed=0, spread=1.4)
    g = build_knn_graph(data.embeddings, 40, progress=False)
    sel = select_joint(data.rated, g.indices, g.similarities, num_classes=6)
    choice = select_stage(sel, data.rated, g.indices, g.similarities)
    finalists = choice.details["finalists"]
    assert len(finalists) == 1 + len(sel.runners_up) == 2
    assert max(f[-1] for f in finalists) < choice.details["heldout_gain_first"]
    assert not choice.details["used"] and choice.state is sel.state and choice.weighting == sel.weighting


def test_runners_up_sampled_on_a_subset_are_refitted_on_every_row(llama):
    data, g = llama
    y = data.rated
    sel = select_joint(y, g.indices, g.similarities, num_classes=6, selection_rows=1500)
    assert sel.state.posterior.shape == (len(y), 6)
    for cand in sel.runners_up:
        assert cand.state.posterior.shape == (1500, 6)
        state, heldout = refit_joint(y, g.indices, g.similarities, cand, num_classes=6, shared=sel.shared)
        assert state.posterior.shape == (len(y), 6) and heldout.shape == (len(y),)
        assert np.isfinite(heldout[y >= 0]).all()
    choice = select_stage(sel, y, g.indices, g.similarities)
    assert len(choice.details["finalists"]) == 2
    assert choice.state.posterior.shape == (len(y), 6)
