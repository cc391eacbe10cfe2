"""Evaluate finetuned models the way the DS2 paper does, and compare subsets.

* :mod:`~ds2_hf.evaluation.tasks` -- MMLU, GSM8K, BBH, TruthfulQA, TyDiQA from local files (offline), one module
  each behind the ``Task`` protocol;
* :mod:`~ds2_hf.evaluation.harness` -- the same benchmarks through lm-evaluation-harness;
* :mod:`~ds2_hf.evaluation.metrics` -- answer extraction, exact match, token F1, win/tie/loss;
* :mod:`~ds2_hf.evaluation.judge` -- pairwise LLM judging on Vicuna-bench / MT-bench, both orders;
* :mod:`~ds2_hf.evaluation.models` -- the ``ChatBackend`` / ``LanguageModel`` protocols and a local
  ``transformers`` implementation;
* :mod:`~ds2_hf.evaluation.comparison` -- finetune + evaluate several subsets into one Table 3-style table;
* :mod:`~ds2_hf.evaluation.arguments` -- command-line options generated from ``EvalConfig`` and the tasks.

Names are imported lazily so ``import ds2_hf.evaluation`` needs neither torch nor transformers.
"""

from __future__ import annotations

import importlib

_LAZY = {
    "ChatBackend": "models",
    "LanguageModel": "models",
    "TransformersModel": "models",
    "FunctionChatBackend": "models",
    "EvalConfig": "runner",
    "EvalReport": "runner",
    "evaluate": "runner",
    "Task": "tasks",
    "TaskResult": "tasks",
    "MissingDataError": "tasks",
    "get_task": "tasks",
    "available_tasks": "tasks",
    "load_questions": "judge",
    "load_answers": "judge",
    "save_answers": "judge",
    "generate_answers": "judge",
    "judge_pairwise": "judge",
    "PairwiseResult": "judge",
    "Comparison": "comparison",
    "compare": "comparison",
}

__all__ = sorted(_LAZY)  # noqa: PLE0605


def __getattr__(name: str):
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'ds2_hf.evaluation' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"ds2_hf.evaluation.{module}"), name)
    globals()[name] = value
    return value


def __dir__():
    return __all__
