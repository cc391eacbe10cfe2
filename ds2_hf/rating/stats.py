"""Counters of a rating run: :class:`RatingStats`."""

from __future__ import annotations

from collections import Counter
from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass
class RatingStats:
    """Counters of one run (or of every call of one :class:`Rater`).

    Attributes
    ----------
    rated : int
        Ratings obtained from the backend in this run.
    cached : int
        Rows answered from the on-disk cache (including duplicates within a batch).
    failed : Counter
        Failed rows by reason (``"format"``, ``"parse"``, ``"http_500"``, ``"timeout"``, ``"context_length"``...).
    retries : int
        Request retries (servers).
    truncated : int
        Rows whose sample was cut to fit the context.
    prompt_tokens, completion_tokens : int
        Tokens processed and produced by the backend (as reported by it).
    seconds : float
        Wall time spent rating.
    """

    rated: int = 0
    cached: int = 0
    failed: Counter = field(default_factory=Counter)
    retries: int = 0
    truncated: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    seconds: float = 0.0

    @property
    def rows(self) -> int:
        return self.rated + self.cached + sum(self.failed.values())

    @property
    def all_failed(self) -> bool:
        """At least one row, and not one of them has a rating (the CLI then exits non-zero)."""
        return self.rows > 0 and self.rated + self.cached == 0

    @property
    def rows_per_second(self) -> float:
        return self.rows / self.seconds if self.seconds > 0 else 0.0

    @property
    def tokens_per_second(self) -> float:
        return (self.prompt_tokens + self.completion_tokens) / self.seconds if self.seconds > 0 else 0.0

    def as_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["failed"] = dict(self.failed)
        out.update(rows=self.rows, rows_per_second=round(self.rows_per_second, 3),
                   tokens_per_second=round(self.tokens_per_second, 1))
        return out

    def __str__(self) -> str:
        failed = ", ".join(f"{k}={v}" for k, v in sorted(self.failed.items())) or "none"
        return (
            f"{self.rows} rows in {self.seconds:.1f}s ({self.rows_per_second:.2f} rows/s): {self.rated} rated, "
            f"{self.cached} from cache, failed: {failed}; {self.retries} retries, {self.truncated} truncated, "
            f"{self.prompt_tokens} prompt + {self.completion_tokens} completion tokens "
            f"({self.tokens_per_second:.0f} tokens/s)"
        )


def failure_kind(error: str) -> str:
    """The kind of a ``rating_error`` (its text before the first colon), the key of :attr:`RatingStats.failed`."""
    return error.split(":", 1)[0].strip()
