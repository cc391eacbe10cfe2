"""Finetune a causal language model on a curated subset with TRL's ``SFTTrainer`` and a PEFT LoRA adapter.

The defaults are the DS2 paper's recipe (Appendix F, following Wang et al. 2023 / open-instruct): LoRA rank 64,
alpha 16, dropout 0.1 on every linear layer, learning rate 1e-4 with linear decay and 3 % warm-up, 5 epochs,
global batch 128, maximum length 2048 tokens, loss on assistant tokens only.

Any row format :class:`ds2_hf.formats.Formatter` understands (``messages``, ShareGPT, Alpaca, Dolly,
prompt/completion) is turned into a ``messages`` column first, so a subset written by
:func:`ds2_hf.save_subset` (``data/*.parquet`` + ``README.md``) trains as is. Base models without a chat
template get the TULU template of the paper's data pool, written with ``{% generation %}`` markers so TRL can
mask everything but the assistant turns.

Examples
--------
>>> from ds2_hf.training import FinetuneConfig, finetune
>>> cfg = FinetuneConfig(num_train_epochs=1, per_device_batch_size=8, batch_size=8, lora_r=4, use_cpu=True)
>>> result = finetune("my-subset", model="path/to/tiny-llama", output_dir="runs/ds2", config=cfg)  # doctest: +SKIP
>>> result.adapter_dir                                                                            # doctest: +SKIP
PosixPath('runs/ds2')

Multi-GPU: launch the same script with ``accelerate launch --num_processes 8 scripts/finetune.py ...``; the
gradient-accumulation steps are derived so that ``per_device_batch_size x accumulation x processes`` equals the
global ``batch_size``.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ._import_utils import require
from .formats import FormatError, Formatter

logger = logging.getLogger(__name__)

#: The TULU chat template (the format of the paper's 300k-row pool), with ``{% generation %}`` markers around
#: each assistant turn and its end-of-sequence token so that ``assistant_only_loss`` trains the model to stop.
TULU_CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "{% if message['role'] == 'system' %}{{ '<|system|>\n' + message['content'] + '\n' }}"
    "{% elif message['role'] == 'user' %}{{ '<|user|>\n' + message['content'] + '\n' }}"
    "{% elif message['role'] == 'assistant' %}{{ '<|assistant|>\n' }}"
    "{% generation %}{{ message['content'] + eos_token }}{% endgeneration %}{{ '\n' }}"
    "{% endif %}{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|assistant|>\n' }}{% endif %}"
)

CHAT_TEMPLATES = {"tulu": TULU_CHAT_TEMPLATE}


class TrainingDataError(ValueError):
    """The training data cannot be used for supervised finetuning (empty, no assistant turn, too long)."""


@dataclass(frozen=True, kw_only=True)
class FinetuneConfig:
    """Hyper-parameters of supervised LoRA finetuning; defaults are the DS2 paper's (Appendix F).

    Parameters
    ----------
    lora_r : int, default 64
        LoRA rank.
    lora_alpha : int, default 16
        LoRA scaling factor (the update is scaled by ``lora_alpha / lora_r``).
    lora_dropout : float, default 0.1
        Dropout on the LoRA branch, in [0, 1).
    lora_target_modules : str or list of str, default "all-linear"
        Modules that receive an adapter; ``"all-linear"`` = every linear layer except the output head
        (open-instruct's q/k/v/o/gate/up/down projections on LLaMA and Mistral).
    learning_rate : float, default 1e-4
        Peak learning rate.
    lr_scheduler_type : str, default "linear"
        Decay after warm-up (open-instruct uses linear).
    warmup_ratio : float, default 0.03
        Fraction of the optimisation steps used for linear warm-up, in [0, 1).
    num_train_epochs : float, default 5
        Passes over the subset.
    max_steps : int, default -1
        Stop after this many optimiser steps (overrides ``num_train_epochs`` when > 0).
    batch_size : int, default 128
        Global batch size: ``per_device_batch_size x gradient accumulation x number of processes``.
    per_device_batch_size : int, default 4
        Rows per forward pass on each device; accumulation is derived from ``batch_size``.
    weight_decay : float, default 0.0
        AdamW weight decay.
    max_length : int, default 2048
        Maximum tokens per conversation; longer ones are truncated at the end.
    assistant_only_loss : bool, default True
        Compute the loss on assistant tokens only (needs a template with ``{% generation %}`` markers; see
        ``chat_template``).
    chat_template : str, default "auto"
        ``"auto"`` keeps the tokenizer's template when TRL can train on it and installs the TULU template when the
        tokenizer has none (base models) or one TRL cannot mask; ``"tulu"`` forces the TULU template; any other
        string is a Jinja template or a path to a ``.jinja`` file.
    format : str, default "auto"
        Row format of the dataset (see :mod:`ds2_hf.formats`); ``"auto"`` detects it.
    template : str, optional
        A :meth:`str.format` template over the row's columns that becomes the user turn (needs ``response_column``).
    response_column : str, optional
        With ``template``: the column holding the assistant answer.
    drop_long_prompts : bool, default True
        Rows whose prompt alone fills ``max_length`` (no assistant token would survive truncation) are dropped with
        a warning; when False such a row raises :class:`TrainingDataError`.
    seed : int, default 42
        Seed of data order, LoRA initialisation and dropout.
    merge : bool, default False
        Also write the base model with the LoRA weights merged in, to ``<output_dir>/merged``.
    bf16 : bool, optional
        Train in bfloat16; ``None`` = on when a CUDA device supports it.
    activation_checkpointing : bool, optional
        Recompute activations in the backward pass to save memory; ``None`` = on with CUDA, off on CPU.
    load_in_4bit : bool, default False
        QLoRA: load the base model in 4-bit NF4 with bitsandbytes (CUDA only).
    attn_implementation : str, optional
        E.g. ``"flash_attention_2"`` (CUDA + ``flash-attn`` only) or ``"sdpa"``.
    use_cpu : bool, default False
        Force CPU training (tests, smoke runs).
    logging_steps : int, default 10
        Log the training loss every this many steps.
    save_strategy : str, default "epoch"
        When to write checkpoints (``"epoch"``, ``"steps"`` or ``"no"``); needed to resume.
    save_steps : int, default 500
        With ``save_strategy="steps"``.
    save_total_limit : int, optional, default 2
        Keep at most this many checkpoints.
    dataset_name : str, optional
        Name of the training subset for the model card (defaults to the dataset source when it is a string).
    report_to : str, default "none"
        ``"wandb"``, ``"tensorboard"``, ... or ``"none"``.
    """

    lora_r: int = 64
    lora_alpha: int = 16
    lora_dropout: float = 0.1
    lora_target_modules: str | list[str] = "all-linear"
    learning_rate: float = 1e-4
    lr_scheduler_type: str = "linear"
    warmup_ratio: float = 0.03
    num_train_epochs: float = 5.0
    max_steps: int = -1
    batch_size: int = 128
    per_device_batch_size: int = 4
    weight_decay: float = 0.0
    max_length: int = 2048
    assistant_only_loss: bool = True
    chat_template: str = "auto"
    format: str = "auto"
    template: str | None = None
    response_column: str | None = None
    drop_long_prompts: bool = True
    seed: int = 42
    merge: bool = False
    bf16: bool | None = None
    activation_checkpointing: bool | None = None
    load_in_4bit: bool = False
    attn_implementation: str | None = None
    use_cpu: bool = False
    logging_steps: int = 10
    save_strategy: str = "epoch"
    save_steps: int = 500
    save_total_limit: int | None = 2
    dataset_name: str | None = None
    report_to: str = "none"

    def __post_init__(self) -> None:
        positive = {
            "lora_r": self.lora_r,
            "batch_size": self.batch_size,
            "per_device_batch_size": self.per_device_batch_size,
            "max_length": self.max_length,
            "logging_steps": self.logging_steps,
        }
        for name, value in positive.items():
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"{name}={value!r} must be a positive integer")
        if not 0 <= self.lora_dropout < 1:
            raise ValueError(f"lora_dropout={self.lora_dropout!r} must be in [0, 1)")
        if not 0 <= self.warmup_ratio < 1:
            raise ValueError(f"warmup_ratio={self.warmup_ratio!r} must be in [0, 1)")
        if self.learning_rate <= 0:
            raise ValueError(f"learning_rate={self.learning_rate!r} must be > 0")
        if self.num_train_epochs <= 0 and self.max_steps <= 0:
            raise ValueError("set num_train_epochs > 0 or max_steps > 0")
        if self.save_strategy not in ("epoch", "steps", "no"):
            raise ValueError(f"save_strategy={self.save_strategy!r}; expected 'epoch', 'steps' or 'no'")
        if (self.template is None) != (self.response_column is None):
            raise ValueError("`template` and `response_column` go together: the template renders the user turn, "
                             "the response column is the assistant turn")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def gradient_accumulation_steps(self, world_size: int = 1) -> int:
        """Accumulation steps that reach ``batch_size`` with ``world_size`` processes (at least 1)."""
        per_step = self.per_device_batch_size * max(world_size, 1)
        steps = max(1, round(self.batch_size / per_step))
        if steps * per_step != self.batch_size:
            logger.warning(
                "batch_size=%d is not a multiple of per_device_batch_size (%d) x processes (%d); the effective "
                "global batch is %d", self.batch_size, self.per_device_batch_size, world_size, steps * per_step,
            )
        return steps


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


# --------------------------------------------------------------------------------------------- data preparation
def to_messages(dataset, *, format: str = "auto", template: str | None = None, response_column: str | None = None):
    """Return ``dataset`` with a single ``messages`` column (list of ``{"role", "content"}``), ready for SFT.

    Parameters
    ----------
    dataset : datasets.Dataset
        Rows in any format :mod:`ds2_hf.formats` knows, with at least one assistant turn each.
    format : str, default "auto"
        Row format; ``"auto"`` detects it from the columns.
    template, response_column : str, optional
        Render the user turn with ``template`` (:meth:`str.format` over the row) and take the assistant turn from
        ``response_column``.

    Raises
    ------
    TrainingDataError
        Empty dataset, a format without an assistant turn (plain ``text``), or a row without an assistant answer.
    """
    if len(dataset) == 0:
        raise TrainingDataError(
            "the training dataset is empty (0 rows); select a non-empty subset, e.g. `ds2_hf.select(ds, k=1000)`"
        )
    formatter = Formatter(format=format, template=template)
    fmt = formatter.resolve(dataset.column_names)
    if fmt == "text":
        raise TrainingDataError(
            f"the dataset has a plain `text` column (columns: {dataset.column_names}) but supervised finetuning "
            "needs conversations with an assistant turn: provide `messages` (role/content), `conversations` "
            "(ShareGPT), `instruction`+`output` (Alpaca), `prompt`+`completion`, or pass `template=` and "
            "`response_column=`"
        )
    if template is not None and response_column not in dataset.column_names:
        raise TrainingDataError(
            f"response_column={response_column!r} is not a column of the dataset ({dataset.column_names})"
        )
    return dataset.map(
        _MessagesMapper(formatter, response_column),
        batched=True,
        with_indices=True,
        remove_columns=dataset.column_names,
        desc="formatting conversations",
    )


@dataclass(frozen=True)
class _MessagesMapper:
    """Picklable batched map: rows of any format -> ``messages``."""

    formatter: Formatter
    response_column: str | None = None

    def __call__(self, batch: Mapping[str, list], indices: list[int]) -> dict[str, list]:
        out = []
        for i, row in zip(indices, self.formatter.batch_rows(batch)):
            msgs = self.formatter.messages(row, where=f"row {i}")
            if self.response_column is not None:
                msgs = msgs + [{"role": "assistant", "content": str(row[self.response_column] or "")}]
            if not any(m["role"] == "assistant" and m["content"].strip() for m in msgs):
                raise TrainingDataError(
                    f"row {i} has no assistant answer to learn from (messages: {msgs!r:.200}); every training row "
                    "needs at least one non-empty assistant turn"
                )
            out.append(msgs)
        return {"messages": out}


@dataclass(frozen=True)
class _PromptLength:
    """Picklable batched map: token length of everything before the first assistant turn."""

    tokenizer: Any
    chat_template: str | None

    def __call__(self, batch: Mapping[str, list]) -> dict[str, list]:
        lengths = []
        for msgs in batch["messages"]:
            first = next(i for i, m in enumerate(msgs) if m["role"] == "assistant")
            ids = self.tokenizer.apply_chat_template(
                msgs[:first], tokenize=True, add_generation_prompt=True, chat_template=self.chat_template,
                return_dict=False,
            )
            lengths.append(len(ids))
        return {"_prompt_tokens": lengths}


def check_lengths(dataset, tokenizer, *, max_length: int, drop: bool = True, chat_template: str | None = None):
    """Drop (or refuse) rows whose prompt alone fills ``max_length`` tokens.

    Such a row would be truncated before its first assistant token and contribute no loss.

    Returns
    -------
    datasets.Dataset
        The rows that keep at least one assistant token.

    Raises
    ------
    TrainingDataError
        ``drop=False`` and a row is too long, or every row is too long.
    """
    lengths = dataset.map(
        _PromptLength(tokenizer, chat_template), batched=True, remove_columns=dataset.column_names,
        desc="measuring prompts",
    )["_prompt_tokens"]
    too_long = [i for i, n in enumerate(lengths) if n >= max_length]
    if not too_long:
        return dataset
    longest = max(lengths)
    if not drop or len(too_long) == len(lengths):
        which = "every row's" if len(too_long) == len(lengths) else f"row {too_long[0]}'s"
        raise TrainingDataError(
            f"max_length={max_length} is shorter than {which} prompt ({lengths[too_long[0]]} tokens; the longest "
            f"prompt has {longest}), so no assistant token would be left to train on. Raise max_length "
            f"(e.g. max_length={2 ** math.ceil(math.log2(longest + 64))}) or remove the long rows"
            + ("" if drop else " (or set drop_long_prompts=True)")
        )
    logger.warning(
        "dropping %d of %d rows whose prompt alone is >= max_length=%d tokens (the longest has %d)",
        len(too_long), len(lengths), max_length, longest,
    )
    keep = sorted(set(range(len(lengths))) - set(too_long))
    return dataset.select(keep)


# --------------------------------------------------------------------------------------------- chat template
def resolve_chat_template(tokenizer, chat_template: str = "auto", *, assistant_only_loss: bool = True) -> str:
    """Install a trainable chat template on ``tokenizer`` and return the name of the choice made.

    ``"auto"``: keep the tokenizer's template if it has ``{% generation %}`` markers or TRL knows how to patch
    it, otherwise (no template: a base model; or an unknown template) install :data:`TULU_CHAT_TEMPLATE`.
    ``"tulu"``: always install the TULU template. Anything else: a Jinja template string or a path to a file.

    Returns
    -------
    str
        ``"tokenizer"``, ``"tulu"`` or ``"custom"``.
    """
    if chat_template == "auto":
        current = getattr(tokenizer, "chat_template", None)
        if not current:
            logger.info("the tokenizer has no chat template (base model): using the TULU template")
            tokenizer.chat_template = TULU_CHAT_TEMPLATE
            return "tulu"
        if not assistant_only_loss:
            return "tokenizer"
        from trl.chat_template_utils import get_training_chat_template

        try:
            get_training_chat_template(tokenizer)
            return "tokenizer"
        except ValueError:
            logger.warning(
                "the tokenizer's chat template has no {%% generation %%} markers and TRL cannot patch it, so "
                "assistant-only loss is impossible with it; using the TULU template instead (pass "
                "chat_template=<your template with {%% generation %%}> to choose another one)"
            )
            tokenizer.chat_template = TULU_CHAT_TEMPLATE
            return "tulu"
    if chat_template in CHAT_TEMPLATES:
        tokenizer.chat_template = CHAT_TEMPLATES[chat_template]
        return chat_template
    path = Path(chat_template)
    if "{%" not in chat_template and "{{" not in chat_template:
        if not path.is_file():
            raise ValueError(
                f"chat_template={chat_template!r} is neither 'auto', one of {sorted(CHAT_TEMPLATES)}, a Jinja "
                "template string nor an existing file"
            )
        chat_template = path.read_text()
    tokenizer.chat_template = chat_template
    return "custom"


# --------------------------------------------------------------------------------------------- training
def _world_size() -> int:
    return int(os.environ.get("WORLD_SIZE", "1"))


def _require_gpu_package(module: str, dist: str, purpose: str) -> None:
    """GPU-only packages are in no extra (they need CUDA to build or run): name the exact pip command."""
    from ._import_utils import is_available

    if not is_available(module):
        raise ImportError(f"{purpose} needs `{module}`, which is not installed (CUDA only): pip install {dist}")


def _device_options(config: FinetuneConfig, torch) -> dict[str, Any]:
    cuda = torch.cuda.is_available() and not config.use_cpu
    if config.load_in_4bit and not cuda:
        raise ValueError("load_in_4bit=True (QLoRA) needs a CUDA GPU; none is available (or use_cpu=True is set)")
    if config.attn_implementation == "flash_attention_2":
        if not cuda:
            raise ValueError("attn_implementation='flash_attention_2' needs a CUDA GPU; use 'sdpa' or leave it unset")
        _require_gpu_package("flash_attn", "flash-attn", "attn_implementation='flash_attention_2'")
    bf16 = config.bf16
    if bf16 is None:
        bf16 = bool(cuda and torch.cuda.is_bf16_supported())
    checkpointing = config.activation_checkpointing
    if checkpointing is None:
        checkpointing = cuda
    return {"cuda": cuda, "bf16": bf16, "checkpointing": checkpointing}


def load_model_and_tokenizer(model: str, config: FinetuneConfig, *, bf16: bool = False):
    """Load a causal LM (folder, ``.gguf`` file or Hub id) and its tokenizer for LoRA training.

    Goes through the shared loader :func:`ds2_hf.causal_lm.load_causal_lm`; 4-bit loading needs CUDA.
    """
    from .causal_lm import load_causal_lm

    torch = require("torch", extra="train")
    transformers = require("transformers", extra="train")
    kwargs: dict[str, Any] = {}
    if config.attn_implementation:
        kwargs["attn_implementation"] = config.attn_implementation
    if config.load_in_4bit:
        _require_gpu_package("bitsandbytes", "bitsandbytes", "load_in_4bit (QLoRA)")
        kwargs["quantization_config"] = transformers.BitsAndBytesConfig(
            load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_use_double_quant=True,
            bnb_4bit_compute_dtype=torch.bfloat16,
        )
    return load_causal_lm(model, dtype=torch.bfloat16 if bf16 else torch.float32, extra="train", **kwargs)


def finetune(
    dataset,
    *,
    model: str,
    output_dir: str | os.PathLike,
    config: FinetuneConfig | None = None,
    resume_from_checkpoint: bool | str | None = None,
) -> FinetuneResult:
    """Finetune ``model`` on ``dataset`` with a LoRA adapter and write the adapter, tokenizer and model card.

    Parameters
    ----------
    dataset : datasets.Dataset or str
        The training subset, or where to load it from: a Hub id, a data file, or a folder (e.g. one written by
        :func:`ds2_hf.save_subset`: ``data/*.parquet`` + ``README.md``).
    model : str
        Hub id, local folder or ``.gguf`` file of any causal LM (``AutoModelForCausalLM``; see
        :mod:`ds2_hf.causal_lm`).
    output_dir : str or path
        Where the adapter, checkpoints and ``README.md`` go.
    config : FinetuneConfig, optional
        Hyper-parameters; the paper's by default.
    resume_from_checkpoint : bool or str, optional
        ``True``: continue from the last ``checkpoint-*`` in ``output_dir`` (starts fresh when there is none);
        a path: from that checkpoint.

    Returns
    -------
    FinetuneResult

    Raises
    ------
    TrainingDataError
        Empty subset, rows without an assistant turn, prompts longer than ``max_length``.
    ds2_hf.formats.FormatError
        Rows in no known conversation format.
    """
    config = config or FinetuneConfig()
    output_dir = Path(output_dir)
    if isinstance(resume_from_checkpoint, (str, os.PathLike)) and resume_from_checkpoint != "auto":
        _resolve_resume(resume_from_checkpoint, output_dir)  # fail before loading anything
    dataset_name = config.dataset_name or (str(dataset) if isinstance(dataset, (str, os.PathLike)) else None)
    if isinstance(dataset, (str, os.PathLike)):
        from .io import load

        dataset = load(dataset)
    try:
        messages = to_messages(
            dataset, format=config.format, template=config.template, response_column=config.response_column
        )
    except FormatError as err:
        raise TrainingDataError(str(err)) from err
    return _train(messages, model=model, output_dir=output_dir, config=config, dataset_name=dataset_name,
                  resume_from_checkpoint=resume_from_checkpoint)


def _train(messages, *, model, output_dir: Path, config: FinetuneConfig, dataset_name, resume_from_checkpoint):
    torch = require("torch", extra="train")
    trl = require("trl", extra="train", purpose="finetuning")
    peft = require("peft", extra="train", purpose="LoRA finetuning")
    device = _device_options(config, torch)

    lm, tokenizer = load_model_and_tokenizer(model, config, bf16=device["bf16"])
    template_used = resolve_chat_template(
        tokenizer, config.chat_template, assistant_only_loss=config.assistant_only_loss
    )
    messages = check_lengths(messages, tokenizer, max_length=config.max_length, drop=config.drop_long_prompts)

    lora = peft.LoraConfig(
        r=config.lora_r, lora_alpha=config.lora_alpha, lora_dropout=config.lora_dropout,
        target_modules=config.lora_target_modules, bias="none", task_type="CAUSAL_LM",
    )
    args = trl.SFTConfig(
        output_dir=str(output_dir),
        learning_rate=config.learning_rate,
        lr_scheduler_type=config.lr_scheduler_type,
        warmup_steps=config.warmup_ratio,  # a float < 1 is a ratio of the total steps
        num_train_epochs=config.num_train_epochs,
        max_steps=config.max_steps,
        per_device_train_batch_size=config.per_device_batch_size,
        gradient_accumulation_steps=config.gradient_accumulation_steps(_world_size()),
        weight_decay=config.weight_decay,
        max_length=config.max_length,
        assistant_only_loss=config.assistant_only_loss,
        seed=config.seed,
        data_seed=config.seed,
        bf16=device["bf16"],
        activation_checkpointing=device["checkpointing"],
        use_cpu=config.use_cpu,
        logging_steps=config.logging_steps,
        save_strategy=config.save_strategy,
        save_steps=config.save_steps,
        save_total_limit=config.save_total_limit,
        report_to=config.report_to,
        dataset_num_proc=None,
    )
    trainer = trl.SFTTrainer(
        model=lm, args=args, train_dataset=messages, processing_class=tokenizer, peft_config=lora,
    )
    resume = _resolve_resume(resume_from_checkpoint, output_dir)
    train_output = trainer.train(resume_from_checkpoint=resume)
    log_history = list(trainer.state.log_history)
    trainer.save_model(str(output_dir))  # the adapter (on the main process only)
    main_process = trainer.is_world_process_zero()
    if main_process:
        tokenizer.save_pretrained(str(output_dir))

    merged_dir = None
    if config.merge and main_process:
        merged_dir = output_dir / "merged"
        if config.load_in_4bit:
            # merging into 4-bit weights loses precision: reload the base model in bf16 and apply the adapter
            del trainer, lm
            from .causal_lm import load_causal_lm

            base, _ = load_causal_lm(model, dtype=torch.bfloat16, extra="train")
            merged = peft.PeftModel.from_pretrained(base, str(output_dir)).merge_and_unload()
        else:
            merged = trainer.model.merge_and_unload()
        merged.save_pretrained(str(merged_dir))
        tokenizer.save_pretrained(str(merged_dir))
    result = FinetuneResult(
        output_dir=output_dir, merged_dir=merged_dir, train_loss=float(train_output.training_loss),
        log_history=log_history, num_rows=len(messages),
    )
    if main_process:
        meta = {
            "base_model": model, "dataset": dataset_name, "num_rows": len(messages), "chat_template": template_used,
            "train_loss": result.train_loss, "config": config.to_dict(),
            "world_size": _world_size(), "global_steps": train_output.global_step,
        }
        (output_dir / "training_config.json").write_text(json.dumps(meta, indent=2, default=str))
        write_model_card(output_dir, base_model=model, dataset=dataset_name, config=config, result=result,
                         chat_template=template_used)
        if merged_dir is not None:
            write_model_card(merged_dir, base_model=model, dataset=dataset_name, config=config, result=result,
                             chat_template=template_used, merged=True)
    return result


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


# --------------------------------------------------------------------------------------------- model card
def write_model_card(
    output_dir: str | os.PathLike,
    *,
    base_model: str,
    dataset: str | None,
    config: FinetuneConfig,
    result: FinetuneResult | None = None,
    chat_template: str = "tulu",
    merged: bool = False,
) -> Path:
    """Write ``README.md`` with Hub metadata (base model, training subset, library, tags) and the recipe."""
    from huggingface_hub import ModelCard, ModelCardData

    local_base = Path(base_model).exists()
    data = ModelCardData(
        base_model=None if local_base else base_model,
        datasets=[dataset] if dataset and not Path(dataset).exists() else None,
        library_name="transformers" if merged else "peft",
        tags=["ds2", "data-selection", "sft", "trl"] + ([] if merged else ["lora"]),
        license=None,
    )
    steps = f"{result.log_history[-1].get('step', '?')}" if result and result.log_history else "?"
    loss = f"{result.train_loss:.4f}" if result else "n/a"
    rows = result.num_rows if result else "?"
    what = "the base model with a LoRA adapter merged in" if merged else "a LoRA adapter"
    load = (
        f"AutoModelForCausalLM.from_pretrained(\"{output_dir}\")" if merged
        else f"AutoPeftModelForCausalLM.from_pretrained(\"{output_dir}\")"
    )
    imp = "from transformers import AutoModelForCausalLM" if merged else "from peft import AutoPeftModelForCausalLM"
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
| LoRA rank / alpha / dropout | {config.lora_r} / {config.lora_alpha} / {config.lora_dropout} |
| LoRA target modules | {config.lora_target_modules} |
| learning rate, schedule, warm-up | {config.learning_rate}, {config.lr_scheduler_type}, {config.warmup_ratio} |
| epochs / max steps | {config.num_train_epochs} / {config.max_steps} |
| global batch size | {config.batch_size} |
| max length (tokens) | {config.max_length} |
| loss | {'assistant tokens only' if config.assistant_only_loss else 'all tokens'} |
| chat template | {chat_template} |
| seed | {config.seed} |
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
    card = ModelCard(content)
    path = Path(output_dir) / "README.md"
    card.save(str(path))
    return path


# --------------------------------------------------------------------------------------------- tiny model
def build_tiny_model(
    output_dir: str | os.PathLike,
    texts: list[str],
    *,
    hidden_size: int = 32,
    num_layers: int = 2,
    chat_template: str | None = TULU_CHAT_TEMPLATE,
    seed: int = 0,
) -> Path:
    """Write a random-weight ``LlamaForCausalLM`` with a word-level tokenizer trained on ``texts``.

    For offline smoke tests and CPU demos of the finetune / evaluate / compare pipeline: no download, a few
    hundred kilobytes, trains in about a second per step.

    Parameters
    ----------
    output_dir : str or path
        Folder to write (``config.json``, ``model.safetensors``, tokenizer files).
    texts : list of str
        Corpus for the tokenizer's vocabulary.
    hidden_size, num_layers : int
        Model size.
    chat_template : str, optional
        Template stored with the tokenizer; ``None`` leaves it without one (like a base model).
    seed : int
        Seed of the random weights.

    Returns
    -------
    Path
        ``output_dir``.
    """
    torch = require("torch", extra="train")
    transformers = require("transformers", extra="train")
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, trainers

    specials = ["<unk>", "<pad>", "<s>", "</s>", "<|system|>", "<|user|>", "<|assistant|>"]
    tok = Tokenizer(models.WordLevel(unk_token="<unk>"))
    tok.normalizer = normalizers.Lowercase()
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    tok.train_from_iterator(texts, trainers.WordLevelTrainer(special_tokens=specials, min_frequency=1))
    fast = transformers.PreTrainedTokenizerFast(
        tokenizer_object=tok, unk_token="<unk>", pad_token="<pad>", bos_token="<s>", eos_token="</s>",
        additional_special_tokens=specials[4:],
    )
    if chat_template is not None:
        fast.chat_template = chat_template
    torch.manual_seed(seed)
    cfg = transformers.LlamaConfig(
        vocab_size=len(fast), hidden_size=hidden_size, intermediate_size=2 * hidden_size,
        num_hidden_layers=num_layers, num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=512,
        pad_token_id=fast.pad_token_id, bos_token_id=fast.bos_token_id, eos_token_id=fast.eos_token_id,
        tie_word_embeddings=False,
    )
    model = transformers.LlamaForCausalLM(cfg)
    output_dir = Path(output_dir)
    model.save_pretrained(str(output_dir))
    fast.save_pretrained(str(output_dir))
    return output_dir


# --------------------------------------------------------------------------------------------- command line
def add_finetune_arguments(parser) -> None:
    """Register every :class:`FinetuneConfig` option on an ``argparse`` parser (defaults = the paper's)."""
    import argparse

    d = FinetuneConfig()
    g = parser.add_argument_group("LoRA and optimisation (defaults: DS2 paper, Appendix F)")
    g.add_argument("--lora-r", type=int, default=d.lora_r, help="LoRA rank (default %(default)s)")
    g.add_argument("--lora-alpha", type=int, default=d.lora_alpha, help="LoRA alpha (default %(default)s)")
    g.add_argument("--lora-dropout", type=float, default=d.lora_dropout, help="LoRA dropout (default %(default)s)")
    g.add_argument("--lora-target-modules", nargs="+", default=[d.lora_target_modules],
                   help="modules with adapters (default: all-linear)")
    g.add_argument("--learning-rate", type=float, default=d.learning_rate, help="peak LR (default %(default)s)")
    g.add_argument("--lr-scheduler-type", default=d.lr_scheduler_type, help="LR decay (default %(default)s)")
    g.add_argument("--warmup-ratio", type=float, default=d.warmup_ratio, help="warm-up fraction (default %(default)s)")
    g.add_argument("--epochs", dest="num_train_epochs", type=float, default=d.num_train_epochs,
                   help="epochs (default %(default)s)")
    g.add_argument("--max-steps", type=int, default=d.max_steps, help="stop after N optimiser steps (overrides epochs)")
    g.add_argument("--batch-size", type=int, default=d.batch_size, help="global batch size (default %(default)s)")
    g.add_argument("--per-device-batch-size", type=int, default=d.per_device_batch_size,
                   help="rows per device and forward pass; accumulation is derived (default %(default)s)")
    g.add_argument("--weight-decay", type=float, default=d.weight_decay)
    g.add_argument("--max-length", type=int, default=d.max_length, help="max tokens per row (default %(default)s)")
    g.add_argument("--seed", type=int, default=d.seed, help="seed (default %(default)s)")
    g = parser.add_argument_group("data and chat template")
    g.add_argument("--format", default=d.format, help="row format: auto, messages, sharegpt, alpaca, dolly, "
                   "prompt_completion")
    g.add_argument("--template", default=None, help="str.format template for the user turn (with --response-column)")
    g.add_argument("--response-column", default=None, help="column with the assistant answer (with --template)")
    g.add_argument("--chat-template", default=d.chat_template,
                   help="auto (tokenizer's, else TULU), tulu, a Jinja string or a .jinja file")
    g.add_argument("--assistant-only-loss", action=argparse.BooleanOptionalAction, default=d.assistant_only_loss,
                   help="loss on assistant tokens only (default on)")
    g.add_argument("--drop-long-prompts", action=argparse.BooleanOptionalAction, default=d.drop_long_prompts,
                   help="drop rows whose prompt fills --max-length (default) or fail on them")
    g.add_argument("--dataset-name", default=None, help="training subset name for the model card")
    g = parser.add_argument_group("hardware, checkpoints, outputs")
    g.add_argument("--merge", action="store_true", help="also write the merged model to OUTPUT_DIR/merged")
    g.add_argument("--bf16", action=argparse.BooleanOptionalAction, default=None, help="default: on if CUDA has it")
    g.add_argument("--activation-checkpointing", action=argparse.BooleanOptionalAction, default=None,
                   help="default: on with CUDA")
    g.add_argument("--load-in-4bit", action="store_true", help="QLoRA, CUDA + bitsandbytes only")
    g.add_argument("--attn-implementation", default=None, help="e.g. sdpa or flash_attention_2 (CUDA only)")
    g.add_argument("--cpu", dest="use_cpu", action="store_true", help="train on CPU")
    g.add_argument("--logging-steps", type=int, default=d.logging_steps)
    g.add_argument("--save-strategy", default=d.save_strategy, choices=["epoch", "steps", "no"])
    g.add_argument("--save-steps", type=int, default=d.save_steps)
    g.add_argument("--save-total-limit", type=int, default=d.save_total_limit)
    g.add_argument("--report-to", default=d.report_to, help="none, wandb, tensorboard, ...")


def finetune_config_from_args(args) -> FinetuneConfig:
    """Build a :class:`FinetuneConfig` from arguments registered by :func:`add_finetune_arguments`."""
    names = {f.name for f in dataclasses.fields(FinetuneConfig)}
    values = {k: v for k, v in vars(args).items() if k in names}
    targets = values.get("lora_target_modules")
    if isinstance(targets, list):
        values["lora_target_modules"] = targets[0] if len(targets) == 1 else targets
    return FinetuneConfig(**values)
