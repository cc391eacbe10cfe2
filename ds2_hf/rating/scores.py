"""Score arithmetic: the paper's 1-10 -> 0-5 compression and the logprob-weighted score distribution.

Compression (paper App. B, reference ``score_compress``): 1-4 -> 0, 5 -> 1, 6 -> 2, 7 -> 3, 8 -> 4, 9-10 -> 5,
applied to the *overall* rating; configurable as a 10-entry table (:data:`PAPER_COMPRESSION`).

Logprobs mode reads the next-token distribution right after the answer prefix. Scores 1..9 are one token each
in every common tokenizer; ``10`` is one token in some (LLaMA-3, GPT-4o) and two (``"1"``, ``"0"``) in others
(LLaMA-2, Mistral). In the two-token case the probability of ``"1"`` is the mass of every number that starts with
1; a second step after ``"1"`` splits it: ``P(10) = P("1") * P("0" | "1")`` and
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

from collections.abc import Sequence

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


def distribution_from_logprobs(
    first: np.ndarray,
    score_ids: Sequence[int],
    *,
    ten_id: int | None,
    digit_ids: Sequence[int] | None = None,
    second: np.ndarray | None = None,
    normalized: bool = False,
) -> tuple[np.ndarray, float]:
    """Distribution over scores 1..10 from next-token scores.

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
    lp = first if normalized else _log_softmax(np.asarray(first, dtype=np.float64))
    p = np.exp(lp[list(score_ids)]).astype(np.float64)  # P("1") .. P("9")
    if ten_id is not None:
        p = np.append(p, np.exp(lp[ten_id]))
    else:
        if second is None or digit_ids is None:
            raise ValueError("'10' is two tokens for this tokenizer: pass `second` logits and `digit_ids`")
        lp2 = second if normalized else _log_softmax(np.asarray(second, dtype=np.float64))
        q = np.exp(lp2[list(digit_ids)])
        p_one_prefix = p[0]
        p[0] = p_one_prefix * max(0.0, 1.0 - q.sum())
        p = np.append(p, p_one_prefix * q[0])
    mass = float(p.sum())
    if mass <= 0 or not np.isfinite(mass):
        return np.full(10, 0.1), 0.0
    return p / mass, min(1.0, mass)
