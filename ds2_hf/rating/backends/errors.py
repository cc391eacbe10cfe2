"""What can go wrong when rating, classified by exception *type* (never by class names as strings).

Two families:

* :class:`FatalBackendError` and its subclasses stop the run at once, before or between requests: no retry can fix
  them. Configuration errors (:class:`ConfigurationError`: bad credentials, a server that is not there, a URL or
  model that does not exist, ``HF_HUB_OFFLINE`` set for a Hugging Face endpoint) are the user's to fix; the CLI
  prints their one-line message and exits non-zero. Ratings finished before one is raised stay cached.
* A failed *request* is classified by :func:`classify` into a :class:`Failure`: timeouts and dropped connections
  are retried with backoff, then recorded as that row's ``rating_error``; a connection that cannot be made before
  the server ever answered is the configuration error :class:`ServerUnreachableError`.

Examples
--------
>>> from ds2_hf.rating.backends.errors import Failure, classify
>>> classify(TimeoutError("read timed out")), classify(ConnectionResetError())
(<Failure.TIMEOUT: 'timeout'>, <Failure.DROPPED: 'connection: dropped'>)
>>> from huggingface_hub.errors import OfflineModeIsEnabled
>>> classify(OfflineModeIsEnabled("offline mode is enabled"))  # a ConnectionError, but not a dropped connection
<Failure.OFFLINE: 'offline'>
"""

from __future__ import annotations

import enum
import socket
from functools import lru_cache


class FatalBackendError(RuntimeError):
    """An error that no retry can fix: the run stops, finished ratings stay cached."""


class ConfigurationError(FatalBackendError):
    """The setup is wrong (credentials, URL, model name, offline mode): nothing will work until the user fixes it."""


class AuthenticationError(ConfigurationError):
    """The server rejected the credentials (HTTP 401/403), or a key the server needs is missing."""


class ServerUnreachableError(ConfigurationError):
    """No connection could be made to the server."""


class EndpointNotFoundError(ConfigurationError):
    """HTTP 404: the URL or the served model name is wrong."""


class OfflineModeError(ConfigurationError):
    """``HF_HUB_OFFLINE`` forbids the Hugging Face endpoint the configuration names."""


class Failure(enum.Enum):
    """Why a request produced no response. The value is the reason recorded in ``rating_error``."""

    TIMEOUT = "timeout"
    CONNECT = "connect"  # no connection could be made (refused, no such host, no answer to the handshake)
    DROPPED = "connection: dropped"
    OFFLINE = "offline"
    OTHER = "other"


@lru_cache(maxsize=1)
def _rules() -> tuple[tuple[tuple[type[BaseException], ...], Failure], ...]:
    """(exception types, failure) pairs, most specific first. ``httpx`` types are included when it is installed
    (the transport of :mod:`~ds2_hf.rating.backends.remote` raises only those when it is)."""
    from huggingface_hub.errors import OfflineModeIsEnabled

    from ..._import_utils import is_available

    connect: tuple[type[BaseException], ...] = (ConnectionRefusedError, socket.gaierror)
    timeout: tuple[type[BaseException], ...] = (TimeoutError,)
    dropped: tuple[type[BaseException], ...] = (ConnectionError,)
    if is_available("httpx"):
        import httpx

        connect += (httpx.ConnectError, httpx.ConnectTimeout, httpx.ProxyError)
        timeout += (httpx.TimeoutException,)
        dropped += (httpx.NetworkError, httpx.RemoteProtocolError)
    # OfflineModeIsEnabled is a ConnectionError and ConnectTimeout a timeout: order matters
    return (((OfflineModeIsEnabled,), Failure.OFFLINE), (connect, Failure.CONNECT), (timeout, Failure.TIMEOUT),
            (dropped, Failure.DROPPED))


def classify(err: BaseException) -> Failure:
    """The :class:`Failure` of an exception raised while sending a request (its cause chain is followed).

    Parameters
    ----------
    err : BaseException
        What the HTTP client raised.

    Returns
    -------
    Failure
        ``OTHER`` when no rule matches the exception or any exception in its ``__cause__`` / ``__context__`` chain.
    """
    seen: set[int] = set()
    current: BaseException | None = err
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        for types, failure in _rules():
            if isinstance(current, types):
                return failure
        current = current.__cause__ or current.__context__
    return Failure.OTHER
