"""The chat-completions protocol of rating servers: one :class:`Dialect` per server kind, no I/O.

Every server speaks ``POST <base_url>/chat/completions``; they differ in how the answer is constrained to the
rating JSON and how a score distribution is read:

=================  =========================================================  ====================================
dialect            structured output                                          logprobs mode
=================  =========================================================  ====================================
``tgi``            ``response_format`` ``{"type": "json_object", "value":     answer generated greedily; the
                   schema}`` (TGI grammar)                                    top-logprobs at the overall score
``openai``         ``response_format`` ``json_schema`` (strict) on the        same as ``tgi``
                   OpenAI API; TGI's form at any other ``base_url``
``vllm-server``    ``structured_outputs`` + ``guided_json``                   answer *prefilled* with the prefix
                                                                              (``continue_final_message``): one
                                                                              generated token's top-logprobs
=================  =========================================================  ====================================

:meth:`Dialect.body` is the one request body, posted by the plain remote backend and by the Ray engine alike;
:func:`parse_response` is the one reader of the answers.

Examples
--------
>>> from ds2_hf.rating import RatingConfig
>>> from ds2_hf.rating.backends.chat import DIALECTS, chat_url
>>> cfg = RatingConfig(model="tiny", backend="vllm-server", base_url="http://127.0.0.1:8000/v1", mode="logprobs")
>>> body = DIALECTS[cfg.backend].body(cfg, "###user: hi\\n", cfg.mode)
>>> body["continue_final_message"], body["max_tokens"], body["messages"][-1]["role"]
(True, 2, 'assistant')
>>> chat_url("https://my-endpoint.example.cloud"), chat_url("http://127.0.0.1:8000/v1/")
('https://my-endpoint.example.cloud/v1/chat/completions', 'http://127.0.0.1:8000/v1/chat/completions')
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from typing import Any, ClassVar
from urllib.parse import urlparse

from ..parsing import JSON_KEYS
from ..prompt import json_schema
from .base import RawResult

OPENAI_URL = "https://api.openai.com/v1"

_SCORE_STRINGS = frozenset(str(s) for s in range(1, 11))
_DIGITS = frozenset("0123456789")
_OVERALL_AT = re.compile(r'"?overall[ _]?rating"?\s*:\s*"?\s*$', re.IGNORECASE)
_CONTEXT_LENGTH = re.compile(r"context|too long|maximum.*length|max_tokens|token limit", re.IGNORECASE)


class RowFailure(Exception):
    """One row has no usable answer; ``reason`` becomes its ``rating_error``."""

    def __init__(self, reason: str, retries: int = 0):
        super().__init__(reason)
        self.reason, self.retries = reason, retries


def chat_url(base_url: str | None) -> str:
    """The chat-completions URL of a server (``base_url`` ending in ``/v1`` or not), the OpenAI API when None."""
    parsed = urlparse(base_url or OPENAI_URL)
    path = parsed.path.rstrip("/")
    if not path.endswith("/chat/completions"):
        path += "/chat/completions" if path.endswith("/v1") else "/v1/chat/completions"
    return parsed._replace(path=path).geturl()


def error_reason(status: int | None, message: str) -> str:
    """The ``rating_error`` of a server's error answer (HTTP ``status`` when known): ``context_length: ...`` when
    the message says the prompt was too long, else ``http_<status>: ...`` (``http_error: ...``)."""
    if _CONTEXT_LENGTH.search(message):
        return f"context_length: {'' if status is None else f'HTTP {status}: '}{message[:200]}"
    return f"{'http_error' if status is None else f'http_{status}'}: {message[:200]}"


class Dialect:
    """How one kind of server is asked for a rating: the JSON body of ``POST /chat/completions``.

    Subclasses set :attr:`name` and :attr:`prefilled` and override :meth:`structured`, :meth:`sampling` and
    :meth:`logprobs_request`; :meth:`body` assembles them.
    """

    name: ClassVar[str] = ""
    #: In ``logprobs`` mode the answer continues the answer prefix, so the score is the first generated token.
    prefilled: ClassVar[bool] = False

    def structured(self, config) -> dict[str, Any]:
        """Top-level body fields constraining the answer to the rating JSON (``{}`` without structured output)."""
        if not config.structured_output:
            return {}
        return {"response_format": {"type": "json_object", "value": json_schema()}}

    def sampling(self, config) -> dict[str, Any]:
        """Sampling fields beyond ``temperature`` and ``top_p`` (generate mode with ``do_sample``)."""
        return {}

    def logprobs_request(self, config, conversation: str) -> tuple[list[dict], dict[str, Any]]:
        """``(messages, fields)`` of a ``logprobs``-mode request, before the shared logprob fields."""
        return config.prompt.messages(conversation), {**self.structured(config), "max_tokens": config.max_new_tokens}

    def body(self, config, conversation: str, mode: str) -> dict[str, Any]:
        """The JSON body rating ``conversation`` in ``mode`` (``"generate"`` or ``"logprobs"``)."""
        if mode == "logprobs":
            messages, fields = self.logprobs_request(config, conversation)
            fields.update(temperature=0.0, logprobs=True, top_logprobs=config.top_logprobs)
        else:
            messages = config.prompt.messages(conversation)
            temperature = config.temperature if config.do_sample else 0.0
            fields = {"max_tokens": config.max_new_tokens, "temperature": temperature}
            if config.do_sample:
                fields.update(top_p=config.top_p, **self.sampling(config))
            fields.update(self.structured(config))
        body = {"model": config.model or "dummy", "messages": messages, **fields, "stream": False}
        if config.seed is not None:
            body["seed"] = config.seed
        return body


class TGIDialect(Dialect):
    """Text Generation Inference and Inference Endpoints: the grammar as ``response_format`` ``json_object``."""

    name = "tgi"


class OpenAIDialect(Dialect):
    """The OpenAI API (strict ``json_schema``) and other OpenAI-compatible servers behind a ``base_url``."""

    name = "openai"

    def structured(self, config) -> dict[str, Any]:
        if not config.structured_output or config.base_url:
            return super().structured(config)
        schema = {"type": "object", "properties": {k: {"type": "integer"} for k in JSON_KEYS},
                  "required": list(JSON_KEYS), "additionalProperties": False}
        return {"response_format": {"type": "json_schema",
                                    "json_schema": {"name": "ds2_rating", "schema": schema, "strict": True}}}


class VLLMServerDialect(Dialect):
    """``vllm serve``: vLLM's structured-output fields, ``top_k``, and the answer prefilled in logprobs mode."""

    name = "vllm-server"
    prefilled = True

    def structured(self, config) -> dict[str, Any]:
        if not config.structured_output:
            return {}
        schema = json_schema()
        return {"structured_outputs": {"json": schema}, "guided_json": schema}

    def sampling(self, config) -> dict[str, Any]:
        return {"top_k": config.top_k}

    def logprobs_request(self, config, conversation: str) -> tuple[list[dict], dict[str, Any]]:
        return config.prompt.prefixed_messages(conversation), {
            "max_tokens": 2, "continue_final_message": True, "add_generation_prompt": False}


#: Backend name -> its dialect (the keys are :data:`ds2_hf.rating.config.REMOTE_BACKENDS`).
DIALECTS: dict[str, Dialect] = {d.name: d for d in (TGIDialect(), OpenAIDialect(), VLLMServerDialect())}


# --- answers -----------------------------------------------------------------------------------------------------
def _get(obj: Any, name: str, default=None):
    if isinstance(obj, dict):
        return obj.get(name, default)
    return getattr(obj, name, default)


def distribution_from_top_logprobs(top: Sequence[Any], following: Sequence[Any] | None = None):
    """Score distribution from one position's top-logprob alternatives (see :mod:`ds2_hf.rating.scores`).

    Parameters
    ----------
    top : sequence of {"token", "logprob"}
        Alternatives at the score position.
    following : sequence of {"token", "logprob"}, optional
        Alternatives at the next position, when the generated token there was ``"1"`` (resolves a two-token
        ``"10"``). Without it, and without ``"10"`` among the alternatives, ``P(10)`` counts as 0.

    Returns
    -------
    (list of 10 float, float) or (None, 0.0)
        The renormalised distribution and the valid-score mass, or ``None`` when no score token is present.

    Examples
    --------
    >>> import math
    >>> dist, mass = distribution_from_top_logprobs([{"token": "7", "logprob": math.log(0.6)},
    ...                                              {"token": "8", "logprob": math.log(0.2)}])
    >>> [round(p, 2) for p in dist[6:8]], round(mass, 2)
    ([0.75, 0.25], 0.8)
    """
    probs = [0.0] * 11  # index 1..10
    for alt in top:
        t = str(_get(alt, "token", "")).strip()
        if t in _SCORE_STRINGS:
            probs[int(t)] += math.exp(float(_get(alt, "logprob")))
    if probs[10] == 0.0 and following:
        q: dict[str, float] = {}
        for alt in following:
            t = str(_get(alt, "token", "")).strip()
            if t in _DIGITS:
                q[t] = q.get(t, 0.0) + math.exp(float(_get(alt, "logprob")))
        p1 = probs[1]
        probs[10] = p1 * q.get("0", 0.0)
        probs[1] = p1 * max(0.0, 1.0 - sum(q.values()))
    mass = sum(probs[1:])
    if mass <= 0:
        return None, 0.0
    return [p / mass for p in probs[1:]], min(1.0, mass)


def _usage(resp) -> tuple[int, int]:
    usage = _get(resp, "usage")
    if usage is None:
        return 0, 0
    return int(_get(usage, "prompt_tokens", 0) or 0), int(_get(usage, "completion_tokens", 0) or 0)


def _score_position(content: Sequence[Any], prefilled: bool) -> int | None:
    """Index of the generated token holding the overall score: the first one after a prefilled prefix, else the
    first digit after ``"Overall rating":`` in the generated JSON."""
    if prefilled:
        return 0 if content else None
    seen = ""
    for i, item in enumerate(content):
        if _OVERALL_AT.search(seen) and str(_get(item, "token", "")).strip()[:1] in _DIGITS:
            return i
        seen += str(_get(item, "token", ""))
    return None


def parse_response(resp, mode: str, *, prefilled: bool, retries: int = 0) -> RawResult:
    """A chat-completions response (object or JSON dict) -> :class:`RawResult`.

    ``prefilled``: the answer continues the prefix (vLLM ``continue_final_message``), so the score is the first
    generated token; otherwise it is the number after ``"Overall rating":`` in the generated JSON.

    Raises
    ------
    RowFailure
        The answer holds no usable score distribution (``logprobs`` mode).
    """
    p, c = _usage(resp)
    choice = _get(resp, "choices")[0]
    if mode == "generate":
        text = _get(_get(choice, "message"), "content")
        return RawResult(text=text or "", prompt_tokens=p, completion_tokens=c, retries=retries)
    content = _get(_get(choice, "logprobs"), "content") or []
    pos = _score_position(content, prefilled)
    if pos is None:
        raise RowFailure("logprobs: the answer has no overall-rating number to read probabilities at", retries)
    chosen = str(_get(content[pos], "token", "")).strip()
    following = _get(content[pos + 1], "top_logprobs") if chosen == "1" and pos + 1 < len(content) else None
    dist, mass = distribution_from_top_logprobs(_get(content[pos], "top_logprobs") or [], following)
    if dist is None:
        raise RowFailure("logprobs: no score token 1-10 among the top alternatives", retries)
    return RawResult(distribution=dist, score_mass=mass, prompt_tokens=p, completion_tokens=c, retries=retries)
