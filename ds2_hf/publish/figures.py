"""Which figures a subset folder has, and how each is drawn: one registry, read by the card and by the save.

:data:`FIGURES` lists every figure with the rule that decides whether the data allow it. :func:`plan_figures`
applies the rules once; the card links exactly the figures of the plan and :func:`render_figures` writes
exactly those, so a card never links a figure the folder does not hold.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from .. import plots
from ..report import Report
from .config import FIGURES_DIR, PublishConfig
from .summary import Summary, column


@dataclass(frozen=True)
class FigureInputs:
    """What a figure may read: the subset and pool (Dataset or mapping of arrays), summary, report, options."""

    subset: object
    pool: object
    summary: Summary
    report: Report
    config: PublishConfig


@dataclass(frozen=True)
class Figure:
    """One figure: its file name, when the data allow it, and how to draw it."""

    name: str
    applies: Callable[[FigureInputs], bool]
    draw: Callable[[FigureInputs], object]

    @property
    def path(self) -> str:
        return f"{FIGURES_DIR}/{self.name}.png"


def _transition(x: FigureInputs):
    return plots.plot_transition_matrix(x.report.curation.transition_matrix)


def _raters(x: FigureInputs):
    raters = x.report.curation.raters
    return plots.plot_rater_matrices([s["transition_matrix"] for s in raters.summary], raters.names)


def _distribution(x: FigureInputs):
    return plots.plot_rating_distributions(x.summary.distributions, title="Rating distribution")


def _long_tail(x: FigureInputs):
    names = x.config.curation_columns
    sub_lt, pool_lt = column(x.subset, names.long_tail), column(x.pool, names.long_tail)
    lt = x.summary.long_tail
    label = f"cut within curated score {lt['cut_score']}: {lt['cut']:.3g}" if "cut" in lt else None
    return plots.plot_long_tail(pool_lt if pool_lt is not None else sub_lt,
                                selected_scores=sub_lt if pool_lt is not None else None,
                                cut=lt.get("cut"), cut_label=label)


def _composition(x: FigureInputs):
    comp = x.summary.composition
    return plots.plot_composition(comp["pool"], comp["subset"], title=f"Composition by `{comp['column']}`")


def _has_curation(attribute: str) -> Callable[[FigureInputs], bool]:
    return lambda x: x.report.curation is not None and bool(getattr(x.report.curation, attribute))


#: Every figure a subset folder can hold, in the card's order.
FIGURES = (
    Figure("transition_matrix", _has_curation("transition_matrix"), _transition),
    Figure("rater_matrices", _has_curation("raters"), _raters),
    Figure("rating_distribution", lambda x: bool(x.summary.distributions), _distribution),
    Figure("long_tail", lambda x: bool(x.summary.long_tail), _long_tail),
    Figure("composition", lambda x: bool(x.summary.composition.get("subset")), _composition),
)


def plan_figures(subset, pool, summary: Summary, report: Report, config: PublishConfig) -> list[Figure]:
    """The figures the data allow (none when ``config.figures`` is False)."""
    if not config.figures:
        return []
    inputs = FigureInputs(subset, pool, summary, report, config)
    return [figure for figure in FIGURES if figure.applies(inputs)]


def render_figures(subset, pool, summary: Summary, report: Report, config: PublishConfig) -> dict[str, bytes]:
    """``{"figures/<name>.png": PNG bytes}`` for every figure of :func:`plan_figures`."""
    inputs = FigureInputs(subset, pool, summary, report, config)
    return {figure.path: plots.png_bytes(figure.draw(inputs))
            for figure in plan_figures(subset, pool, summary, report, config)}
