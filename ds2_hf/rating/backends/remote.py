"""Rating through a server with ``huggingface_hub.InferenceClient``: TGI, Inference Endpoints, vLLM, OpenAI.

Three dialects of the same ``/v1/chat/completions`` API:

=================  =========================================================  ====================================
backend            structured output                                          logprobs mode
=================  =========================================================  ====================================
``tgi``            ``response_format`` JSON schema (TGI grammar)              answer generated greedily; the
                                                                              top-logprobs at the overall score
``openai``         ``response_format`` ``json_schema`` (OpenAI) / JSON mode   same as ``tgi``
                   (other OpenAI-compatible servers at a ``base_url``)
``vllm-server``    ``structured_outputs`` / ``guided_json`` (``extra_body``)  answer *prefilled* with the prefix
                                                                              (``continue_final_message``): one
                                                                              generated token's top-logprobs
=================  =========================================================  ====================================

Requests run concurrently (``max_concurrency`` threads). 429, 5xx, timeouts and dropped connections are retried
with exponential backoff and jitter, honouring ``Retry-After``. A request that still fails becomes a per-row
failure with a reason; 401/403 (credentials), 404 (wrong URL or model) and a server that refuses connections
stop the run with a clear error. The API key comes from an argument or an environment variable and is never
printed, logged, stored or pickled.
"""

from __future__ import annotations

import email.utils
import logging
import math
import os
import random
import re
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait
from typing import Any

from ..parsing import JSON_KEYS
from ..prompt import json_schema
from .base import AuthenticationError, FatalBackendError, OnResult, RawResult, ServerUnreachableError

logger = logging.getLogger(__name__)

_RETRY_STATUS = {408, 425, 429, 500, 502, 503, 504, 529}
_SCORE_STRINGS = frozenset(str(s) for s in range(1, 11))
_DIGITS = frozenset("0123456789")
_OVERALL_AT = re.compile(r'"?overall[ _]?rating"?\s*:\s*"?\s*$', re.IGNORECASE)


class _RowFailure(Exception):
    def __init__(self, reason: str, retries: int = 0):
        super().__init__(reason)
        self.reason, self.retries = reason, retries


def _get(obj: Any, name: str, default=None):
    if isinstance(obj, dict):
        return obj.get(name, default)
    return getattr(obj, name, default)


def _retry_after(headers) -> float | None:
    value = headers.get("retry-after") if headers is not None else None
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(value)
            return max(0.0, when.timestamp() - time.time())
        except (TypeError, ValueError):
            return None


def _kind(err: BaseException) -> str:
    """'timeout', 'connect' (nothing listening), 'transport' (dropped connection) or 'other'."""
    for cls in type(err).__mro__:
        name = cls.__name__
        if "Timeout" in name:
            return "timeout"
        if name in ("ConnectError", "ConnectionRefusedError", "NewConnectionError"):
            return "connect"
        if name in ("RemoteProtocolError", "ReadError", "WriteError", "NetworkError", "ConnectionResetError",
                    "ConnectionError", "ProtocolError", "TransportError", "BrokenPipeError"):
            return "transport"
    cause = err.__cause__ or err.__context__
    return _kind(cause) if cause is not None and cause is not err else "other"


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
    """
    probs = [0.0] * 11  # index 1..10
    for alt in top:
        t = str(_get(alt, "token", "")).strip()
        if t in _SCORE_STRINGS:
            probs[int(t)] += math.exp(float(_get(alt, "logprob")))
    if probs[10] == 0.0 and following:
        q = {}
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


def parse_response(resp, mode: str, *, prefilled: bool, retries: int = 0) -> RawResult:
    """A chat-completions response (object or JSON dict) -> :class:`RawResult`.

    ``prefilled``: the answer continues the prefix (vLLM ``continue_final_message``), so the score is the first
    generated token; otherwise it is the number after ``"Overall rating":`` in the generated JSON. Raises
    ``_RowFailure`` when the answer holds no usable score distribution.
    """
    p, c = _usage(resp)
    if mode == "generate":
        text = _get(_get(_get(resp, "choices")[0], "message"), "content")
        return RawResult(text=text or "", prompt_tokens=p, completion_tokens=c, retries=retries)
    content = _get(_get(_get(resp, "choices")[0], "logprobs"), "content") or []
    if prefilled:
        pos = 0 if content else None
    else:
        pos, seen = None, ""
        for i, item in enumerate(content):
            if _OVERALL_AT.search(seen) and str(_get(item, "token", "")).strip()[:1] in _DIGITS:
                pos = i
                break
            seen += str(_get(item, "token", ""))
    if pos is None:
        raise _RowFailure("logprobs: the answer has no overall-rating number to read probabilities at", retries)
    chosen = str(_get(content[pos], "token", "")).strip()
    following = _get(content[pos + 1], "top_logprobs") if chosen == "1" and pos + 1 < len(content) else None
    dist, mass = distribution_from_top_logprobs(_get(content[pos], "top_logprobs") or [], following)
    if dist is None:
        raise _RowFailure("logprobs: no score token 1-10 among the top alternatives", retries)
    return RawResult(distribution=dist, score_mass=mass, prompt_tokens=p, completion_tokens=c, retries=retries)


class RemoteBackend:
    """Rate through a chat-completions server (see the module docstring).

    Parameters
    ----------
    config : RatingConfig
        ``backend`` in ``{"tgi", "openai", "vllm-server"}``.
    api_key : str, optional
        Overrides the environment variable ``config.resolved_api_key_env()``.
    sleep : callable, optional
        The function that waits between retries (tests pass a recorder).
    """

    def __init__(self, config, *, api_key: str | None = None, sleep: Callable[[float], None] = time.sleep):
        self.config = config
        self.__api_key = api_key
        self._sleep = sleep
        self._client = None
        self._lock = threading.Lock()

    def identity(self) -> dict:
        return {"backend": self.config.backend, "model": self.config.model}

    def __getstate__(self):
        return {"config": self.config}

    def __setstate__(self, state):
        self.__init__(state["config"])

    def __repr__(self) -> str:
        return f"RemoteBackend(backend={self.config.backend!r}, model={self.config.model!r}, base_url={self.config.base_url!r})"

    # --- client --------------------------------------------------------------------------------------------
    def _key(self) -> str | None:
        if self.__api_key:
            return self.__api_key
        env = self.config.resolved_api_key_env()
        return os.environ.get(env) if env else None

    def _scrub(self, text: str) -> str:
        key = self._key()
        return text.replace(key, "***") if key else text

    def client(self):
        with self._lock:
            if self._client is None:
                from huggingface_hub import InferenceClient

                cfg = self.config
                key = self._key()
                if cfg.base_url:
                    self._client = InferenceClient(base_url=cfg.base_url, api_key=key or "-", timeout=cfg.timeout)
                else:  # OpenAI itself
                    if not key:
                        raise AuthenticationError(
                            f"backend='openai' without base_url calls the OpenAI API, which needs a key: set the "
                            f"environment variable {cfg.resolved_api_key_env()} or pass api_key=..."
                        )
                    self._client = InferenceClient(provider="openai", api_key=key, timeout=cfg.timeout)
            return self._client

    def close(self) -> None:
        self._client = None

    # --- requests ------------------------------------------------------------------------------------------
    def _structured(self) -> tuple[dict, dict]:
        """(chat_completion kwargs, extra_body) that constrain the answer to the JSON schema."""
        cfg = self.config
        if not cfg.structured_output:
            return {}, {}
        if cfg.backend == "vllm-server":
            schema = json_schema()
            return {}, {"structured_outputs": {"json": schema}, "guided_json": schema}
        if cfg.backend == "openai" and not cfg.base_url:
            schema = {"type": "object", "properties": {k: {"type": "integer"} for k in JSON_KEYS},
                      "required": list(JSON_KEYS), "additionalProperties": False}
            return {"response_format": {"type": "json_schema",
                                        "json_schema": {"name": "ds2_rating", "schema": schema, "strict": True}}}, {}
        # TGI (and any server behind a base_url): the client sends TGI's {"type": "json_object", "value": schema}
        return {"response_format": {"type": "json_schema", "json_schema": {"name": "ds2_rating", "schema": json_schema()}}}, {}

    def _chat(self, messages: list[dict], **kwargs):
        cfg = self.config
        extra = kwargs.pop("extra_body", None) or {}
        if cfg.seed is not None:
            kwargs.setdefault("seed", cfg.seed)
        return self.client().chat_completion(messages, model=cfg.model or None, extra_body=extra or None, **kwargs)

    def _with_retries(self, call: Callable[[], Any]) -> tuple[Any, int]:
        cfg = self.config
        attempt = 0
        while True:
            try:
                return call(), attempt
            except FatalBackendError:
                raise
            except Exception as err:  # classified below; anything unknown is a per-row failure
                status = getattr(getattr(err, "response", None), "status_code", None)
                if status is not None:
                    self._raise_if_fatal(status, err)
                    if status not in _RETRY_STATUS:
                        raise _RowFailure(self._http_reason(status, err), attempt) from None
                    reason, wait_for = f"http_{status}", _retry_after(getattr(err.response, "headers", None))
                else:
                    kind = _kind(err)
                    if kind == "other":
                        raise _RowFailure(f"error: {self._scrub(type(err).__name__ + ': ' + str(err))[:200]}", attempt) from None
                    reason, wait_for = kind, None
                if attempt >= cfg.max_retries:
                    if reason == "connect":
                        raise ServerUnreachableError(
                            f"cannot connect to {cfg.base_url or 'the OpenAI API'} (backend={cfg.backend!r}) after "
                            f"{attempt + 1} attempts: {type(err).__name__}. Is the server running and is "
                            "`base_url` right (e.g. 'http://localhost:8000/v1')? Finished ratings are cached; "
                            "re-run to resume."
                        ) from None
                    raise _RowFailure(reason if reason != "transport" else "connection: dropped", attempt) from None
                delay = min(cfg.backoff_max, cfg.backoff_base * 2**attempt) * (0.5 + random.random() / 2)
                if wait_for is not None:  # the server said when to come back
                    delay = wait_for
                attempt += 1
                logger.debug("request failed (%s); retry %d/%d in %.2fs", reason, attempt, cfg.max_retries, delay)
                self._sleep(delay)

    def _raise_if_fatal(self, status: int, err: BaseException) -> None:
        cfg = self.config
        if status in (401, 403):
            env = cfg.resolved_api_key_env()
            raise AuthenticationError(
                f"the server at {cfg.base_url or 'api.openai.com'} rejected the credentials (HTTP {status}). Put a "
                f"valid API key in the environment variable {env!s} (or pass `api_key=` to Rater / choose "
                "another variable with `api_key_env=`, CLI `--api-key-env`). The key itself is not shown."
            ) from None
        if status == 404:
            raise FatalBackendError(
                f"HTTP 404 from {cfg.base_url or 'api.openai.com'}: check `base_url` (it should end in /v1 for an "
                f"OpenAI-compatible server) and that the model {cfg.model!r} is served there"
            ) from None

    def _http_reason(self, status: int, err: BaseException) -> str:
        body = ""
        try:
            body = err.response.text  # type: ignore[attr-defined]
        except Exception:
            pass
        body = self._scrub(str(body or err))
        if re.search(r"context|too long|maximum.*length|max_tokens|token limit", body, re.IGNORECASE):
            return f"context_length: HTTP {status}: {body[:200]}"
        return f"http_{status}: {body[:200]}"

    def request(self, conversation: str, mode: str) -> tuple[list[dict], dict, dict]:
        """``(messages, chat_completion kwargs, extra_body)`` of the request rating one sample in ``mode``."""
        cfg = self.config
        if mode == "logprobs":
            if cfg.backend == "vllm-server":
                messages = cfg.prompt.prefixed_messages(conversation)
                extra = {"continue_final_message": True, "add_generation_prompt": False}
                kwargs = {"max_tokens": 2}
            else:
                messages = cfg.prompt.messages(conversation)
                kwargs, extra = self._structured()
                kwargs["max_tokens"] = cfg.max_new_tokens
            return messages, {**kwargs, "temperature": 0.0, "logprobs": True, "top_logprobs": cfg.top_logprobs}, extra
        kwargs, extra = self._structured()
        sampling = {"temperature": cfg.temperature if cfg.do_sample else 0.0}
        if cfg.do_sample:
            sampling["top_p"] = cfg.top_p
            if cfg.backend == "vllm-server":
                extra = {**extra, "top_k": cfg.top_k}
        return cfg.prompt.messages(conversation), {"max_tokens": cfg.max_new_tokens, **sampling, **kwargs}, extra

    def payload(self, conversation: str, mode: str) -> dict:
        """The JSON body of that request, as ``InferenceClient`` sends it (for engines that post it themselves)."""
        cfg = self.config
        messages, kwargs, extra = self.request(conversation, mode)
        rf = kwargs.get("response_format")
        if cfg.base_url and rf and rf.get("type") == "json_schema":  # InferenceClient sends TGI's grammar dialect
            kwargs = {**kwargs, "response_format": {"type": "json_object", "value": rf["json_schema"]["schema"]}}
        body = {"model": cfg.model or "dummy", "messages": messages, **kwargs}
        if cfg.seed is not None:
            body["seed"] = cfg.seed
        return {**body, "stream": False, **extra}

    def parse(self, resp, mode: str, retries: int = 0) -> RawResult:
        """A chat-completions response (object or JSON dict) -> :class:`RawResult`; ``_RowFailure`` when unusable."""
        return parse_response(resp, mode, prefilled=self.config.backend == "vllm-server", retries=retries)

    def _guarded(self, one: Callable[[str], RawResult], conversation: str) -> RawResult:
        """``one(conversation)`` with row failures as results; only :class:`FatalBackendError` propagates."""
        try:
            return one(conversation)
        except _RowFailure as f:
            return RawResult(error=f.reason, retries=f.retries)
        except FatalBackendError:
            raise
        except Exception as err:  # a malformed response must not take the run down
            return RawResult(error=f"bad_response: {self._scrub(type(err).__name__ + ': ' + str(err))[:200]}")

    def rate_one(self, conversation: str, mode: str) -> RawResult:
        """Rate one sample now, in this thread (retries included); raises only :class:`FatalBackendError`."""
        self.client()
        return self._guarded(lambda c: self._one(c, mode), conversation)

    def _one(self, conversation: str, mode: str) -> RawResult:
        messages, kwargs, extra = self.request(conversation, mode)
        resp, retries = self._with_retries(lambda: self._chat(messages, extra_body=extra, **kwargs))
        return self.parse(resp, mode, retries)

    # --- fan-out -------------------------------------------------------------------------------------------
    def _run(self, conversations: Sequence[str], one: Callable[[str], RawResult], on_result: OnResult) -> None:
        self.client()  # fail fast on a missing key
        if not conversations:
            return

        def task(i: int) -> tuple[int, RawResult]:
            return i, self._guarded(one, conversations[i])

        with ThreadPoolExecutor(max_workers=self.config.max_concurrency, thread_name_prefix="ds2-rate") as pool:
            pending = {pool.submit(task, i) for i in range(len(conversations))}
            try:
                while pending:
                    done, pending = wait(pending, return_when=FIRST_EXCEPTION, timeout=1.0)
                    for fut in done:
                        i, res = fut.result()  # re-raises FatalBackendError
                        on_result(i, res)
            except BaseException:
                for fut in pending:
                    fut.cancel()
                raise

    def generate(self, conversations: Sequence[str], on_result: OnResult) -> None:
        self._run(conversations, lambda c: self._one(c, "generate"), on_result)

    def score(self, conversations: Sequence[str], on_result: OnResult) -> None:
        self._run(conversations, lambda c: self._one(c, "logprobs"), on_result)
