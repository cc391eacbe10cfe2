"""Rating on Ray Data: the requests (or the vLLM engines) run on a Ray cluster; everything else is the plain path.

``rate(ds, config, engine="ray", ray=RayOptions(...))`` (CLI ``ds2 rate ... --engine ray``) swaps the backend of
the :class:`~ds2_hf.rating.Rater` for :class:`RayBackend`, which builds a Ray Data LLM processor
(``ray.data.llm.build_processor``):

====================  ===========================================================================================
``config.backend``    processor
====================  ===========================================================================================
``"openai"``,         ``HttpRequestProcessorConfig``: ``concurrency`` request actors post the same chat-completions
``"tgi"``,            body as the plain remote backend (:meth:`RemoteBackend.payload`) to ``base_url``; retries on
``"vllm-server"``     429 / 5xx with exponential backoff (``max_retries``, ``backoff_base``).
``"vllm"``            ``vLLMEngineProcessorConfig``: ``concurrency`` vLLM replicas (data parallel; tensor / pipeline
                      parallelism in ``engine_kwargs``) on GPU workers, the chat template applied by Ray's chat
                      template stage, structured output (``structured_outputs``) and logprobs in the sampling
                      parameters.
====================  ===========================================================================================

Before the Ray run, the driver sends the first pending request itself through the plain remote backend, so a
wrong URL, model name or API key stops with the plain path's clear error before any Ray work starts. What stays
with the :class:`~ds2_hf.rating.Rater` in the driver, unchanged: rendering rows to conversations, the
DS2 prompt, the rating cache (so a re-run sends no request for a row that already has a rating: the cache key
is the row's id), parsing both modes, failure records (null + reason, never 0), compression, statistics and the
column contract; ``rate`` returns a ``datasets.Dataset``. Results are stored in the cache as they stream back
from Ray, so an interrupted run resumes. A request whose retries Ray's HTTP stage exhausts stops the Ray run
(Ray's HTTP stage has no per-row failure); the ratings finished until then are cached, and re-running resumes.

Examples
--------
>>> from ds2_hf.rating.ray_engine import RayOptions
>>> RayOptions(concurrency=4, batch_size=32).concurrency
4
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field

from .._import_utils import require
from .backends.base import OnResult, RawResult
from .backends.chat import DIALECTS, RowFailure, error_reason, parse_response
from .backends.errors import FatalBackendError
from .backends.remote import RemoteBackend

logger = logging.getLogger("ds2_hf.rating")

ENGINES = ("local", "ray")


@dataclass(frozen=True)
class RayOptions:
    """How the rating work is spread over a Ray cluster.

    Parameters
    ----------
    concurrency : int, optional
        Servers: request actors; each sends one request at a time (Ray's HTTP stage awaits a batch's requests
        in turn), so this is the number of requests in flight. Default ``config.max_concurrency``, as the plain
        remote backend. vLLM: engine replicas (data parallel; default 1), each on
        ``tensor_parallel_size * pipeline_parallel_size`` GPUs.
    num_cpus : float, optional
        CPUs reserved per request actor and per parsing task (default 0.125: they wait on the network, so
        eight share a core).
    batch_size : int, default 16
        Rows per Ray Data batch handed to an actor.
    qps : int, optional
        Servers: requests per second per actor (rate limit).
    engine_kwargs : dict
        vLLM engine arguments (``tensor_parallel_size``, ``pipeline_parallel_size``, ``max_model_len``,
        ``gpu_memory_utilization``, ...); ``max_model_len`` defaults to ``max_input_tokens + max_new_tokens``.
    accelerator_type : str, optional
        vLLM: the GPU type to schedule on (``"A100"``, ``"H100"``...).
    address : str, optional
        The Ray cluster to join (``"auto"`` on a cluster node); default: the running Ray, else a local one.
    """

    concurrency: int | None = None
    num_cpus: float | None = None
    batch_size: int = 16
    qps: int | None = None
    engine_kwargs: dict = field(default_factory=dict)
    accelerator_type: str | None = None
    address: str | None = None

    def __post_init__(self) -> None:
        for name in ("concurrency", "batch_size"):
            value = getattr(self, name)
            if value is not None and int(value) < 1:
                raise ValueError(f"RayOptions.{name}={value!r} must be a positive integer")
        if self.num_cpus is not None and not self.num_cpus > 0:
            raise ValueError(f"RayOptions.num_cpus={self.num_cpus!r} must be positive")


# --- rows in, rows out: plain functions, shipped to Ray workers ----------------------------------------------
class _HttpPre:
    def __init__(self, config, mode: str):
        self.remote, self.mode = RemoteBackend(config), mode

    def __call__(self, row: dict) -> dict:
        return {"i": row["i"], "payload": self.remote.payload(row["text"], self.mode)}


def _http_post(row: dict) -> dict:
    return {"i": row["i"], "response": json.dumps(row["http_response"])}


class _VllmPre:
    def __init__(self, config, mode: str):
        self.config, self.mode = config, mode

    def __call__(self, row: dict) -> dict:
        cfg = self.config
        if self.mode == "logprobs":  # answer prefill: the next token is the score (as vllm-server)
            messages = cfg.prompt.prefixed_messages(row["text"])
            params = {"max_tokens": 2, "temperature": 0.0, "logprobs": cfg.top_logprobs}
        else:
            messages = cfg.prompt.messages(row["text"])
            params = {"max_tokens": cfg.max_new_tokens, "seed": cfg.seed,
                      "temperature": cfg.temperature if cfg.do_sample else 0.0}
            if cfg.do_sample:
                params.update(top_p=cfg.top_p, top_k=cfg.top_k)
            if cfg.structured_output:
                from .prompt import json_schema

                params["structured_outputs"] = {"json": json_schema()}
        return {"i": row["i"], "messages": messages, "sampling_params": params}


def vllm_response(row: dict) -> dict:
    """A Ray vLLM output row as a chat-completions response dict (logprobs in the OpenAI layout)."""
    content = []
    for step in row.get("logprobs") or []:
        alts = sorted(step.values(), key=lambda a: a.get("rank") or 0)
        top = [{"token": a.get("decoded_token") or "", "logprob": float(a["logprob"])} for a in alts]
        chosen = next((a for a in alts if a.get("rank") == 1), alts[0] if alts else {})
        content.append({"token": chosen.get("decoded_token") or "", "top_logprobs": top})
    return {"choices": [{"message": {"content": row.get("generated_text") or ""}, "logprobs": {"content": content}}],
            "usage": {"prompt_tokens": int(row.get("num_input_tokens") or 0),
                      "completion_tokens": int(row.get("num_generated_tokens") or 0)}}


def _vllm_post(row: dict) -> dict:
    return {"i": row["i"], "response": json.dumps(vllm_response(row))}


def to_raw(response: dict, mode: str, *, prefilled: bool) -> RawResult:
    """One processor answer -> :class:`RawResult` (an error body or an unusable answer is a per-row failure)."""
    error = response.get("error") if isinstance(response, dict) else None
    if error is not None:
        return RawResult(error=error_reason(None, str(error.get("message", error) if isinstance(error, dict) else error)))
    try:
        return parse_response(response, mode, prefilled=prefilled)
    except RowFailure as f:
        return RawResult(error=f.reason)
    except (KeyError, IndexError, TypeError, AttributeError) as err:
        return RawResult(error=f"bad_response: {type(err).__name__}: {err}"[:200])


class RayBackend:
    """A :class:`~ds2_hf.rating.backends.base.RatingBackend` that rates through a Ray Data LLM processor.

    Parameters
    ----------
    config : RatingConfig
        ``backend`` one of ``"openai"``, ``"tgi"``, ``"vllm-server"`` (HTTP) or ``"vllm"`` (GPU engines).
    options : RayOptions, optional
    api_key : str, optional
        Server API key (default: the environment variable of ``config.api_key_env``). It reaches the request
        actors as the ``Authorization`` header and is never logged or stored by ds2-hf.
    """

    def __init__(self, config, options: RayOptions | None = None, *, api_key: str | None = None):
        if config.backend == "transformers":
            raise ValueError(
                "engine='ray' rates through a server (backend 'openai', 'tgi' or 'vllm-server') or vLLM engines on "
                "GPU workers (backend 'vllm'); the local transformers backend runs with engine='local'"
            )
        if config.backend != "vllm" and not config.base_url:
            raise ValueError(f"engine='ray' with backend={config.backend!r} needs `base_url=` (the server's /v1 URL)")
        self.config = config
        self.options = options or RayOptions()
        self._remote = RemoteBackend(config, api_key=api_key) if config.is_remote else None
        self._processors: dict[str, object] = {}

    def identity(self) -> dict:
        return {"backend": self.config.backend, "model": self.config.model, "engine": "ray"}

    def __getstate__(self):
        return {"config": self.config, "options": self.options}

    def __setstate__(self, state):
        self.__init__(state["config"], state["options"])

    def _ray(self):
        ray = require("ray", extra="ray", purpose="rating on Ray Data (engine='ray')")
        if not ray.is_initialized():
            ray.init(address=self.options.address, ignore_reinit_error=True, log_to_driver=False)
        return ray

    def processor(self, mode: str):
        """The Ray Data LLM processor of ``mode`` (built once)."""
        if mode not in self._processors:
            self._ray()
            llm = require("ray.data.llm", extra="ray", purpose="rating on Ray Data (engine='ray')")
            cfg, opt = self.config, self.options
            if cfg.backend == "vllm":
                engine = {"max_model_len": cfg.max_input_tokens + cfg.max_new_tokens, **opt.engine_kwargs}
                pc = llm.vLLMEngineProcessorConfig(
                    model_source=cfg.model, engine_kwargs=engine, concurrency=opt.concurrency or 1,
                    batch_size=opt.batch_size, accelerator_type=opt.accelerator_type, should_continue_on_error=True)
                pre, post = _VllmPre(cfg, mode), _vllm_post
            else:
                key = self._remote._key()
                pc = llm.HttpRequestProcessorConfig(
                    url=self._remote.url,
                    headers={"Authorization": f"Bearer {key}"} if key else None, qps=opt.qps,
                    max_retries=cfg.max_retries, base_retry_wait_time_in_s=cfg.backoff_base,
                    concurrency=opt.concurrency or cfg.max_concurrency, batch_size=opt.batch_size,
                    http_request_stage={"num_cpus": opt.num_cpus or 0.125})
                pre, post = _HttpPre(cfg, mode), _http_post
            # HTTP: the row functions take the actors' small CPU share, so Ray fuses them with the requests
            small = None if cfg.backend == "vllm" else {"num_cpus": opt.num_cpus or 0.125}
            self._processors[mode] = llm.build_processor(pc, preprocess=pre, postprocess=post,
                                                         preprocess_map_kwargs=small, postprocess_map_kwargs=small)
        return self._processors[mode]

    def _run(self, conversations: Sequence[str], mode: str, on_result: OnResult) -> None:
        if not conversations:
            return
        start = 0
        if self._remote is not None:  # one request from here first: a wrong URL, model or key stops here, clearly
            on_result(0, self._remote.rate_one(conversations[0], mode))
            start = 1
            if len(conversations) == 1:
                return
        ray = self._ray()
        data = ray.data.from_items([{"i": i, "text": conversations[i]} for i in range(start, len(conversations))])
        # the vLLM engine stage prefills the answer in logprobs mode (_VllmPre); servers as their dialect says
        prefilled = self.config.backend == "vllm" or DIALECTS[self.config.backend].prefilled
        try:
            for row in self.processor(mode)(data).iter_rows():
                if row.get("__inference_error__"):
                    on_result(int(row["i"]), RawResult(error=f"engine: {str(row['__inference_error__'])[:200]}"))
                    continue
                on_result(int(row["i"]), to_raw(json.loads(row["response"]), mode, prefilled=prefilled))
        except FatalBackendError:
            raise
        except Exception as err:  # the Ray run failed (a request out of retries, a dead actor, ...)
            message = self._remote._scrub(str(err)) if self._remote else str(err)
            raise FatalBackendError(
                f"the Ray Data rating run stopped: {type(err).__name__}: {message[:300]}. Ratings finished before "
                "it stopped are cached; re-run the same command to resume."
            ) from None

    def generate(self, conversations: Sequence[str], on_result: OnResult) -> None:
        self._run(conversations, "generate", on_result)

    def score(self, conversations: Sequence[str], on_result: OnResult) -> None:
        self._run(conversations, "logprobs", on_result)

    def close(self) -> None:
        self._processors.clear()
