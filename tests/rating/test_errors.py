"""Request failures classified by exception type, and the configuration errors that stop a run at once."""

from __future__ import annotations

import socket
import time

import pytest

httpx = pytest.importorskip("httpx")

from huggingface_hub.errors import OfflineModeIsEnabled  # noqa: E402

from ds2_hf.rating import (  # noqa: E402
    AuthenticationError,
    ConfigurationError,
    OfflineModeError,
    Rater,
    RatingConfig,
    ServerUnreachableError,
)
from ds2_hf.rating.backends.errors import Failure, classify  # noqa: E402
from ds2_hf.rating.backends.remote import RemoteBackend  # noqa: E402


def _dead_url() -> str:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()  # nothing listens there now
    return f"http://127.0.0.1:{port}/v1"


@pytest.mark.parametrize("err, failure", [
    (OfflineModeIsEnabled("Cannot reach http://127.0.0.1:1/v1: offline mode is enabled"), Failure.OFFLINE),
    (httpx.ReadTimeout("timed out"), Failure.TIMEOUT),
    (httpx.ConnectTimeout("timed out"), Failure.CONNECT),  # no connection was made
    (TimeoutError(), Failure.TIMEOUT),
    (httpx.ConnectError("[Errno 111] Connection refused"), Failure.CONNECT),
    (ConnectionRefusedError(), Failure.CONNECT),
    (httpx.RemoteProtocolError("Server disconnected without sending a response."), Failure.DROPPED),
    (httpx.ReadError("reset"), Failure.DROPPED),
    (ConnectionResetError(), Failure.DROPPED),
    (BrokenPipeError(), Failure.DROPPED),
    (ValueError("not a network error"), Failure.OTHER),
])
def test_failures_are_classified_by_type(err, failure):
    assert classify(err) is failure


def test_a_wrapped_error_is_classified_by_its_cause():
    try:
        try:
            raise ConnectionRefusedError(111, "refused")
        except ConnectionRefusedError as inner:
            raise RuntimeError("the client failed") from inner
    except RuntimeError as outer:
        assert classify(outer) is Failure.CONNECT


def test_names_do_not_classify():
    """A class whose *name* looks like a network error but whose type is not one stays OTHER."""

    class ConnectError(Exception):
        pass

    class ReadTimeout(Exception):
        pass

    assert classify(ConnectError()) is Failure.OTHER and classify(ReadTimeout()) is Failure.OTHER


def test_offline_mode_is_a_configuration_error_not_a_dropped_connection(monkeypatch):
    """huggingface_hub's OfflineModeIsEnabled (a ConnectionError) stops the run at once instead of 6 retries."""
    cfg = RatingConfig(model="tiny", backend="openai", base_url="http://127.0.0.1:9/v1", cache=False)
    backend = RemoteBackend(cfg, sleep=lambda s: pytest.fail("an offline-mode error must not be retried"))

    class OfflineClient:
        def post(self, *a, **k):
            raise OfflineModeIsEnabled("Cannot reach http://127.0.0.1:9/v1: offline mode is enabled")

    backend._client = OfflineClient()
    with pytest.raises(OfflineModeError, match="HF_HUB_OFFLINE"):
        backend.rate_one("###user: hi\n", "generate")


def test_offline_mode_with_a_hugging_face_endpoint_fails_before_any_request(monkeypatch):
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    cfg = RatingConfig(backend="tgi", base_url="https://abc123.us-east-1.aws.endpoints.huggingface.cloud", cache=False)
    with pytest.raises(OfflineModeError, match="HF_HUB_OFFLINE is set.*Hugging Face endpoint") as info:
        Rater(cfg).rate_texts(["###user: hi\n"])
    assert "\n" not in str(info.value) and isinstance(info.value, ConfigurationError)
    # a local server is not the Hub: offline mode does not stop it (the check passes, no request is sent here)
    RemoteBackend(RatingConfig(model="m", backend="openai", base_url="http://127.0.0.1:9/v1")).check()


def test_refused_connection_before_any_answer_stops_at_once():
    """With the default 6 retries and 1 s backoff the old client waited about a minute; now there is no retry."""
    waits = []
    cfg = RatingConfig(model="m", backend="openai", base_url=_dead_url(), cache=False)
    start = time.perf_counter()
    with pytest.raises(ServerUnreachableError, match="Is the server running") as info:
        Rater(cfg, backend=RemoteBackend(cfg, sleep=waits.append)).rate_texts(["###user: hi\n"] * 3)
    assert waits == [] and time.perf_counter() - start < 5
    assert "1 attempt(s)" in str(info.value) and isinstance(info.value, ConfigurationError)


def test_missing_openai_key_is_an_authentication_error(monkeypatch):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    with pytest.raises(AuthenticationError, match="OPENAI_API_KEY"):
        RemoteBackend(RatingConfig(model="gpt-4o-mini", backend="openai")).check()


@pytest.mark.parametrize("url", ["localhost:8000/v1", "ftp://host/v1", "http://"])
def test_base_url_must_be_an_http_url(url):
    with pytest.raises(ValueError, match="is not an http\\(s\\) URL"):
        RatingConfig(model="m", backend="openai", base_url=url)
