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


class FatalBackendError(RuntimeError):
    """An error that no retry can fix (bad credentials, unreachable server): the run stops, finished ratings stay cached."""


class AuthenticationError(FatalBackendError):
    """The server rejected the credentials (HTTP 401/403)."""


class ServerUnreachableError(FatalBackendError):
    """No connection could be made to the server."""


@runtime_checkable
class RatingBackend(Protocol):
    """What the :class:`~ds2_hf.rating.Rater` needs from a backend.

    ``identity`` names the backend and model in cache keys. ``generate`` and ``score`` receive the rendered
    conversations (``PromptTemplate`` and options come from the backend's config) and must call
    ``on_result(i, RawResult)`` exactly once for every index ``i``, in any order, as results become final. They
    may raise :class:`FatalBackendError`.
    """

    def identity(self) -> dict: ...

    def generate(self, conversations: Sequence[str], on_result: OnResult) -> None: ...

    def score(self, conversations: Sequence[str], on_result: OnResult) -> None: ...

    def close(self) -> None: ...


@dataclass(frozen=True)
class ScoreTokens:
    """Token ids that spell the scores right after the answer prefix, for one tokenizer.

    ``ten`` is the id of ``"10"`` when it is one token, else ``None`` (then ``"10"`` is ``one`` + ``digits[0]``).
    """

    scores: tuple[int, ...]  # ids of "1".."9"
    ten: int | None
    digits: tuple[int, ...]  # ids of "0".."9" as a continuation after "1"

    @property
    def one(self) -> int:
        return self.scores[0]


def probe_score_tokens(tokenizer, answer_prefix: str) -> ScoreTokens:
    """Find how ``tokenizer`` spells ``"1"``..``"10"`` right after ``answer_prefix``.

    The prefix is tokenized in context (after a word, as it appears after the chat template), with and without a
    score appended; the appended ids are the score's tokens.

    Raises
    ------
    ValueError
        When a score does not tokenize as an extension of the prefix, or a digit 1-9 takes several tokens; the
        message suggests an answer prefix that ends differently.
    """

    def ids(text: str) -> list[int]:
        return list(tokenizer(text, add_special_tokens=False)["input_ids"])

    base_text = "answer:\n" + answer_prefix
    base = ids(base_text)
    conts = {}
    for s in range(1, 11):
        full = ids(base_text + str(s))
        if full[: len(base)] != base or len(full) == len(base):
            raise ValueError(
                f"with this tokenizer, the score {s} merges with the end of the answer prefix "
                f"{answer_prefix!r}, so its probability cannot be read from one position. Use an answer prefix "
                "ending differently (e.g. with or without a trailing space): PromptTemplate(answer_prefix=...)"
            )
        conts[s] = full[len(base) :]
    if any(len(conts[s]) != 1 for s in range(1, 10)):
        bad = {s: conts[s] for s in range(1, 10) if len(conts[s]) != 1}
        raise ValueError(f"digits {sorted(bad)} take several tokens after {answer_prefix!r}: {bad}")
    scores = tuple(conts[s][0] for s in range(1, 10))
    if len(conts[10]) == 1:
        ten = conts[10][0]
    elif len(conts[10]) == 2 and conts[10][0] == scores[0]:
        ten = None
    else:
        raise ValueError(f"'10' tokenizes as {conts[10]} after {answer_prefix!r}; expected one token or '1' + '0'")
    one_text = base_text + "1"
    one = ids(one_text)
    digits = []
    for d in range(10):
        full = ids(one_text + str(d))
        if full[: len(one)] != one or len(full) != len(one) + 1:
            if ten is None:
                raise ValueError(f"the digit {d} after '1' does not tokenize as one extra token ({full[len(one):]})")
            digits.append(-1)
            continue
        digits.append(full[-1])
    if ten is None:
        if digits[0] != conts[10][1]:
            raise ValueError("'10' does not tokenize as '1' followed by '0'")
    return ScoreTokens(scores=scores, ten=ten, digits=tuple(digits))


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
