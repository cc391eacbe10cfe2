"""Tiny, random-weight chat models with real tokenizers, built locally (no network).

* ``llama_dir``: the LLaMA-2 SentencePiece tokenizer shipped in the wordllama wheel (digits are single tokens, so
  ``"10"`` is ``"1"`` + ``"0"``) with a ChatML chat template, and a 2-layer LLaMA with random weights.
* ``wordlevel_dir``: a WordLevel tokenizer trained here, in which ``"10"`` is one token.
"""

from __future__ import annotations

import os

import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

CHATML = (
    "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)


def _tiny_llama(vocab_size: int, seed: int = 0, max_positions: int = 768):
    torch.manual_seed(seed)
    cfg = transformers.LlamaConfig(
        vocab_size=vocab_size, hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4,
        num_key_value_heads=2, max_position_embeddings=max_positions, tie_word_embeddings=True,
    )
    return transformers.LlamaForCausalLM(cfg).eval()


def build_llama(path, *, chat_template: str | None = CHATML, seed: int = 0) -> str:
    """Save a tiny LLaMA + the wordllama LLaMA tokenizer (+ ChatML template) to ``path``."""
    import wordllama

    tok_file = os.path.join(os.path.dirname(wordllama.__file__), "tokenizers", "l2_supercat_tokenizer_config.json")
    tok = transformers.PreTrainedTokenizerFast(
        tokenizer_file=tok_file, bos_token="<s>", eos_token="</s>", unk_token="<unk>",
    )
    tok.add_special_tokens({"additional_special_tokens": ["<|im_start|>", "<|im_end|>"]})
    if chat_template:
        tok.chat_template = chat_template
    model = _tiny_llama(len(tok), seed)
    model.generation_config.pad_token_id = tok.eos_token_id
    tok.save_pretrained(path)
    model.save_pretrained(path)
    return str(path)


def build_wordlevel(path, seed: int = 1) -> str:
    """Save a tiny LLaMA + a WordLevel tokenizer in which every number 0..10 is one token."""
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers

    from ds2_hf.rating.prompt import SYSTEM_PROMPT, USER_PROMPT

    tk = Tokenizer(models.WordLevel(unk_token="[UNK]"))
    tk.pre_tokenizer = pre_tokenizers.Whitespace()
    trainer = trainers.WordLevelTrainer(special_tokens=["[UNK]", "[PAD]", "<|im_start|>", "<|im_end|>", "</s>"])
    corpus = [SYSTEM_PROMPT, USER_PROMPT, "answer ###user ###assistant system user assistant : \" , { } ",
              " ".join(str(i) for i in range(11)), "Add 2 and 3 . The answer is 5 . Hello hi what is the capital"]
    tk.train_from_iterator(corpus * 3, trainer)
    tok = transformers.PreTrainedTokenizerFast(tokenizer_object=tk, unk_token="[UNK]", pad_token="[PAD]",
                                               eos_token="</s>")
    tok.chat_template = CHATML
    model = _tiny_llama(len(tok), seed)
    tok.save_pretrained(path)
    model.save_pretrained(path)
    return str(path)


@pytest.fixture(scope="session")
def llama_dir(tmp_path_factory):
    torch.set_num_threads(1)
    return build_llama(tmp_path_factory.mktemp("tiny-llama"))


@pytest.fixture(scope="session")
def wordlevel_dir(tmp_path_factory):
    torch.set_num_threads(1)
    return build_wordlevel(tmp_path_factory.mktemp("tiny-wordlevel"))


@pytest.fixture(scope="session")
def no_template_dir(tmp_path_factory):
    torch.set_num_threads(1)
    return build_llama(tmp_path_factory.mktemp("tiny-no-template"), chat_template=None)


@pytest.fixture(autouse=True)
def _private_default_cache(tmp_path, monkeypatch):
    """Never touch the user's ~/.cache: the default rating cache lives in the test's tmp dir."""
    monkeypatch.setenv("DS2_HF_CACHE", str(tmp_path / "default-cache"))


@pytest.fixture()
def cache_path(tmp_path):
    return str(tmp_path / "ratings.sqlite")


@pytest.fixture(scope="session")
def gpt2like_dir(tmp_path_factory):
    """A tiny LLaMA with a byte-level BPE that merges the space into the number (" 7" is one token)."""
    from .tokenizer_families import gpt2_like

    torch.set_num_threads(1)
    tok = gpt2_like(ten_is_one_token=False)
    path = tmp_path_factory.mktemp("tiny-gpt2like")
    model = _tiny_llama(len(tok), seed=2, max_positions=4096)  # byte-level: the prompt is ~1,500 tokens
    tok.save_pretrained(path)
    model.save_pretrained(path)
    return str(path)
