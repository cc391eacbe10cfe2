"""Offline batch rating with vLLM (``pip install "ds2-hf[vllm]"``, a CUDA machine or the CPU build).

* ``generate``: ``LLM.chat`` over all prompts at once, with the reference's sampling and, when
  ``structured_output``, a JSON-schema constraint (``StructuredOutputsParams`` on vLLM >= 0.10.2,
  ``GuidedDecodingParams`` before).
* ``score``: prompts rendered with the model's chat template plus the answer prefix; one generated token with
  ``top_logprobs`` alternatives gives the score distribution (a second one-token pass after ``"1"`` when the
  tokenizer spells ``10`` as ``1`` + ``0``).

vLLM schedules the whole list itself (continuous batching), so ``batch_size`` is not used; ``rate`` hands vLLM
one ``datasets.map`` batch at a time, which is also the granularity of the on-disk cache.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ..._import_utils import require
from ..prompt import fit_prompt, json_schema, render_chat
from ..scores import distribution_from_paths
from .base import OnResult, RawResult, ScoreTokens, probe_score_tokens


class VLLMBackend:
    """Rate with ``vllm.LLM`` (imported on first use; a clear ImportError names the extra when missing).

    Parameters
    ----------
    config : RatingConfig
    llm : vllm.LLM, optional
        An engine already built (e.g. with tensor parallelism); otherwise built from ``config`` on first use.
    sampling_params : callable, optional
        Factory of sampling parameters (default ``vllm.SamplingParams``).
    """

    def __init__(self, config, *, llm=None, sampling_params=None):
        self.config = config
        self._llm = llm
        self._sampling_params = sampling_params
        self._score_tokens: ScoreTokens | None = None

    def identity(self) -> dict:
        return {"backend": "vllm", "model": self.config.model, "revision": self.config.revision}

    def _load(self):
        if self._llm is None:
            vllm = require("vllm", extra="vllm", purpose="the vLLM rating backend")
            cfg = self.config
            self._llm = vllm.LLM(
                model=cfg.model, revision=cfg.revision, dtype=cfg.dtype, seed=cfg.seed,
                trust_remote_code=cfg.trust_remote_code, max_model_len=cfg.max_input_tokens + cfg.max_new_tokens,
                quantization="bitsandbytes" if cfg.load_in_4bit else None,
            )
        return self._llm

    def close(self) -> None:
        self._llm = None

    def _tokenizer(self):
        return self._load().get_tokenizer()

    def _prompts(self, conversations: Sequence[str], on_result: OnResult):
        """``(index, prompt text, n tokens, truncated)`` within ``max_input_tokens`` (the engine's
        ``max_model_len`` leaves ``max_new_tokens`` after it); the sample is cut and flagged when needed
        (:func:`~ds2_hf.rating.prompt.fit_prompt`), a prompt that cannot fit is reported as failed.

        Prompts go to vLLM as token ids tokenized without special tokens: the chat template already wrote them,
        and a text prompt would get a second BOS.
        """
        tok = self._tokenizer()
        cfg = self.config

        def render(conversation: str) -> str:
            return render_chat(tok, cfg.prompt.messages(conversation), chat_template=cfg.chat_template)

        out = []
        for i, conv in enumerate(conversations):
            fit = fit_prompt(tok, conv, render, budget=cfg.max_input_tokens)
            if fit.error is not None:
                on_result(i, RawResult(error=fit.error, truncated=True, prompt_tokens=fit.n_tokens))
            else:
                out.append((i, fit.text, fit.n_tokens, fit.truncated))
        return out

    def _ids(self, text: str) -> dict:
        return {"prompt_token_ids": list(self._tokenizer()(text, add_special_tokens=False)["input_ids"])}

    def _sampling(self, **kwargs):
        if self._sampling_params is None:
            self._sampling_params = require("vllm", extra="vllm", purpose="the vLLM rating backend").SamplingParams
        return self._sampling_params(**kwargs)

    def _structured_params(self) -> dict:
        if not self.config.structured_output:
            return {}
        schema = json_schema()
        try:  # vLLM >= 0.10.2
            from vllm.sampling_params import StructuredOutputsParams

            return {"structured_outputs": StructuredOutputsParams(json=schema)}
        except ImportError:
            from vllm.sampling_params import GuidedDecodingParams

            return {"guided_decoding": GuidedDecodingParams(json=schema)}

    def generate(self, conversations: Sequence[str], on_result: OnResult) -> None:
        cfg = self.config
        llm = self._load()
        items = self._prompts(conversations, on_result)
        if not items:
            return
        params = self._sampling(
            max_tokens=cfg.max_new_tokens, temperature=cfg.temperature if cfg.do_sample else 0.0,
            top_p=cfg.top_p if cfg.do_sample else 1.0, top_k=cfg.top_k if cfg.do_sample else -1, seed=cfg.seed,
            **self._structured_params(),
        )
        outputs = llm.generate([self._ids(t) for _, t, _, _ in items], params, use_tqdm=False)
        for (i, _, n, truncated), out in zip(items, outputs):
            o = out.outputs[0]
            on_result(i, RawResult(text=o.text, prompt_tokens=n, completion_tokens=len(o.token_ids), truncated=truncated))

    def score(self, conversations: Sequence[str], on_result: OnResult) -> None:
        cfg = self.config
        llm = self._load()
        if self._score_tokens is None:
            self._score_tokens = probe_score_tokens(self._tokenizer(), cfg.prompt.answer_prefix)
        st = self._score_tokens
        items = self._prompts(conversations, on_result)
        if not items:
            return
        params = self._sampling(max_tokens=1, temperature=0.0, logprobs=cfg.top_logprobs)
        texts = [t + st.stem(cfg.prompt.answer_prefix) for _, t, _, _ in items]
        first = llm.generate([self._ids(t) for t in texts], params, use_tqdm=False)
        vocab = 1 + max(max(max(p) for p in st.paths), max(st.digits, default=0))
        steps = [{(): _dense(o.outputs[0].logprobs[0], vocab)} for o in first]
        later = self._sampling(max_tokens=1, temperature=0.0, logprobs=max(cfg.top_logprobs, 10))
        for path in st.steps[1:]:  # one more single-token request per step of the score paths
            outs = llm.generate([{"prompt_token_ids": list(o.prompt_token_ids) + list(path)} for o in first], later,
                                use_tqdm=False)
            for row, o in zip(steps, outs):
                row[path] = _dense(o.outputs[0].logprobs[0], vocab)
        for (i, _, n, truncated), row in zip(items, steps):
            dist, mass = distribution_from_paths(row, st.paths, digit_ids=st.digits)
            on_result(i, RawResult(distribution=dist.tolist(), score_mass=mass, prompt_tokens=n, completion_tokens=1,
                                   truncated=truncated))


def _dense(logprobs: dict, size: int) -> np.ndarray:
    """vLLM's ``{token_id: Logprob}`` (top alternatives) as a dense log-probability vector (-inf elsewhere)."""
    out = np.full(size, -np.inf)
    for tid, lp in logprobs.items():
        if tid < size:
            out[tid] = float(getattr(lp, "logprob", lp))
    return out
