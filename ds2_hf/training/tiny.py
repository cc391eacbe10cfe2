"""A tiny random-weight causal LM built locally: for offline smoke tests and CPU demos (no download)."""

from __future__ import annotations

import os
from pathlib import Path

from .._import_utils import require
from .chat_template import TULU_CHAT_TEMPLATE


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
