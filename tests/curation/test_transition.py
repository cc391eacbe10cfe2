import numpy as np
import pytest

from ds2_hf.curation.transition import (
    _loss_and_grad,
    analytical_consensus,
    count_triples,
    estimate_transition,
)
from ds2_hf.simulate import DEFAULT_PRIOR, TRANSITION_PRESETS


@pytest.mark.parametrize("squared", [False, True])
def test_gradient_matches_finite_differences(squared):
    K = 4
    rng = np.random.default_rng(1)
    T = rng.dirichlet(np.ones(K), size=K)
    est = analytical_consensus(T, rng.dirichlet(np.ones(K)))
    theta = rng.standard_normal(K * K + K)
    _, grad = _loss_and_grad(theta, est, K, squared)
    eye = np.eye(len(theta))
    num = np.array([(_loss_and_grad(theta + 1e-6 * e, est, K, squared)[0]
                     - _loss_and_grad(theta - 1e-6 * e, est, K, squared)[0]) / 2e-6 for e in eye])
    np.testing.assert_allclose(grad, num, atol=1e-6)


@pytest.mark.parametrize("preset", sorted(TRANSITION_PRESETS))
def test_lbfgs_recovers_T_and_p_from_exact_consensus(preset):
    T = TRANSITION_PRESETS[preset] / TRANSITION_PRESETS[preset].sum(1, keepdims=True)
    est = estimate_transition(analytical_consensus(T, DEFAULT_PRIOR), solver="lbfgs")
    assert np.abs(est.T - T).max() < 1e-3
    assert np.abs(est.p - DEFAULT_PRIOR).max() < 1e-3


def test_adam_reference_solver_gets_close():
    T = TRANSITION_PRESETS["gpt-like"]
    est = estimate_transition(analytical_consensus(T, DEFAULT_PRIOR), solver="adam")
    assert est.steps == 1500
    assert np.abs(est.T - T).mean() < 0.01


def test_count_triples_frequencies():
    y0 = np.array([0, 0, 1, 1])
    y1 = np.array([0, 1, 1, 1])
    y2 = np.array([1, 1, 1, 0])
    c = count_triples(y0, y1, y2, 2)
    assert c.c3[0, 0, 1] == 0.25 and c.c3[1, 1, 1] == 0.25 and c.c3.sum() == pytest.approx(1)
    np.testing.assert_allclose(c.c1, [0.5, 0.5])
    np.testing.assert_allclose(c.c2, [[0.25, 0.25], [0.0, 0.5]])


def test_unknown_solver():
    with pytest.raises(ValueError, match="solver"):
        estimate_transition(analytical_consensus(np.eye(2), np.array([0.5, 0.5])), solver="sgd")
