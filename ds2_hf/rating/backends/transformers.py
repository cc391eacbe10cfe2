"""Local rating with ``transformers``: batched, left-padded, any dtype / device, optional 4-bit (bitsandbytes).

* ``score`` (logprobs mode): one forward pass over ``chat_template(messages) + answer_prefix``; the last position's
  next-token distribution over the score tokens gives the rating. Each score is a token path fixed by the tokenizer
  (:class:`~ds2_hf.rating.backends.base.ScoreTokens`): when it spells ``10`` as ``1`` + ``0``, one extra
  single-token step (re-using the KV cache) reads ``P("0" | "1")``; when it merges the prefix's trailing space into
  the number, the prompt stops before that space and the paths spell it.
* ``generate`` with ``structured_output=True``: the JSON skeleton ``{"Rarity": _, "Complexity": _,
  "Informativeness": _, "Overall rating": _}`` is fixed text and only the four numbers are decoded, each one
  chosen from the model's distribution over 1..10 (sampled with the configured temperature / top-k / top-p, or
  greedy). The answer is valid by construction. The prompt is encoded once and the skeleton extends it through
  the KV cache. Each sample's sampler is seeded by ``seed`` and its text, so results do not depend on batching.
* ``generate`` with ``structured_output=False``: free ``model.generate`` with the reference's sampling; the answer
  goes through the robust parser.

Prompts longer than ``max_input_tokens`` (or the model's context) have their *sample* cut at a token boundary to
fit; the row is flagged ``truncated``.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Sequence

import numpy as np

from ..._import_utils import require
from ..parsing import JSON_KEYS
from ..prompt import fit_prompt, render_chat
from ..scores import distribution_from_paths
from .base import OnResult, RawResult, ScoreTokens, choose_score, probe_score_tokens

logger = logging.getLogger(__name__)

# tokens kept free after the prompt for the JSON skeleton or the answer prefix's continuation
_SKELETON_RESERVE = 48


class _TokenizationDrift(Exception):
    """Re-tokenizing prompt + answer changed tokens already in the KV cache."""


def _sample_rng(seed: int, text: str) -> np.random.Generator:
    digest = hashlib.sha256(text.encode("utf-8")).digest()
    return np.random.default_rng([seed, int.from_bytes(digest[:8], "little")])


def _last_logits_only(model) -> dict:
    """The forward option that computes the logits of the last position only (the LM head over every position
    costs as much as a fifth of a small model's forward pass), under its name in this transformers version."""
    import inspect

    params = inspect.signature(model.forward).parameters
    for name in ("logits_to_keep", "num_logits_to_keep"):
        if name in params:
            return {name: 1}
    return {}


class TransformersBackend:
    """Rate with a local ``transformers`` causal LM.

    Parameters
    ----------
    config : RatingConfig
    model, tokenizer : optional
        Already loaded objects (otherwise loaded lazily from ``config.model``).
    """

    def __init__(self, config, *, model=None, tokenizer=None):
        self.config = config
        self._model = model
        self._tokenizer = tokenizer
        self._source = None
        self._score_tokens: ScoreTokens | None = None

    # --- loading -------------------------------------------------------------------------------------------
    def identity(self) -> dict:
        return {"backend": "transformers", "model": self.config.model_name, "revision": self.config.revision}

    @property
    def source(self):
        """Where the model is (resolved once: a missing file or an unreachable Hub fails here, in one line)."""
        if self._source is None:
            from ...causal_lm import resolve_model

            self._source = resolve_model(self.config.model, gguf_file=self.config.gguf_file,
                                         revision=self.config.revision)
        return self._source

    def _load(self):
        from ...causal_lm import ensure_pad_token, load_causal_lm, load_tokenizer

        cfg = self.config
        if self._model is None:
            torch = require("torch", extra="rate", purpose="the transformers rating backend")
            kwargs: dict = {}
            device = cfg.device or ("cuda" if torch.cuda.is_available() else "cpu")
            if cfg.load_in_4bit:
                transformers = require("transformers", extra="rate", purpose="the transformers rating backend")
                require("bitsandbytes", extra="rate", purpose="4-bit loading (load_in_4bit=True)")
                kwargs["quantization_config"] = transformers.BitsAndBytesConfig(
                    load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_use_double_quant=True,
                    bnb_4bit_compute_dtype=torch.bfloat16,
                )
                kwargs["device_map"] = "auto" if device in ("auto", "cuda") else device
            elif device == "auto":
                kwargs["device_map"] = "auto"
            model, tokenizer = load_causal_lm(
                self.source, revision=cfg.revision, dtype=cfg.dtype, trust_remote_code=cfg.trust_remote_code,
                device=None if "device_map" in kwargs else device, **kwargs,
            )
            self._model = model
            self._tokenizer = self._tokenizer or tokenizer
        if self._tokenizer is None:  # a model object was given without its tokenizer
            self._tokenizer = load_tokenizer(self.source, revision=cfg.revision,
                                             trust_remote_code=cfg.trust_remote_code)
        tok = self._tokenizer
        if tok.padding_side != "left":  # also for a tokenizer passed in: batches are read at their last position
            tok.padding_side = "left"
        ensure_pad_token(tok)
        return self._model, self._tokenizer

    def close(self) -> None:
        self._model = None
        self._score_tokens = None

    @property
    def score_tokens(self) -> ScoreTokens:
        if self._score_tokens is None:
            _, tok = self._load()
            # every score slot of the JSON skeleton ends like the answer prefix: '"<Key>": '
            self._score_tokens = probe_score_tokens(tok, self.config.prompt.answer_prefix)
        return self._score_tokens

    def _context_budget(self, reserve: int) -> int:
        model, _ = self._load()
        limit = getattr(getattr(model, "config", None), "max_position_embeddings", None) or 10**9
        return max(1, min(self.config.max_input_tokens, int(limit) - reserve))

    # --- prompt preparation --------------------------------------------------------------------------------
    def _render(self, conversation: str) -> str:
        _, tok = self._load()
        return render_chat(tok, self.config.prompt.messages(conversation), chat_template=self.config.chat_template)

    def prepare(self, conversation: str, *, reserve: int) -> tuple[str | None, int, bool, str | None]:
        """Render one prompt within the token budget: ``(prompt text, n tokens, truncated, error)``."""
        _, tok = self._load()
        fit = fit_prompt(tok, conversation, self._render, budget=self._context_budget(reserve))
        return fit.text, fit.n_tokens, fit.truncated, fit.error

    # --- forward passes ------------------------------------------------------------------------------------
    def distributions(self, texts: Sequence[str]) -> list[tuple[np.ndarray, float]]:
        """Score distributions (and valid-score mass) after each text, which ends with the stem. One batch."""
        import torch

        model, tok = self._load()
        enc = tok(list(texts), add_special_tokens=False, padding=True, return_tensors="pt")
        device = next(model.parameters()).device
        ids, mask = enc["input_ids"].to(device), enc["attention_mask"].to(device)
        pos = (mask.cumsum(-1) - 1).clamp(min=0)
        with torch.inference_mode():
            out = model(input_ids=ids, attention_mask=mask, position_ids=pos,
                        use_cache=len(self.score_tokens.steps) > 1, **_last_logits_only(model))
            return self._read_scores(model, out, mask, pos[:, -1:])

    def _read_scores(self, model, out, mask, last_pos) -> list[tuple[np.ndarray, float]]:
        """Distributions from a forward pass's last logits, stepping through every score path on its KV cache
        (each step is cropped away again, so the cache ends where it began)."""
        import torch

        st = self.score_tokens
        steps = {(): torch.log_softmax(out.logits[:, -1, :].float(), dim=-1).cpu().numpy()}
        cache, rows = out.past_key_values, mask.shape[0]
        for path in st.steps[1:]:
            ids = torch.tensor([list(path)] * rows, dtype=torch.long, device=mask.device)
            step = model(input_ids=ids, attention_mask=torch.cat([mask, torch.ones_like(ids)], dim=1),
                         position_ids=last_pos + torch.arange(1, len(path) + 1, device=mask.device),
                         past_key_values=cache, use_cache=True, **_last_logits_only(model))
            steps[path] = torch.log_softmax(step.logits[:, -1, :].float(), dim=-1).cpu().numpy()
            cache.crop(-len(path))
        return [distribution_from_paths({p: lp[i] for p, lp in steps.items()}, st.paths, digit_ids=st.digits)
                for i in range(rows)]

    def _batches(self, conversations: Sequence[str], reserve: int, on_result: OnResult):
        """Prepare every prompt, report the failures, and yield length-sorted batches of the rest."""
        prepared = []
        for i, conv in enumerate(conversations):
            text, n, truncated, error = self.prepare(conv, reserve=reserve)
            if error is not None:
                on_result(i, RawResult(error=error, truncated=truncated, prompt_tokens=n))
            else:
                prepared.append((n, i, text, truncated))
        prepared.sort()
        bs = self.config.batch_size
        for start in range(0, len(prepared), bs):
            yield prepared[start : start + bs]

    def score(self, conversations: Sequence[str], on_result: OnResult) -> None:
        stem = self.score_tokens.stem(self.config.prompt.answer_prefix)
        for batch in self._batches(conversations, _SKELETON_RESERVE, on_result):
            dists = self.distributions([text + stem for _, _, text, _ in batch])
            for (n, i, _, truncated), (dist, mass) in zip(batch, dists):
                on_result(i, RawResult(distribution=dist.tolist(), score_mass=mass, prompt_tokens=n,
                                       completion_tokens=1, truncated=truncated))

    def generate(self, conversations: Sequence[str], on_result: OnResult) -> None:
        cfg = self.config
        if cfg.structured_output:
            for batch in self._batches(conversations, _SKELETON_RESERVE, on_result):
                answers = self.skeleton_answers([text for _, _, text, _ in batch], [conversations[i] for _, i, _, _ in batch])
                _, tok = self._load()
                for (n, i, _, truncated), answer in zip(batch, answers):
                    on_result(i, RawResult(text=answer, prompt_tokens=n, truncated=truncated,
                                           completion_tokens=len(tok(answer, add_special_tokens=False)["input_ids"])))
            return
        for batch in self._batches(conversations, cfg.max_new_tokens, on_result):
            for (n, i, _, truncated), (answer, n_new) in zip(batch, self.free_answers([t for _, _, t, _ in batch])):
                on_result(i, RawResult(text=answer, prompt_tokens=n, completion_tokens=n_new, truncated=truncated))

    def skeleton_answers(self, prompts: Sequence[str], seeds: Sequence[str] | None = None) -> list[str]:
        """Decode the four numbers of the JSON skeleton after each prompt (see the module docstring).

        The prompt is encoded once; every later step feeds only the new answer tokens through the KV cache (the
        read-ahead of ``"1"`` for a two-token ``10`` is cropped away again). When re-tokenizing prompt + answer
        does not extend the tokens already fed, the batch falls back to re-encoding from scratch each step.
        """
        cfg = self.config
        seeds = seeds if seeds is not None else prompts
        rngs = [_sample_rng(cfg.seed, s) for s in seeds]
        try:
            return self._skeleton(prompts, rngs, cached=True)
        except _TokenizationDrift:
            rngs = [_sample_rng(cfg.seed, s) for s in seeds]
            return self._skeleton(prompts, rngs, cached=False)

    def _skeleton(self, prompts: Sequence[str], rngs, *, cached: bool) -> list[str]:
        import torch

        cfg = self.config
        model, tok = self._load()
        st = self.score_tokens
        device = next(model.parameters()).device
        answers = [""] * len(prompts)
        fed: list[list[int]] = [[] for _ in prompts]  # token ids of prompt + answer already in the cache, per row
        cache = mask = None
        for k, key in enumerate(JSON_KEYS):
            answers = [a + st.stem(("{" if k == 0 else ", ") + f'"{key}": ') for a in answers]
            if not cached:
                dists = self.distributions([p + a for p, a in zip(prompts, answers)])
            else:
                full = [tok(p + a, add_special_tokens=False)["input_ids"] for p, a in zip(prompts, answers)]
                if any(f[: len(done)] != done for f, done in zip(full, fed)):
                    raise _TokenizationDrift
                new = [f[len(done):] for f, done in zip(full, fed)]
                width = max(len(n) for n in new)
                pad = tok.pad_token_id
                ids = torch.tensor([[pad] * (width - len(n)) + n for n in new], device=device)
                chunk_mask = torch.tensor([[0] * (width - len(n)) + [1] * len(n) for n in new], device=device)
                mask = chunk_mask if mask is None else torch.cat([mask, chunk_mask], dim=1)
                pos = (mask.cumsum(-1) - 1).clamp(min=0)[:, -width:]
                with torch.inference_mode():
                    out = model(input_ids=ids, attention_mask=mask, position_ids=pos, past_key_values=cache,
                                use_cache=True, **_last_logits_only(model))
                    cache = out.past_key_values
                    dists = self._read_scores(model, out, mask, pos[:, -1:])
                fed = full
            for j, (dist, _) in enumerate(dists):
                s = choose_score(dist, do_sample=cfg.do_sample, temperature=cfg.temperature, top_k=cfg.top_k,
                                 top_p=cfg.top_p, rng=rngs[j])
                answers[j] += st.trim + str(s)
        return [a + "}" for a in answers]

    def free_answers(self, prompts: Sequence[str]) -> list[tuple[str, int]]:
        """Free generation with the configured sampling; returns ``(answer, new tokens)`` per prompt."""
        import torch

        cfg = self.config
        model, tok = self._load()
        enc = tok(list(prompts), add_special_tokens=False, padding=True, return_tensors="pt")
        device = next(model.parameters()).device
        torch.manual_seed(cfg.seed)
        kwargs = dict(max_new_tokens=cfg.max_new_tokens, do_sample=cfg.do_sample and cfg.temperature > 0,
                      pad_token_id=tok.pad_token_id)
        if kwargs["do_sample"]:
            kwargs.update(temperature=cfg.temperature, top_p=cfg.top_p, top_k=cfg.top_k)
        with torch.inference_mode():
            out = model.generate(input_ids=enc["input_ids"].to(device),
                                 attention_mask=enc["attention_mask"].to(device), **kwargs)
        new = out[:, enc["input_ids"].shape[1]:]
        results = []
        for row in new:
            ids = row.tolist()
            n_new = sum(1 for t in ids if t != tok.pad_token_id) or len(ids)
            results.append((tok.decode(ids, skip_special_tokens=True), n_new))
        return results
