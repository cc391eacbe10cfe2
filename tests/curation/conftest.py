import numpy as np
import pytest

from ds2_hf.simulate import simulate


@pytest.fixture(scope="session")
def sim_gpt():
    """4,000 clustered points rated by the gpt-like rater (rated accuracy about 0.74)."""
    return simulate(4000, 32, transition="gpt-like", seed=0)


@pytest.fixture(scope="session")
def sim_llama():
    return simulate(4000, 32, transition="llama-like", seed=0)


@pytest.fixture
def rng():
    return np.random.default_rng(0)
