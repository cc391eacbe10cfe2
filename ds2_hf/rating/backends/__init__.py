"""Rating backends: local ``transformers``, offline ``vllm``, and servers through ``InferenceClient``.

:func:`make_backend` maps ``RatingConfig.backend`` to a class; any object following
:class:`~ds2_hf.rating.backends.base.RatingBackend` can be passed to :class:`~ds2_hf.rating.Rater` instead.
"""

from __future__ import annotations

from .base import (
    AuthenticationError,
    FatalBackendError,
    RatingBackend,
    RawResult,
    ServerUnreachableError,
)


def make_backend(config, *, api_key: str | None = None) -> RatingBackend:
    """The backend object for ``config.backend`` (models and clients load lazily, on first use)."""
    if config.backend == "transformers":
        from .transformers import TransformersBackend

        return TransformersBackend(config)
    if config.backend == "vllm":
        from .vllm import VLLMBackend

        return VLLMBackend(config)
    from .remote import RemoteBackend

    return RemoteBackend(config, api_key=api_key)


__all__ = [
    "AuthenticationError", "FatalBackendError", "RatingBackend", "RawResult", "ServerUnreachableError", "make_backend",
]
