"""The card of a subset curated from several raters: a per-rater table, the trust line, the audit and heatmaps."""

from __future__ import annotations

import numpy as np
from huggingface_hub import DatasetCard

from ds2_hf import plots, publish
from ds2_hf.curation.raters import summarize_raters, trust_line

try:
    from test_publish import K, ds2_select, make_pool
except ImportError:  # tests/ imported as a package
    from .test_publish import K, ds2_select, make_pool


def _raters_report(n: int) -> dict:
    rng = np.random.default_rng(0)
    T = np.stack([np.full((K, K), (1 - a) / (K - 1)) + (a - (1 - a) / (K - 1)) * np.eye(K) for a in (0.8, 0.5)])
    Y = rng.integers(0, K, (n, 2))
    summary = summarize_raters(T, np.full(K, 1 / K), Y, Y[:, 0], names=["gpt|mini", "llama"])
    audit = {"n_audited": 40, "changed_rows": 0.031,
             "raters": [{"accuracy_shift": -0.012}, {"accuracy_shift": 0.034}]}
    return {"names": ["gpt|mini", "llama"], "summary": summary, "trust": trust_line(summary), "audit": audit,
            "embeddings": True, "gate": 1.0, "knn_gain": 0.4}


def test_card_shows_each_rater(tmp_path):
    pool, report = make_pool()
    report["curation"]["raters"] = _raters_report(len(pool))
    folder = publish.save_subset(ds2_select(pool, 50), tmp_path / "subset", report=report, pool=pool)
    body = DatasetCard.load(folder / "README.md").text
    assert "## Raters" in body and "(figures/rater_matrices.png)" in body
    assert "| gpt\\|mini | 200 | 0.800 | +0.000 |" in body
    assert "Trust gpt|mini most" in body
    assert "40 rows carry trusted audit scores; they moved the estimated accuracies by gpt|mini -0.012, llama +0.034" \
        in body
    assert (folder / "figures" / "rater_matrices.png").read_bytes()[:4] == b"\x89PNG"


def test_card_without_raters_has_no_raters_section(tmp_path):
    pool, report = make_pool()
    folder = publish.save_subset(ds2_select(pool, 50), tmp_path / "subset", report=report, pool=pool)
    assert "## Raters" not in (folder / "README.md").read_text()
    assert not (folder / "figures" / "rater_matrices.png").exists()


def test_rater_matrices_plot_rejects_mismatched_names():
    import pytest

    with pytest.raises(ValueError, match=r"\(R, K, K\) with R names"):
        plots.plot_rater_matrices(np.ones((2, 3, 3)) / 3, ["only one"])
