"""Fixtures of the evaluation tests: the bundled benchmark items and a tiny random-weight Llama."""

from __future__ import annotations

from pathlib import Path

import pytest
from eval_helpers import FIXTURES, WORDS


@pytest.fixture(scope="session")
def eval_data() -> Path:
    return FIXTURES


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory) -> Path:
    torch = pytest.importorskip("torch")
    torch.set_num_threads(1)
    from ds2_hf.training import build_tiny_model

    return build_tiny_model(tmp_path_factory.mktemp("tiny-eval") / "model", [" ".join(WORDS)])
