#!/usr/bin/env python
"""What the row check before embedding costs: every row rendered once to find empty conversations, against the
whole ``ds2_hf.embed`` call that includes it (WordLlama, one process, the ``datasets`` cache off).

Usage::

    python scripts/bench/bench_embedding_rows.py                          # the shipped demo (6,440 rows)
    python scripts/bench/bench_embedding_rows.py --sharegpt FILE.jsonl.gz  # also ShareGPT records (skip_empty=True)
"""

from __future__ import annotations

import argparse
import gzip
import json
import time


def _sharegpt(path: str):
    import datasets

    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rt") as f:
        rows = [{"conversations": [{"from": m["from"], "value": m["value"]} for m in json.loads(line)["conversations"]]}
                for line in f]
    return datasets.Dataset.from_list(rows)


def measure(name: str, dataset) -> None:
    from ds2_hf.embedding import EmbeddingConfig, embed, find_unrenderable

    config = EmbeddingConfig(backend="wordllama", skip_empty=True)
    start = time.perf_counter()
    empty, _ = find_unrenderable(dataset, config)
    check = time.perf_counter() - start
    start = time.perf_counter()
    out = embed(dataset, config, load_from_cache_file=False)
    total = time.perf_counter() - start
    print(f"| {name} | {dataset.num_rows:,} | {len(empty)} | {check:.2f} | {total:.2f} | {check / total:.1%} |")
    assert out.num_rows == dataset.num_rows - len(empty)


def main() -> None:
    import datasets

    from ds2_hf.demo import load_demo

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sharegpt", help="a ShareGPT .jsonl(.gz) file: one record with `conversations` per line")
    args = parser.parse_args()
    datasets.disable_progress_bars()
    print("| data | rows | empty | check s | embed s (incl. check) | check share |\n| --- | --- | --- | --- | --- | --- |")
    measure("demo", load_demo())
    if args.sharegpt:
        measure("ShareGPT", _sharegpt(args.sharegpt))


if __name__ == "__main__":
    main()
