"""Command-line options generated from a dataclass's fields (as ``transformers.HfArgumentParser`` does).

One option per field: its name (``--learning-rate`` for ``learning_rate``, optionally prefixed), its type, its
help (``metadata["help"]``, or the first line of the field's entry in the class docstring) and a default given by
the caller (the paper's values) or the field's own. Nothing about a field is written twice, so the options cannot
drift from the configuration objects. :func:`changed_values` reads back only what the user changed, under the field
names, ready for the config's constructor or factory.

====================================  ========================================================================
field type                            option
====================================  ========================================================================
``bool``, ``bool | None``             ``--name`` / ``--no-name``
``int``, ``float``, ``str``           ``--name VALUE`` (``X | None`` reads as ``X``)
an ``Enum`` or ``Literal``            ``--name {choices}``
``list[X]``, ``tuple[X, ...]``        ``--name V [V ...]`` (one value for a ``str | list[str]`` field: the str)
``dict``                              ``--name JSON``
``str | <a class>``                   ``--name VALUE``, the str form (e.g. a model given by name)
anything else                         none (the field is set from Python)
====================================  ========================================================================

Examples
--------
>>> import argparse
>>> from dataclasses import dataclass, field
>>> @dataclass
... class Opts:
...     rate: float = field(default=0.1, metadata={"help": "how fast"})
...     greedy: bool = False
...     modules: str | list[str] = "all"
>>> p = argparse.ArgumentParser()
>>> options = add_dataclass_arguments(p, Opts, prefix="x_", defaults={"rate": 0.5})
>>> sorted(options)
['x_greedy', 'x_modules', 'x_rate']
>>> changed_values(p.parse_args(["--x-greedy", "--x-modules", "q", "v"]), options)
{'greedy': True, 'modules': ['q', 'v']}
>>> changed_values(p.parse_args(["--x-rate", "0.2", "--x-modules", "q"]), options)
{'rate': 0.2, 'modules': 'q'}
"""

from __future__ import annotations

import argparse
import dataclasses
import enum
import json
import re
import types
import typing
from collections.abc import Callable, Iterable, Mapping
from typing import Any, Literal, Union

_SCALARS = (int, float, str)


def _members(tp) -> tuple:
    """The types of a union (``X | Y``, ``Optional[X]``) without ``None``; a one-tuple otherwise."""
    if typing.get_origin(tp) in (Union, types.UnionType):
        return tuple(t for t in typing.get_args(tp) if t is not type(None))
    return (tp,)


def _str_or_bool(text: str):
    low = text.lower()
    return {"true": True, "yes": True, "false": False, "no": False}.get(low, text)


def option_kwargs(tp) -> dict[str, Any] | None:
    """``argparse.add_argument`` keywords for a field of type ``tp``, or None when it has no command-line form."""
    members = _members(tp)
    if set(members) == {bool}:
        return {"action": argparse.BooleanOptionalAction}
    for m in members:
        if typing.get_origin(m) is Literal:  # with bool: "true" / "false" or one of the literals
            if bool in members:
                return {"choices": [True, False, *typing.get_args(m)], "type": _str_or_bool}
            return {"choices": list(typing.get_args(m))}
        if isinstance(m, type) and issubclass(m, enum.Enum):
            return {"choices": [e.value for e in m], "type": str}
    sequences = [m for m in members if typing.get_origin(m) in (list, tuple)]
    if sequences:
        inner = (typing.get_args(sequences[0]) or (str,))[0]
        inner = str if isinstance(inner, type) and issubclass(inner, enum.Enum) else inner
        return {"nargs": "+", "type": inner} if inner in _SCALARS else None
    if any(m is dict or typing.get_origin(m) is dict for m in members):
        return {"type": json.loads, "metavar": "JSON"}
    if bool in members and str in members:
        return {"type": _str_or_bool}
    scalars = [m for m in members if m in _SCALARS]
    if scalars and len(scalars) == len(members):
        return {"type": scalars[0] if len(scalars) == 1 or str not in scalars else str}
    if str in members:  # a str or an object (a model): the command line gives the str
        return {"type": str}
    return None


def _cast(tp) -> Callable[[list], Any] | None:
    """How a parsed list becomes the field's value: a tuple for tuple fields, the str itself for a one-value list
    of a ``str | list[str]`` field."""
    members = _members(tp)
    if any(typing.get_origin(m) is tuple for m in members):
        return tuple
    if str in members:
        return lambda values: values[0] if len(values) == 1 else values
    return None


def _help(cls, f: dataclasses.Field) -> str:
    """The field's ``metadata["help"]``, else its description in the class's numpydoc ``Parameters``."""
    text = f.metadata.get("help")
    if text is None:
        lines = (cls.__doc__ or "").splitlines()
        for i, line in enumerate(lines):
            if f.name not in (name.strip() for name in line.strip().split(" : ")[0].split(",")):
                continue
            indent, found = len(line) - len(line.lstrip()), []
            for more in lines[i + 1 :]:
                if more.strip() and len(more) - len(more.lstrip()) <= indent:
                    break
                found.append(more.strip())
            text = re.sub(r":\w+:`~?([^`]+)`", r"\1", " ".join(found)).replace("``", "")
            break
    return " ".join(str(text or "").split()).replace("%%", "%").replace("%", "%%")  # argparse formats help


class Option(typing.NamedTuple):
    """What :func:`add_dataclass_arguments` registered for one field."""

    field: str
    default: Any
    cast: Callable[[list], Any] | None = None  # applied to a parsed list of values


def add_dataclass_arguments(parser, cls, *, prefix: str = "", defaults: Mapping[str, Any] | None = None,
                            include: Iterable[str] | None = None, exclude: Iterable[str] = (),
                            aliases: Mapping[str, Iterable[str]] | None = None,
                            notes: Mapping[str, str] | None = None) -> dict[str, Option]:
    """Add one option per init field of dataclass ``cls`` to ``parser`` (a parser or an argument group).

    Parameters
    ----------
    parser : argparse.ArgumentParser or argument group
    cls : type
        A dataclass (``trl.SFTConfig``, ``peft.LoraConfig``, a config of ours).
    prefix : str
        Put before every field name that does not already start with it (``"lora_"``: ``r`` -> ``--lora-r``,
        ``lora_alpha`` -> ``--lora-alpha``).
    defaults : mapping, optional
        Field name -> default shown and used (the field's own default otherwise).
    include, exclude : iterable of str
        Only these fields / not these fields.
    aliases : mapping, optional
        Field name -> further option strings (``{"num_train_epochs": ["--epochs"]}``).
    notes : mapping, optional
        Field name -> a sentence added to its help (what a default of ``None`` means here).

    Returns
    -------
    dict of str to Option
        Namespace attribute -> what was registered, for :func:`changed_values`.
    """
    defaults, aliases, notes = dict(defaults or {}), dict(aliases or {}), dict(notes or {})
    wanted = None if include is None else set(include)
    hints = typing.get_type_hints(cls)
    options: dict[str, Option] = {}
    for f in dataclasses.fields(cls):
        if not f.init or f.name in exclude or (wanted is not None and f.name not in wanted):
            continue
        kwargs = option_kwargs(hints[f.name])
        if kwargs is None:
            continue
        dest = f.name if f.name.startswith(prefix) else prefix + f.name
        if f.name in defaults:
            default = defaults[f.name]
        elif f.default is not dataclasses.MISSING:
            default = f.default
        else:
            default = f.default_factory() if f.default_factory is not dataclasses.MISSING else None
        text = " ".join(t for t in (_help(cls, f), notes.get(f.name, "").replace("%", "%%")) if t)
        if not kwargs.get("action"):
            text += f" (default: {default})".replace("%", "%%")
        parser.add_argument("--" + dest.replace("_", "-"), *aliases.get(f.name, ()), dest=dest, default=default,
                            help=text, **kwargs)
        options[dest] = Option(f.name, default, _cast(hints[f.name]) if kwargs.get("nargs") == "+" else None)
    return options


def changed_values(args: argparse.Namespace, options: Mapping[str, Option]) -> dict[str, Any]:
    """Field name -> value for every registered option whose value differs from its default."""
    out = {}
    for dest, opt in options.items():
        value = getattr(args, dest)
        if opt.cast is not None and isinstance(value, list):
            value = opt.cast(value)
        if value != opt.default:
            out[opt.field] = value
    return out
