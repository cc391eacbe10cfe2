"""Render dataset rows to conversations and text.

Supported row formats (auto-detected from the column names, in this order):

==================  =========================================================  ===================================
name                columns                                                    example source
==================  =========================================================  ===================================
``messages``        ``messages``: list of ``{"role", "content"}``              TULU / the DS2 pool, TRL datasets
``sharegpt``        ``conversations``: list of ``{"from", "value"}``           ShareGPT, Vicuna
``alpaca``          ``instruction``, optional ``input``, ``output``            Stanford Alpaca, AlpacaEval
``dolly``           ``instruction``, optional ``context``, ``response``        Dolly-15k
``prompt_completion`` ``prompt``, ``completion`` (strings or message lists)    T0 / Flan, TRL prompt-completion
``text``            ``text``                                                   plain corpora, classification data
==================  =========================================================  ===================================

A user template (a :meth:`str.format` string over the row's columns, e.g. ``"{question}\\n{answer}"``) overrides
detection. Every conversation is first normalised to a list of ``{"role", "content"}`` messages with roles
``system`` / ``user`` / ``assistant``; text is rendered from that list in one of three styles:

* ``"reference"``: ``"###{role}: {content}\\n"`` per message, the text the DS2 reference code embeds;
* ``"tulu"``: ``"<|user|>\\n{content}\\n<|assistant|>\\n{content}\\n"``, the TULU template of the paper's pool;
* ``"plain"``: the contents joined by blank lines.

Examples
--------
>>> from ds2_hf.formats import Formatter
>>> f = Formatter()
>>> f.text({"instruction": "Add 2 and 3.", "input": "", "output": "5"})
'###user: Add 2 and 3.\\n###assistant: 5\\n'
>>> f.messages({"conversations": [{"from": "human", "value": "Hi"}, {"from": "gpt", "value": "Hello!"}]})
[{'role': 'user', 'content': 'Hi'}, {'role': 'assistant', 'content': 'Hello!'}]
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from .validation import InputError

Message = dict[str, str]

FORMATS = ("messages", "sharegpt", "alpaca", "dolly", "prompt_completion", "text")
#: Columns each format reads (a template reads the columns it names).
FORMAT_COLUMNS = {
    "messages": ("messages",),
    "sharegpt": ("conversations",),
    "alpaca": ("instruction", "input", "output"),
    "dolly": ("instruction", "context", "response"),
    "prompt_completion": ("prompt", "completion"),
    "text": ("text",),
}
STYLES = ("reference", "tulu", "plain")

_ROLE_ALIASES = {
    "user": "user",
    "human": "user",
    "prompter": "user",
    "question": "user",
    "assistant": "assistant",
    "gpt": "assistant",
    "chatgpt": "assistant",
    "bard": "assistant",
    "bing": "assistant",
    "model": "assistant",
    "bot": "assistant",
    "answer": "assistant",
    "system": "system",
}


class FormatError(InputError):
    """A row cannot be rendered (unknown format, empty conversation, non-string content)."""


class EmptyConversationError(FormatError):
    """A row whose conversation has no text at all (no message, or only blank ones)."""


def detect_format(columns: Iterable[str]) -> str:
    """Return the name of the row format that the given columns describe.

    Parameters
    ----------
    columns : iterable of str
        Column names of a dataset (``dataset.column_names``) or keys of a row / batch.

    Returns
    -------
    str
        One of :data:`FORMATS`.

    Raises
    ------
    FormatError
        When no known format fits; the message lists the columns found and how to pass a template.
    """
    cols = set(columns)
    if "messages" in cols:
        return "messages"
    if "conversations" in cols:
        return "sharegpt"
    if {"instruction", "output"} <= cols:
        return "alpaca"
    if {"instruction", "response"} <= cols:
        return "dolly"
    if {"prompt", "completion"} <= cols:
        return "prompt_completion"
    if "text" in cols:
        return "text"
    raise FormatError(
        f"cannot tell how to render rows with columns {sorted(cols)}. Expected one of: `messages` "
        "(role/content list), `conversations` (ShareGPT from/value), `instruction`+`output` (Alpaca), "
        "`instruction`+`response` (Dolly), `prompt`+`completion`, or `text`. Pass a template naming your "
        'columns instead, e.g. `template="{question}\\n\\n{answer}"` (CLI: `--template`).'
    )


def _role(raw: Any, where: str) -> str:
    if not isinstance(raw, str):
        raise FormatError(f"{where}: role must be a string, got {type(raw).__name__} ({raw!r})")
    role = _ROLE_ALIASES.get(raw.strip().lower())
    if role is None:
        raise FormatError(
            f"{where}: unknown role {raw!r}; expected one of {sorted(set(_ROLE_ALIASES))}"
        )
    return role


def _content(raw: Any, where: str) -> str:
    if raw is None:
        return ""
    if isinstance(raw, str):
        return raw
    # Multimodal-style content: a list of {"type": "text", "text": ...} parts.
    if isinstance(raw, list) and all(isinstance(p, Mapping) and "text" in p for p in raw):
        return "\n".join(str(p["text"]) for p in raw if p.get("type", "text") == "text")
    raise FormatError(f"{where}: content must be a string, got {type(raw).__name__} ({raw!r:.80})")


def _message_list(raw: Any, role_key: str, content_key: str, where: str) -> list[Message]:
    if not isinstance(raw, Sequence) or isinstance(raw, (str, bytes)):
        raise FormatError(f"{where}: expected a list of messages, got {type(raw).__name__}")
    out = []
    for i, m in enumerate(raw):
        if not isinstance(m, Mapping) or role_key not in m:
            raise FormatError(f"{where}, message {i}: expected a mapping with `{role_key}` and `{content_key}`")
        out.append(
            {"role": _role(m[role_key], f"{where}, message {i}"), "content": _content(m.get(content_key), f"{where}, message {i}")}
        )
    return out


def _turn(value: Any, default_role: str, where: str) -> list[Message]:
    """A prompt or completion value: a string or a list of role/content messages (TRL conversational)."""
    if isinstance(value, list):
        return _message_list(value, "role", "content", where)
    return [{"role": default_role, "content": _content(value, where)}]


def _join(*parts: Any) -> str:
    return "\n\n".join(str(p) for p in parts if p is not None and str(p).strip())


def row_to_messages(row: Mapping[str, Any], fmt: str, *, template: str | None = None, where: str = "row") -> list[Message]:
    """Normalise one row to ``[{"role", "content"}, ...]``.

    Parameters
    ----------
    row : mapping
        One dataset row.
    fmt : str
        One of :data:`FORMATS`, or ``"template"`` when ``template`` is given.
    template : str, optional
        A :meth:`str.format` template over the row's columns; the result becomes one user message.
    where : str
        How to name this row in error messages (e.g. ``"row 17"``).

    Raises
    ------
    FormatError
        Empty conversation, non-string content, missing template column.
    """
    if template is not None:
        try:
            msgs = [{"role": "user", "content": template.format_map(dict(row))}]
        except KeyError as err:
            raise FormatError(
                f"{where}: template refers to column {err.args[0]!r}, which the row does not have "
                f"(columns: {sorted(row)})"
            ) from None
    elif fmt == "messages":
        msgs = _message_list(row["messages"], "role", "content", where)
    elif fmt == "sharegpt":
        msgs = _message_list(row["conversations"], "from", "value", where)
    elif fmt == "alpaca":
        msgs = [
            {"role": "user", "content": _join(_content(row["instruction"], where), _content(row.get("input"), where))},
            {"role": "assistant", "content": _content(row["output"], where)},
        ]
    elif fmt == "dolly":
        msgs = [
            {"role": "user", "content": _join(_content(row["instruction"], where), _content(row.get("context"), where))},
            {"role": "assistant", "content": _content(row["response"], where)},
        ]
    elif fmt == "prompt_completion":
        msgs = _turn(row["prompt"], "user", where) + _turn(row["completion"], "assistant", where)
    elif fmt == "text":
        msgs = [{"role": "user", "content": _content(row["text"], where)}]
    else:
        raise FormatError(f"unknown format {fmt!r}; expected one of {FORMATS} or a template")
    msgs = [m for m in msgs if m["content"].strip() or m["role"] == "assistant"]
    if not any(m["content"].strip() for m in msgs):
        raise EmptyConversationError(f"{where}: the conversation is empty (no message has any text)")
    return msgs


def messages_to_text(messages: Sequence[Message], style: str = "reference") -> str:
    """Render normalised messages to one string in the given style (see the module docstring)."""
    if style == "reference":
        return "".join(f"###{m['role']}: {m['content']}\n" for m in messages)
    if style == "tulu":
        return "".join(f"<|{m['role']}|>\n{m['content']}\n" for m in messages)
    if style == "plain":
        return "\n\n".join(m["content"] for m in messages if m["content"])
    raise ValueError(f"unknown text style {style!r}; expected one of {STYLES}")


@dataclass(frozen=True)
class Formatter:
    """Render rows (or batches) of any supported format to messages or text.

    A frozen, config-only object: cheap to pickle and to fingerprint inside ``datasets.map``.

    Parameters
    ----------
    format : str, default "auto"
        One of :data:`FORMATS`, or ``"auto"`` to detect it from each row's / batch's columns.
    template : str, optional
        A :meth:`str.format` template over the row's columns (overrides ``format``).
    style : str, default "reference"
        Text style for :meth:`text`: ``"reference"``, ``"tulu"`` or ``"plain"``.
    max_chars : int, optional
        Truncate rendered text to this many characters (``None`` = no limit).
    """

    format: str = "auto"
    template: str | None = None
    style: str = "reference"
    max_chars: int | None = None

    def __post_init__(self) -> None:
        if self.format != "auto" and self.format not in FORMATS:
            raise ValueError(f"format={self.format!r} is not supported; expected 'auto' or one of {FORMATS}")
        if self.style not in STYLES:
            raise ValueError(f"style={self.style!r} is not supported; expected one of {STYLES}")

    def resolve(self, columns: Iterable[str]) -> str:
        """The concrete format for rows with these columns."""
        if self.template is not None:
            return "template"
        return detect_format(columns) if self.format == "auto" else self.format

    def columns(self, columns: Iterable[str]) -> list[str]:
        """The columns (of ``columns``) that rendering reads: read only these from a large dataset."""
        cols = list(columns)
        fmt = self.resolve(cols)
        if fmt == "template":
            import string

            wanted = {f for _, f, _, _ in string.Formatter().parse(self.template) if f}
        else:
            wanted = set(FORMAT_COLUMNS[fmt])
        return [c for c in cols if c in wanted]

    def messages(self, row: Mapping[str, Any], *, where: str = "row") -> list[Message]:
        """Normalised ``[{"role", "content"}]`` messages of one row."""
        return row_to_messages(row, self.resolve(row.keys()), template=self.template, where=where)

    def text(self, row: Mapping[str, Any], *, where: str = "row") -> str:
        """Rendered text of one row."""
        out = messages_to_text(self.messages(row, where=where), self.style)
        return out if self.max_chars is None else out[: self.max_chars]

    def batch_rows(self, batch: Mapping[str, Sequence[Any]]) -> list[dict[str, Any]]:
        """Split a column-oriented batch (as ``datasets.map(batched=True)`` passes) into row dicts."""
        keys = list(batch.keys())
        n = len(batch[keys[0]]) if keys else 0
        return [{k: batch[k][i] for k in keys} for i in range(n)]

    def batch_texts(self, batch: Mapping[str, Sequence[Any]], *, offset: int = 0) -> list[str]:
        """Rendered text of every row of a batch; errors name the row as ``offset + i``."""
        return [self.text(r, where=f"row {offset + i}") for i, r in enumerate(self.batch_rows(batch))]

    def find_problems(self, batch: Mapping[str, Sequence[Any]], *, offset: int = 0) -> tuple[list[int], list[tuple[int, str]]]:
        """Rows of a batch that cannot be rendered, without stopping at the first.

        Parameters
        ----------
        batch : mapping of column name to sequence
            A column-oriented batch (``dataset[i:j]``).
        offset : int, default 0
            Dataset row number of the batch's first row.

        Returns
        -------
        empty : list of int
            Rows whose conversation has no text (:class:`EmptyConversationError`), ascending.
        invalid : list of (int, str)
            Other rows that fail to render, with the :class:`FormatError` message of each.

        Examples
        --------
        >>> batch = {"conversations": [[{"from": "human", "value": "Hi"}], [], [{"from": "x", "value": "?"}]]}
        >>> empty, invalid = Formatter().find_problems(batch, offset=10)
        >>> empty, [row for row, _ in invalid]
        ([11], [12])
        """
        empty: list[int] = []
        invalid: list[tuple[int, str]] = []
        for i, row in enumerate(self.batch_rows(batch)):
            try:
                self.messages(row, where=f"row {offset + i}")
            except EmptyConversationError:
                empty.append(offset + i)
            except FormatError as err:
                invalid.append((offset + i, str(err)))
        return empty, invalid

    def batch_messages(self, batch: Mapping[str, Sequence[Any]], *, offset: int = 0) -> list[list[Message]]:
        """Normalised messages of every row of a batch."""
        return [self.messages(r, where=f"row {offset + i}") for i, r in enumerate(self.batch_rows(batch))]


def as_formatter(obj: Formatter | str | Callable | None) -> Formatter:
    """Accept a :class:`Formatter`, a format name, or ``None`` (auto)."""
    if obj is None:
        return Formatter()
    if isinstance(obj, Formatter):
        return obj
    if isinstance(obj, str):
        return Formatter(format=obj)
    raise TypeError(f"expected a Formatter or a format name, got {type(obj).__name__}")
