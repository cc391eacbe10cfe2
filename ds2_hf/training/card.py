"""The model card of a finetuned adapter (or merged model): Hub metadata and the recipe that made it."""

from __future__ import annotations

import os
from pathlib import Path

from .config import describe_warmup, global_batch_size


def write_model_card(
    output_dir: str | os.PathLike,
    *,
    base_model: str,
    dataset: str | None,
    args,
    peft_config,
    result=None,
    chat_template: str = "tulu",
    merged: bool = False,
) -> Path:
    """Write ``README.md`` with Hub metadata (base model, training subset, library, tags) and the recipe.

    Parameters
    ----------
    output_dir : str or path
        The adapter (or merged model) folder.
    base_model : str
        What was finetuned; a Hub id enters the metadata as ``base_model``, a local path does not.
    dataset : str, optional
        The training subset; a Hub id enters the metadata as ``datasets``.
    args : trl.SFTConfig
    peft_config : peft.LoraConfig
    result : FinetuneResult, optional
        Rows, steps and loss of the finished run.
    chat_template : str
        Which template was trained with (``"tokenizer"``, ``"tulu"``, ``"custom"``).
    merged : bool
        The folder holds the merged full model rather than the adapter.

    Returns
    -------
    Path
        The card's path.
    """
    from huggingface_hub import ModelCard, ModelCardData

    data = ModelCardData(
        base_model=None if Path(base_model).exists() else base_model,
        datasets=[dataset] if dataset and not Path(dataset).exists() else None,
        library_name="transformers" if merged else "peft",
        tags=["ds2", "data-selection", "sft", "trl"] + ([] if merged else ["lora"]),
        license=None,
    )
    steps = f"{result.log_history[-1].get('step', '?')}" if result and result.log_history else "?"
    loss = f"{result.train_loss:.4f}" if result else "n/a"
    rows = result.num_rows if result else "?"
    what = "the base model with a LoRA adapter merged in" if merged else "a LoRA adapter"
    load = (f"AutoModelForCausalLM.from_pretrained(\"{output_dir}\")" if merged
            else f"AutoPeftModelForCausalLM.from_pretrained(\"{output_dir}\")")
    imp = "from transformers import AutoModelForCausalLM" if merged else "from peft import AutoPeftModelForCausalLM"
    schedule = getattr(args.lr_scheduler_type, "value", args.lr_scheduler_type)
    content = f"""---
{data.to_yaml()}
---

# {Path(output_dir).name}

This is {what} for `{base_model}`, finetuned with TRL's `SFTTrainer` on the training subset
**`{dataset or 'an in-memory dataset'}`** ({rows} conversations), selected with
[ds2-hf](https://arxiv.org/abs/2410.10877) (DS2: data selection with curated LLM ratings).

## Training recipe

| setting | value |
| --- | --- |
| LoRA rank / alpha / dropout | {peft_config.r} / {peft_config.lora_alpha} / {peft_config.lora_dropout} |
| LoRA target modules | {peft_config.target_modules} |
| learning rate, schedule, warm-up | {args.learning_rate}, {schedule}, {describe_warmup(args)} |
| epochs / max steps | {args.num_train_epochs} / {args.max_steps} |
| global batch size | {global_batch_size(args)} |
| max length (tokens) | {args.max_length} |
| loss | {'assistant tokens only' if args.assistant_only_loss else 'all tokens'} |
| chat template | {chat_template} |
| seed | {args.seed} |
| optimiser steps / mean train loss | {steps} / {loss} |

## Use

```python
{imp}
from transformers import AutoTokenizer
model = {load}
tokenizer = AutoTokenizer.from_pretrained("{output_dir}")
```

Evaluate it on the DS2 benchmarks with `python scripts/evaluate.py --model {output_dir}`.
"""
    path = Path(output_dir) / "README.md"
    ModelCard(content).save(str(path))
    return path
