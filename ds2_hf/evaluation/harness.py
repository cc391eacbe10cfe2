"""The paper's benchmarks through lm-evaluation-harness (``pip install "ds2-hf[eval]"``), run in-process.

Task names and shot counts are pinned to the paper's setting (Appendix F). lm-eval's prompts differ in detail
from open-instruct's, so report these numbers as "lm-eval-style", not as identical to the paper's table.

=============  ================================  =====  ====================================
ds2-hf task    lm-eval task(s)                   shots  metric read
=============  ================================  =====  ====================================
``mmlu``       ``mmlu``                          0      ``acc,none``
``gsm8k``      ``gsm8k_cot``                     8      ``exact_match,flexible-extract``
``bbh``        ``bbh_cot_fewshot``               3      ``exact_match,get-answer``
``truthfulqa`` ``truthfulqa_mc2``                (6)    ``acc,none`` (QA primer built in)
``tydiqa``     ``tydiqa_goldp_{ar,bn,...,te}``   1      ``f1,none`` averaged over languages
=============  ================================  =====  ====================================
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from .._import_utils import require
from .tasks import MissingDataError, TaskResult

logger = logging.getLogger(__name__)

TYDIQA_LANGUAGES = ("ar", "bn", "en", "fi", "id", "ko", "ru", "sw", "te")


@dataclass(frozen=True)
class LmEvalTask:
    """How one ds2-hf task maps onto lm-eval."""

    tasks: tuple[str, ...]
    num_fewshot: int | None
    metric: str
    limit: int | None = None  # per lm-eval task; the paper's subsampling


LM_EVAL_TASKS: dict[str, LmEvalTask] = {
    "mmlu": LmEvalTask(("mmlu",), 0, "acc,none"),
    "gsm8k": LmEvalTask(("gsm8k_cot",), 8, "exact_match,flexible-extract", limit=200),
    "bbh": LmEvalTask(("bbh_cot_fewshot",), 3, "exact_match,get-answer", limit=40),
    "truthfulqa": LmEvalTask(("truthfulqa_mc2",), None, "acc,none"),
    "tydiqa": LmEvalTask(tuple(f"tydiqa_goldp_{lang}" for lang in TYDIQA_LANGUAGES), 1, "f1,none", limit=100),
}


def _metric(results: dict[str, Any], task: str, metric: str) -> float:
    entry = results.get(task)
    if entry is None or metric not in entry:
        raise KeyError(f"lm-eval returned no {metric!r} for {task!r} (got {sorted(entry or {})})")
    return float(entry[metric])


def run_lm_eval(
    model,
    tokenizer,
    task: str,
    *,
    limit: int | None = None,
    batch_size: int = 8,
    chat_format: bool = True,
    seed: int = 42,
    task_manager=None,
    spec: LmEvalTask | None = None,
) -> TaskResult:
    """Evaluate an in-memory model on one of the paper's tasks with lm-eval's ``simple_evaluate``.

    Parameters
    ----------
    model, tokenizer
        A ``transformers`` causal LM (PEFT models work) and its tokenizer.
    task : str
        One of :data:`LM_EVAL_TASKS`.
    limit : int, optional
        Items per lm-eval task (defaults to the paper's subsampling: GSM8K 200, BBH 40 per task, TyDiQA 100).
    chat_format : bool
        Apply the tokenizer's chat template (``apply_chat_template=True``).
    task_manager : lm_eval.tasks.TaskManager, optional
        For extra task folders (``TaskManager(include_path=...)``).
    spec : LmEvalTask, optional
        Replace the pinned mapping of ``task`` (e.g. a local task YAML for offline runs).
    """
    if spec is None and task not in LM_EVAL_TASKS:
        raise ValueError(f"unknown task {task!r} for the lm-eval backend; expected one of {sorted(LM_EVAL_TASKS)}")
    lm_eval = require("lm_eval", extra="eval", purpose="the lm-eval evaluation backend")
    from lm_eval.models.huggingface import HFLM

    spec = spec or LM_EVAL_TASKS[task]
    lm = HFLM(pretrained=model, tokenizer=tokenizer, batch_size=batch_size, device=str(model.device))
    try:
        out = lm_eval.simple_evaluate(
            model=lm, tasks=list(spec.tasks), num_fewshot=spec.num_fewshot,
            limit=limit if limit is not None else spec.limit,
            apply_chat_template=bool(chat_format and getattr(tokenizer, "chat_template", None)),
            random_seed=seed, numpy_random_seed=seed, torch_random_seed=seed, fewshot_random_seed=seed,
            task_manager=task_manager, log_samples=False,
        )
    except ConnectionError as err:
        raise MissingDataError(
            f"lm-eval could not download the data of {list(spec.tasks)} ({err}). Run once with Hub access to fill "
            "the datasets cache, or use the offline builtin backend: backend='builtin', data_dir=... "
            "(CLI: --backend builtin --data-dir DIR)"
        ) from err
    results = out["results"]
    subscores = {t: 100.0 * _metric(results, t, spec.metric) for t in spec.tasks}
    score = sum(subscores.values()) / len(subscores)
    n = sum(int(v.get("effective", v.get("original", 0))) for v in out.get("n-samples", {}).values()) or 0
    return TaskResult(task, spec.metric.split(",")[0], score, n, subscores if len(subscores) > 1 else {}, [],
                      {"backend": "lm-eval", "lm_eval_tasks": list(spec.tasks), "num_fewshot": spec.num_fewshot,
                       "limit": limit if limit is not None else spec.limit})
