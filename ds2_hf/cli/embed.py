"""``ds2 embed INPUT OUTPUT``: add a fixed-length, unit-normalised float32 embedding column."""

from __future__ import annotations

import argparse

from .common import (
    add_config_arguments, add_formatter_arguments, add_stage_arguments, check_outputs, config_values,
    formatter_from_args, load_input, stage_report, write_report,
)



def add_parser(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "embed",
        help="add a unit-normalised embedding column",
        description="Embed every row of INPUT and write OUTPUT with a fixed-length, unit-normalised float32 "
        "embedding column. Rows are rendered to text with the DS2 reference template (messages, ShareGPT, Alpaca, "
        "Dolly, prompt/completion and text rows are detected). Offline default: WordLlama (ships with the package); "
        "the paper's model is --backend sentence-transformers --model BAAI/bge-large-en-v1.5.",
        epilog="examples:\n"
        "  ds2 embed pool.jsonl pool_emb.parquet --backend wordllama\n"
        "  ds2 embed pool.jsonl pool_emb.parquet --backend sentence-transformers --pooling mean --device cuda\n"
        "  ds2 embed rated/ embedded/ --backend npy --source vectors.npy",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.set_defaults(func=run)
    return p


def add_arguments(p: argparse.ArgumentParser) -> None:
    from ..embedding import EmbeddingConfig

    add_stage_arguments(p, report="the embedder: backend, model, dimension")
    add_config_arguments(p, EmbeddingConfig, title="embedding (ds2_hf.EmbeddingConfig)", exclude=("formatter",))
    add_formatter_arguments(p, purpose="")
    g = p.add_argument_group("scale out (ds2_hf.embedding.scale)")
    g.add_argument("--engine", choices=("local", "ray", "multi-process"), default="local",
                   help="local (default), ray (an actor pool of embedders on Ray Data) or multi-process "
                   "(Sentence Transformers' pool, one process per --devices entry)")
    g.add_argument("--actors", type=int, default=1, help="ray: actors in the pool (default 1)")
    g.add_argument("--gpus-per-actor", type=float, default=0, help="ray: GPUs per actor (default 0: CPU)")
    g.add_argument("--ray-address", default=None, help="ray: the cluster to join (default: running or local)")
    g.add_argument("--devices", default=None, help="multi-process: comma-separated devices, e.g. cuda:0,cuda:1")
    g.add_argument("--vectors-out", metavar="FILE.npy", help="ray / multi-process: also keep the vectors here "
                   "(an (N, d) .npy for `ds2 curate --embeddings`)")


def run(args: argparse.Namespace) -> int:
    from .. import io
    from ..embedding import EmbeddingConfig, drop_empty, embed
    from ..formats import Formatter
    from ..pipeline import check_text
    from ..report import EmbeddingInfo

    check_outputs(args, args.vectors_out)
    config = EmbeddingConfig(
        **config_values(args, EmbeddingConfig), formatter=formatter_from_args(args) or Formatter(),
    ).resolved()  # "auto" resolved once, so the report names the backend that ran
    dataset = load_input(args.input, split=args.split, what="embed")
    if config.backend_class.encodes_text:  # the rows must render before the model loads
        check_text(dataset, config.formatter, stage="embedding")
    dataset, skipped = drop_empty(dataset, config)  # empty conversations: refused, or left out and recorded
    if args.engine == "ray":
        from ..embedding import embed_on_ray

        out = embed_on_ray(dataset, config, actors=args.actors, gpus_per_actor=args.gpus_per_actor,
                           out_path=args.vectors_out, address=args.ray_address)
    elif args.engine == "multi-process":
        from ..embedding import embed_multi_process

        devices = [d for d in (args.devices or "").split(",") if d]
        out = embed_multi_process(dataset, config, devices=devices, out_path=args.vectors_out)
    else:
        out = embed(dataset, config)
    dest = io.save(out, args.output, overwrite=args.overwrite_output)
    dim = out.features[config.column].length
    write_report(args, stage_report(args, embedding=EmbeddingInfo.from_config(config, dim, skipped=skipped)))
    note = f" ({len(skipped)} empty conversation(s) skipped)" if len(skipped) else ""
    print(f"wrote {len(out)} rows with {config.column!r} ({dim}-d float32) to {dest}{note}")
    return 0
