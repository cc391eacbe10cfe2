"""Configuration of the rating stage: one frozen dataclass, defaults = the paper's."""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass, field, replace
from urllib.parse import urlparse

from ..formats import STYLES, Formatter
from .backends.chat import DIALECTS
from .prompt import PromptTemplate
from .scores import PAPER_COMPRESSION, validate_compression

REMOTE_BACKENDS = tuple(DIALECTS)  # ("tgi", "openai", "vllm-server"): chat-completions servers, one dialect each
BACKENDS = ("transformers", "vllm", *REMOTE_BACKENDS)
MODES = ("generate", "logprobs")

# default environment variable holding the API key, per remote backend
DEFAULT_API_KEY_ENV = {"openai": "OPENAI_API_KEY", "tgi": "HF_TOKEN", "vllm-server": "VLLM_API_KEY"}


@dataclass(frozen=True)
class RatingConfig:
    """Everything that decides how samples are rated.

    Parameters
    ----------
    model : str
        Local backends: a Hub id, a local folder or a ``.gguf`` file (see :mod:`ds2_hf.causal_lm`). Servers: the
        served model name (``"gpt-4o-mini"``, the name given to ``vllm serve``); may be empty for a TGI server or
        Inference Endpoint. :func:`ds2_hf.causal_lm.offline_model` is the small offline default (a weak rater).
    gguf_file : str, optional
        A GGUF file inside the folder (or Hub repository) ``model`` (transformers backend).
    backend : str, default "transformers"
        ``"transformers"`` (local, batched), ``"vllm"`` (offline batch inference), ``"tgi"`` (a TGI server or
        Inference Endpoint), ``"openai"`` (any OpenAI-compatible server, or OpenAI itself when ``base_url`` is
        unset), ``"vllm-server"`` (``vllm serve``: structured output and answer prefill in vLLM's dialect).
    mode : str, default "generate"
        ``"generate"``: the model writes the JSON answer (the paper). ``"logprobs"``: one forward pass after the
        prompt and ``prompt.answer_prefix``; the rating is the expected score under the next-token distribution.
    base_url : str, optional
        Server URL (``http://host:8000/v1`` or an Inference Endpoint URL) for remote backends.
    api_key_env : str, optional
        Environment variable holding the API key (default: ``OPENAI_API_KEY`` / ``HF_TOKEN`` / ``VLLM_API_KEY``).
        A key passed to :class:`~ds2_hf.rating.Rater` directly wins; keys are never stored, logged or pickled.
    prompt : PromptTemplate
        System / user texts and answer prefix (default: the paper's, Appendix B.2). Its hash is in every cache key.
    chat_template : str, optional
        A Jinja chat template overriding the tokenizer's (local backends).
    format, template, style : str
        How rows are rendered to the conversation text (:class:`ds2_hf.formats.Formatter`): format name or
        ``"auto"``, an optional ``str.format`` template over the columns, and the text style (``"reference"``:
        ``###role: content`` lines, as the reference).
    compression : tuple of 10 int, default (0, 0, 0, 0, 1, 2, 3, 4, 5, 5)
        Class of raw overall scores 1..10 (the paper's). Raw scores are kept in ``rating_details``.
    max_new_tokens : int, default 128
        Generation budget (``generate`` mode with free generation).
    do_sample, temperature, top_p, top_k : default True, 1.2, 0.9, 50
        Sampling of the answer, as the reference. ``logprobs`` mode ignores them (it is deterministic).
    seed : int, default 0
        Seed of the local sampler and of servers that accept one.
    structured_output : bool, default True
        Constrain the answer to the JSON schema: a JSON-schema grammar on vLLM / TGI / OpenAI, score-constrained
        decoding of the fixed JSON skeleton on the local transformers backend. Without it the answer is free text
        read by the robust parser.
    max_input_tokens : int, default 2048
        Prompt budget (the reference truncates at 2048). Longer samples are cut to fit and flagged
        ``rating_details.truncated`` (local backends; servers report over-long prompts as a per-row failure).
    batch_size : int, default 8
        Rows per forward pass (local backends).
    dtype, device, load_in_4bit, revision, trust_remote_code
        Local model loading: torch dtype name or ``"auto"``, device (``"cuda"``, ``"cpu"``, default: CUDA if
        available), 4-bit NF4 through bitsandbytes (as the reference), Hub revision, remote code.
    max_concurrency : int, default 8
        Concurrent requests to a server.
    max_retries : int, default 6
        Retries of a request on 429, 5xx, timeouts and dropped connections, with exponential backoff.
    backoff_base, backoff_max : float, default 1.0, 60.0
        First backoff delay and its cap, in seconds. A server's ``Retry-After`` is honoured.
    timeout : float, default 120.0
        Seconds per request (of which at most 10 to connect).
    top_logprobs : int, default 20
        Alternatives per position requested from servers in ``logprobs`` mode (OpenAI allows at most 20, vLLM
        up to its ``--max-logprobs``). Scores outside the returned alternatives count as probability 0.
    cache : bool, default True
        Store every rating in a persistent SQLite cache so interrupted runs resume.
    cache_path : str, optional
        The cache file (default ``$DS2_HF_CACHE/ratings.sqlite`` or ``~/.cache/ds2_hf/ratings.sqlite``).
    cache_durable : bool, default False
        fsync every stored rating (survives power loss, not only a killed process; ~0.5 ms more per row).
    column_prefix : str, default ""
        Prefix of the output columns (``"gpt4o_"`` gives ``gpt4o_rating``...), so raters sit side by side.
    overwrite : bool, default False
        Replace existing output columns instead of refusing.
    """

    model: str = ""
    gguf_file: str | None = None
    backend: str = "transformers"
    mode: str = "generate"
    base_url: str | None = None
    api_key_env: str | None = None
    prompt: PromptTemplate = field(default_factory=PromptTemplate)
    chat_template: str | None = None
    format: str = "auto"
    template: str | None = None
    style: str = "reference"
    compression: tuple[int, ...] = PAPER_COMPRESSION
    max_new_tokens: int = 128
    do_sample: bool = True
    temperature: float = 1.2
    top_p: float = 0.9
    top_k: int = 50
    seed: int = 0
    structured_output: bool = True
    max_input_tokens: int = 2048
    batch_size: int = 8
    dtype: str = "auto"
    device: str | None = None
    load_in_4bit: bool = False
    revision: str | None = None
    trust_remote_code: bool = False
    max_concurrency: int = 8
    max_retries: int = 6
    backoff_base: float = 1.0
    backoff_max: float = 60.0
    timeout: float = 120.0
    top_logprobs: int = 20
    cache: bool = True
    cache_path: str | None = None
    cache_durable: bool = False
    column_prefix: str = ""
    overwrite: bool = False

    def __post_init__(self) -> None:
        if self.backend not in BACKENDS:
            raise ValueError(f"backend={self.backend!r} is not supported; expected one of {BACKENDS}")
        if self.mode not in MODES:
            raise ValueError(f"mode={self.mode!r} is not supported; expected one of {MODES}")
        if self.backend in ("transformers", "vllm") and not self.model:
            raise ValueError(f"backend={self.backend!r} needs `model=` (a Hub id or a local folder)")
        if self.gguf_file is not None and self.backend != "transformers":
            raise ValueError(f"gguf_file= is read by the transformers backend only, not backend={self.backend!r}")
        if self.backend in REMOTE_BACKENDS and not self.base_url and self.backend != "openai":
            raise ValueError(
                f"backend={self.backend!r} needs `base_url=` (e.g. 'http://localhost:8000/v1' or an Inference "
                "Endpoint URL)"
            )
        url = urlparse(self.base_url or "")
        if self.base_url and (url.scheme not in ("http", "https") or not url.netloc):
            raise ValueError(
                f"base_url={self.base_url!r} is not an http(s) URL; pass the server's address, e.g. "
                "'http://localhost:8000/v1'"
            )
        if self.backend == "openai" and not self.base_url and not self.model:
            raise ValueError("backend='openai' without base_url talks to OpenAI: pass `model=` (e.g. 'gpt-4o-mini')")
        if self.style not in STYLES:
            raise ValueError(f"style={self.style!r} is not supported; expected one of {STYLES}")
        if not isinstance(self.prompt, PromptTemplate):
            raise TypeError(f"prompt must be a PromptTemplate, got {type(self.prompt).__name__}")
        object.__setattr__(self, "compression", validate_compression(self.compression))
        for name in ("max_new_tokens", "max_input_tokens", "batch_size", "max_concurrency", "top_logprobs"):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"{name}={getattr(self, name)!r} must be a positive integer")
        if self.max_retries < 0:
            raise ValueError(f"max_retries={self.max_retries!r} must be >= 0")
        if not 0 < self.top_p <= 1:
            raise ValueError(f"top_p={self.top_p!r} must be in (0, 1]")
        if self.temperature < 0:
            raise ValueError(f"temperature={self.temperature!r} must be >= 0")

    # --- derived -------------------------------------------------------------------------------------------
    @property
    def is_remote(self) -> bool:
        return self.backend in REMOTE_BACKENDS

    @property
    def model_name(self) -> str:
        """The model as one string: ``model``, or ``model/gguf_file`` for a GGUF file named by folder + file."""
        return os.path.join(self.model, self.gguf_file) if self.gguf_file else self.model

    def formatter(self) -> Formatter:
        return Formatter(format=self.format, template=self.template, style=self.style)

    def resolved_api_key_env(self) -> str | None:
        return self.api_key_env or DEFAULT_API_KEY_ENV.get(self.backend)

    def generation_params(self) -> dict:
        """The parameters that change a rating (enter the cache key)."""
        params: dict = {"structured_output": self.structured_output}
        if self.mode == "generate":
            params.update(
                do_sample=self.do_sample, temperature=self.temperature, top_p=self.top_p, top_k=self.top_k,
                seed=self.seed, max_new_tokens=self.max_new_tokens,
            )
        else:
            params.update(top_logprobs=self.top_logprobs if self.is_remote else None)
        if not self.is_remote:
            params.update(max_input_tokens=self.max_input_tokens, dtype=self.dtype, load_in_4bit=self.load_in_4bit)
        return params

    def namespace(self) -> str:
        """Hash of everything except the sample that decides a rating: backend, model, mode, prompt, parameters."""
        chat = hashlib.sha256(self.chat_template.encode()).hexdigest()[:16] if self.chat_template else None
        blob = json.dumps(
            {
                "backend": self.backend, "model": self.model_name, "revision": self.revision, "mode": self.mode,
                "prompt": self.prompt.hash(), "chat_template": chat, "params": self.generation_params(),
            },
            sort_keys=True,
        )
        return hashlib.sha256(blob.encode()).hexdigest()[:32]

    def resolved_cache_path(self) -> str:
        from .cache import default_cache_path

        return os.fspath(self.cache_path or default_cache_path())

    def replace(self, **changes) -> RatingConfig:
        return replace(self, **changes)

    def columns(self) -> tuple[str, str, str]:
        """Names of the ``rating``, ``rating_details`` and ``rating_error`` columns."""
        from .. import columns as c

        p = self.column_prefix
        return p + c.RATING, p + c.RATING_DETAILS, p + c.RATING_ERROR
