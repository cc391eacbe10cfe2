"""Smoke test of ``scripts/bench/bayes_rate.py`` on a small public-generator draw (needs ``../shared/bench``)."""

import json
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[2] / "scripts" / "bench"


@pytest.fixture()
def bayes_rate(monkeypatch):
    monkeypatch.syspath_prepend(str(BENCH))
    import bayes_rate

    if not bayes_rate.PUBLIC_SYNTH.exists():
        pytest.skip("the public generator ../shared/bench/synth.py is not beside the project")
    yield bayes_rate
    sys.modules.pop("bayes_rate", None)


def test_bayes_rate_bounds_the_curation(bayes_rate, tmp_path):
    out = tmp_path / "bayes.json"
    bayes_rate.main(["--n", "6000", "--presets", "gpt-like", "--out", str(out)])
    (row,) = json.loads(out.read_text())
    # The replayed geometry identifies almost every row's generating cluster ...
    assert row["bayes_cluster_id"] > 0.9
    # ... so the Bayes rate is far above the raw ratings, and no curation beats it on average.
    assert row["bayes_rate"] > row["acc_rated"] + 0.15
    assert row["acc_curated"] <= row["bayes_rate"] + 0.005
    assert row["acc_curated"] > row["acc_rated"]


def test_replay_must_match_the_draw(bayes_rate):
    synth = bayes_rate.load_generator()
    d = synth.generate(2000, 32, synth.get_T("gpt-like"), synth.P_DEFAULT, seed=3)
    geo = bayes_rate.geometry(synth, 2000, 32, 3)
    assert (geo["true"] == d["true"]).all() and (geo["cluster"] == d["cluster"]).all()
    # A different seed replays a different draw: the check in main() can fail.
    other = bayes_rate.geometry(synth, 2000, 32, 4)
    assert not (other["cluster"] == d["cluster"]).all()
