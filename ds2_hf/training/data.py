"""Training data: rows of any conversation format -> a ``messages`` column, and prompts that fit ``max_length``.

Any row format :class:`ds2_hf.formats.Formatter` understands (``messages``, ShareGPT, Alpaca, Dolly,
prompt/completion) is turned into a ``messages`` column first, so a subset written by :func:`ds2_hf.save_subset`
(``data/*.parquet`` + ``README.md``) trains as is.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ..formats import Formatter

logger = logging.getLogger(__name__)


class TrainingDataError(ValueError):
    """The training data cannot be used for supervised finetuning (empty, no assistant turn, too long)."""


def to_messages(dataset, *, format: str = "auto", template: str | None = None, response_column: str | None = None):
    """Return ``dataset`` with a single ``messages`` column (list of ``{"role", "content"}``), ready for SFT.

    Parameters
    ----------
    dataset : datasets.Dataset
        Rows in any format :mod:`ds2_hf.formats` knows, with at least one assistant turn each.
    format : str, default "auto"
        Row format; ``"auto"`` detects it from the columns.
    template, response_column : str, optional
        Render the user turn with ``template`` (:meth:`str.format` over the row) and take the assistant turn from
        ``response_column``.

    Raises
    ------
    TrainingDataError
        Empty dataset, a format without an assistant turn (plain ``text``), or a row without an assistant answer.
    """
    if len(dataset) == 0:
        raise TrainingDataError(
            "the training dataset is empty (0 rows); select a non-empty subset, e.g. `ds2_hf.select(ds, k=1000)`"
        )
    formatter = Formatter(format=format, template=template)
    fmt = formatter.resolve(dataset.column_names)
    if fmt == "text":
        raise TrainingDataError(
            f"the dataset has a plain `text` column (columns: {dataset.column_names}) but supervised finetuning "
            "needs conversations with an assistant turn: provide `messages` (role/content), `conversations` "
            "(ShareGPT), `instruction`+`output` (Alpaca), `prompt`+`completion`, or pass `template=` and "
            "`response_column=`"
        )
    if template is not None and response_column not in dataset.column_names:
        raise TrainingDataError(
            f"response_column={response_column!r} is not a column of the dataset ({dataset.column_names})"
        )
    return dataset.map(
        _MessagesMapper(formatter, response_column),
        batched=True,
        with_indices=True,
        remove_columns=dataset.column_names,
        desc="formatting conversations",
    )


@dataclass(frozen=True)
class _MessagesMapper:
    """Picklable batched map: rows of any format -> ``messages``."""

    formatter: Formatter
    response_column: str | None = None

    def __call__(self, batch: Mapping[str, list], indices: list[int]) -> dict[str, list]:
        out = []
        for i, row in zip(indices, self.formatter.batch_rows(batch)):
            msgs = self.formatter.messages(row, where=f"row {i}")
            if self.response_column is not None:
                msgs = msgs + [{"role": "assistant", "content": str(row[self.response_column] or "")}]
            if not any(m["role"] == "assistant" and m["content"].strip() for m in msgs):
                raise TrainingDataError(
                    f"row {i} has no assistant answer to learn from (messages: {msgs!r:.200}); every training row "
                    "needs at least one non-empty assistant turn"
                )
            out.append(msgs)
        return {"messages": out}


@dataclass(frozen=True)
class _PromptLength:
    """Picklable batched map: token length of everything before the first assistant turn."""

    tokenizer: Any
    chat_template: str | None

    def __call__(self, batch: Mapping[str, list]) -> dict[str, list]:
        lengths = []
        for msgs in batch["messages"]:
            first = next(i for i, m in enumerate(msgs) if m["role"] == "assistant")
            ids = self.tokenizer.apply_chat_template(
                msgs[:first], tokenize=True, add_generation_prompt=True, chat_template=self.chat_template,
                return_dict=False,
            )
            lengths.append(len(ids))
        return {"_prompt_tokens": lengths}


def check_lengths(dataset, tokenizer, *, max_length: int, drop: bool = True, chat_template: str | None = None):
    """Drop (or refuse) rows whose prompt alone fills ``max_length`` tokens.

    Such a row would be truncated before its first assistant token and contribute no loss.

    Returns
    -------
    datasets.Dataset
        The rows that keep at least one assistant token.

    Raises
    ------
    TrainingDataError
        ``drop=False`` and a row is too long, or every row is too long.
    """
    lengths = dataset.map(
        _PromptLength(tokenizer, chat_template), batched=True, remove_columns=dataset.column_names,
        desc="measuring prompts",
    )["_prompt_tokens"]
    too_long = [i for i, n in enumerate(lengths) if n >= max_length]
    if not too_long:
        return dataset
    longest = max(lengths)
    if not drop or len(too_long) == len(lengths):
        which = "every row's" if len(too_long) == len(lengths) else f"row {too_long[0]}'s"
        raise TrainingDataError(
            f"max_length={max_length} is shorter than {which} prompt ({lengths[too_long[0]]} tokens; the longest "
            f"prompt has {longest}), so no assistant token would be left to train on. Raise max_length "
            f"(e.g. max_length={2 ** math.ceil(math.log2(longest + 64))}) or remove the long rows"
            + ("" if drop else " (or set drop_long_prompts=True)")
        )
    logger.warning(
        "dropping %d of %d rows whose prompt alone is >= max_length=%d tokens (the longest has %d)",
        len(too_long), len(lengths), max_length, longest,
    )
    keep = sorted(set(range(len(lengths))) - set(too_long))
    return dataset.select(keep)
