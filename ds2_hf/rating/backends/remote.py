"""Rating through a chat-completions server: TGI / Inference Endpoints, vLLM, OpenAI, any compatible server.

The request body is the server kind's :class:`~ds2_hf.rating.backends.chat.Dialect` (``config.backend``); it is
posted with ``httpx`` to ``<base_url>/chat/completions``. (Not through ``huggingface_hub.InferenceClient``: its
shared session refuses every request while ``HF_HUB_OFFLINE=1`` is set, a loopback server included, and offline
machines are where a local server is most used.)

Requests run concurrently (``max_concurrency`` threads) and each result is handed to the rater, which stores it,
the moment its request completes, so a killed run repeats at most the requests in flight. Failures are classified
by exception type (:mod:`~ds2_hf.rating.backends.errors`):

* 429, 5xx, timeouts and dropped connections are retried with exponential backoff and jitter, honouring
  ``Retry-After``; a request that still fails becomes a per-row failure with its reason;
* 401/403 (credentials), 404 (wrong URL or model), a connection that cannot be made before the server ever
  answered (refused, unknown host, no answer to the handshake within 10 s), and ``HF_HUB_OFFLINE`` with a Hugging
  Face endpoint stop the run at once with a one-line error.

The API key comes from an argument or an environment variable and is never printed, logged, stored or pickled.
"""

from __future__ import annotations

import contextlib
import email.utils
import logging
import os
import random
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from typing import Any
from urllib.parse import urlparse

from ..._import_utils import require
from .base import OnResult, RawResult
from .chat import DIALECTS, RowFailure, chat_url, error_reason, parse_response
from .errors import (
    AuthenticationError,
    EndpointNotFoundError,
    Failure,
    FatalBackendError,
    OfflineModeError,
    ServerUnreachableError,
    classify,
)

logger = logging.getLogger(__name__)

_RETRY_STATUS = {408, 425, 429, 500, 502, 503, 504, 529}
_HF_HOSTS = ("huggingface.co", "hf.co", "huggingface.cloud", "hf.space")


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


def _hub_offline() -> bool:
    from huggingface_hub import constants

    return bool(constants.is_offline_mode())


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
        self.dialect = DIALECTS[config.backend]
        self.url = chat_url(config.base_url)
        self.__api_key = api_key
        self._sleep = sleep
        self._client = None
        self._lock = threading.Lock()
        self._answered = threading.Event()  # the server has answered once: a refused connection is now transient

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

    def check(self) -> None:
        """Raise the configuration errors visible before any request: no key for the OpenAI API, offline mode with
        a Hugging Face endpoint."""
        cfg = self.config
        if not cfg.base_url and not self._key():
            raise AuthenticationError(
                f"backend='openai' without base_url calls the OpenAI API, which needs a key: set the environment "
                f"variable {cfg.resolved_api_key_env()} or pass api_key=..."
            )
        host = (urlparse(self.url).hostname or "").lower()
        if any(host == h or host.endswith("." + h) for h in _HF_HOSTS) and _hub_offline():
            raise OfflineModeError(
                f"HF_HUB_OFFLINE is set, but base_url {cfg.base_url!r} is a Hugging Face endpoint: unset "
                "HF_HUB_OFFLINE to rate there, or serve the model locally and pass its URL"
            )

    def client(self):
        """The ``httpx.Client`` (made once, after :meth:`check`)."""
        with self._lock:
            if self._client is None:
                self.check()
                httpx = require("httpx", extra="rate", purpose="rating through a server")
                key = self._key()
                n = self.config.max_concurrency
                timeout = self.config.timeout
                self._client = httpx.Client(
                    timeout=httpx.Timeout(timeout, connect=min(timeout, 10.0)), follow_redirects=True,
                    headers={"Authorization": f"Bearer {key}"} if key else None,
                    limits=httpx.Limits(max_connections=n, max_keepalive_connections=n),
                )
            return self._client

    def close(self) -> None:
        with self._lock:
            if self._client is not None:
                self._client.close()
            self._client = None

    # --- one request ---------------------------------------------------------------------------------------
    def post(self, body: dict[str, Any]) -> tuple[Any, int]:
        """POST ``body`` with retries: ``(response JSON, retries)``.

        Raises
        ------
        FatalBackendError
            A configuration error (see the module docstring), or the server became unreachable for good.
        RowFailure
            This request failed for good (the row's ``rating_error``).
        """
        attempt = 0
        while True:
            try:
                resp = self.client().post(self.url, json=body)
            except FatalBackendError:
                raise
            except Exception as err:  # classified by type; anything unknown is this row's failure
                reason, wait_for = self._transport_failure(err, attempt).value, None
            else:
                self._answered.set()
                if resp.status_code < 400:
                    return resp.json(), attempt
                reason, wait_for = self._status_failure(resp, attempt), _retry_after(resp.headers)
            if attempt >= self.config.max_retries:
                if reason == Failure.CONNECT.value:
                    raise self._unreachable(attempt + 1) from None
                raise RowFailure(reason, attempt) from None
            delay = min(self.config.backoff_max, self.config.backoff_base * 2**attempt) * (0.5 + random.random() / 2)
            delay = delay if wait_for is None else wait_for  # the server may say when to come back
            attempt += 1
            logger.debug("request failed (%s); retry %d/%d in %.2fs", reason, attempt, self.config.max_retries, delay)
            self._sleep(delay)

    def _transport_failure(self, err: BaseException, attempt: int) -> Failure:
        failure = classify(err)
        if failure is Failure.OFFLINE:
            raise OfflineModeError(f"HF_HUB_OFFLINE blocked the request to {self.url}: {self._scrub(str(err))}")
        if failure is Failure.CONNECT and not self._answered.is_set():
            raise self._unreachable(attempt + 1) from None  # nothing ever answered there: a configuration error
        if failure is Failure.OTHER:
            raise RowFailure(f"error: {self._scrub(type(err).__name__ + ': ' + str(err))[:200]}", attempt) from None
        return failure

    def _status_failure(self, resp, attempt: int) -> str:
        """The reason of an HTTP error answer worth retrying; raises for the others."""
        cfg, status = self.config, resp.status_code
        where = cfg.base_url or "api.openai.com"
        if status in (401, 403):
            raise AuthenticationError(
                f"the server at {where} rejected the credentials (HTTP {status}). Put a valid API key in the "
                f"environment variable {cfg.resolved_api_key_env()!s} (or pass `api_key=` to Rater / choose another "
                "variable with `api_key_env=`, CLI `--api-key-env`). The key itself is not shown."
            )
        if status == 404:
            raise EndpointNotFoundError(
                f"HTTP 404 from {where}: check `base_url` (it should end in /v1 for an OpenAI-compatible server) and "
                f"that the model {cfg.model!r} is served there"
            )
        if status not in _RETRY_STATUS:
            raise RowFailure(error_reason(status, self._scrub(resp.text or "")), attempt)
        return f"http_{status}"

    def _unreachable(self, attempts: int) -> ServerUnreachableError:
        cfg = self.config
        return ServerUnreachableError(
            f"cannot connect to {cfg.base_url or 'the OpenAI API'} (backend={cfg.backend!r}, {attempts} attempt(s)). "
            "Is the server running and is `base_url` right (e.g. 'http://localhost:8000/v1')? Finished ratings are "
            "cached; re-run to resume."
        )

    def payload(self, conversation: str, mode: str) -> dict:
        """The JSON body rating one sample (also posted by the Ray engine's request actors)."""
        return self.dialect.body(self.config, conversation, mode)

    def parse(self, resp, mode: str, retries: int = 0) -> RawResult:
        """A chat-completions response -> :class:`RawResult`; :class:`RowFailure` when unusable."""
        return parse_response(resp, mode, prefilled=self.dialect.prefilled, retries=retries)

    def rate_one(self, conversation: str, mode: str) -> RawResult:
        """Rate one sample now, in this thread (retries included); raises only :class:`FatalBackendError`."""
        try:
            resp, retries = self.post(self.payload(conversation, mode))
            return self.parse(resp, mode, retries)
        except RowFailure as f:
            return RawResult(error=f.reason, retries=f.retries)
        except FatalBackendError:
            raise
        except Exception as err:  # a malformed response must not take the run down
            return RawResult(error=f"bad_response: {self._scrub(type(err).__name__ + ': ' + str(err))[:200]}")

    # --- fan-out -------------------------------------------------------------------------------------------
    def _run(self, conversations: Sequence[str], mode: str, on_result: OnResult) -> None:
        """Rate every conversation, ``max_concurrency`` at a time; ``on_result`` runs in this thread as each
        request completes (not in batches), so what the rater stores is never behind what the server answered."""
        self.client()  # configuration errors before any request
        if not conversations:
            return
        with ThreadPoolExecutor(max_workers=self.config.max_concurrency, thread_name_prefix="ds2-rate") as pool:
            futures = {pool.submit(self.rate_one, c, mode): i for i, c in enumerate(conversations)}
            delivered = set()
            try:
                for fut in as_completed(futures):
                    on_result(futures[fut], fut.result())  # re-raises FatalBackendError
                    delivered.add(fut)
            except BaseException:
                for fut in futures:
                    fut.cancel()
                for fut in futures:  # requests already sent (Ctrl-C, a fatal error elsewhere): keep their answers
                    if fut not in delivered and not fut.cancelled():
                        with contextlib.suppress(Exception):
                            on_result(futures[fut], fut.result())
                raise

    def generate(self, conversations: Sequence[str], on_result: OnResult) -> None:
        self._run(conversations, "generate", on_result)

    def score(self, conversations: Sequence[str], on_result: OnResult) -> None:
        self._run(conversations, "logprobs", on_result)
