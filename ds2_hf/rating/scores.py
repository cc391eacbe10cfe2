"""Score arithmetic: the paper's 1-10 -> 0-5 compression and the logprob-weighted score distribution.

Compression (paper App. B, reference ``score_compress``): 1-4 -> 0, 5 -> 1, 6 -> 2, 7 -> 3, 8 -> 4, 9-10 -> 5,
applied to the *overall* rating; configurable as a 10-entry table (:data:`PAPER_COMPRESSION`).

Logprobs mode reads the next-token distribution right after the answer prefix. Each score is a short token path
whose shape depends on the tokenizer: ``10`` is one token in some (LLaMA-3, GPT-4o) and two (``"1"``, ``"0"``) in
others (LLaMA-2, Mistral, Qwen2, Gemma, SmolLM); byte-level BPEs without digit splitting merge the space before a
number into it (``"Ġ7"``). ``P(s)`` is the product of next-token probabilities along the path
(:func:`distribution_from_paths`). When ``"1"`` is a prefix of ``"10"``, the probability of ``"1"`` is the mass of
every number that starts with 1; the step after ``"1"`` splits it: ``P(10) = P("1") * P("0" | "1")`` and
``P(1) = P("1") * (1 - P(any digit | "1"))`` (a following digit other than 0 would make an invalid 11-19).
The distribution is renormalised over 1..10; the mass it had before (``score_mass``) says how much the model
believed in *some* valid score.

Examples
--------
>>> from ds2_hf.rating.scores import compress, PAPER_COMPRESSION
>>> [compress(s) for s in range(1, 11)]
[0, 0, 0, 0, 1, 2, 3, 4, 5, 5]
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

# compression table: entry s-1 is the compressed class of raw score s
PAPER_COMPRESSION: tuple[int, ...] = (0, 0, 0, 0, 1, 2, 3, 4, 5, 5)


def validate_compression(table: Sequence[int]) -> tuple[int, ...]:
    """Check a compression table: 10 non-negative, non-decreasing integers starting at 0."""
    table = tuple(int(x) for x in table)
    if len(table) != 10 or table[0] != 0 or any(b < a for a, b in zip(table, table[1:])) or table[-1] > 127:
        raise ValueError(
            f"compression={table!r} is invalid: give 10 non-decreasing integers starting at 0 (the class of raw "
            f"scores 1..10), e.g. the paper's {PAPER_COMPRESSION}"
        )
    return table


def compress(score: int | None, table: Sequence[int] = PAPER_COMPRESSION) -> int | None:
    """Map a raw 1-10 score to its class (``None`` stays ``None``)."""
    if score is None:
        return None
    if not 1 <= score <= 10:
        raise ValueError(f"score {score!r} is outside 1..10")
    return table[score - 1]


def expected_score(distribution: Sequence[float]) -> float:
    """Probability-weighted mean of scores 1..10 for a distribution over them."""
    p = np.asarray(distribution, dtype=np.float64)
    return float(p @ np.arange(1, 11))


def round_score(expected: float) -> int:
    """Round an expected score half-up to an integer in 1..10."""
    return int(min(10, max(1, np.floor(expected + 0.5))))


def _log_softmax(x: np.ndarray) -> np.ndarray:
    x = x - x.max()
    return x - np.log(np.exp(x).sum())


def distribution_from_paths(
    step_logprobs: Mapping[tuple[int, ...], np.ndarray],
    paths: Sequence[Sequence[int]],
    *,
    digit_ids: Sequence[int] = (),
) -> tuple[np.ndarray, float]:
    """Distribution over scores 1..10 from next-token log-probabilities along each score's token path.

    A tokenizer spells each score ``s`` after the prompt as a short token path (``("7",)``, ``("Ġ7",)``,
    ``("1", "0")``...). ``P(s)`` is the product of the next-token probabilities along its path. When the path of
    ``1`` is a prefix of the path of ``10``, ``P("1")`` holds every number starting with 1, so ``P(1)`` keeps only
    the part not followed by another digit: ``P(1) = P(path of 1) * (1 - P(any digit | path of 1))``.

    Parameters
    ----------
    step_logprobs : mapping of tuple of int to ndarray, shape (V,)
        Log-probabilities of the next token after each token path: ``()`` = right after the prompt, and every
        proper prefix of a score's path (and the path of ``1`` when it is a prefix of the path of ``10``).
    paths : sequence of 10 sequences of int
        Token ids spelling scores 1..10.
    digit_ids : sequence of int, optional
        Ids of the digits that may follow the path of ``1`` (``-1`` entries are skipped); only used when the path
        of ``1`` is a prefix of the path of ``10``.

    Returns
    -------
    dist : ndarray, shape (10,), float64
        ``P(score = s)`` for s = 1..10, summing to 1 (uniform when no score had any probability).
    mass : float
        Probability of a valid score before renormalisation, in [0, 1].

    Examples
    --------
    >>> import numpy as np
    >>> from ds2_hf.rating.scores import distribution_from_paths
    >>> paths = [(s,) for s in range(1, 10)] + [(1, 0)]        # "10" is "1" followed by "0"
    >>> after_prompt = np.log(np.full(12, 1 / 12))              # every token (12 of them) as likely
    >>> after_one = np.log(np.r_[0.5, np.full(11, 0.5 / 11)])   # after "1": "0" has half the mass
    >>> dist, mass = distribution_from_paths({(): after_prompt, (1,): after_one}, paths, digit_ids=range(10))
    >>> round(mass, 3), round(float(dist[9] / dist[8]), 3)      # P(10) / P(9) = 0.5
    (0.716, 0.5)
    """
    p = np.empty(10, dtype=np.float64)
    for s, path in enumerate(paths):
        p[s] = np.exp(sum(float(step_logprobs[tuple(path[:j])][path[j]]) for j in range(len(path))))
    one, ten = tuple(paths[0]), tuple(paths[9])
    if len(ten) > len(one) and ten[: len(one)] == one:
        after_one = step_logprobs[one]
        q = float(np.exp(after_one[[d for d in digit_ids if d >= 0]]).sum())
        p[0] *= max(0.0, 1.0 - q)
    mass = float(p.sum())
    if mass <= 0 or not np.isfinite(mass):
        return np.full(10, 0.1), 0.0
    return p / mass, min(1.0, mass)


def distribution_from_logprobs(
    first: np.ndarray,
    score_ids: Sequence[int],
    *,
    ten_id: int | None,
    digit_ids: Sequence[int] | None = None,
    second: np.ndarray | None = None,
    normalized: bool = False,
) -> tuple[np.ndarray, float]:
    """Distribution over scores 1..10 when every score 1..9 is one token (see :func:`distribution_from_paths`).

    Parameters
    ----------
    first : ndarray, shape (V,)
        Logits (or log-probabilities when ``normalized``) of the token right after the answer prefix.
    score_ids : sequence of 9 int
        Token ids of ``"1"`` .. ``"9"`` in that position.
    ten_id : int or None
        Token id of ``"10"`` when it is a single token; ``None`` when ``"10"`` is ``"1"`` + ``"0"``.
    digit_ids : sequence of 10 int, optional
        Token ids of ``"0"`` .. ``"9"`` after a ``"1"`` (needed when ``ten_id is None``).
    second : ndarray, shape (V,), optional
        Logits of the token after ``"1"`` (needed when ``ten_id is None``).
    normalized : bool
        The inputs are already log-probabilities.

    Returns
    -------
    dist : ndarray, shape (10,), float64
        ``P(score = s)`` for s = 1..10, summing to 1.
    mass : float
        Probability of a valid score before renormalisation, in [0, 1].
    """
    def logprobs(x):
        return x if normalized else _log_softmax(np.asarray(x, dtype=np.float64))

    one = score_ids[0]
    paths = [(int(i),) for i in score_ids]
    steps = {(): logprobs(first)}
    if ten_id is not None:
        return distribution_from_paths(steps, paths + [(int(ten_id),)])
    if second is None or digit_ids is None:
        raise ValueError("'10' is two tokens for this tokenizer: pass `second` logits and `digit_ids`")
    steps[(one,)] = logprobs(second)
    return distribution_from_paths(steps, paths + [(one, int(digit_ids[0]))], digit_ids=digit_ids)
