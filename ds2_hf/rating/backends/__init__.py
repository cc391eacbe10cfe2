"""Rating backends: local ``transformers``, offline ``vllm``, and chat-completions servers (one dialect each).

:func:`make_backend` looks ``RatingConfig.backend`` up in :data:`BACKEND_CLASSES`; any object following
:class:`~ds2_hf.rating.backends.base.RatingBackend` can be passed to :class:`~ds2_hf.rating.Rater` instead.
"""

from __future__ import annotations

import importlib

from .base import RatingBackend, RawResult
from .chat import DIALECTS
from .errors import (
    AuthenticationError,
    ConfigurationError,
    EndpointNotFoundError,
    FatalBackendError,
    OfflineModeError,
    ServerUnreachableError,
)

#: Backend name -> ``"module:Class"`` inside this package (imported on first use: torch / vllm / httpx stay lazy).
BACKEND_CLASSES: dict[str, str] = {
    "transformers": "transformers:TransformersBackend",
    "vllm": "vllm:VLLMBackend",
    **{name: "remote:RemoteBackend" for name in DIALECTS},
}


def make_backend(config, *, api_key: str | None = None) -> RatingBackend:
    """The backend object for ``config.backend`` (models and clients load lazily, on first use).

    ``api_key`` reaches the backends that talk to a server and is never stored in the config.
    """
    module, _, name = BACKEND_CLASSES[config.backend].partition(":")
    cls = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    return cls(config, api_key=api_key) if config.is_remote else cls(config)


__all__ = [
    "AuthenticationError", "BACKEND_CLASSES", "ConfigurationError", "EndpointNotFoundError", "FatalBackendError",
    "OfflineModeError", "RatingBackend", "RawResult", "ServerUnreachableError", "make_backend",
]
