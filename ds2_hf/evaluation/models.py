"""The two small protocols evaluation needs, and their local ``transformers`` implementation.

* :class:`ChatBackend` -- ``chat(messages, **gen) -> str``: anything that answers a conversation. The LLM judge
  and answer generation for Vicuna-bench / MT-bench use it, so any chat service (a local model, a TGI or vLLM
  server, an OpenAI-compatible API wrapped in a few lines) can play the model, the baseline or the judge.
* :class:`LanguageModel` -- what the benchmark tasks need: ``render`` a prompt (chat template or raw text),
  ``generate`` greedy continuations, and score ``loglikelihood`` of continuations.

:class:`TransformersModel` implements both for any ``AutoModelForCausalLM`` (and LoRA adapter folders).

Examples
--------
>>> from ds2_hf.evaluation import TransformersModel
>>> lm = TransformersModel.from_pretrained("runs/ds2")                         # doctest: +SKIP
>>> lm.chat([{"role": "user", "content": "Name a prime number."}], max_new_tokens=16)  # doctest: +SKIP
'Seven.'
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any, Protocol, runtime_checkable

from .._import_utils import require

logger = logging.getLogger(__name__)

Message = dict[str, str]


@runtime_checkable
class ChatBackend(Protocol):
    """Anything that answers a conversation.

    ``messages`` is a list of ``{"role": "system"|"user"|"assistant", "content": str}``; ``gen`` holds
    generation options such as ``max_new_tokens`` and ``temperature`` that a backend may honour or ignore.
    """

    def chat(self, messages: list[Message], **gen: Any) -> str: ...


@runtime_checkable
class LanguageModel(Protocol):
    """What the benchmark tasks call."""

    def render(self, prompt: str, assistant_prefix: str = "") -> str:
        """The full model input for a user ``prompt`` (chat-formatted or raw), ending in ``assistant_prefix``."""

    def generate(self, prompts: Sequence[str], *, max_new_tokens: int = 256, stop: Sequence[str] = ()) -> list[str]:
        """Greedy continuations of already-rendered ``prompts``, cut at the first ``stop`` string."""

    def loglikelihood(self, requests: Sequence[tuple[str, str]]) -> list[float]:
        """Sum of log-probabilities of each ``continuation`` given its rendered ``context``."""


class FunctionChatBackend:
    """Wrap a plain callable ``messages -> text`` as a :class:`ChatBackend`."""

    def __init__(self, fn):
        self.fn = fn

    def chat(self, messages: list[Message], **gen: Any) -> str:
        return self.fn(messages)


def cut_at_stop(text: str, stop: Sequence[str]) -> str:
    """``text`` up to (not including) the earliest occurrence of any ``stop`` string."""
    cut = len(text)
    for s in stop:
        if s:
            i = text.find(s)
            if i != -1:
                cut = min(cut, i)
    return text[:cut]


class TransformersModel:
    """A local ``transformers`` causal LM as :class:`LanguageModel` and :class:`ChatBackend`.

    Parameters
    ----------
    model : transformers.PreTrainedModel
        A causal LM (a PEFT model works too).
    tokenizer : transformers.PreTrainedTokenizerBase
        Its tokenizer.
    chat_format : bool or "auto", default "auto"
        Wrap benchmark prompts in the chat template as one user turn (open-instruct's ``--use_chat_format``);
        ``"auto"`` = when the tokenizer has a chat template.
    batch_size : int, default 8
        Sequences per forward pass.
    max_length : int, default 4096
        Inputs are truncated on the left to keep ``max_length - max_new_tokens`` tokens.
    """

    def __init__(self, model, tokenizer, *, chat_format: bool | str = "auto", batch_size: int = 8,
                 max_length: int = 4096):
        self.model = model
        self.tokenizer = tokenizer
        if chat_format == "auto":
            chat_format = bool(getattr(tokenizer, "chat_template", None))
        elif chat_format and not getattr(tokenizer, "chat_template", None):
            raise ValueError("chat_format=True but the tokenizer has no chat template; use chat_format=False")
        self.chat_format = bool(chat_format)
        self.batch_size = int(batch_size)
        self.max_length = int(max_length)
        from ..causal_lm import ensure_pad_token

        ensure_pad_token(tokenizer)
        self.model.eval()

    @classmethod
    def from_pretrained(cls, path: str, *, device: str | None = None, dtype: str | None = None,
                        load_in_8bit: bool = False, gguf_file: str | None = None, **kwargs) -> TransformersModel:
        """Load a model folder, ``.gguf`` file, Hub id, or LoRA adapter folder (``adapter_config.json``; needs
        ``peft``) through the shared loader :func:`ds2_hf.causal_lm.load_causal_lm`.

        ``load_in_8bit`` (bitsandbytes, CUDA only) is how the paper runs its 7B judges.
        """
        from ..causal_lm import load_causal_lm

        torch = require("torch", extra="eval")
        transformers = require("transformers", extra="eval")
        device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        load_kwargs: dict[str, Any] = {}
        if dtype:
            load_kwargs["dtype"] = dtype
        elif device.startswith("cuda"):
            load_kwargs["dtype"] = torch.bfloat16
        if load_in_8bit:
            if not device.startswith("cuda"):
                raise ValueError("load_in_8bit needs a CUDA GPU; load the model in full precision on CPU")
            from .._import_utils import require_gpu_package

            require_gpu_package("bitsandbytes", "bitsandbytes", "load_in_8bit")
            load_kwargs["quantization_config"] = transformers.BitsAndBytesConfig(load_in_8bit=True)
        model, tokenizer = load_causal_lm(path, gguf_file=gguf_file, extra="eval",
                                          device=None if load_in_8bit else device, **load_kwargs)
        return cls(model, tokenizer, **kwargs)

    # -------------------------------------------------------------------------------------------- prompts
    def render(self, prompt: str, assistant_prefix: str = "") -> str:
        if not self.chat_format:
            return prompt + assistant_prefix
        text = self.tokenizer.apply_chat_template(
            [{"role": "user", "content": prompt}], tokenize=False, add_generation_prompt=True
        )
        return text + assistant_prefix

    def _encode(self, text: str) -> list[int]:
        # A chat template writes its own special tokens; raw prompts get the tokenizer's (e.g. BOS).
        return self.tokenizer(text, add_special_tokens=not self.chat_format)["input_ids"]

    @property
    def _device(self):
        return next(self.model.parameters()).device

    # -------------------------------------------------------------------------------------------- generation
    def generate(self, prompts: Sequence[str], *, max_new_tokens: int = 256, stop: Sequence[str] = ()) -> list[str]:
        """Greedy continuations, batched with left padding; each stops at EOS or a ``stop`` string."""
        torch = require("torch", extra="eval")
        out: list[str] = []
        keep = max(1, self.max_length - max_new_tokens)
        pad = self.tokenizer.pad_token_id
        stops = [x for x in stop if x]
        for start in range(0, len(prompts), self.batch_size):
            encoded = [self._encode(p)[-keep:] for p in prompts[start : start + self.batch_size]]
            width = max(len(e) for e in encoded)
            ids = torch.full((len(encoded), width), pad, dtype=torch.long)
            mask = torch.zeros((len(encoded), width), dtype=torch.long)
            for i, e in enumerate(encoded):  # left padding
                ids[i, width - len(e) :] = torch.tensor(e, dtype=torch.long)
                mask[i, width - len(e) :] = 1
            extra = {"stopping_criteria": _stop_criteria(self.tokenizer, stops, width)} if stops else {}
            with torch.no_grad():
                gen = self.model.generate(
                    input_ids=ids.to(self._device), attention_mask=mask.to(self._device),
                    max_new_tokens=max_new_tokens, do_sample=False, pad_token_id=pad, **extra,
                )
            for row in gen[:, width:]:
                text = self.tokenizer.decode(row, skip_special_tokens=True)
                out.append(cut_at_stop(text, stops))
        return out

    def loglikelihood(self, requests: Sequence[tuple[str, str]]) -> list[float]:
        """Sum of log-probabilities of each continuation given its context.

        Requests that share a context and whose continuations are single tokens (multiple-choice letters) are
        scored from one forward pass over the context.
        """
        scores: list[float | None] = [None] * len(requests)
        encoded = [self._split(c, x) for c, x in requests]
        single: dict[tuple[int, ...], list[int]] = {}
        rest: list[int] = []
        for i, (ctx_ids, cont_ids) in enumerate(encoded):
            if len(cont_ids) == 1 and ctx_ids:
                single.setdefault(tuple(ctx_ids), []).append(i)
            else:
                rest.append(i)
        contexts = list(single)
        for start in range(0, len(contexts), self.batch_size):
            batch = [list(c) for c in contexts[start : start + self.batch_size]]
            last = self._logprobs(batch)
            for ctx, lp in zip(contexts[start : start + self.batch_size], last):
                for i in single[ctx]:
                    scores[i] = float(lp[len(ctx) - 1, encoded[i][1][0]])
        for start in range(0, len(rest), self.batch_size):
            idx = rest[start : start + self.batch_size]
            seqs = [encoded[i][0] + encoded[i][1] for i in idx]
            logprobs = self._logprobs(seqs)
            for i, seq, lp in zip(idx, seqs, logprobs):
                n = len(encoded[i][1])
                scores[i] = float(sum(lp[p - 1, seq[p]] for p in range(len(seq) - n, len(seq))))
        return [float(s) for s in scores]

    def _split(self, context: str, continuation: str) -> tuple[list[int], list[int]]:
        """Token ids of the context and of the continuation (the suffix of the joint encoding)."""
        ctx = self._encode(context)
        full = self._encode(context + continuation)
        n_common = 0
        for a, b in zip(ctx, full):
            if a != b:
                break
            n_common += 1
        full = full[-self.max_length :]
        n_common -= len(self._encode(context + continuation)) - len(full)
        # the first token has no left context to be scored from
        n_common = min(max(n_common, 1), len(full) - 1) if len(full) > 1 else 0
        return full[:n_common], full[n_common:]

    def _logprobs(self, seqs: list[list[int]]):
        """Log-softmax over the vocabulary for every position of right-padded ``seqs`` (a CPU tensor)."""
        torch = require("torch", extra="eval")
        pad = self.tokenizer.pad_token_id
        width = max(len(s) for s in seqs)
        ids = torch.full((len(seqs), width), pad, dtype=torch.long)
        mask = torch.zeros((len(seqs), width), dtype=torch.long)
        for i, s in enumerate(seqs):
            ids[i, : len(s)] = torch.tensor(s, dtype=torch.long)
            mask[i, : len(s)] = 1
        with torch.no_grad():
            logits = self.model(input_ids=ids.to(self._device), attention_mask=mask.to(self._device)).logits
        return torch.log_softmax(logits.float(), dim=-1).cpu()

    # -------------------------------------------------------------------------------------------- chat
    def chat(self, messages: list[Message], **gen: Any) -> str:
        """Answer a conversation greedily (``max_new_tokens`` honoured, other options ignored)."""
        if getattr(self.tokenizer, "chat_template", None):
            prompt = self.tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
            saved, self.chat_format = self.chat_format, True
        else:
            prompt = "".join(f"{m['role'].capitalize()}: {m['content']}\n" for m in messages) + "Assistant:"
            saved, self.chat_format = self.chat_format, False
        try:
            return self.generate([prompt], max_new_tokens=int(gen.get("max_new_tokens", 512)))[0].strip()
        finally:
            self.chat_format = saved


def _stop_criteria(tokenizer, stops: Sequence[str], prompt_width: int):
    """Stop each sequence once its generated text contains a stop string (works with any tokenizer)."""
    torch = require("torch", extra="eval")
    from transformers import StoppingCriteria, StoppingCriteriaList

    class _StopStrings(StoppingCriteria):
        def __call__(self, input_ids, scores, **kwargs):
            texts = tokenizer.batch_decode(input_ids[:, prompt_width:], skip_special_tokens=True)
            return torch.tensor([any(s in t for s in stops) for t in texts], device=input_ids.device)

    return StoppingCriteriaList([_StopStrings()])
