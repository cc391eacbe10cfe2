"""The :class:`Rater` callable (``dataset.map(Rater(...), batched=True)``) and the :func:`rate` one-liner."""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping, Sequence
from typing import Any

from ..columns import check_no_overwrite
from ..formats import FormatError
from .backends import RatingBackend, RawResult, make_backend
from .cache import RatingCache, make_key
from .config import RatingConfig
from .parsing import RatingParseError, parse_answer
from .scores import compress, expected_score, round_score
from .stats import RatingStats, failure_kind

logger = logging.getLogger("ds2_hf.rating")

DETAIL_FIELDS = ("rarity", "complexity", "informativeness", "overall", "expected", "distribution", "score_mass", "truncated")


def details_type():
    """Arrow type of the ``rating_details`` struct column."""
    import pyarrow as pa

    return pa.struct(
        [
            ("rarity", pa.int8()), ("complexity", pa.int8()), ("informativeness", pa.int8()), ("overall", pa.int8()),
            ("expected", pa.float32()), ("distribution", pa.list_(pa.float32())), ("score_mass", pa.float32()),
            ("truncated", pa.bool_()),
        ]
    )


def rating_features(config: RatingConfig | None = None):
    """``datasets.Features`` of the three output columns (pass to ``map(features=...)`` together with the input's)."""
    import datasets

    cfg = config or RatingConfig(model="-")
    r, d, e = cfg.columns()
    return datasets.Features(
        {
            r: datasets.Value("int8"),
            d: {
                "rarity": datasets.Value("int8"), "complexity": datasets.Value("int8"),
                "informativeness": datasets.Value("int8"), "overall": datasets.Value("int8"),
                "expected": datasets.Value("float32"), "distribution": datasets.List(datasets.Value("float32")),
                "score_mass": datasets.Value("float32"), "truncated": datasets.Value("bool"),
            },
            e: datasets.Value("string"),
        }
    )


class Rater:
    """Rate every row of a batch with an LLM: a picklable, config-only ``datasets.map`` callable.

    Adds three columns (names prefixed by ``config.column_prefix``):

    * ``rating``: int8 in 0..5 (the compressed overall score), null when the row could not be rated;
    * ``rating_details``: struct ``rarity``, ``complexity``, ``informativeness``, ``overall`` (int8, 1-10; in
      ``logprobs`` mode only ``overall``, the rounded expectation), ``expected`` (float32 expected score) and
      ``distribution`` (10 float32, P(score = 1..10)) in ``logprobs`` mode, ``score_mass`` (probability of a
      valid score token), ``truncated`` (bool); null on failure;
    * ``rating_error``: null, or why the row has no rating (``"parse: missing key(s) ['Overall rating']..."``,
      ``"format: row 3: the conversation is empty"``, ``"http_503"``, ``"timeout"``, ``"context_length: ..."``).

    Every rating is stored in a persistent cache as soon as it exists, so an interrupted run resumes; failures are
    retried by the next run. The model, client and cache open lazily and are never pickled, so ``datasets``
    fingerprints the rater by its configuration alone.

    Parameters
    ----------
    config : RatingConfig, optional
        The configuration; keyword ``options`` override its fields (or build one).
    api_key : str, optional
        Server API key (default: from the environment variable of ``config.api_key_env``). Never stored in the
        config, pickled or logged; processes started by ``map(num_proc=...)`` read it from the environment.
    backend : RatingBackend or str, optional
        A ready backend object (otherwise made from ``config.backend``), or the name of one (the config field).
    engine : {"local", "ray"}, default "local"
        ``"ray"`` sends the requests (or runs vLLM engines) on a Ray cluster through a Ray Data LLM processor
        (:mod:`ds2_hf.rating.ray_engine`); the cache, parsing and columns are the same.
    ray : RayOptions, optional
        Options of the Ray engine (actors / replicas, batch size, vLLM engine arguments).

    Examples
    --------
    >>> import datasets, ds2_hf                                                     # doctest: +SKIP
    >>> ds = datasets.load_dataset("json", data_files="pool.jsonl", split="train")  # doctest: +SKIP
    >>> rater = ds2_hf.Rater(backend="openai", model="gpt-4o-mini")                 # doctest: +SKIP
    >>> ds = ds.map(rater, batched=True, batch_size=256)                            # doctest: +SKIP
    >>> ds[0]["rating"], ds[0]["rating_details"]["overall"]                         # doctest: +SKIP
    (3, 7)
    """

    def __init__(self, config: RatingConfig | None = None, /, *, api_key: str | None = None,
                 backend: RatingBackend | str | None = None, engine: str = "local", ray=None, **options):
        if isinstance(backend, str):  # the config field `backend` ("transformers", "openai", ...)
            options["backend"], backend = backend, None
        if config is None:
            config = RatingConfig(**options)
        elif options:
            config = config.replace(**options)
        if not isinstance(config, RatingConfig):
            raise TypeError(f"config must be a RatingConfig, got {type(config).__name__}")
        from .ray_engine import ENGINES

        if engine not in ENGINES:
            raise ValueError(f"engine={engine!r} is not supported; expected one of {ENGINES}")
        self.config = config
        self.engine, self.ray_options = engine, ray
        self._api_key = api_key
        self._backend = backend
        self._cache: RatingCache | None = None
        self._memory: dict[str, dict] = {}
        self._rank: int | None = None
        self.stats = RatingStats()

    # --- pickling / fingerprinting: configuration only ---------------------------------------------------------
    def __getstate__(self):
        return {"config": self.config, "engine": self.engine, "ray": self.ray_options}

    def __setstate__(self, state):
        self.__init__(state["config"], engine=state.get("engine", "local"), ray=state.get("ray"))

    def __repr__(self) -> str:
        c = self.config
        return f"Rater(backend={c.backend!r}, model={c.model!r}, mode={c.mode!r})"

    # --- lazy resources ----------------------------------------------------------------------------------------
    @property
    def backend(self) -> RatingBackend:
        if self._backend is None and self.engine == "ray":
            from .ray_engine import RayBackend

            self._backend = RayBackend(self.config, self.ray_options, api_key=self._api_key)
        if self._backend is None:
            config = self.config
            if self._rank is not None and config.backend == "transformers" and config.device in (None, "cuda"):
                import torch

                if torch.cuda.is_available():  # map(with_rank=True, num_proc=n): one GPU per process
                    config = config.replace(device=f"cuda:{self._rank % torch.cuda.device_count()}")
            self._backend = make_backend(config, api_key=self._api_key)
        return self._backend

    @property
    def cache(self) -> RatingCache | None:
        if self._cache is None and self.config.cache:
            self._cache = RatingCache(self.config.resolved_cache_path(), durable=self.config.cache_durable)
        return self._cache

    def close(self) -> None:
        """Release the model / client and the cache connection."""
        if self._backend is not None:
            self._backend.close()
        if self._cache is not None:
            self._cache.close()
            self._cache = None

    # --- core --------------------------------------------------------------------------------------------------
    def _record(self, raw: RawResult) -> tuple[dict | None, str | None]:
        """A backend answer -> (stored result, error)."""
        if raw.error is not None:
            return None, raw.error
        if self.config.mode == "logprobs":
            if not raw.distribution:
                return None, "logprobs: the backend returned no distribution"
            expected = expected_score(raw.distribution)
            return {
                "rarity": None, "complexity": None, "informativeness": None, "overall": round_score(expected),
                "expected": expected, "distribution": [float(p) for p in raw.distribution],
                "score_mass": raw.score_mass, "truncated": raw.truncated,
            }, None
        try:
            rarity, complexity, informativeness, overall = parse_answer(raw.text)
        except RatingParseError as err:
            return None, err.reason
        return {
            "rarity": rarity, "complexity": complexity, "informativeness": informativeness, "overall": overall,
            "expected": None, "distribution": None, "score_mass": None, "truncated": raw.truncated,
        }, None

    def rate_texts(self, conversations: Sequence[str | None], errors: Sequence[str | None] | None = None
                   ) -> list[tuple[dict | None, str | None]]:
        """Rate rendered conversations; ``None`` entries carry a known error from ``errors``.

        Returns
        -------
        list of (details, error)
            ``details`` is the raw result dict (see :data:`DETAIL_FIELDS`), ``error`` a reason string.
        """
        cfg = self.config
        start = time.perf_counter()
        stats = self.stats
        errors = list(errors) if errors is not None else [None] * len(conversations)
        out: list[tuple[dict | None, str | None]] = [(None, None)] * len(conversations)
        namespace = cfg.namespace()
        keys: list[str | None] = [None if c is None else make_key(namespace, c) for c in conversations]
        for i, c in enumerate(conversations):
            if c is None:
                err = errors[i] or "format: no conversation"
                out[i] = (None, err)
                stats.failed[failure_kind(err)] += 1
        wanted = [k for k in dict.fromkeys(k for k in keys if k is not None)]
        found = dict(self._memory)
        if self.cache is not None:
            found.update(self.cache.get_many([k for k in wanted if k not in found]))
        todo = [k for k in wanted if k not in found]
        first_index = {}
        for i, k in enumerate(keys):
            if k is not None:
                first_index.setdefault(k, i)
        todo_texts = [conversations[first_index[k]] for k in todo]
        new: dict[str, tuple[dict | None, str | None]] = {}

        def on_result(j: int, raw: RawResult) -> None:
            details, error = self._record(raw)
            key = todo[j]
            new[key] = (details, error)
            if self.cache is not None:
                self.cache.put_many([(key, details, error)], namespace=namespace)
            elif details is not None:
                self._memory[key] = details
            stats.retries += raw.retries
            stats.prompt_tokens += raw.prompt_tokens
            stats.completion_tokens += raw.completion_tokens

        try:
            if todo:
                run = self.backend.score if cfg.mode == "logprobs" else self.backend.generate
                run(todo_texts, on_result)
        finally:
            stats.seconds += time.perf_counter() - start
        missing = [k for k in todo if k not in new]
        if missing:
            raise RuntimeError(f"backend {type(self.backend).__name__} returned no result for {len(missing)} samples")
        for i, k in enumerate(keys):
            if k is None:
                continue
            if k in found:
                out[i] = (found[k], None)
                stats.cached += 1
            else:
                details, error = new[k]
                out[i] = new[k]
                if error is not None:
                    stats.failed[failure_kind(error)] += 1
                elif first_index[k] == i:
                    stats.rated += 1
                else:
                    stats.cached += 1
            if out[i][0] is not None and out[i][0].get("truncated"):
                stats.truncated += 1
        return out

    def __call__(self, batch: Mapping[str, Sequence[Any]], rank: int | None = None) -> dict[str, Any]:
        """Rate a batch (``datasets.map(..., batched=True)``); returns the three output columns.

        With ``map(..., with_rank=True, num_proc=n)`` each process receives its ``rank`` and the local backend
        puts its model on GPU ``rank % n_gpus`` (the datasets multi-GPU pattern).

        ``datasets`` infers int64 for the rating from Python lists; pass ``features=`` (see :func:`rating_features`) or use
        :func:`rate` for the int8 / float32 column types of the column contract.
        """
        cfg = self.config
        if rank is not None and self._backend is None:
            self._rank = rank
        names = cfg.columns()
        check_no_overwrite(batch.keys(), names, option="column_prefix", overwrite=cfg.overwrite)
        formatter = cfg.formatter()
        rows = formatter.batch_rows(batch)
        conversations: list[str | None] = []
        errors: list[str | None] = []
        for i, row in enumerate(rows):
            try:
                conversations.append(formatter.text(row, where=f"row {i} of the batch"))
                errors.append(None)
            except FormatError as err:
                conversations.append(None)
                errors.append(f"format: {err}")
        results = self.rate_texts(conversations, errors)
        ratings = [None if d is None else compress(int(d["overall"]), cfg.compression) for d, _ in results]
        details = [None if d is None else {f: d.get(f) for f in DETAIL_FIELDS} for d, _ in results]
        return {names[0]: ratings, names[1]: details, names[2]: [e for _, e in results]}


def rate(dataset, config: RatingConfig | None = None, /, *, api_key: str | None = None,
         backend: RatingBackend | str | None = None, batch_size: int | None = None, num_proc: int | None = None,
         desc: str = "Rating", engine: str = "local", ray=None, **options):
    """Rate every row of ``dataset``; return the rated dataset and the run's :class:`RatingStats`.

    Unlike a bare ``dataset.map(Rater(...))``, this always consults the rating cache rather than a ``datasets``
    cache file, so rows that failed in an earlier run are retried and finished ones are re-used.

    Parameters
    ----------
    dataset : datasets.Dataset
    config : RatingConfig, optional
        Keyword ``options`` override its fields (or build one): ``rate(ds, backend="openai", model="gpt-4o-mini")``.
    api_key : str, optional
        Server API key (default: the environment variable of ``config.api_key_env``).
    backend : RatingBackend, optional
        A ready backend object.
    batch_size : int, optional
        Rows per ``map`` batch, which is also how often progress is shown (default: 1024 for vLLM,
        ``8 * max_concurrency`` for servers, ``4 * batch_size`` locally).
    num_proc : int, optional
        Processes for ``map`` (one model per process; statistics then cover the main process only).
    engine : {"local", "ray"}, default "local"
        ``"ray"``: the requests, or vLLM engines, run on a Ray cluster (:mod:`ds2_hf.rating.ray_engine`); each
        ``map`` batch (default 8192 rows) is one Ray Data run.
    ray : RayOptions, optional
        Options of the Ray engine.

    Returns
    -------
    (datasets.Dataset, RatingStats)

    Examples
    --------
    >>> from ds2_hf.rating import rate                                                 # doctest: +SKIP
    >>> rated, stats = rate(ds, backend="vllm-server", model="meta-llama/Llama-3.1-8B-Instruct",
    ...                     base_url="http://localhost:8000/v1", mode="logprobs")      # doctest: +SKIP
    >>> print(stats)                                                                   # doctest: +SKIP
    """
    rater = Rater(config, api_key=api_key, backend=backend, engine=engine, ray=ray, **options)
    cfg = rater.config
    if engine == "ray":
        rater.backend  # a backend the Ray engine cannot run -> clear error before any work
        batch_size = batch_size or 8192
    check_no_overwrite(dataset.column_names, cfg.columns(), option="column_prefix", overwrite=cfg.overwrite)
    cfg.formatter().resolve(dataset.column_names)  # unknown format -> clear error before any model loads
    if backend is None and cfg.backend == "transformers":
        rater.backend.source  # noqa: B018 - a missing model file or an unreachable Hub fails here, in one line
    if batch_size is None:
        batch_size = 1024 if cfg.backend == "vllm" else 8 * cfg.max_concurrency if cfg.is_remote else 4 * cfg.batch_size
    feats = dataset.features.copy()
    for name in cfg.columns():
        feats.pop(name, None)
    feats.update(rating_features(cfg))
    try:
        rated = dataset.map(rater, batched=True, batch_size=batch_size, num_proc=num_proc, desc=desc,
                            features=feats, load_from_cache_file=False)
    finally:
        rater.close()
    logger.info("rating %s (%s, %s): %s", cfg.model or cfg.base_url, cfg.backend, cfg.mode, rater.stats)
    return rated, rater.stats
