"""The typed report of a DS2 run: where the rows came from, how they were rated, embedded, curated and selected,
and the commands that did it.

Every stage that writes a report (``ds2 rate | embed | curate | select --report FILE``, ``ds2 run``,
:func:`ds2_hf.pipeline.run`, :func:`ds2_hf.save_subset`) writes a :class:`Report`, and every reader
(``ds2 report``, ``ds2 push``, the dataset card, the HTML report) reads one, so a report written by any command
is understood by every other. The JSON layout::

    {"schema_version": 1,
     "source":    {"dataset", "revision", "license", "language", "local"},
     "rating":    {"backend", "model", "mode", "template_hash", "origin", "note", ...},
     "embedding": {"backend", "model", "dim", "config"},
     "curation":  the curation report (``Curator.report_``: transition matrix, guard, k-NN, duplicates, ...),
     "selection": the selection report (``SelectionReport``: strategy, k, counts, config),
     "command":   {"lines": ["ds2 embed ...", "ds2 curate ..."], "version": "0.1.0"}}

Every section is optional: what was not recorded is ``None`` and the card says "not recorded". Reading accepts
the layouts of earlier versions (a flat curation report as ``ds2 curate --report`` wrote it, a flat selection
report, ``"command"`` as a string, a saved folder's ``ds2_report.json``) and refuses anything else with one
:class:`ReportError` naming the file, the key and the fix.

Examples
--------
>>> from ds2_hf.report import CommandInfo, Report, SourceInfo
>>> report = Report(source=SourceInfo(dataset="org/pool"), command=CommandInfo(lines=["ds2 run org/pool -o out"]))
>>> Report.from_json(report.to_json()) == report
True
>>> Report.from_dict({"strategy": "ds2", "k": 10}).selection.k          # a flat selection report, as of old
10
"""

from __future__ import annotations

import dataclasses
import json
import os
import typing
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

__all__ = [
    "SCHEMA_VERSION", "ReportError", "Report", "SourceInfo", "RatingInfo", "EmbeddingInfo", "CurationInfo",
    "KnnInfo", "GuardInfo", "GuardCheck", "DuplicatesInfo", "RatersInfo", "SelectionInfo", "CommandInfo",
]

#: Version of the JSON layout written by this release. Files without one are the (compatible) layout of 0.1.0.
SCHEMA_VERSION = 1
SECTIONS = ("source", "rating", "embedding", "curation", "selection", "command")
#: How the rows' ratings came to be (:attr:`RatingInfo.origin`).
RATING_ORIGINS = ("llm", "judge", "supplied")


class ReportError(ValueError):
    """A report file or dict that cannot be read; the message names the file, the key and the fix."""


# ---------------------------------------------------------------------------------------------------- sections
@dataclass
class _Section:
    """Base of every section: typed fields, plus ``extra`` for keys this release does not type (kept as is)."""

    _nested: ClassVar[dict[str, Any]] = {}

    @classmethod
    def from_dict(cls, data: Any, *, where: str = "report"):
        if isinstance(data, cls):
            return data
        if not isinstance(data, Mapping):
            raise ReportError(f"{where} must be a JSON object, got {type(data).__name__} {_short(data)}")
        data = _plain(data)  # tuples, NumPy values, paths: as a JSON file would hold them
        hints = typing.get_type_hints(cls)
        names = [f.name for f in dataclasses.fields(cls) if f.name != "extra"]
        kwargs: dict[str, Any] = {}
        for name in names:
            if name not in data:
                continue
            value, path = data[name], f"{where}.{name}"
            nested = cls._nested.get(name)
            if value is not None and nested is not None:
                value = [nested.from_dict(v, where=f"{path}[{i}]") for i, v in enumerate(_as_list(value, path))] \
                    if _is_list_hint(hints[name]) else nested.from_dict(value, where=path)
            else:
                _check_type(value, hints[name], path)
            kwargs[name] = value
        missing = [f.name for f in dataclasses.fields(cls) if f.name not in kwargs and f.name != "extra"
                   and f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING]
        if missing:
            raise ReportError(f"{where} lacks the key(s) {missing}; re-create it with the command that wrote it")
        return cls(**kwargs, extra={k: v for k, v in data.items() if k not in names})

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON data; the untyped ``extra`` keys are merged back at the same level."""
        out: dict[str, Any] = {}
        for f in dataclasses.fields(self):
            if f.name == "extra":
                continue
            out[f.name] = _plain(getattr(self, f.name))
        out.update(_plain(getattr(self, "extra", {})))
        return out


@dataclass
class SourceInfo(_Section):
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
class RatingInfo(_Section):
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
class EmbeddingInfo(_Section):
    """The embedder: backend, model, output dimension and the full configuration."""

    backend: str | None = None
    model: str | None = None
    dim: int | None = None
    config: dict | None = None
    extra: dict = field(default_factory=dict)

    @classmethod
    def from_config(cls, config, dim: int) -> EmbeddingInfo:
        """The embedding section of a resolved :class:`ds2_hf.EmbeddingConfig` that produced ``dim``-d vectors."""
        from .embedding import config_dict

        settings = {k: v for k, v in config_dict(config).items() if k not in ("overwrite", "device", "batch_size")}
        model = config.source if config.backend in ("column", "npy") else config.model
        return cls(backend=config.backend, model=model, dim=int(dim), config=settings)


@dataclass
class KnnInfo(_Section):
    """The k-NN graph: search method, neighbours per row and measured recall@k (None: exact / not measured)."""

    method: str | None = None
    k: int | None = None
    recall: float | None = None
    extra: dict = field(default_factory=dict)


@dataclass
class GuardCheck(_Section):
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
class GuardInfo(_Section):
    """The curation guard's verdict: status (``trusted`` / ``shrunk`` / ``withheld``), trust, checks, advice."""

    _nested: ClassVar[dict[str, Any]] = {"checks": GuardCheck}
    status: str | None = None
    gate: float | None = None
    verdict: str | None = None
    advice: str | None = None
    checks: list[GuardCheck] = field(default_factory=list)
    extra: dict = field(default_factory=dict)


@dataclass
class DuplicatesInfo(_Section):
    """Duplicate groups of the pool: counts and the largest groups as ``[size, example row]`` pairs."""

    n_groups: int = 0
    n_rows: int = 0
    n_redundant: int = 0
    largest: list = field(default_factory=list)
    extra: dict = field(default_factory=dict)


@dataclass
class RatersInfo(_Section):
    """Several raters fused into one score: per-rater ``summary`` rows, the trust line and the audit."""

    names: list = field(default_factory=list)
    summary: list = field(default_factory=list)
    trust: str | None = None
    audit: dict | None = None
    embeddings: bool | None = None
    extra: dict = field(default_factory=dict)


@dataclass
class CurationInfo(_Section):
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
class SelectionInfo(_Section):
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
class CommandInfo(_Section):
    """The commands that made the rows, in order, and the ds2-hf version that ran them."""

    lines: list = field(default_factory=list)
    version: str | None = None
    extra: dict = field(default_factory=dict)

    @classmethod
    def of(cls, argv: Iterable[str], prog: str = "ds2") -> CommandInfo:
        """The shell-quoted command line ``prog argv...``."""
        import shlex

        from . import __version__

        return cls(lines=[" ".join([prog, *(shlex.quote(a) for a in argv)])], version=__version__)

    @property
    def text(self) -> str:
        return "\n".join(self.lines)


# ---------------------------------------------------------------------------------------------------- report
@dataclass
class Report:
    """Everything recorded about a run; see the module docstring for the JSON layout."""

    source: SourceInfo | None = None
    rating: RatingInfo | None = None
    embedding: EmbeddingInfo | None = None
    curation: CurationInfo | None = None
    selection: SelectionInfo | None = None
    command: CommandInfo | None = None
    schema_version: int = SCHEMA_VERSION

    _TYPES: ClassVar[dict[str, Any]] = {"source": SourceInfo, "rating": RatingInfo, "embedding": EmbeddingInfo,
                                        "curation": CurationInfo, "selection": SelectionInfo,
                                        "command": CommandInfo}

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON data: ``schema_version`` and every recorded section."""
        out: dict[str, Any] = {"schema_version": self.schema_version}
        for name in SECTIONS:
            section = getattr(self, name)
            if section is not None:
                out[name] = section.to_dict()
        return out

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, default=_json_default) + "\n"

    @classmethod
    def from_dict(cls, data: Any, *, where: str = "report") -> Report:
        """Read any report layout ds2-hf has written (see the module docstring).

        Raises
        ------
        ReportError
            Not a JSON object, a newer schema, an unknown top-level key or a section of the wrong type.
        """
        if isinstance(data, Report):
            return data
        if not isinstance(data, Mapping):
            raise ReportError(f"{where} must hold a JSON object, got {type(data).__name__} {_short(data)}")
        data = json.loads(json.dumps(_sectioned(dict(data), where), default=_json_default))  # plain JSON values
        version = data.pop("schema_version", 0)
        if not isinstance(version, int) or isinstance(version, bool) or version > SCHEMA_VERSION:
            raise ReportError(
                f"{where} has schema_version {version!r}, but this ds2-hf reads versions up to {SCHEMA_VERSION}: "
                "upgrade ds2-hf to read it"
            )
        unknown = sorted(set(data) - set(SECTIONS))
        if unknown:
            raise ReportError(
                f"{where} has unknown top-level key(s) {unknown}; a report holds {list(SECTIONS)}. Pass a file "
                "written by `ds2 rate | embed | curate | select --report` or a subset folder's ds2_report.json"
            )
        if isinstance(data.get("command"), str):  # 0.1.0 wrote the command as one string
            data["command"] = {"lines": [data["command"]]}
        sections = {name: cls._TYPES[name].from_dict(data[name], where=f"{where}: {name}")
                    for name in SECTIONS if data.get(name) is not None}
        return cls(**sections)

    @classmethod
    def from_json(cls, text: str, *, where: str = "report") -> Report:
        try:
            data = json.loads(text)
        except json.JSONDecodeError as err:
            raise ReportError(f"{where} is not valid JSON ({err}); pass a report written by ds2-hf") from None
        return cls.from_dict(data, where=where)

    @classmethod
    def read(cls, path: str | os.PathLike) -> Report:
        """Read a report file (any layout ds2-hf wrote) or a subset folder's ``ds2_report.json``."""
        path = Path(path)
        if path.is_dir():
            path = path / "ds2_report.json"
        if not path.is_file():
            raise FileNotFoundError(f"report file {str(path)!r} does not exist")
        return cls.from_json(path.read_text(encoding="utf-8"), where=f"report file {str(path)!r}")

    @classmethod
    def read_many(cls, paths: Iterable[str | os.PathLike]) -> Report:
        """Read several report files and :meth:`merge` them in order."""
        return cls().merge(*(cls.read(p) for p in paths))

    def write(self, path: str | os.PathLike, *, overwrite: bool = False) -> Path:
        """Write the report as JSON, atomically; an existing file is replaced only with ``overwrite=True``."""
        from .atomic import write_text

        return write_text(path, self.to_json(), overwrite=overwrite)

    def merge(self, *others: Report) -> Report:
        """This report with the sections of ``others`` added, in order.

        A later section replaces an earlier one, except ``source``, the origin of the rows, which the earliest
        report that records one keeps; command lines are concatenated, so the merged report names every command
        of a CLI pipeline in order.
        """
        merged = dataclasses.replace(self)
        for other in others:
            for name in ("rating", "embedding", "curation", "selection"):
                if getattr(other, name) is not None:
                    setattr(merged, name, getattr(other, name))
            if merged.source is None or merged.source.dataset is None:
                merged.source = other.source or merged.source
            if other.command is not None:
                lines = list(merged.command.lines) if merged.command else []
                lines += [line for line in other.command.lines if line not in lines]
                merged.command = CommandInfo(lines=lines, version=other.command.version)
        return merged


# ---------------------------------------------------------------------------------------------------- helpers
def _sectioned(data: dict, where: str) -> dict:
    """The sectioned layout of any accepted input (saved-folder payload, flat curation or selection report)."""
    if "report" in data and "summary" in data:  # a saved folder's ds2_report.json
        inner = data["report"]
        if not isinstance(inner, Mapping):
            raise ReportError(f"{where}: 'report' must be a JSON object")
        return dict(inner)
    if "schema_version" in data or not data or any(key in data for key in SECTIONS):
        return data
    if "transition_matrix" in data and "method" in data:  # `ds2 curate --report` of 0.1.0
        return {"curation": data}
    if "strategy" in data:  # `ds2 select --report` of 0.1.0
        return {"selection": data}
    raise ReportError(
        f"{where} is not a ds2 report: it has none of the sections {list(SECTIONS)} (keys: {sorted(data)[:8]}). "
        "Pass a file written by `ds2 rate | embed | curate | select --report` or a subset folder's ds2_report.json"
    )


_SIMPLE = {int: (int,), float: (int, float), str: (str,), bool: (bool,), list: (list, tuple), dict: (dict,)}


def _check_type(value: Any, hint: Any, path: str) -> None:
    if value is None:
        return
    allowed: tuple = ()
    for option in _options(hint):
        origin = typing.get_origin(option) or option
        allowed += _SIMPLE.get(origin, ())
    if not allowed:
        return
    ok = isinstance(value, allowed) and not (isinstance(value, bool) and bool not in allowed)
    if not ok:
        names = sorted({t.__name__ for t in allowed})
        raise ReportError(f"{path} must be {' or '.join(names)}, got {type(value).__name__} {_short(value)}; "
                          "re-create the report with the command that wrote it")


def _options(hint: Any) -> tuple:
    """The members of a union hint (``X | None``), or the hint itself."""
    import types

    return typing.get_args(hint) if typing.get_origin(hint) in (typing.Union, types.UnionType) else (hint,)


def _is_list_hint(hint: Any) -> bool:
    return any((typing.get_origin(o) or o) is list for o in _options(hint))


def _as_list(value: Any, path: str) -> list:
    if not isinstance(value, (list, tuple)):
        raise ReportError(f"{path} must be a list, got {type(value).__name__} {_short(value)}")
    return list(value)


def _plain(value: Any) -> Any:
    if isinstance(value, _Section):
        return value.to_dict()
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return json.loads(json.dumps(value, default=_json_default)) if not isinstance(
        value, (str, int, float, bool, type(None))) else value


def _json_default(obj):
    from .io import json_default

    return json_default(obj)


def _short(value: Any, limit: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."
