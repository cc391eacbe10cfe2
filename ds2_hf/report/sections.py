"""The sections of a report: where the rows came from, how they were rated, embedded, curated and selected, and
the commands that did it. Each is a dataclass; keys this release does not type are kept in ``extra``."""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from .base import Section

#: How the rows' ratings came to be (:attr:`RatingInfo.origin`).
RATING_ORIGINS = ("llm", "judge", "supplied")


@dataclass
class SourceInfo(Section):
    """Where the rows came from.

    Attributes
    ----------
    dataset : str, optional
        A Hub dataset id, or the local file / folder the rows were read from.
    revision, license : str, optional
        The Hub revision (commit) and the licence id.
    language : str or list of str, optional
        ISO 639-1 codes.
    local : bool, optional
        True when ``dataset`` is a local path: it is then never written as the card's ``source_datasets``.
    """

    dataset: str | None = None
    revision: str | None = None
    license: str | None = None
    language: str | list | None = None
    local: bool | None = None
    extra: dict = field(default_factory=dict)

    @classmethod
    def of(cls, dataset: str | os.PathLike, **facts) -> SourceInfo:
        """The source ``dataset`` as given to a loader; ``local`` is True when it names an existing path."""
        return cls(dataset=str(dataset), local=Path(dataset).exists(), **facts)

    @property
    def hub_id(self) -> str | None:
        """``dataset`` when it is a Hub id (a name with a namespace that is not a local path), else None."""
        if not self.dataset or self.local or "/" not in self.dataset or self.dataset.startswith((".", "/", "~")):
            return None
        return self.dataset


@dataclass
class RatingInfo(Section):
    """How the rows' ratings were made.

    Attributes
    ----------
    backend, model, mode : str, optional
        The rating backend, the rater model and the rating mode (``generate`` / ``logprobs``).
    template_hash : str, optional
        Hash of the rating prompt (:meth:`ds2_hf.rating.PromptTemplate.hash`).
    origin : str, optional
        ``"llm"``: rated for this selection by an LLM with the DS2 prompt (``ds2 rate``); ``"judge"``: an LLM
        judge's ratings from an existing evaluation (the demo's AlpacaEval annotations); ``"supplied"``: given
        with the data, origin unknown. ``None`` in a file of an earlier release means ``"llm"``.
    note : str, optional
        A caveat shown with the rater (e.g. a weak offline model).
    """

    backend: str | None = None
    model: str | None = None
    mode: str | None = None
    template_hash: str | None = None
    origin: str | None = None
    note: str | None = None
    extra: dict = field(default_factory=dict)

    @property
    def effective_origin(self) -> str:
        return self.origin or "llm"

    @classmethod
    def from_config(cls, config, stats=None) -> RatingInfo:
        """The rating section of a :class:`ds2_hf.rating.RatingConfig` run (and its ``RatingStats``)."""
        extra = {"stats": stats.as_dict()} if stats is not None else {}
        return cls(backend=config.backend, model=config.model_name or None, mode=config.mode,
                   template_hash=config.prompt.hash(), origin="llm", extra=extra)


@dataclass
class EmbeddingInfo(Section):
    """The embedder: backend, model, output dimension and the full configuration."""

    backend: str | None = None
    model: str | None = None
    dim: int | None = None
    config: dict | None = None
    extra: dict = field(default_factory=dict)

    @classmethod
    def from_config(cls, config, dim: int) -> EmbeddingInfo:
        """The embedding section of a resolved :class:`ds2_hf.EmbeddingConfig` that produced ``dim``-d vectors."""
        from ..embedding import config_dict

        settings = {k: v for k, v in config_dict(config).items() if k not in ("overwrite", "device", "batch_size")}
        model = config.source if config.backend in ("column", "npy") else config.model
        return cls(backend=config.backend, model=model, dim=int(dim), config=settings)


@dataclass
class KnnInfo(Section):
    """The k-NN graph: search method, neighbours per row and measured recall@k (None: exact / not measured)."""

    method: str | None = None
    k: int | None = None
    recall: float | None = None
    extra: dict = field(default_factory=dict)


@dataclass
class GuardCheck(Section):
    """One check of the curation guard: its trust factor in [0, 1] and what it measured."""

    name: str
    gate: float
    passed: bool
    summary: str
    extra: dict = field(default_factory=dict)

    @property
    def result(self) -> str:
        return "passed" if self.passed else ("failed" if self.gate <= 0 else f"partial ({self.gate:.2f})")


@dataclass
class GuardInfo(Section):
    """The curation guard's verdict: status (``trusted`` / ``shrunk`` / ``withheld``), trust, checks, advice."""

    _nested: ClassVar[dict[str, Any]] = {"checks": GuardCheck}
    status: str | None = None
    gate: float | None = None
    verdict: str | None = None
    advice: str | None = None
    checks: list[GuardCheck] = field(default_factory=list)
    extra: dict = field(default_factory=dict)


@dataclass
class DuplicatesInfo(Section):
    """Duplicate groups of the pool: counts and the largest groups as ``[size, example row]`` pairs."""

    n_groups: int = 0
    n_rows: int = 0
    n_redundant: int = 0
    largest: list = field(default_factory=list)
    extra: dict = field(default_factory=dict)


@dataclass
class RatersInfo(Section):
    """Several raters fused into one score: per-rater ``summary`` rows, the trust line and the audit."""

    names: list = field(default_factory=list)
    summary: list = field(default_factory=list)
    trust: str | None = None
    audit: dict | None = None
    embeddings: bool | None = None
    extra: dict = field(default_factory=dict)


@dataclass
class CurationInfo(Section):
    """The curation report (:attr:`ds2_hf.Curator.report_`), typed where publishing reads it.

    ``confidence_threshold`` and ``backoff`` are the values used (the defaults resolved), ``config`` the options
    as given; method-specific details (``joint``, ``faithful``) and timings are in ``extra``.
    """

    _nested: ClassVar[dict[str, Any]] = {"knn": KnnInfo, "clusterability": GuardInfo, "raters": RatersInfo}
    method: str | None = None
    num_classes: int | None = None
    n: int | None = None
    n_rated: int | None = None
    n_unrated: int | None = None
    transition_matrix: list | None = None
    true_prior: list | None = None
    counts_raw: list | None = None
    counts_curated: list | None = None
    n_flagged: int | None = None
    n_changed: int | None = None
    confidence_threshold: float | None = None
    backoff: bool | None = None
    knn: KnnInfo | None = None
    clusterability: GuardInfo | None = None
    raters: RatersInfo | None = None
    structure: dict | None = None
    config: dict | None = None
    extra: dict = field(default_factory=dict)

    @property
    def duplicates(self) -> DuplicatesInfo | None:
        """The pool's duplicate groups, when curation looked for them."""
        found = (self.structure or {}).get("duplicates")
        return DuplicatesInfo.from_dict(found, where="curation.structure.duplicates") if found else None

    @property
    def neighbourhood_prior(self) -> dict:
        """The joint model's second stage: ``used`` and the held-out gains of both stages (empty when not tried)."""
        joint = self.extra.get("joint")
        return dict(joint.get("neighbourhood_prior") or {}) if isinstance(joint, Mapping) else {}

    def effective_options(self) -> dict:
        """``config`` with the defaults that were left open (None) replaced by the values actually used."""
        options = dict(self.config or {})
        for name in ("confidence_threshold", "backoff"):
            if options.get(name) is None and getattr(self, name) is not None:
                options[name] = getattr(self, name)
        return options


@dataclass
class SelectionInfo(Section):
    """The selection report (:class:`ds2_hf.SelectionReport`), every field optional."""

    strategy: str | None = None
    k: int | None = None
    n_selected: int | None = None
    n_pool: int | None = None
    n_eligible: int | None = None
    score_column: str | None = None
    long_tail_column: str | None = None
    score_counts: dict | None = None
    pool_score_counts: dict | None = None
    score_mean: float | None = None
    details: dict | None = None
    config: dict | None = None
    extra: dict = field(default_factory=dict)

    @classmethod
    def from_report(cls, report) -> SelectionInfo:
        """The section of a :class:`ds2_hf.SelectionReport`."""
        return cls.from_dict(report.to_dict(), where="selection")


@dataclass
class CommandInfo(Section):
    """The commands that made the rows, in order, and the ds2-hf version that ran them."""

    lines: list = field(default_factory=list)
    version: str | None = None
    extra: dict = field(default_factory=dict)

    @classmethod
    def of(cls, argv: Iterable[str], prog: str = "ds2") -> CommandInfo:
        """The shell-quoted command line ``prog argv...``."""
        import shlex

        from .. import __version__

        return cls(lines=[" ".join([prog, *(shlex.quote(a) for a in argv)])], version=__version__)

    @property
    def text(self) -> str:
        return "\n".join(self.lines)
