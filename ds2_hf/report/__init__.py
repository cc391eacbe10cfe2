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
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

from .base import ReportError, json_default, short
from .sections import (
    RATING_ORIGINS, CommandInfo, CurationInfo, DuplicatesInfo, EmbeddingInfo, GuardCheck, GuardInfo, KnnInfo,
    RatersInfo, RatingInfo, SelectionInfo, SourceInfo,
)

__all__ = [
    "SCHEMA_VERSION", "SECTIONS", "RATING_ORIGINS", "ReportError", "Report", "SourceInfo", "RatingInfo",
    "EmbeddingInfo", "CurationInfo", "KnnInfo", "GuardInfo", "GuardCheck", "DuplicatesInfo", "RatersInfo",
    "SelectionInfo", "CommandInfo",
]

#: Version of the JSON layout written by this release. Files without one are the (compatible) layout of 0.1.0.
SCHEMA_VERSION = 1
SECTIONS = ("source", "rating", "embedding", "curation", "selection", "command")


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
        return json.dumps(self.to_dict(), indent=2, default=json_default) + "\n"

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
            raise ReportError(f"{where} must hold a JSON object, got {type(data).__name__} {short(data)}")
        data = json.loads(json.dumps(_sectioned(dict(data), where), default=json_default))  # plain JSON values
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
        from ..atomic import write_text

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
