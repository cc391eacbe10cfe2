"""Smoke test of ``scripts/bench/bench_scale.py`` on small ``ds2_hf.simulate`` draws."""

import json
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[2] / "scripts" / "bench"


@pytest.fixture()
def bench_scale(monkeypatch):
    monkeypatch.syspath_prepend(str(BENCH))
    import bench_scale

    yield bench_scale
    sys.modules.pop("bench_scale", None)


def test_pooled_draws_and_ceiling(bench_scale, tmp_path):
    out = tmp_path / "scale.json"
    bench_scale.main(["--presets", "gpt-like", "--n", "3000", "--draws", "2", "--ceiling", "--synth", "own",
                      "--cache", str(tmp_path), "--out", str(out)])
    (row,) = json.loads(out.read_text())
    assert row["seeds"] == [0, 1] and len(row["alone"]) == len(row["pooled"]) == 2
    # Curation corrects the gpt-like rater (about 0.74 of ratings right) on every draw, alone and pooled.
    assert min(row["alone"] + row["pooled"]) > 0.85
    # Independent draws barely see each other in the pool: the same rows get (nearly) the same accuracy.
    assert abs(row["pooled_minus_alone"]) < 0.01
    for ceiling, acc in zip(row["alone_ceiling"], row["alone"]):
        # The true parameters can only help the same evidence; perfect neighbour ratings beat raw ratings.
        assert ceiling["oracle_parameters"] >= acc - 0.005
        assert 0.85 < ceiling["neighbour_true_majority"] <= 1.0
