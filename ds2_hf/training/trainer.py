"""Finetune a causal LM on a subset: TRL's ``SFTTrainer`` with a PEFT LoRA adapter, the paper's recipe by default."""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .._import_utils import require, require_gpu_package
from ..formats import FormatError
from .card import write_model_card
from .chat_template import resolve_chat_template
from .config import FinetuneOptions, check_lora_values, check_sft_values, lora_config, recipe, sft_config, world_size
from .data import TrainingDataError, check_lengths, to_messages

logger = logging.getLogger(__name__)


@dataclass
class FinetuneResult:
    """What :func:`finetune` produced.

    Attributes
    ----------
    output_dir : Path
        Folder with the adapter (``adapter_config.json``, ``adapter_model.safetensors``), the tokenizer,
        ``README.md`` (model card), ``training_config.json`` and checkpoints.
    merged_dir : Path or None
        Folder with the merged full model when ``merge=True``.
    train_loss : float
        Mean training loss over the run.
    log_history : list of dict
        The trainer's log entries (``loss``, ``learning_rate``, ``epoch``, ``step``, ...).
    num_rows : int
        Training rows after dropping over-long prompts.
    """

    output_dir: Path
    merged_dir: Path | None
    train_loss: float
    log_history: list[dict[str, Any]] = field(default_factory=list)
    num_rows: int = 0

    @property
    def adapter_dir(self) -> Path:
        return self.output_dir

    @property
    def losses(self) -> list[float]:
        """Logged training losses in step order."""
        return [e["loss"] for e in self.log_history if "loss" in e]


def finetune(dataset, *, model: str, output_dir: str | os.PathLike | None = None, args=None, peft_config=None,
             options: FinetuneOptions | None = None,
             resume_from_checkpoint: bool | str | None = None) -> FinetuneResult:
    """Finetune ``model`` on ``dataset`` with a LoRA adapter and write the adapter, tokenizer and model card.

    Parameters
    ----------
    dataset : datasets.Dataset or str
        The training subset, or where to load it from: a Hub id, a data file, or a folder (e.g. one written by
        :func:`ds2_hf.save_subset`: ``data/*.parquet`` + ``README.md``).
    model : str
        Hub id, local folder or ``.gguf`` file of any causal LM (``AutoModelForCausalLM``; see
        :mod:`ds2_hf.causal_lm`).
    output_dir : str or path, optional
        Where the adapter, checkpoints and ``README.md`` go (replaces ``args.output_dir`` when both are given).
    args : trl.SFTConfig, optional
        Training arguments; default :func:`~ds2_hf.training.sft_config` (the paper's recipe).
    peft_config : peft.LoraConfig, optional
        The adapter; default :func:`~ds2_hf.training.lora_config` (the paper's).
    options : FinetuneOptions, optional
        Row format, chat template, model loading, merging.
    resume_from_checkpoint : bool or str, optional
        ``True``: continue from the last ``checkpoint-*`` in the output folder (starts fresh when there is none);
        a path: from that checkpoint.

    Returns
    -------
    FinetuneResult

    Raises
    ------
    TrainingDataError
        Empty subset, rows without an assistant turn or in no known format, prompts longer than ``max_length``.
    ValueError
        Neither ``output_dir`` nor ``args``; a recipe value out of range; a GPU-only option without CUDA.

    Examples
    --------
    >>> from ds2_hf.training import finetune, lora_config, sft_config
    >>> args = sft_config("runs/ds2", num_train_epochs=1, per_device_train_batch_size=8, batch_size=8,
    ...                   use_cpu=True)                                                      # doctest: +SKIP
    >>> result = finetune("my-subset", model="path/to/tiny-llama", args=args,
    ...                   peft_config=lora_config(r=4))                                      # doctest: +SKIP
    >>> result.adapter_dir                                                                   # doctest: +SKIP
    PosixPath('runs/ds2')
    """
    args, peft_config, options = _resolve_configs(output_dir, args, peft_config, options)
    out = Path(args.output_dir)
    if isinstance(resume_from_checkpoint, (str, os.PathLike)) and resume_from_checkpoint != "auto":
        _resolve_resume(resume_from_checkpoint, out)  # fail before loading anything
    dataset_name = options.dataset_name or (str(dataset) if isinstance(dataset, (str, os.PathLike)) else None)
    if isinstance(dataset, (str, os.PathLike)):
        from ..io import load

        dataset = load(dataset)
    try:
        messages = to_messages(dataset, format=options.format, template=options.template,
                               response_column=options.response_column)
    except FormatError as err:
        raise TrainingDataError(str(err)) from err
    return _train(messages, model=model, args=args, peft_config=peft_config, options=options,
                  dataset_name=dataset_name, resume_from_checkpoint=resume_from_checkpoint)


def _resolve_configs(output_dir, args, peft_config, options):
    """The three configs, defaults filled in and checked; an explicit ``output_dir`` wins over ``args``'."""
    if args is None:
        if output_dir is None:
            raise ValueError("finetune() needs output_dir= (or args=sft_config(output_dir, ...))")
        args = sft_config(output_dir)
    elif output_dir is not None and Path(output_dir) != Path(args.output_dir):
        from dataclasses import replace

        args = replace(args, output_dir=os.fspath(output_dir))
    check_sft_values(vars(args))
    peft_config = peft_config if peft_config is not None else lora_config()
    check_lora_values(vars(peft_config))
    return args, peft_config, options or FinetuneOptions()


def _check_device(args, options: FinetuneOptions, torch) -> None:
    cuda = torch.cuda.is_available() and not args.use_cpu
    if options.load_in_4bit and not cuda:
        raise ValueError("load_in_4bit=True (QLoRA) needs a CUDA GPU; none is available (or use_cpu=True is set)")
    if options.attn_implementation == "flash_attention_2":
        if not cuda:
            raise ValueError("attn_implementation='flash_attention_2' needs a CUDA GPU; use 'sdpa' or leave it unset")
        require_gpu_package("flash_attn", "flash-attn", "attn_implementation='flash_attention_2'")


def load_model_and_tokenizer(model: str, options: FinetuneOptions | None = None, *, bf16: bool = False):
    """Load a causal LM (folder, ``.gguf`` file or Hub id) and its tokenizer for LoRA training.

    Goes through the shared loader :func:`ds2_hf.causal_lm.load_causal_lm`; 4-bit loading needs CUDA.
    """
    from ..causal_lm import load_causal_lm

    options = options or FinetuneOptions()
    torch = require("torch", extra="train")
    transformers = require("transformers", extra="train")
    kwargs: dict[str, Any] = {}
    if options.attn_implementation:
        kwargs["attn_implementation"] = options.attn_implementation
    if options.load_in_4bit:
        require_gpu_package("bitsandbytes", "bitsandbytes", "load_in_4bit (QLoRA)")
        kwargs["quantization_config"] = transformers.BitsAndBytesConfig(
            load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_use_double_quant=True,
            bnb_4bit_compute_dtype=torch.bfloat16,
        )
    return load_causal_lm(model, dtype=torch.bfloat16 if bf16 else torch.float32, extra="train", **kwargs)


def _train(messages, *, model, args, peft_config, options: FinetuneOptions, dataset_name, resume_from_checkpoint):
    torch = require("torch", extra="train")
    trl = require("trl", extra="train", purpose="finetuning")
    _check_device(args, options, torch)
    lm, tokenizer = load_model_and_tokenizer(model, options, bf16=bool(args.bf16))
    template_used = resolve_chat_template(tokenizer, options.chat_template,
                                          assistant_only_loss=args.assistant_only_loss)
    messages = check_lengths(messages, tokenizer, max_length=args.max_length, drop=options.drop_long_prompts)
    trainer = trl.SFTTrainer(model=lm, args=args, train_dataset=messages, processing_class=tokenizer,
                             peft_config=peft_config)
    out = Path(args.output_dir)
    train_output = trainer.train(resume_from_checkpoint=_resolve_resume(resume_from_checkpoint, out))
    result = FinetuneResult(output_dir=out, merged_dir=None, train_loss=float(train_output.training_loss),
                            log_history=list(trainer.state.log_history), num_rows=len(messages))
    trainer.save_model(str(out))  # the adapter (on the main process only)
    if not trainer.is_world_process_zero():
        return result
    tokenizer.save_pretrained(str(out))
    if options.merge:
        result.merged_dir = _merge(trainer, model, out, tokenizer, options)
    meta = {"base_model": model, "dataset": dataset_name, "num_rows": len(messages), "chat_template": template_used,
            "train_loss": result.train_loss, "config": recipe(args, peft_config, options),
            "world_size": world_size(), "global_steps": train_output.global_step}
    (out / "training_config.json").write_text(json.dumps(meta, indent=2, default=str))
    for folder, merged in ((out, False), (result.merged_dir, True)):
        if folder is not None:
            write_model_card(folder, base_model=model, dataset=dataset_name, args=args, peft_config=peft_config,
                             result=result, chat_template=template_used, merged=merged)
    return result


def _merge(trainer, model: str, out: Path, tokenizer, options: FinetuneOptions) -> Path:
    """Write the base model with the adapter merged in to ``out/merged``."""
    merged_dir = out / "merged"
    if options.load_in_4bit:
        # merging into 4-bit weights loses precision: reload the base model in bf16 and apply the adapter
        import torch
        from peft import PeftModel

        from ..causal_lm import load_causal_lm

        base, _ = load_causal_lm(model, dtype=torch.bfloat16, extra="train")
        merged = PeftModel.from_pretrained(base, str(out)).merge_and_unload()
    else:
        merged = trainer.model.merge_and_unload()
    merged.save_pretrained(str(merged_dir))
    tokenizer.save_pretrained(str(merged_dir))
    return merged_dir


def _resolve_resume(resume: bool | str | None, output_dir: Path) -> str | None:
    if not resume:
        return None
    if resume is True or resume == "auto":
        from transformers.trainer_utils import get_last_checkpoint

        last = get_last_checkpoint(str(output_dir)) if output_dir.is_dir() else None
        if last is None:
            logger.info("no checkpoint in %s: starting from scratch", output_dir)
        return last
    path = Path(resume)
    if not path.is_dir():
        raise FileNotFoundError(f"resume_from_checkpoint={str(resume)!r} is not a checkpoint folder")
    return str(path)
