"""Command-line options of finetuning, generated from ``peft.LoraConfig``, ``trl.SFTConfig`` and
:class:`~ds2_hf.training.FinetuneOptions` (:mod:`ds2_hf._argparse`): names, types and help come from the config
objects, defaults from the paper's recipe, so nothing is restated.

=========================================  =================================================================
option                                     field
=========================================  =================================================================
``--lora-r``, ``--lora-alpha``, ...        ``peft.LoraConfig`` (``r``, ``lora_alpha``, ``target_modules``...)
``--learning-rate``, ``--max-steps``, ...  ``trl.SFTConfig``, every field; the recipe's first, with the
                                           paper's defaults, then the rest with TRL's
``--batch-size``                           the global batch (accumulation is derived from it)
``--format``, ``--merge``, ...             :class:`~ds2_hf.training.FinetuneOptions`
=========================================  =================================================================

Earlier names stay as aliases: ``--epochs`` (``--num-train-epochs``), ``--per-device-batch-size``
(``--per-device-train-batch-size``), ``--warmup-ratio`` (``--warmup-steps``: a float below 1 is a ratio),
``--cpu`` (``--use-cpu``).

Examples
--------
>>> import argparse
>>> from ds2_hf.training.arguments import add_finetune_arguments, finetune_configs_from_args  # doctest: +SKIP
>>> p = argparse.ArgumentParser(); add_finetune_arguments(p)                               # doctest: +SKIP
>>> args, lora, options = finetune_configs_from_args(
...     p.parse_args(["--lora-r", "8", "--epochs", "1", "--cpu", "--merge"]), output_dir="runs/x")  # doctest: +SKIP
>>> lora.r, args.num_train_epochs, args.learning_rate, options.merge                       # doctest: +SKIP
(8, 1.0, 0.0001, True)
"""

from __future__ import annotations

import argparse

from .._argparse import Option, add_dataclass_arguments, changed_values
from .._import_utils import require
from .config import PAPER_BATCH_SIZE, PAPER_LORA, PAPER_SFT, FinetuneOptions, lora_config, sft_config

#: ``SFTConfig`` fields of the recipe group (the paper's values, then the ones a run on a given machine sets).
RECIPE_FIELDS = (*PAPER_SFT, "max_steps", "gradient_accumulation_steps", "bf16", "activation_checkpointing",
                 "use_cpu", "save_steps")
#: Defaults on the command line that say "decided at run time": by the device (bf16, activation checkpointing)
#: or from ``--batch-size`` (accumulation).
_RUNTIME_DEFAULTS = {"bf16": None, "activation_checkpointing": None, "gradient_accumulation_steps": None}
_NOTES = {"bf16": "ds2-hf: on when the CUDA device supports it, off on CPU.",
          "activation_checkpointing": "ds2-hf: on with CUDA, off on CPU.",
          "gradient_accumulation_steps": "ds2-hf: derived from --batch-size when not given."}
_ALIASES = {"num_train_epochs": ["--epochs"], "per_device_train_batch_size": ["--per-device-batch-size"],
            "warmup_steps": ["--warmup-ratio"], "use_cpu": ["--cpu"]}
#: Not on the command line: the scripts' own ``--output-dir`` / ``--resume``, and secrets (tokens come from the
#: environment, never from a command line).
_SFT_ELSEWHERE = ("output_dir", "resume_from_checkpoint", "hub_token")
#: ``LoraConfig`` bookkeeping set by PEFT or by us (``task_type`` is always CAUSAL_LM), and ``bias``, whose
#: prefixed name would collide with the field ``lora_bias``.
_LORA_FIXED = ("task_type", "peft_type", "auto_mapping", "peft_version", "base_model_name_or_path", "revision",
               "inference_mode", "bias")


def _register(parser) -> dict[str, dict[str, Option]]:
    """Add the options to ``parser``; what was registered, per config object."""
    trl = require("trl", extra="train", purpose="finetuning")
    peft = require("peft", extra="train", purpose="LoRA finetuning")
    group = parser.add_argument_group("LoRA: peft.LoraConfig (defaults: the DS2 paper)")
    lora = add_dataclass_arguments(group, peft.LoraConfig, prefix="lora_", defaults=PAPER_LORA, exclude=_LORA_FIXED)
    group = parser.add_argument_group("training recipe: trl.SFTConfig (defaults: the DS2 paper, Appendix F)")
    group.add_argument("--batch-size", type=int, default=PAPER_BATCH_SIZE,
                       help="global batch size = per-device batch x gradient accumulation x processes; the "
                       "accumulation is derived from it unless --gradient-accumulation-steps is given (default: "
                       f"{PAPER_BATCH_SIZE})")
    recipe = add_dataclass_arguments(group, trl.SFTConfig, include=RECIPE_FIELDS,
                                     defaults={**PAPER_SFT, **_RUNTIME_DEFAULTS}, aliases=_ALIASES, notes=_NOTES)
    group = parser.add_argument_group("every other trl.SFTConfig option (defaults: TRL's)")
    other = add_dataclass_arguments(group, trl.SFTConfig, exclude=RECIPE_FIELDS + _SFT_ELSEWHERE)
    group = parser.add_argument_group("data, chat template, model loading, merging (ds2-hf)")
    options = add_dataclass_arguments(group, FinetuneOptions)
    return {"lora": lora, "sft": {**recipe, **other}, "options": options}


def add_finetune_arguments(parser: argparse.ArgumentParser) -> None:
    """Register every finetuning option on an ``argparse`` parser (defaults: the paper's recipe)."""
    _register(parser)


def finetune_configs_from_args(args: argparse.Namespace, *, output_dir=None):
    """``(trl.SFTConfig, peft.LoraConfig, FinetuneOptions)`` from arguments registered by
    :func:`add_finetune_arguments`: the paper's recipe with what the command line changed.

    Raises
    ------
    ValueError
        A value out of range (see :func:`~ds2_hf.training.sft_config` and :func:`~ds2_hf.training.lora_config`).
    """
    registered = _register(argparse.ArgumentParser(add_help=False))  # the same options, to read them back
    sft = sft_config(output_dir, batch_size=args.batch_size, **changed_values(args, registered["sft"]))
    return sft, lora_config(**changed_values(args, registered["lora"])), \
        FinetuneOptions(**changed_values(args, registered["options"]))
