"""Figures: pure functions of NumPy arrays, rendered headless to deterministic PNG bytes."""

from __future__ import annotations

import numpy as np
import pytest

from ds2_hf import plots

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _texts(fig) -> list[str]:
    return [t.get_text() for ax in fig.axes for t in ax.texts]


def test_transition_matrix_heatmap_annotates_every_cell():
    T = np.full((4, 4), 0.1)
    np.fill_diagonal(T, 0.7)
    fig = plots.plot_transition_matrix(T)
    texts = _texts(fig)
    assert len(texts) == 16
    assert texts.count("0.70") == 4 and texts.count("0.10") == 12
    ax = fig.axes[0]
    assert ax.get_xlabel() == "rated score" and ax.get_ylabel() == "true score"


@pytest.mark.parametrize("bad", [np.ones((2, 3)), np.ones(3), np.ones((0, 0))])
def test_transition_matrix_rejects_non_square(bad):
    with pytest.raises(ValueError, match="square"):
        plots.plot_transition_matrix(bad)


def test_rating_distributions_plots_shares_per_series():
    fig = plots.plot_rating_distributions({"raw": [10, 30, 60], "curated": [5, 5, 10]})
    ax = fig.axes[0]
    heights = [round(p.get_height(), 6) for p in ax.patches]
    assert heights == [0.1, 0.3, 0.6, 0.25, 0.25, 0.5]
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    assert legend == ["raw (n=100)", "curated (n=20)"]


def test_rating_distributions_rejects_mismatched_lengths():
    with pytest.raises(ValueError, match="same length"):
        plots.plot_rating_distributions({"raw": [1, 2, 3], "curated": [1, 2]})
    with pytest.raises(ValueError, match="at least one"):
        plots.plot_rating_distributions({})


def test_long_tail_histogram_draws_the_cut():
    rng = np.random.default_rng(0)
    pool = rng.random(300)
    fig = plots.plot_long_tail(np.append(pool, np.nan), selected_scores=pool[pool > 0.6], cut=0.6,
                               cut_label="cut 0.6")
    ax = fig.axes[0]
    assert [line.get_xdata()[0] for line in ax.lines] == [0.6]
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    assert "cut 0.6" in legend and "pool (n=300)" in legend and any(s.startswith("selected") for s in legend)
    with pytest.raises(ValueError, match="finite"):
        plots.plot_long_tail([np.nan, np.nan])


def test_composition_groups_the_tail_as_other():
    selected = {f"c{i}": 20 - i for i in range(15)}
    fig = plots.plot_composition({"c0": 100, "c1": 50}, selected, top=5)
    labels = [t.get_text() for t in fig.axes[0].get_yticklabels()]
    assert labels == ["c0", "c1", "c2", "c3", "c4", "other"]
    with pytest.raises(ValueError, match="selected subset"):
        plots.plot_composition({"a": 1}, {})


def test_png_bytes_are_deterministic(tmp_path):
    T = np.eye(3) * 0.9 + 0.1 / 3
    first = plots.png_bytes(plots.plot_transition_matrix(T))
    second = plots.png_bytes(plots.plot_transition_matrix(T))
    assert first.startswith(PNG_MAGIC)
    assert first == second  # no timestamp: a re-saved subset is byte-identical, so a re-push is a no-op
    path = plots.save_png(plots.plot_transition_matrix(T), tmp_path / "sub" / "T.png")
    assert path.read_bytes() == first
