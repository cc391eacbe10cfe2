"""How a command reports a failure: one line ``ds2 <command>: error: ...``, an exit status, no traceback.

=====================================================  ======  =====================================================
error                                                  status  meaning
=====================================================  ======  =====================================================
:class:`ds2_hf.validation.InputError`, ``ValueError``,   2     a usage error: a bad argument, option or input
``KeyError`` (a missing column), a missing or                  (the message names it and the fix)
unreadable path, ``ImportError`` (a missing extra)
``ds2_hf.PushError``, the rating backends'               1     a runtime failure: the Hub or a server refused or
``FatalBackendError``, a connection that cannot be             could not be reached
made (``ConnectionError``, ``httpx(2).TransportError``,
``requests.ConnectionError``), another ``OSError``
``KeyboardInterrupt``                                   130    interrupted
anything else                                            --    a bug: the traceback is shown
=====================================================  ======  =====================================================

``ds2 --debug <command>`` shows the traceback of every error.

Examples
--------
>>> explain(KeyError("column 'rating' not found"))
(2, "column 'rating' not found")
>>> explain(PermissionError(13, "Permission denied", "/data/pool.jsonl"))[0]
2
>>> explain(AttributeError("a bug")) is None
True
"""

from __future__ import annotations

import sys

USAGE, FAILURE, INTERRUPTED = 2, 1, 130

_NETWORK_HINT = ("a network connection failed: check the address, the network, HF_ENDPOINT (the Hub's address) or "
                 "set HF_HUB_OFFLINE=1 to work from local files only")


def _loaded(module: str, *names: str) -> tuple[type, ...]:
    """The classes ``module.name`` of a module that is already imported (an error of a module never imported
    cannot have been raised)."""
    mod = sys.modules.get(module)
    out = []
    for name in names:
        obj = mod
        for part in name.split("."):
            obj = getattr(obj, part, None)
        if isinstance(obj, type):
            out.append(obj)
    return tuple(out)


def _network_errors() -> tuple[type, ...]:
    return (ConnectionError, TimeoutError, *_loaded("httpx", "TransportError"), *_loaded("httpx2", "TransportError"),
            *_loaded("requests", "exceptions.ConnectionError", "exceptions.Timeout"))


def _runtime_errors() -> tuple[type, ...]:
    return (*_loaded("ds2_hf.publish.push", "PushError"),
            *_loaded("ds2_hf.rating.backends.errors", "FatalBackendError"),
            *_loaded("huggingface_hub.errors", "HfHubHTTPError"))


def _path_message(err: OSError) -> str:
    where = f"{err.filename!r}" if err.filename else "a path"
    if isinstance(err, PermissionError):
        return f"cannot access {where}: permission denied; make it readable / writable, or choose another path"
    return f"{err.strerror or err}: {where}; check the path"


def explain(err: BaseException) -> tuple[int, str] | None:
    """The exit status and the one-line message for ``err``, or None for an error that is a bug.

    Parameters
    ----------
    err : BaseException

    Returns
    -------
    (int, str) or None
        ``(2, message)`` for a usage error, ``(1, message)`` for a runtime failure, ``(130, ...)`` for an
        interruption; None when the traceback should be shown.
    """
    from ..validation.errors import InputError

    if isinstance(err, KeyboardInterrupt):
        return INTERRUPTED, "interrupted"
    if isinstance(err, (InputError, ImportError)):
        return USAGE, str(err)
    if isinstance(err, KeyError):  # a missing column: str() of a KeyError is the repr of its message
        return USAGE, str(err.args[0]) if len(err.args) == 1 else str(err)
    if isinstance(err, (FileNotFoundError, PermissionError, IsADirectoryError, NotADirectoryError)):
        return USAGE, _path_message(err) if err.strerror else str(err)
    if isinstance(err, _runtime_errors()):
        return FAILURE, str(err)
    if isinstance(err, _network_errors()):
        return FAILURE, f"{err or type(err).__name__} ({_NETWORK_HINT})"
    if isinstance(err, ValueError):
        return USAGE, str(err)
    if isinstance(err, OSError):
        return FAILURE, str(err)
    return None
