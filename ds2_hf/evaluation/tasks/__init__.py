"""The paper's benchmarks, read from local files and scored in-process (no network, no extra package).

One module per benchmark, each a frozen dataclass behind the :class:`~ds2_hf.evaluation.tasks.base.Task`
protocol; :data:`TASKS` is the registry (in the column order of the paper's Table 3).

=============  ========================================  =====================  ==============================
task           data (under ``data_dir``)                 shots (paper)          metric
=============  ========================================  =====================  ==============================
``mmlu``       ``mmlu/test/<subject>_test.csv``          0 (few-shot from dev)  accuracy (letter log-likelihood)
``truthfulqa`` ``truthfulqa/TruthfulQA.csv``             6-shot QA primer       MC2 (and MC1) by log-likelihood
``gsm8k``      ``gsm8k/test.jsonl``                      8-shot CoT, 200 items  exact match of the final number
``bbh``        ``bbh/<task>.json`` (+ ``cot-prompts/``)  3-shot CoT, 40 / task  exact match after "the answer is"
``tydiqa``     ``tydiqa/*.json`` (SQuAD-format GoldP)    1-shot, 100 / language token F1
=============  ========================================  =====================  ==============================

The layouts are the upstream releases'. A new benchmark is a module with a dataclass that has the ``Task`` class
attributes and ``run``, added to :data:`TASKS`; its fields become its options (``get_task(name, **options)``, CLI
``--<task>-<option>``).

Examples
--------
>>> from ds2_hf.evaluation.tasks import TASKS, get_task
>>> list(TASKS)
['mmlu', 'truthfulqa', 'gsm8k', 'bbh', 'tydiqa']
>>> get_task("gsm8k", limit=20).limit, get_task("gsm8k").num_fewshot
(20, 8)
"""

from __future__ import annotations

from dataclasses import fields
from pathlib import Path

from .base import MissingDataError, Task, TaskResult
from .bbh import BBH
from .gsm8k import GSM8K, GSM8K_COT_EXEMPLARS
from .mmlu import MMLU
from .truthfulqa import TRUTHFULQA_PRIMER, TruthfulQA
from .tydiqa import TyDiQA

#: Task name -> its class, in the paper's column order.
TASKS: dict[str, type[Task]] = {cls.name: cls for cls in (MMLU, TruthfulQA, GSM8K, BBH, TyDiQA)}
#: Display names in the paper's table order.
DISPLAY: dict[str, str] = {name: cls.display for name, cls in TASKS.items()}
#: Where each task's data lives under ``data_dir`` (to list what is available).
DATA_PATHS: dict[str, str] = {name: cls.data_path for name, cls in TASKS.items()}


def get_task(name: str, **options) -> Task:
    """Build a task by name; ``options`` set its fields (``limit``, ``num_fewshot``, ...).

    Raises
    ------
    ValueError
        Unknown task name (the message lists the valid ones) or an unknown option (the message lists the task's).
    """
    key = name.strip().lower()
    if key not in TASKS:
        raise ValueError(f"unknown task {name!r}; expected one of {sorted(TASKS)}")
    cls = TASKS[key]
    valid = {f.name for f in fields(cls)}
    bad = sorted(set(options) - valid)
    if bad:
        raise ValueError(f"task {key!r} has no option(s) {bad}; valid: {sorted(valid)}")
    return cls(**options)


def available_tasks(data_dir: str | Path) -> list[str]:
    """Tasks whose data exist under ``data_dir``, in the paper's order."""
    root = Path(data_dir)
    return [t for t in TASKS if (root / DATA_PATHS[t]).exists()]


__all__ = [
    "BBH", "DATA_PATHS", "DISPLAY", "GSM8K", "GSM8K_COT_EXEMPLARS", "MMLU", "MissingDataError", "TASKS",
    "TRUTHFULQA_PRIMER", "Task", "TaskResult", "TruthfulQA", "TyDiQA", "available_tasks", "get_task",
]
