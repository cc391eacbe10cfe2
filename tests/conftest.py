"""Fixtures shared across test folders."""

from __future__ import annotations

import os

import pytest


@pytest.fixture(scope="session")
def ray_session():
    """One local Ray (2 CPUs, no dashboard) for the whole test session: rating and embedding on Ray Data."""
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")  # no usage reports from tests
    import ray

    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, ignore_reinit_error=True)
    ray.data.DataContext.get_current().enable_progress_bars = False
    yield ray
    ray.shutdown()
