"""``ds2 embed INPUT OUTPUT``: add a fixed-length, unit-normalised float32 embedding column."""

from __future__ import annotations

import argparse

from ..columns import EMBEDDING
from .common import add_output_options, check_outputs, stage_report, write_report

_BACKENDS = ("auto", "wordllama", "sentence-transformers", "column", "npy")  # = ds2_hf.embedding.BACKENDS
_STYLES = ("reference", "tulu", "plain")  # = ds2_hf.formats.STYLES


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
    p.add_argument("input", help="Hub id, data file (.parquet/.jsonl/.json/.csv), data folder or save_to_disk folder")
    p.add_argument("output", help="output .parquet/.jsonl/.csv file, or a folder (save_to_disk)")
    p.add_argument("--split", default="train", help="split to read when INPUT has several (default: train)")
    p.add_argument("--backend", choices=_BACKENDS, default="auto", help="embedding backend (default: auto)")
    p.add_argument("--model", help="Sentence Transformers model id/path or WordLlama config name")
    p.add_argument("--source", help="--backend column: the vector column; --backend npy: the (N, d) .npy file")
    p.add_argument("--dim", type=int, help="output dimension (WordLlama: 64/128/256; ST: Matryoshka truncation)")
    p.add_argument("--batch-size", type=int, default=64, help="texts per model batch (default: 64)")
    p.add_argument("--column", default=EMBEDDING, help=f"output column name (default: {EMBEDDING})")
    p.add_argument("--overwrite", action="store_true", help="replace the output column if it exists")
    add_output_options(p, report="the embedder: backend, model, dimension")
    p.add_argument("--format", default="auto", help="row format (default: auto-detect)")
    p.add_argument("--template", help='str.format template over the row, e.g. "{question}\\n\\n{answer}"')
    p.add_argument("--style", choices=_STYLES, default="reference", help="text style (default: reference)")
    p.add_argument("--max-chars", type=int, help="truncate each text to this many characters")
    p.add_argument("--pooling", help="ST only: override pooling (cls, mean, max, ...); 'mean' = DS2 reference code")
    p.add_argument("--prompt", help="ST only: prefix every text with this instruction (default: none)")
    p.add_argument("--device", help="ST only: cpu, cuda, cuda:1, ...")
    p.add_argument("--no-normalize", dest="normalize", action="store_false", help="keep raw (un-normalised) vectors")
    g = p.add_argument_group("scale out (ds2_hf.embedding_scale)")
    g.add_argument("--engine", choices=("local", "ray", "multi-process"), default="local",
                   help="local (default), ray (an actor pool of embedders on Ray Data) or multi-process "
                   "(Sentence Transformers' pool, one process per --devices entry)")
    g.add_argument("--actors", type=int, default=1, help="ray: actors in the pool (default 1)")
    g.add_argument("--gpus-per-actor", type=float, default=0, help="ray: GPUs per actor (default 0: CPU)")
    g.add_argument("--ray-address", default=None, help="ray: the cluster to join (default: running or local)")
    g.add_argument("--devices", default=None, help="multi-process: comma-separated devices, e.g. cuda:0,cuda:1")
    g.add_argument("--vectors-out", metavar="FILE.npy", help="ray / multi-process: also keep the vectors here "
                   "(an (N, d) .npy for `ds2 curate --embeddings`)")
    p.set_defaults(func=run)
    return p


def run(args: argparse.Namespace) -> int:
    from .. import io
    from ..embedding import EmbeddingConfig, embed
    from ..formats import Formatter
    from ..report import EmbeddingInfo

    check_outputs(args, args.vectors_out)
    config = EmbeddingConfig(
        backend=args.backend,
        model=args.model,
        source=args.source,
        dim=args.dim,
        batch_size=args.batch_size,
        normalize=args.normalize,
        formatter=Formatter(format=args.format, template=args.template, style=args.style),
        max_chars=args.max_chars,
        pooling=args.pooling,
        prompt=args.prompt,
        device=args.device,
        column=args.column,
        overwrite=args.overwrite,
    ).resolved()  # "auto" resolved once, so the report names the backend that ran
    dataset = io.load(args.input, split=args.split)
    if args.engine == "ray":
        from ..embedding_scale import embed_on_ray

        out = embed_on_ray(dataset, config, actors=args.actors, gpus_per_actor=args.gpus_per_actor,
                           out_path=args.vectors_out, address=args.ray_address)
    elif args.engine == "multi-process":
        from ..embedding_scale import embed_multi_process

        devices = [d for d in (args.devices or "").split(",") if d]
        out = embed_multi_process(dataset, config, devices=devices, out_path=args.vectors_out)
    else:
        out = embed(dataset, config)
    dest = io.save(out, args.output, overwrite=args.overwrite_output)
    dim = out.features[config.column].length
    write_report(args, stage_report(args, embedding=EmbeddingInfo.from_config(config, dim)))
    print(f"wrote {len(out)} rows with {config.column!r} ({dim}-d float32) to {dest}")
    return 0
