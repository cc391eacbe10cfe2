"""Tests of the shipped demo dataset (ds2_hf.demo) and of the rule that built its ratings."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest

from ds2_hf.demo import NUM_CLASSES, NUM_ROWS, demo_card, demo_path, load_demo

REPO = Path(__file__).resolve().parents[1]


def _build_script():
    spec = importlib.util.spec_from_file_location("build_demo_data", REPO / "scripts" / "build_demo_data.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def demo():
    return load_demo()


def test_demo_loads_offline_with_the_documented_schema(demo):
    import datasets

    assert demo.num_rows == NUM_ROWS == 6440
    assert demo.features == datasets.Features(
        {
            "instruction": datasets.Value("string"),
            "output": datasets.Value("string"),
            "generator": datasets.Value("string"),
            "dataset": datasets.Value("string"),
            "pref_weighted_gpt4_turbo": datasets.Value("float64"),
            "pref_alpaca_eval_gpt4": datasets.Value("float64"),
            "rating": datasets.Value("int8"),
        }
    )
    assert len(set(demo["instruction"])) == 805
    assert sorted(set(demo["generator"])) == [
        "NullModel", "alpaca-7b", "claude-2", "falcon-7b-instruct", "gpt-3.5-turbo-0301", "gpt4_1106_preview",
        "pythia-12b-mix-sft", "vicuna-13b",
    ]
    assert demo_path().stat().st_size < 5_000_000


def test_ratings_are_null_exactly_for_the_baseline_and_every_class_is_populated(demo):
    gen = np.asarray(demo["generator"])
    rating = demo["rating"]
    null = np.asarray([r is None for r in rating])
    np.testing.assert_array_equal(null, gen == "gpt4_1106_preview")
    counts = np.bincount([r for r in rating if r is not None], minlength=NUM_CLASSES)
    assert len(counts) == NUM_CLASSES and counts.min() >= 100


def test_rating_is_the_documented_monotone_function_of_the_judge_preference(demo):
    build = _build_script()
    pref = np.asarray(demo["pref_weighted_gpt4_turbo"])
    rating = np.asarray([-1 if r is None else r for r in demo["rating"]])
    rated = rating >= 0
    np.testing.assert_array_equal(rating[rated], build.preference_to_rating(pref[rated]))
    order = np.argsort(pref[rated], kind="stable")
    assert np.all(np.diff(rating[rated][order]) >= 0)  # monotone non-decreasing in the preference


def test_preference_to_rating_edges():
    build = _build_script()
    odds = np.array([0.0, 0.99e-4, 1e-4, 1.01e-3, 0.0101, 0.101, 0.99, 1.0, 50.0])
    p = odds / (1 + odds)
    np.testing.assert_array_equal(build.preference_to_rating(1 + p), [0, 0, 1, 2, 3, 4, 4, 5, 5])
    np.testing.assert_array_equal(build.preference_to_rating(np.array([1.0, 1.5, 2.0])), [0, 5, 5])


def test_filters_and_seeded_sample():
    rated = load_demo(rated_only=True, keep_in_memory=True)
    assert rated.num_rows == 5635 and None not in rated["rating"]
    two = load_demo(generators=["claude-2", "NullModel"], keep_in_memory=True)
    assert set(two["generator"]) == {"claude-2", "NullModel"} and two.num_rows == 2 * 805
    a, b = load_demo(num_rows=50, seed=3), load_demo(num_rows=50, seed=3)
    assert a["output"] == b["output"] and a.num_rows == 50
    assert load_demo(num_rows=50, seed=4)["output"] != a["output"]
    with pytest.raises(ValueError, match="not in the demo data"):
        load_demo(generators=["gpt-5"])
    with pytest.raises(ValueError, match="num_rows=0"):
        load_demo(num_rows=0)


def test_card_and_licence_ship_with_the_data():
    card = demo_card()
    for needle in ("tatsu-lab/alpaca_eval", "Apache-2.0", "cd543a149df89434d8a54582c0151c0b945c3d20", "NullModel",
                   "| 5 | >= 1 |"):
        assert needle in card
    licence = (demo_path().parent / "LICENSE").read_text(encoding="utf-8")
    assert "Apache License" in licence and "Version 2.0" in licence


@pytest.mark.slow
def test_default_pipeline_on_the_real_judge_ratings_keeps_them_and_drops_the_judge_gaming_copies(demo):
    """Real ratings: neighbours share the prompt, not the answer's quality; the guard must see it."""
    from scipy.stats import spearmanr

    import ds2_hf

    curator = ds2_hf.Curator(progress=False)
    pool = curator.fit_transform(ds2_hf.embed(demo, backend="wordllama"))
    report = curator.report_
    rated = np.array([r is not None for r in demo["rating"]])
    raw = np.array([-1 if r is None else r for r in demo["rating"]])
    cur = np.array([-1 if r is None else r for r in pool["curated_rating"]])
    assert (cur[rated] == raw[rated]).all()  # nothing changed: curation would destroy the ratings' signal
    clus = report["clusterability"]
    assert clus["status"] == "withheld" and not next(c for c in clus["checks"] if c["name"] == "scale")["passed"]
    structure = report["structure"]
    assert structure["group_source"] == "prompt text (auto)" and structure["n_groups"] == 805
    assert structure["duplicates"]["largest"][0][0] >= 805  # NullModel's one answer, 805 times
    ref = np.array([np.nan if v is None else v for v in demo["pref_alpaca_eval_gpt4"]])
    ok = rated & ~np.isnan(ref)
    assert spearmanr(cur[ok], ref[ok])[0] >= spearmanr(raw[ok], ref[ok])[0] - 1e-9
    gen = np.array(demo["generator"])
    for k in (214, 500):
        subset = ds2_hf.select(pool, k)
        assert np.mean(np.array(subset["generator"]) == "NullModel") <= 0.02
        assert len(set(subset["output"])) == len(subset)  # no answer twice
    assert gen.size == len(pool)
