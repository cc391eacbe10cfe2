#!/usr/bin/env python
"""Finetune a causal LM on a (DS2-selected) subset with TRL SFTTrainer + LoRA, using the DS2 paper's recipe.

Every trl.SFTConfig and peft.LoraConfig field is an option (--learning-rate, --lora-r, --optim, ...), with the
paper's values as defaults; see --help.

    python scripts/finetune.py --model meta-llama/Llama-3.1-8B --dataset my-subset --output-dir runs/ds2
    accelerate launch --num_processes 8 scripts/finetune.py --model ... --dataset ... --output-dir ...
    python scripts/finetune.py ... --resume            # continue from the last checkpoint in --output-dir

See docs/training.md for the GPU cost of the paper's setting.
"""

from __future__ import annotations

import argparse
import logging
import sys


def build_parser() -> argparse.ArgumentParser:
    from ds2_hf.training.arguments import add_finetune_arguments

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", required=True, help="base model: Hub id or local folder")
    p.add_argument("--dataset", required=True, help="training subset: Hub id, data file, or folder (save_subset)")
    p.add_argument("--output-dir", required=True, help="where the adapter, checkpoints and model card go "
                   "(trl.SFTConfig.output_dir)")
    p.add_argument("--resume", nargs="?", const=True, default=None, metavar="CHECKPOINT",
                   help="resume from the last checkpoint in --output-dir, or from CHECKPOINT")
    add_finetune_arguments(p)
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    from ds2_hf.training import finetune
    from ds2_hf.training.arguments import finetune_configs_from_args

    try:
        training_args, lora, options = finetune_configs_from_args(args, output_dir=args.output_dir)
        result = finetune(args.dataset, model=args.model, args=training_args, peft_config=lora, options=options,
                          resume_from_checkpoint=args.resume)
    except (ValueError, FileNotFoundError, ImportError) as err:
        print(f"finetune: error: {err}", file=sys.stderr)
        return 2
    print(f"adapter: {result.output_dir}  rows: {result.num_rows}  mean train loss: {result.train_loss:.4f}")
    if result.merged_dir:
        print(f"merged model: {result.merged_dir}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
