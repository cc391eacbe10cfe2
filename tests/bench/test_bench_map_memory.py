"""Smoke test of ``scripts/bench/bench_map_memory.py``: both faces run in their own processes and agree."""

import json
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[2] / "scripts" / "bench"


@pytest.fixture()
def bench_map_memory(monkeypatch):
    monkeypatch.syspath_prepend(str(BENCH))
    import bench_map_memory

    yield bench_map_memory
    sys.modules.pop("bench_map_memory", None)


@pytest.mark.slow
def test_both_faces_give_the_same_ratings(bench_map_memory, capsys):
    assert bench_map_memory.main(["--n", "3000", "--dim", "16"]) == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    faces = {line["face"]: line for line in lines if "face" in line}
    assert set(faces) == {"curator", "map"} and all(f["n"] == 3000 and f["dim"] == 16 for f in faces.values())
    assert all(f["peak_rss_gb"] >= f["rss_after_loading_gb"] > 0 for f in faces.values())
    assert lines[-1]["same_curated_ratings"] is True and lines[-1]["map_over_curator_peak_rss"] > 0
