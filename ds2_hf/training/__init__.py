"""Finetune a causal language model on a curated subset: TRL's ``SFTTrainer`` with a PEFT LoRA adapter.

The recipe is TRL's own ``SFTConfig`` and PEFT's own ``LoraConfig``, returned with the DS2 paper's values by
:func:`sft_config` and :func:`lora_config` (Appendix F, following Wang et al. 2023 / open-instruct: LoRA rank 64,
alpha 16, dropout 0.1 on every linear layer, learning rate 1e-4 with linear decay and 3 % warm-up, 5 epochs,
global batch 128, 2048 tokens, loss on assistant tokens only). :class:`FinetuneOptions` holds the few options
neither library has. Any row format of :mod:`ds2_hf.formats` trains as is; base models without a chat template get
the TULU template of the paper's data pool, with ``{% generation %}`` markers so TRL can mask all but the answers.

* :mod:`~ds2_hf.training.config` -- :func:`sft_config`, :func:`lora_config`, :class:`FinetuneOptions`;
* :mod:`~ds2_hf.training.data` -- rows -> ``messages``, over-long prompts;
* :mod:`~ds2_hf.training.chat_template` -- the template trained with;
* :mod:`~ds2_hf.training.trainer` -- :func:`finetune`;
* :mod:`~ds2_hf.training.card` -- the model card;
* :mod:`~ds2_hf.training.arguments` -- command-line options generated from the three configs;
* :mod:`~ds2_hf.training.tiny` -- a tiny local model for smoke tests.

Examples
--------
>>> from ds2_hf.training import finetune, lora_config, sft_config
>>> args = sft_config("runs/ds2", num_train_epochs=1, per_device_train_batch_size=8, batch_size=8,
...                   use_cpu=True)                                                         # doctest: +SKIP
>>> result = finetune("my-subset", model="path/to/tiny-llama", args=args,
...                   peft_config=lora_config(r=4))                                         # doctest: +SKIP

Multi-GPU: launch the same script with ``accelerate launch --num_processes 8 scripts/finetune.py ...``; the
gradient-accumulation steps are derived so that ``per-device batch x accumulation x processes`` equals the global
batch size.
"""

from .chat_template import CHAT_TEMPLATES, TULU_CHAT_TEMPLATE, resolve_chat_template
from .config import (
    PAPER_BATCH_SIZE,
    PAPER_LORA,
    PAPER_SFT,
    FinetuneOptions,
    gradient_accumulation_steps,
    lora_config,
    recipe,
    sft_config,
)
from .data import TrainingDataError, check_lengths, to_messages
from .tiny import build_tiny_model
from .trainer import FinetuneResult, finetune, load_model_and_tokenizer

__all__ = [
    "CHAT_TEMPLATES", "FinetuneOptions", "FinetuneResult", "PAPER_BATCH_SIZE", "PAPER_LORA", "PAPER_SFT",
    "TULU_CHAT_TEMPLATE", "TrainingDataError", "build_tiny_model", "check_lengths", "finetune",
    "gradient_accumulation_steps", "load_model_and_tokenizer", "lora_config", "recipe", "resolve_chat_template",
    "sft_config", "to_messages",
]
