"""The rating stage: score every sample with an LLM and the DS2 prompt (paper, App. B), resumably.

``dataset.map(Rater(...), batched=True)`` adds ``rating`` (int8 0..5, null on failure), ``rating_details`` and
``rating_error``. Backends: local ``transformers``, offline ``vllm``, and chat-completions servers, one dialect
each (TGI / Inference Endpoints, vLLM's OpenAI server, OpenAI and compatible servers). Two modes:
``generate`` (the model writes the JSON answer, as the paper) and ``logprobs`` (the expected score under the
next-token distribution after an answer prefix: deterministic, one forward pass).

Examples
--------
>>> from ds2_hf.rating import RatingConfig
>>> cfg = RatingConfig(model="Qwen/Qwen2.5-0.5B-Instruct", mode="logprobs")
>>> cfg.columns()
('rating', 'rating_details', 'rating_error')
"""

from .backends import (
    AuthenticationError,
    ConfigurationError,
    EndpointNotFoundError,
    FatalBackendError,
    OfflineModeError,
    RatingBackend,
    RawResult,
    ServerUnreachableError,
)
from .cache import RatingCache
from .config import BACKENDS, MODES, RatingConfig
from .parsing import JSON_KEYS, RatingParseError, parse_answer
from .prompt import ChatTemplateMissingError, PromptTemplate
from .rater import Rater, rate, rating_features
from .scores import PAPER_COMPRESSION, compress
from .stats import RatingStats

__all__ = [
    "AuthenticationError", "BACKENDS", "ChatTemplateMissingError", "ConfigurationError", "EndpointNotFoundError",
    "FatalBackendError", "JSON_KEYS", "MODES", "OfflineModeError", "PAPER_COMPRESSION", "PromptTemplate", "Rater",
    "RatingBackend", "RatingCache", "RatingConfig", "RatingParseError", "RatingStats", "RawResult",
    "ServerUnreachableError", "compress", "rating_features", "parse_answer", "rate",
]
