"""Figures for a curated subset: pure functions from NumPy arrays to :class:`matplotlib.figure.Figure`.

Every function builds a figure with the object-oriented API (no ``pyplot``, no global state, no display), so it
is safe in servers, notebooks and threads, and :func:`save_png` renders it with the Agg backend. The PNG bytes
depend only on the inputs (no timestamp in the metadata), so re-saving the same subset gives the same files and
a re-push to the Hub is a no-op.

Labels may be in any script: after DejaVu Sans, matplotlib falls back glyph by glyph to the CJK fonts of
:data:`CJK_FAMILIES` that are installed, including the Noto Sans CJK font shipped by the ``cjk`` extra
(``pip install "ds2-hf[cjk]"``), so Chinese, Japanese and Korean labels do not render as boxes. A label with a
glyph no installed font has is logged once with that install command.

======================================  ====================================================================
function                                figure
======================================  ====================================================================
:func:`plot_transition_matrix`          the K x K score transition matrix T as an annotated heatmap
:func:`plot_rater_matrices`             several raters' transition matrices side by side, one colour scale
:func:`plot_rating_distributions`       rating counts per score: raw vs curated (or any labelled series)
:func:`plot_long_tail`                  histogram of long-tail scores, pool vs selected, with the selection cut
:func:`plot_composition`                share of each source / category in the pool vs the selected subset
======================================  ====================================================================

Examples
--------
>>> import numpy as np
>>> from ds2_hf import plots
>>> png = plots.save_png(plots.plot_transition_matrix(np.eye(3) * 0.8 + 0.2 / 3), "/tmp/T.png")
"""

from __future__ import annotations

import functools
import logging
import os
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

logger = logging.getLogger(__name__)

__all__ = ["plot_transition_matrix", "plot_rater_matrices", "plot_rating_distributions", "plot_long_tail",
           "plot_composition", "save_png", "png_bytes", "font_families"]

#: Fonts tried, in order, for glyphs DejaVu Sans lacks (those installed are used; the first covers all of CJK).
CJK_FAMILIES = (
    "Noto Sans CJK TC", "Noto Sans CJK JP", "Noto Sans CJK SC", "Noto Sans CJK KR", "Source Han Sans",
    "Source Han Sans SC", "IPAexGothic", "IPAGothic", "WenQuanYi Zen Hei", "WenQuanYi Micro Hei",
    "Microsoft YaHei", "PingFang SC", "Hiragino Sans", "Malgun Gothic", "Apple SD Gothic Neo",
)
#: Python packages that ship a CJK font file (the ``cjk`` extra).
FONT_PACKAGES = ("cvttf_NotoSansCJK_Regular",)
CJK_INSTALL = 'pip install "ds2-hf[cjk]"'

_BLUE = "#4C72B0"
_ORANGE = "#DD8452"
_GREY = "#8C8C8C"


@functools.lru_cache(maxsize=1)
def font_families() -> tuple[str, ...]:
    """DejaVu Sans, then every installed font of :data:`CJK_FAMILIES` (the fonts of :data:`FONT_PACKAGES` are
    registered with matplotlib first).

    Examples
    --------
    >>> font_families()[0]
    'DejaVu Sans'
    """
    import importlib.util

    from matplotlib import font_manager

    for package in FONT_PACKAGES:
        spec = importlib.util.find_spec(package)
        if spec is None or not spec.origin:
            continue
        for path in sorted(Path(spec.origin).parent.iterdir()):
            if path.suffix.lower() in (".otf", ".ttf", ".ttc"):
                font_manager.fontManager.addfont(str(path))
    installed = {font.name for font in font_manager.fontManager.ttflist}
    return ("DejaVu Sans", *(name for name in CJK_FAMILIES if name in installed))


def _fonts(fn):
    """Run a figure function with :func:`font_families` as matplotlib's font list (glyph-by-glyph fallback)."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        from matplotlib import rc_context

        with rc_context({"font.family": list(font_families())}):
            return fn(*args, **kwargs)

    return wrapper


def _figure(width: float, height: float):
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), dpi=100, layout="constrained")


@_fonts
def plot_transition_matrix(
    matrix, *, labels: Sequence[str] | None = None, title: str = "Score transition matrix T"
):
    """Heatmap of a score transition matrix with the probability written in each cell.

    Parameters
    ----------
    matrix : array-like, shape (K, K), float in [0, 1]
        ``T[i, j] = P(rated score = j | true score = i)``: rows are the true (curated) score, columns the rated one;
        each row sums to 1.
    labels : sequence of str, optional
        Names of the K scores; defaults to ``"0" .. "K-1"``.
    title : str
        Figure title.

    Returns
    -------
    matplotlib.figure.Figure

    Raises
    ------
    ValueError
        ``matrix`` is not square.
    """
    T = np.asarray(matrix, dtype=np.float64)
    if T.ndim != 2 or T.shape[0] != T.shape[1] or T.shape[0] == 0:
        raise ValueError(f"transition matrix must be a non-empty square K x K array, got shape {T.shape}")
    k = T.shape[0]
    labels = list(labels) if labels is not None else [str(i) for i in range(k)]
    fig = _figure(1.0 + 0.75 * k, 0.6 + 0.7 * k)
    ax = fig.add_subplot()
    im = _matrix_panel(ax, T, labels, xlabel="rated score", title=title)
    for i in range(k):
        for j in range(k):
            ax.text(j, i, f"{T[i, j]:.2f}", ha="center", va="center", fontsize=8,
                    color="white" if T[i, j] > 0.6 else "black")
    ax.set_ylabel("true score")
    fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04)
    return fig


def _matrix_panel(ax, matrix: np.ndarray, labels: Sequence[str], *, xlabel: str, title: str, small: bool = False):
    """One transition-matrix heatmap on ``ax`` (rows: true score, columns: rated score, colour scale 0-1)."""
    tick, label, head = ({"fontsize": size} if small else {} for size in (7, 8, 9))
    im = ax.imshow(matrix, cmap="Blues", vmin=0.0, vmax=1.0)
    ax.set_xticks(range(len(labels)), labels, **tick)
    ax.set_yticks(range(len(labels)), labels, **tick)
    ax.set_xlabel(xlabel, **label)
    ax.set_title(title, **head)
    return im


@_fonts
def plot_rater_matrices(matrices, names: Sequence[str], *, title: str = "Each rater's transition matrix"):
    """Small heatmaps of several raters' transition matrices, side by side, one colour scale.

    Parameters
    ----------
    matrices : array-like, shape (R, K, K), float in [0, 1]
        ``T_r[i, j] = P(rater r rates j | true score i)``; rows sum to 1.
    names : sequence of R str
        Rater names, used as panel titles.
    title : str
        Figure title.

    Returns
    -------
    matplotlib.figure.Figure

    Raises
    ------
    ValueError
        ``matrices`` is not (R, K, K) or ``names`` does not have R entries.

    Examples
    --------
    >>> import numpy as np
    >>> fig = plot_rater_matrices(np.stack([np.eye(3), np.full((3, 3), 1 / 3)]), ["careful", "random"])
    >>> len(fig.axes)  # two panels and the colour bar
    3
    """
    T = np.asarray(matrices, dtype=np.float64)
    if T.ndim != 3 or T.shape[1] != T.shape[2] or len(names) != T.shape[0]:
        raise ValueError(f"rater matrices must be (R, K, K) with R names; got shape {T.shape} and {len(names)} names")
    r, k = T.shape[:2]
    fig = _figure(0.8 + (0.35 * k + 0.4) * r, 0.9 + 0.35 * k)
    axes = fig.subplots(1, r, squeeze=False)[0]
    im = None
    for ax, matrix, name in zip(axes, T, names):
        im = _matrix_panel(ax, matrix, [str(i) for i in range(k)], xlabel="rated", title=str(name)[:24], small=True)
    axes[0].set_ylabel("true score", fontsize=8)
    fig.suptitle(title, fontsize=10)
    fig.colorbar(im, ax=list(axes), fraction=0.046 / max(r, 1) * 2, pad=0.02)
    return fig


@_fonts
def plot_rating_distributions(
    series: Mapping[str, Sequence[float]],
    *,
    labels: Sequence[str] | None = None,
    title: str = "Rating distribution",
    normalize: bool = True,
):
    """Grouped bars of rating counts per score, one bar colour per series (e.g. raw vs curated).

    Parameters
    ----------
    series : mapping of str to array-like, each shape (K,)
        Counts per score, e.g. ``{"raw": np.bincount(rating, minlength=K), "curated": ...}``. All of length K.
    labels : sequence of str, optional
        Names of the K scores.
    title : str
        Figure title.
    normalize : bool, default True
        Plot shares (each series sums to 1) instead of counts, so series of different sizes compare.

    Returns
    -------
    matplotlib.figure.Figure
    """
    if not series:
        raise ValueError("plot_rating_distributions needs at least one series of counts")
    arrays = {name: np.asarray(counts, dtype=np.float64) for name, counts in series.items()}
    lengths = {a.shape for a in arrays.values()}
    if len(lengths) != 1 or len(next(iter(lengths))) != 1:
        raise ValueError(f"every series must be a 1-D array of the same length K, got shapes {sorted(lengths)}")
    k = next(iter(arrays.values())).shape[0]
    labels = list(labels) if labels is not None else [str(i) for i in range(k)]
    fig = _figure(max(4.5, 0.9 * k + 1.5), 3.2)
    ax = fig.add_subplot()
    width = 0.8 / len(arrays)
    colors = [_GREY, _BLUE, _ORANGE, "#55A868", "#C44E52"]
    x = np.arange(k)
    for idx, (name, counts) in enumerate(arrays.items()):
        total = counts.sum()
        values = counts / total if normalize and total > 0 else counts
        ax.bar(x - 0.4 + width * (idx + 0.5), values, width, label=f"{name} (n={int(total):,})",
               color=colors[idx % len(colors)])
    ax.set_xticks(x, labels)
    ax.set_xlabel("score")
    ax.set_ylabel("share of rows" if normalize else "rows")
    ax.set_title(title)
    ax.legend(frameon=False, fontsize=8)
    ax.spines[["top", "right"]].set_visible(False)
    return fig


@_fonts
def plot_long_tail(
    pool_scores,
    *,
    selected_scores=None,
    cut: float | None = None,
    cut_label: str | None = None,
    bins: int = 40,
    title: str = "Long-tail score",
):
    """Histogram of long-tail (rarity) scores: the pool, the selected rows, and the selection cut.

    Parameters
    ----------
    pool_scores : array-like, shape (N,), float
        Long-tail score of every row considered (higher = rarer). NaNs are dropped.
    selected_scores : array-like, shape (k,), float, optional
        Long-tail scores of the selected rows, drawn on top.
    cut : float, optional
        The score at which selection stopped (drawn as a dashed vertical line).
    cut_label : str, optional
        Legend text for the cut.
    bins : int, default 40
        Histogram bins (shared by both series).
    title : str
        Figure title.

    Returns
    -------
    matplotlib.figure.Figure
    """
    pool = np.asarray(pool_scores, dtype=np.float64).ravel()
    pool = pool[np.isfinite(pool)]
    if pool.size == 0:
        raise ValueError("plot_long_tail needs at least one finite long-tail score")
    sel = None if selected_scores is None else np.asarray(selected_scores, dtype=np.float64).ravel()
    if sel is not None:
        sel = sel[np.isfinite(sel)]
    lo, hi = float(pool.min()), float(pool.max())
    if sel is not None and sel.size:
        lo, hi = min(lo, float(sel.min())), max(hi, float(sel.max()))
    edges = np.linspace(lo, hi if hi > lo else lo + 1e-6, bins + 1)
    fig = _figure(5.5, 3.2)
    ax = fig.add_subplot()
    ax.hist(pool, bins=edges, color=_GREY, alpha=0.6, label=f"pool (n={pool.size:,})")
    if sel is not None and sel.size:
        ax.hist(sel, bins=edges, color=_BLUE, alpha=0.9, label=f"selected (n={sel.size:,})")
    if cut is not None and np.isfinite(cut):
        ax.axvline(cut, color=_ORANGE, linestyle="--", linewidth=1.5, label=cut_label or f"cut = {cut:.3g}")
    ax.set_xlabel("long-tail score (higher = rarer)")
    ax.set_ylabel("rows")
    ax.set_title(title)
    ax.legend(frameon=False, fontsize=8)
    ax.spines[["top", "right"]].set_visible(False)
    return fig


@_fonts
def plot_composition(
    pool_counts: Mapping[str, int] | None,
    selected_counts: Mapping[str, int],
    *,
    top: int = 12,
    title: str = "Composition",
):
    """Horizontal bars of the share of each category, selected subset vs pool.

    Parameters
    ----------
    pool_counts : mapping of str to int, optional
        Rows per category in the pool (omit when only the subset is known).
    selected_counts : mapping of str to int
        Rows per category in the selected subset.
    top : int, default 12
        Show the ``top`` largest categories (by selected, then pool count); the rest are summed as ``"other"``.
    title : str
        Figure title.

    Returns
    -------
    matplotlib.figure.Figure
    """
    if not selected_counts:
        raise ValueError("plot_composition needs the category counts of the selected subset")
    pool_counts = dict(pool_counts or {})
    names = sorted(set(selected_counts) | set(pool_counts),
                   key=lambda c: (-selected_counts.get(c, 0), -pool_counts.get(c, 0), str(c)))
    shown, rest = names[:top], names[top:]

    def shares(counts: Mapping[str, int]) -> np.ndarray:
        total = sum(counts.values())
        values = [counts.get(c, 0) for c in shown] + ([sum(counts.get(c, 0) for c in rest)] if rest else [])
        return np.asarray(values, dtype=np.float64) / (total or 1)

    labels = [str(c) for c in shown] + (["other"] if rest else [])
    y = np.arange(len(labels))[::-1]
    fig = _figure(6.0, 1.0 + 0.32 * len(labels))
    ax = fig.add_subplot()
    height = 0.4 if pool_counts else 0.7
    if pool_counts:
        ax.barh(y + height / 2, shares(pool_counts), height, color=_GREY,
                label=f"pool (n={sum(pool_counts.values()):,})")
    ax.barh(y - (height / 2 if pool_counts else 0), shares(selected_counts), height, color=_BLUE,
            label=f"selected (n={sum(selected_counts.values()):,})")
    ax.set_yticks(y, labels)
    ax.set_xlabel("share of rows")
    ax.set_title(title)
    ax.legend(frameon=False, fontsize=8, loc="best")
    ax.spines[["top", "right"]].set_visible(False)
    return fig


@_fonts
def png_bytes(fig) -> bytes:
    """Render ``fig`` to PNG bytes with the Agg backend; the bytes carry no timestamp."""
    import io

    from matplotlib.backends.backend_agg import FigureCanvasAgg

    FigureCanvasAgg(fig)
    buffer = io.BytesIO()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        fig.savefig(buffer, format="png", dpi=100, metadata={"Software": None})
    missing = [str(w.message) for w in caught if "missing from font" in str(w.message)]
    for w in caught:
        if "missing from font" not in str(w.message):
            warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
    if missing:
        logger.warning("%d glyph(s) of a figure label have no installed font and render as boxes (e.g. %s); "
                       "install a font that covers them: %s", len(missing), missing[0], CJK_INSTALL)
    return buffer.getvalue()


def save_png(fig, path: str | os.PathLike) -> Path:
    """Write ``fig`` to ``path`` as a PNG (parent folders are created) and return the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(png_bytes(fig))
    return path
