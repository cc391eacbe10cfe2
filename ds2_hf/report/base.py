"""The machinery of a report section: typed fields read from JSON with one clear error, the rest kept as is."""

from __future__ import annotations

import dataclasses
import json
import typing
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar


class ReportError(ValueError):
    """A report file or dict that cannot be read; the message names the file, the key and the fix."""


@dataclass
class Section:
    """Base of every section: typed fields, plus ``extra`` for keys this release does not type (kept as is)."""

    _nested: ClassVar[dict[str, Any]] = {}

    @classmethod
    def from_dict(cls, data: Any, *, where: str = "report"):
        if isinstance(data, cls):
            return data
        if not isinstance(data, Mapping):
            raise ReportError(f"{where} must be a JSON object, got {type(data).__name__} {short(data)}")
        data = plain(data)  # tuples, NumPy values, paths: as a JSON file would hold them
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
                check_type(value, hints[name], path)
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
            out[f.name] = plain(getattr(self, f.name))
        out.update(plain(getattr(self, "extra", {})))
        return out


_SIMPLE = {int: (int,), float: (int, float), str: (str,), bool: (bool,), list: (list, tuple), dict: (dict,)}


def check_type(value: Any, hint: Any, path: str) -> None:
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
        raise ReportError(f"{path} must be {' or '.join(names)}, got {type(value).__name__} {short(value)}; "
                          "re-create the report with the command that wrote it")


def _options(hint: Any) -> tuple:
    """The members of a union hint (``X | None``), or the hint itself."""
    import types

    return typing.get_args(hint) if typing.get_origin(hint) in (typing.Union, types.UnionType) else (hint,)


def _is_list_hint(hint: Any) -> bool:
    return any((typing.get_origin(o) or o) is list for o in _options(hint))


def _as_list(value: Any, path: str) -> list:
    if not isinstance(value, (list, tuple)):
        raise ReportError(f"{path} must be a list, got {type(value).__name__} {short(value)}")
    return list(value)


def plain(value: Any) -> Any:
    if isinstance(value, Section):
        return value.to_dict()
    if isinstance(value, Mapping):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    return json.loads(json.dumps(value, default=json_default)) if not isinstance(
        value, (str, int, float, bool, type(None))) else value


def json_default(obj):
    from ..io import json_default as default

    return default(obj)


def short(value: Any, limit: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."
