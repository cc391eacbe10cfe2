"""The DS2 rating prompt (paper, Appendix B.2) and its rendering through a model's own chat template.

The prompt is a pair of chat messages: a *system* message stating the criteria (rarity, complexity,
informativeness, an overall rating, all on 1-10) and a *user* message asking for a JSON answer followed by the
sample, rendered by :mod:`ds2_hf.formats`. No special tokens are ever written by hand: local backends render the
messages with ``tokenizer.apply_chat_template``, servers with their own chat API. In ``logprobs`` mode an
*answer prefix* (default ``{"Overall rating": ``) is appended as the start of the assistant turn
(``continue_final_message``), so the next token is the score.

Every text here is overridable through :class:`PromptTemplate`; :meth:`PromptTemplate.hash` enters every cache
key and the dataset card, so changing one word of the prompt never re-uses ratings made with another.

Examples
--------
>>> from ds2_hf.rating.prompt import PromptTemplate
>>> t = PromptTemplate()
>>> msgs = t.messages("###user: Add 2 and 3.\\n###assistant: 5\\n")
>>> [m["role"] for m in msgs]
['system', 'user']
>>> "Overall rating" in msgs[1]["content"]
True
>>> len(t.hash())
16
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import asdict, dataclass

from .parsing import JSON_KEYS

SYSTEM_PROMPT = (
    "As a data quality estimator, your task is to assess the quality of data sample based on the criteria: "
    "Rarity, Complexity, Informativeness.\n"
    "Please rate the sample on a scale from 1 to 10 for each criterion, and return an overall rating on a scale "
    "from 1 to 10, where a higher score indicates higher level of quality.\n"
    "Ensure that the ratings are not overly concentrated around a specific score. If multiple samples have similar "
    "qualities, consider spreading the scores more evenly to reflect subtle differences."
)

USER_PROMPT = (
    "Now, please carefully evaluate the following data sample and return the integral evaluation scores using "
    "the JSON format:\n"
    "{{\n"
    '    "Rarity": <number, 1-10>,\n'
    '    "Complexity": <number, 1-10>,\n'
    '    "Informativeness": <number, 1-10>,\n'
    '    "Overall rating": <number, 1-10>\n'
    "}}\n"
    "Remember: the output must strictly follow this format, without any deviations.\n"
    "## Data sample (conversation):\n"
    "{conversation}"
)

ANSWER_PREFIX = '{"Overall rating": '


@dataclass(frozen=True)
class PromptTemplate:
    """The texts of the DS2 rating prompt.

    Parameters
    ----------
    system : str
        System message (the criteria). Default: the paper's.
    user : str
        User message; a :meth:`str.format` template with one field, ``{conversation}`` (literal braces doubled).
        Default: the paper's JSON instruction followed by the sample.
    answer_prefix : str
        Start of the assistant turn in ``logprobs`` mode; the token after it is read as the score. Must end
        where a number starts (default ``'{"Overall rating": '``).
    """

    system: str = SYSTEM_PROMPT
    user: str = USER_PROMPT
    answer_prefix: str = ANSWER_PREFIX

    def __post_init__(self) -> None:
        try:
            self.user.format(conversation="x")
        except (KeyError, IndexError, ValueError) as err:
            raise ValueError(
                f"PromptTemplate.user must be a str.format template whose only field is {{conversation}} "
                f"(double literal braces: '{{{{' and '}}}}'); formatting failed with {err!r}"
            ) from None
        if "{conversation}" not in self.user:
            raise ValueError("PromptTemplate.user must contain the field {conversation}, where the sample goes")

    def messages(self, conversation: str) -> list[dict[str, str]]:
        """The chat messages rating one sample: ``[system, user]`` (system omitted when empty)."""
        msgs = [{"role": "system", "content": self.system}] if self.system else []
        msgs.append({"role": "user", "content": self.user.format(conversation=conversation)})
        return msgs

    def prefixed_messages(self, conversation: str) -> list[dict[str, str]]:
        """``messages`` plus the assistant answer prefix (rendered with ``continue_final_message``)."""
        return self.messages(conversation) + [{"role": "assistant", "content": self.answer_prefix}]

    def hash(self) -> str:
        """A 16-hex-digit digest of every text of the template (enters cache keys and the dataset card)."""
        blob = json.dumps(asdict(self), sort_keys=True).encode()
        return hashlib.sha256(blob).hexdigest()[:16]


def json_schema(low: int = 1, high: int = 10) -> dict:
    """The JSON schema of the answer, for structured output on servers (vLLM, TGI, OpenAI)."""
    return {
        "type": "object",
        "properties": {k: {"type": "integer", "minimum": low, "maximum": high} for k in JSON_KEYS},
        "required": list(JSON_KEYS),
        "additionalProperties": False,
    }


class ChatTemplateMissingError(ValueError):
    """The tokenizer has no chat template and none was given."""


def render_chat(tokenizer, messages: list[dict[str, str]], *, continue_final: bool = False, chat_template: str | None = None) -> str:
    """Render messages with the tokenizer's chat template (or ``chat_template``) to the model's prompt text.

    Parameters
    ----------
    tokenizer : transformers.PreTrainedTokenizerBase
    messages : list of dict
        ``{"role", "content"}`` messages.
    continue_final : bool
        Leave the last (assistant) message open, so generation continues it.
    chat_template : str, optional
        A Jinja chat template overriding the tokenizer's.

    Raises
    ------
    ChatTemplateMissingError
        When neither the tokenizer nor the argument provides a template.
    """
    template = chat_template or getattr(tokenizer, "chat_template", None)
    if not template:
        name = getattr(tokenizer, "name_or_path", "") or type(tokenizer).__name__
        raise ChatTemplateMissingError(
            f"the tokenizer of {name!r} has no chat template, so the rating prompt cannot be rendered in the "
            "model's own format. Use an instruction-tuned (chat) model, or pass a Jinja template with "
            "`RatingConfig(chat_template=...)` (CLI: `--chat-template FILE`)."
        )
    kwargs = {"continue_final_message": True} if continue_final else {"add_generation_prompt": True}
    return tokenizer.apply_chat_template(messages, tokenize=False, chat_template=template, **kwargs)


@dataclass(frozen=True)
class FittedPrompt:
    """A rendered rating prompt within a token budget (see :func:`fit_prompt`).

    Attributes
    ----------
    text : str or None
        The prompt text, or None when even an empty sample does not fit.
    n_tokens : int
        Its length in tokens (of the last attempt when it does not fit).
    truncated : bool
        The sample was cut to fit.
    error : str or None
        ``"context_length: ..."`` when no prompt fits.
    """

    text: str | None
    n_tokens: int
    truncated: bool = False
    error: str | None = None


def fit_prompt(tokenizer, conversation: str, render: Callable[[str], str], *, budget: int) -> FittedPrompt:
    """Render the prompt of ``conversation`` in at most ``budget`` tokens, cutting the *sample* when needed.

    The prompt is ``render(conversation)`` (messages through the chat template). When it is too long, the sample is
    cut at a token boundary to what the budget leaves after the template's own tokens, and re-rendered; a few rounds
    absorb tokenizers that merge differently at the cut. One rule for every local backend (transformers, vLLM).

    Parameters
    ----------
    tokenizer : transformers.PreTrainedTokenizerBase
    conversation : str
        The sample, rendered by :mod:`ds2_hf.formats`.
    render : callable
        Sample text -> prompt text.
    budget : int
        Largest prompt length in tokens (>= 1).

    Returns
    -------
    FittedPrompt
        The prompt, its length and whether it was cut; or an ``error`` when the template alone fills the budget.

    Examples
    --------
    >>> class Chars:  # a tokenizer with one token per character
    ...     def __call__(self, text, add_special_tokens=False): return {"input_ids": [ord(c) for c in text]}
    ...     def decode(self, ids, skip_special_tokens=True): return "".join(map(chr, ids))
    >>> fit_prompt(Chars(), "abcdefgh", lambda s: f"<{s}>", budget=6)
    FittedPrompt(text='<abcd>', n_tokens=6, truncated=True, error=None)
    >>> print(fit_prompt(Chars(), "abc", lambda s: f"<<{s}>>", budget=4).error)
    context_length: the prompt without the sample takes 4 tokens, more than the budget of 4; raise ...
    """

    def count(text: str) -> int:
        return len(tokenizer(text, add_special_tokens=False)["input_ids"])

    text = render(conversation)
    n = count(text)
    if n <= budget:
        return FittedPrompt(text, n)
    sample_ids = tokenizer(conversation, add_special_tokens=False)["input_ids"]
    overhead = n - len(sample_ids)
    keep = budget - overhead
    for _ in range(4):
        if keep <= 0:
            return FittedPrompt(None, n, True, (
                f"context_length: the prompt without the sample takes {overhead} tokens, more than the budget of "
                f"{budget}; raise max_input_tokens or shorten the prompt template"))
        text = render(tokenizer.decode(sample_ids[:keep], skip_special_tokens=True))
        n = count(text)
        if n <= budget:
            return FittedPrompt(text, n, True)
        keep -= n - budget
    return FittedPrompt(None, n, True, f"context_length: could not fit the sample into {budget} tokens")
