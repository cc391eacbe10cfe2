"""Fixtures shared across test folders."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))  # tests/hub_server.py, importable from every folder


@pytest.fixture(scope="session")
def ray_session():
    """One local Ray (2 CPUs, no dashboard) for the whole test session: rating and embedding on Ray Data."""
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")  # no usage reports from tests
    import ray

    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, ignore_reinit_error=True)
    ray.data.DataContext.get_current().enable_progress_bars = False
    yield ray
    ray.shutdown()


@pytest.fixture
def stub(monkeypatch):
    """A loopback Hub (tests/hub_server.py) that the real huggingface_hub client talks to; no token set."""
    import huggingface_hub.constants as hf_constants
    from hub_server import DEFAULT_TOKEN, HubStub

    # a loopback server is no network, but the offline flag (read at import) would block it too
    monkeypatch.setattr(hf_constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(hf_constants, "HF_HUB_DISABLE_XET", True)
    monkeypatch.delenv("HF_TOKEN", raising=False)
    monkeypatch.delenv("HUGGING_FACE_HUB_TOKEN", raising=False)
    monkeypatch.setattr(hf_constants, "HF_TOKEN_PATH", "/nonexistent/ds2-test/token")
    with HubStub(tokens={DEFAULT_TOKEN: "write", "hf_stub_read_only_token": "read"}) as server:
        yield server
