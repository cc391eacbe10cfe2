"""The backend protocol: what every rating backend (local model, vLLM, a server) must provide.

A backend turns rendered samples into *raw* answers - a text in ``generate`` mode, a distribution over scores
1..10 in ``logprobs`` mode - and reports each one through a callback as soon as it is final, so the rater can
store it before the next one arrives. Parsing, compression, caching and statistics live in the rater, once.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import numpy as np

from .errors import (  # noqa: F401 - the errors a backend may raise, importable from here too
    AuthenticationError,
    ConfigurationError,
    FatalBackendError,
    ServerUnreachableError,
)


@dataclass
class RawResult:
    """One backend answer for one sample.

    Attributes
    ----------
    text : str or None
        The answer (``generate`` mode).
    distribution : list of 10 float or None
        ``P(score = s)`` for s = 1..10 (``logprobs`` mode), summing to 1.
    score_mass : float or None
        Probability of a valid score token before renormalisation (``logprobs`` mode).
    prompt_tokens, completion_tokens : int
        Token counts (0 when the backend does not report them).
    retries : int
        How many times the request was retried.
    truncated : bool
        The sample was cut to fit the model's context.
    error : str or None
        Why the backend produced no answer (``"http_500: ..."``, ``"timeout"``, ``"context_length: ..."``).
    """

    text: str | None = None
    distribution: list[float] | None = None
    score_mass: float | None = None
    prompt_tokens: int = 0
    completion_tokens: int = 0
    retries: int = 0
    truncated: bool = False
    error: str | None = None


OnResult = Callable[[int, RawResult], None]


@runtime_checkable
class RatingBackend(Protocol):
    """What the :class:`~ds2_hf.rating.Rater` needs from a backend.

    ``identity`` names the backend and model in cache keys. ``generate`` and ``score`` receive the rendered
    conversations (``PromptTemplate`` and options come from the backend's config) and must call
    ``on_result(i, RawResult)`` exactly once for every index ``i``, in any order, from the calling thread, as soon
    as each result is final (the rater stores it then: what a killed run repeats is what was not yet handed over).
    They may raise :class:`~ds2_hf.rating.backends.errors.FatalBackendError` (a
    :class:`~ds2_hf.rating.backends.errors.ConfigurationError` for setup problems).
    """

    def identity(self) -> dict: ...

    def generate(self, conversations: Sequence[str], on_result: OnResult) -> None: ...

    def score(self, conversations: Sequence[str], on_result: OnResult) -> None: ...

    def close(self) -> None: ...


@dataclass(frozen=True)
class ScoreTokens:
    """How one tokenizer spells the scores 1..10 after the answer prefix.

    The prompt is fed up to the *stem*: the answer prefix without its last characters ``trim`` when the tokenizer
    merges those with a following number (the space of ``'": '`` in byte-level BPEs without digit splitting,
    where ``" 7"`` is one token ``"Ġ7"``); ``trim`` is then spelt again as part of every score's token path.

    Attributes
    ----------
    trim : str
        Characters cut from the end of the answer prefix ("" for most tokenizers).
    paths : tuple of 10 tuples of int
        Token ids spelling ``trim + "1"`` .. ``trim + "10"`` after the stem.
    digits : tuple of int
        Ids of ``"0"`` .. ``"9"`` as one-token continuations of the path of ``1`` (``-1`` when a digit takes
        several tokens there); empty unless the path of ``1`` is a prefix of the path of ``10``.
    """

    trim: str
    paths: tuple[tuple[int, ...], ...]
    digits: tuple[int, ...] = ()

    def stem(self, answer_prefix: str) -> str:
        """The text fed before the score paths: ``answer_prefix`` without ``trim``."""
        return answer_prefix[: len(answer_prefix) - len(self.trim)]

    @property
    def steps(self) -> tuple[tuple[int, ...], ...]:
        """Token paths after which the next-token distribution is read: ``()`` (the end of the stem) first, then
        every proper prefix of a score's path, shortest first. One forward step each."""
        found = {path[:j] for path in self.paths for j in range(len(path))}
        return tuple(sorted(found, key=lambda p: (len(p), p)))


def _ids(tokenizer, text: str) -> list[int]:
    return list(tokenizer(text, add_special_tokens=False)["input_ids"])


def _score_paths(tokenizer, stem_text: str, trim: str, max_tokens: int) -> tuple[tuple[int, ...], ...] | None:
    """Token paths of ``trim + "1"`` .. ``trim + "10"`` after ``stem_text``, or None when one does not extend it."""
    stem = _ids(tokenizer, stem_text)
    paths = []
    for s in range(1, 11):
        full = _ids(tokenizer, stem_text + trim + str(s))
        if full[: len(stem)] != stem or not 0 < len(full) - len(stem) <= max_tokens:
            return None
        paths.append(tuple(full[len(stem) :]))
    return tuple(paths)


def probe_score_tokens(tokenizer, answer_prefix: str, *, max_tokens: int = 3) -> ScoreTokens:
    """Find how ``tokenizer`` spells ``"1"``..``"10"`` right after ``answer_prefix``.

    The prefix is tokenized in context (after a word, as it appears after the chat template), with and without
    each score appended. When a score re-tokenizes the end of the prefix (a space merged into the number), the
    shortest tail of the prefix is cut that lets every score extend the rest as whole tokens (:class:`ScoreTokens`).

    Parameters
    ----------
    tokenizer : transformers.PreTrainedTokenizerBase
    answer_prefix : str
        The text right before the score, e.g. ``'{"Overall rating": '``.
    max_tokens : int, default 3
        Longest token path accepted for one score.

    Raises
    ------
    ValueError
        When no cut of the prefix gives every score its own token path, or the digits after ``"1"`` cannot be
        told apart; the message suggests an answer prefix that ends differently.

    Examples
    --------
    >>> from transformers import AutoTokenizer                           # doctest: +SKIP
    >>> st = probe_score_tokens(AutoTokenizer.from_pretrained("gpt2"), '{"Overall rating": ')  # doctest: +SKIP
    >>> st.trim, len(st.steps)                                           # doctest: +SKIP
    (' ', 1)
    """
    context = "answer:\n"
    for cut in range(len(answer_prefix) + 1):
        stem_text, trim = context + answer_prefix[: len(answer_prefix) - cut], answer_prefix[len(answer_prefix) - cut :]
        paths = _score_paths(tokenizer, stem_text, trim, max_tokens)
        if paths is not None:
            break
    else:
        raise ValueError(
            f"with this tokenizer the scores 1-10 do not tokenize as extensions of the answer prefix "
            f"{answer_prefix!r} however much of its end is cut, so their probabilities cannot be read. Use an answer "
            "prefix ending differently (e.g. with or without a trailing space): PromptTemplate(answer_prefix=...)"
        )
    one, ten = paths[0], paths[9]
    if not (len(ten) > len(one) and ten[: len(one)] == one):
        return ScoreTokens(trim=trim, paths=paths)
    prefix = _ids(tokenizer, stem_text) + list(one)
    digits = []
    for d in range(10):
        full = _ids(tokenizer, stem_text + trim + "1" + str(d))
        one_more = full[: len(prefix)] == prefix and len(full) == len(prefix) + 1
        digits.append(full[-1] if one_more else -1)
    if len(ten) == len(one) + 1 and digits[0] != ten[-1]:
        raise ValueError(f"'10' after {answer_prefix!r} is not the path of '1' followed by the digit '0'")
    return ScoreTokens(trim=trim, paths=paths, digits=tuple(digits))


def choose_score(dist: np.ndarray, *, do_sample: bool, temperature: float, top_k: int, top_p: float, rng: np.random.Generator) -> int:
    """Pick a score 1..10 from a distribution: argmax, or a sample after temperature / top-k / top-p."""
    p = np.asarray(dist, dtype=np.float64)
    if not do_sample or temperature <= 0:
        return int(np.argmax(p)) + 1
    logits = np.log(np.clip(p, 1e-300, None)) / temperature
    p = np.exp(logits - logits.max())
    p /= p.sum()
    order = np.argsort(-p, kind="stable")
    keep = np.zeros(10, dtype=bool)
    keep[order[: max(1, min(top_k, 10))]] = True
    cum = np.cumsum(p[order])
    nucleus = order[: int(np.searchsorted(cum, top_p) + 1)]
    mask = np.zeros(10, dtype=bool)
    mask[nucleus] = True
    p = np.where(keep & mask, p, 0.0)
    p /= p.sum()
    return int(rng.choice(10, p=p)) + 1
