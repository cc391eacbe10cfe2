"""What every built-in benchmark provides (:class:`Task`), what it returns (:class:`TaskResult`), shared helpers."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Protocol, runtime_checkable

from ..models import LanguageModel


class MissingDataError(FileNotFoundError):
    """A benchmark's local data file is missing."""


@dataclass
class TaskResult:
    """Score of one benchmark.

    Attributes
    ----------
    task : str
        Task name (``"gsm8k"``, ...).
    metric : str
        Name of the headline metric.
    score : float
        Headline score in [0, 100].
    n : int
        Items scored.
    subscores : dict of str to float
        Per sub-task (MMLU subject, BBH task, TyDiQA language) or secondary metric (TruthfulQA ``mc1``), in [0, 100].
    predictions : list of dict
        One record per item (prompt id, prediction, target, score) for inspection.
    settings : dict
        Shots, prompting style, limits -- what a reader needs to compare numbers.
    """

    task: str
    metric: str
    score: float
    n: int
    subscores: dict[str, float] = field(default_factory=dict)
    predictions: list[dict[str, Any]] = field(default_factory=list)
    settings: dict[str, Any] = field(default_factory=dict)

    def summary(self) -> dict[str, Any]:
        """Everything except the per-item predictions (JSON-serialisable)."""
        return {"task": self.task, "metric": self.metric, "score": self.score, "n": self.n,
                "subscores": self.subscores, "settings": self.settings}


@runtime_checkable
class Task(Protocol):
    """A benchmark scored in-process from local files: a frozen dataclass whose fields are its options.

    Class attributes name it (``name``, the registry key; ``display``, the column of the paper's table), say where
    its data lives under ``data_dir`` (``data_path``) and what it reports (``metric``). :meth:`run` scores a
    model and returns a :class:`TaskResult` with the headline score in [0, 100].
    """

    name: ClassVar[str]
    display: ClassVar[str]
    data_path: ClassVar[str]
    metric: ClassVar[str]

    def run(self, model: LanguageModel, data_dir: Path, *, seed: int = 42, batch_size: int = 8) -> TaskResult: ...


def need(path: Path, task: str, hint: str) -> Path:
    """``path``, or a :class:`MissingDataError` naming it, the expected layout and the fix."""
    if not path.exists():
        raise MissingDataError(
            f"{task}: no local data at {str(path)!r}. {hint} Pass the folder that contains it with "
            f"`data_dir=` (CLI: --data-dir), or use the lm-eval backend (backend='lm-eval', needs the Hub)."
        )
    return path


def progress(items, desc: str):
    from tqdm.auto import tqdm

    return tqdm(items, desc=desc, leave=False)


def batched(seq: Sequence, size: int):
    for i in range(0, len(seq), size):
        yield seq[i : i + size]


def pct(x: float) -> float:
    return 100.0 * x


def mean_pct(values: Sequence[float]) -> float:
    """Mean of 0/1 (or [0, 1]) values in percent; NaN for no values."""
    return pct(sum(values) / len(values)) if values else float("nan")


def chat(model) -> bool:
    """The model wraps prompts in its chat template."""
    return bool(getattr(model, "chat_format", False))
