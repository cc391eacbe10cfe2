#!/usr/bin/env python
"""Did the selection help? Finetune one base model on several subsets (same recipe, same seed), evaluate each,
and write one Table 3-style Markdown table (comparison.md), comparison.json and a bar chart (comparison.png).

    python scripts/compare.py --model meta-llama/Llama-3.1-8B --output-dir runs/compare \
        --subset DS2=subsets/ds2 --subset Random=subsets/random --subset AlpaGasus=subsets/score-topk \
        --data-dir data/eval

Re-running the same command reuses finished adapters and evaluations.
"""

from __future__ import annotations

import argparse
import logging
import sys


def build_parser() -> argparse.ArgumentParser:
    from ds2_hf.evaluation.arguments import add_eval_arguments
    from ds2_hf.training.arguments import add_finetune_arguments

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", required=True, help="base model: Hub id or folder")
    p.add_argument("--subset", action="append", required=True, metavar="NAME=PATH",
                   help="a training subset (Hub id, file or folder); repeat for each row of the table")
    p.add_argument("--output-dir", required=True, help="one folder per subset + the comparison files")
    p.add_argument("--no-base", dest="include_base", action="store_false",
                   help="skip the row of the base model without finetuning")
    p.add_argument("--no-reuse", dest="reuse", action="store_false", help="retrain and re-evaluate everything")
    add_finetune_arguments(p)
    add_eval_arguments(p)
    return p


def parse_subsets(items: list[str]) -> dict[str, str]:
    subsets = {}
    for item in items:
        name, sep, path = item.partition("=")
        if not sep or not name.strip() or not path.strip():
            raise ValueError(f"--subset {item!r}: expected NAME=PATH, e.g. --subset DS2=subsets/ds2")
        if name.strip() in subsets:
            raise ValueError(f"--subset name {name.strip()!r} is given twice")
        subsets[name.strip()] = path.strip()
    return subsets


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    from ds2_hf.evaluation import MissingDataError, compare
    from ds2_hf.evaluation.arguments import eval_config_from_args
    from ds2_hf.training.arguments import finetune_configs_from_args

    try:
        eval_config = eval_config_from_args(args)
        if eval_config is None:
            raise ValueError("--tasks none: a comparison needs at least one benchmark")
        training_args, lora, options = finetune_configs_from_args(args)
        table = compare(parse_subsets(args.subset), model=args.model, output_dir=args.output_dir,
                        training_args=training_args, peft_config=lora, finetune_options=options,
                        eval_config=eval_config, include_base=args.include_base, reuse=args.reuse)
    except (ValueError, FileNotFoundError, ImportError, MissingDataError) as err:
        print(f"compare: error: {err}", file=sys.stderr)
        return 2
    print(table.markdown())
    print(f"\nwritten to {args.output_dir}/comparison.md, comparison.json, comparison.png")
    return 0


if __name__ == "__main__":
    sys.exit(main())
