"""The DS2 paper's finetuning recipe as TRL's own ``SFTConfig`` and PEFT's own ``LoraConfig``.

:func:`sft_config` and :func:`lora_config` return the library objects with the paper's values (Appendix F,
following Wang et al. 2023 / open-instruct); any keyword overrides one field, under the library's own name. The
only options of ours are in :class:`FinetuneOptions`: what neither library has (the row format, the chat template
choice, dropping over-long prompts, merging, 4-bit loading).

=================================  ======================================  =============================
paper                              value                                    field
=================================  ======================================  =============================
LoRA rank / alpha / dropout        64 / 16 / 0.1                            ``LoraConfig.r``, ``lora_alpha``,
                                                                            ``lora_dropout``
LoRA targets                       every linear layer but the head          ``target_modules="all-linear"``
learning rate, schedule, warm-up   1e-4, linear decay, 3 % of the steps     ``learning_rate``,
                                                                            ``lr_scheduler_type``,
                                                                            ``warmup_steps=0.03`` (a ratio)
epochs                             5                                        ``num_train_epochs``
global batch                       128                                      ``per_device_train_batch_size``
                                                                            x ``gradient_accumulation_steps``
                                                                            x processes
maximum length                     2048 tokens                              ``max_length``
loss                               on the response                          ``assistant_only_loss=True``
=================================  ======================================  =============================

Examples
--------
>>> from ds2_hf.training import lora_config
>>> lora = lora_config()
>>> lora.r, lora.lora_alpha, lora.lora_dropout, lora.target_modules
(64, 16, 0.1, 'all-linear')
>>> args = sft_config("runs/ds2", use_cpu=True)   # trl.SFTConfig  # doctest: +SKIP
>>> args.learning_rate, args.num_train_epochs, args.gradient_accumulation_steps  # doctest: +SKIP
(0.0001, 5.0, 32)
"""

from __future__ import annotations

import logging
import math
import os
from dataclasses import asdict, dataclass, fields
from typing import Any

from .._import_utils import require

logger = logging.getLogger(__name__)

#: The paper's ``SFTConfig`` values that differ from TRL's defaults (plus checkpoints and logging of ours).
PAPER_SFT: dict[str, Any] = {
    "learning_rate": 1e-4,
    "lr_scheduler_type": "linear",
    "warmup_steps": 0.03,  # a float < 1 is a ratio of the total steps
    "num_train_epochs": 5.0,
    "per_device_train_batch_size": 4,
    "max_length": 2048,
    "assistant_only_loss": True,
    "weight_decay": 0.0,
    "seed": 42,
    "logging_steps": 10,
    "save_strategy": "epoch",
    "save_total_limit": 2,
    "report_to": "none",
}
#: The paper's global batch size: per-device batch x gradient accumulation x processes.
PAPER_BATCH_SIZE = 128
#: The paper's ``LoraConfig`` values.
PAPER_LORA: dict[str, Any] = {
    "r": 64, "lora_alpha": 16, "lora_dropout": 0.1, "target_modules": "all-linear", "bias": "none",
    "task_type": "CAUSAL_LM",
}


def world_size() -> int:
    """Processes of this run (``WORLD_SIZE`` as set by ``accelerate launch`` / ``torchrun``; 1 alone)."""
    return int(os.environ.get("WORLD_SIZE", "1"))


def gradient_accumulation_steps(batch_size: int, per_device_batch_size: int, processes: int = 1) -> int:
    """Accumulation steps that make ``per_device_batch_size x steps x processes`` the global ``batch_size``.

    Examples
    --------
    >>> gradient_accumulation_steps(128, 4, processes=8)
    4
    """
    per_step = per_device_batch_size * max(processes, 1)
    steps = max(1, round(batch_size / per_step))
    if steps * per_step != batch_size:
        logger.warning("batch_size=%d is not a multiple of the per-device batch (%d) x processes (%d); the effective "
                       "global batch is %d", batch_size, per_device_batch_size, processes, steps * per_step)
    return steps


def sft_config(output_dir: str | os.PathLike | None = None, *, batch_size: int = PAPER_BATCH_SIZE, **overrides):
    """TRL's ``SFTConfig`` with the paper's recipe; keywords override its fields by their TRL names.

    Parameters
    ----------
    output_dir : str or path, optional
        Where checkpoints go (:func:`~ds2_hf.training.finetune` also writes the adapter and card there).
    batch_size : int, default 128
        Global batch size; ``gradient_accumulation_steps`` is derived from it, the per-device batch and the
        number of processes (``WORLD_SIZE``), unless given explicitly.
    **overrides
        Any ``trl.SFTConfig`` field (``use_cpu=True``, ``max_steps=8``, ``optim="adamw_torch_fused"``...).
        ``bf16`` and ``activation_checkpointing`` default to on with CUDA and off on CPU.

    Returns
    -------
    trl.SFTConfig

    Raises
    ------
    ValueError
        A value outside its range (learning rate <= 0, a warm-up ratio >= 1 given as a float, no epoch or step),
        or a field TRL does not have (the message lists close names).
    """
    trl = require("trl", extra="train", purpose="finetuning")
    known = {f.name for f in fields(trl.SFTConfig) if f.init}
    unknown = sorted(set(overrides) - known)
    if unknown:
        import difflib

        close = {k: difflib.get_close_matches(k, known, n=3) for k in unknown}
        raise ValueError(f"trl.SFTConfig has no field(s) {unknown} (close: {close}); see `help(trl.SFTConfig)`")
    values = {**PAPER_SFT, **_device_defaults(overrides), **overrides}
    if "gradient_accumulation_steps" not in overrides:
        values["gradient_accumulation_steps"] = gradient_accumulation_steps(
            batch_size, values["per_device_train_batch_size"], world_size())
    check_sft_values(values)
    return trl.SFTConfig(output_dir=None if output_dir is None else os.fspath(output_dir), **values)


def _device_defaults(overrides: dict[str, Any]) -> dict[str, Any]:
    """bf16 when CUDA has it, activation checkpointing with CUDA; both off on CPU (TRL turns them on everywhere)."""
    torch = require("torch", extra="train")
    cuda = torch.cuda.is_available() and not overrides.get("use_cpu", False)
    return {"bf16": bool(cuda and torch.cuda.is_bf16_supported()), "activation_checkpointing": cuda}


def check_sft_values(values: dict[str, Any]) -> None:
    """The range checks TRL leaves to training time (or does not make), so they fail before any model loads."""
    if not values.get("learning_rate", 1.0) > 0:
        raise ValueError(f"learning_rate={values['learning_rate']!r} must be > 0")
    warmup = values.get("warmup_steps", 0)
    if isinstance(warmup, float) and not (0 <= warmup < 1 or warmup == int(warmup)):
        raise ValueError(f"warmup_steps={warmup!r}: a float is a ratio in [0, 1) of the steps, an integer a count")
    if values.get("num_train_epochs", 1) <= 0 and values.get("max_steps", -1) <= 0:
        raise ValueError("set num_train_epochs > 0 or max_steps > 0")
    for name in ("per_device_train_batch_size", "gradient_accumulation_steps", "max_length"):
        value = values.get(name, 1)
        if value is not None and (not isinstance(value, int) or value < 1):
            raise ValueError(f"{name}={value!r} must be a positive integer")


def lora_config(**overrides):
    """PEFT's ``LoraConfig`` with the paper's recipe; keywords override its fields by their PEFT names.

    Parameters
    ----------
    **overrides
        Any ``peft.LoraConfig`` field (``r=8``, ``target_modules=["q_proj", "v_proj"]``, ``use_dora=True``...).

    Returns
    -------
    peft.LoraConfig

    Raises
    ------
    ValueError
        ``r`` not a positive integer, ``lora_dropout`` outside [0, 1), or a field PEFT does not have.
    """
    peft = require("peft", extra="train", purpose="LoRA finetuning")
    known = {f.name for f in fields(peft.LoraConfig) if f.init}
    unknown = sorted(set(overrides) - known)
    if unknown:
        raise ValueError(f"peft.LoraConfig has no field(s) {unknown}; see `help(peft.LoraConfig)`")
    values = {**PAPER_LORA, **overrides}
    check_lora_values(values)
    return peft.LoraConfig(**values)


def check_lora_values(values: dict[str, Any]) -> None:
    """``r`` a positive integer, ``lora_dropout`` in [0, 1) (PEFT accepts anything)."""
    r = values.get("r", 1)
    if not isinstance(r, int) or r < 1:
        raise ValueError(f"LoRA r={r!r} must be a positive integer")
    if not 0 <= values.get("lora_dropout", 0.0) < 1:
        raise ValueError(f"lora_dropout={values['lora_dropout']!r} must be in [0, 1)")


@dataclass(frozen=True, kw_only=True)
class FinetuneOptions:
    """What ds2-hf adds around ``SFTConfig`` and ``LoraConfig``: data, chat template, model loading, merging.

    Parameters
    ----------
    format : str, default "auto"
        Row format of the dataset (see :mod:`ds2_hf.formats`); ``"auto"`` detects it.
    template : str, optional
        A :meth:`str.format` template over the row's columns that becomes the user turn (needs ``response_column``).
    response_column : str, optional
        With ``template``: the column holding the assistant answer.
    chat_template : str, default "auto"
        ``"auto"`` keeps the tokenizer's template when TRL can train on it and installs the TULU template when the
        tokenizer has none (base models) or one TRL cannot mask; ``"tulu"`` forces the TULU template; any other
        string is a Jinja template or a path to a ``.jinja`` file.
    drop_long_prompts : bool, default True
        Rows whose prompt alone fills ``max_length`` (no assistant token would survive truncation) are dropped with
        a warning; when False such a row raises :class:`~ds2_hf.training.TrainingDataError`.
    dataset_name : str, optional
        Name of the training subset for the model card (defaults to the dataset source when it is a string).
    merge : bool, default False
        Also write the base model with the LoRA weights merged in, to ``<output_dir>/merged``.
    load_in_4bit : bool, default False
        QLoRA: load the base model in 4-bit NF4 with bitsandbytes (CUDA only).
    attn_implementation : str, optional
        E.g. ``"flash_attention_2"`` (CUDA + ``flash-attn`` only) or ``"sdpa"``.
    """

    format: str = "auto"
    template: str | None = None
    response_column: str | None = None
    chat_template: str = "auto"
    drop_long_prompts: bool = True
    dataset_name: str | None = None
    merge: bool = False
    load_in_4bit: bool = False
    attn_implementation: str | None = None

    def __post_init__(self) -> None:
        if (self.template is None) != (self.response_column is None):
            raise ValueError("`template` and `response_column` go together: the template renders the user turn, "
                             "the response column is the assistant turn")


#: ``SFTConfig`` fields that name where a run writes, not how it trains (left out of a recipe's identity).
_PLACE_FIELDS = ("output_dir", "logging_dir", "run_name", "hub_model_id")


def recipe(args, peft_config, options: FinetuneOptions) -> dict[str, Any]:
    """Everything that decides a training run, as JSON-ready values: ``{"sft", "lora", "options"}``.

    Written to ``training_config.json``; two runs with equal recipes are the same training (the output folder
    does not count).
    """
    import json

    sft = {k: v for k, v in args.to_dict().items() if k not in _PLACE_FIELDS}
    out = {"sft": sft, "lora": peft_config.to_dict(), "options": asdict(options)}
    # sets (PEFT keeps target_modules as one) in a fixed order: a recipe must compare equal across processes
    return json.loads(json.dumps(out, default=lambda o: sorted(o) if isinstance(o, (set, frozenset)) else str(o)))


def global_batch_size(args, processes: int | None = None) -> int:
    """``per_device_train_batch_size x gradient_accumulation_steps x processes``."""
    return args.per_device_train_batch_size * args.gradient_accumulation_steps * (processes or world_size())


def describe_warmup(args) -> str:
    """The warm-up as the paper states it: a ratio (``0.03``) or a number of steps."""
    w = args.warmup_steps
    return f"{w:g} of the steps" if isinstance(w, float) and w < 1 else f"{math.floor(w)} steps"
