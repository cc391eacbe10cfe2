"""Command-line options of evaluation, generated from :class:`~ds2_hf.evaluation.runner.EvalConfig` and from each
benchmark's class in :mod:`ds2_hf.evaluation.tasks` (:mod:`ds2_hf._argparse`): nothing is restated.

* ``EvalConfig``: ``--eval-<field>`` (``--eval-batch-size``, ``--eval-seed``, ``--eval-max-length``...); ``--tasks``,
  ``--backend``, ``--data-dir``, ``--limit`` and ``--chat-format`` also without the prefix;
* each task: ``--<task>-<field>`` of its class, e.g. ``--mmlu-num-fewshot``, ``--gsm8k-limit``, ``--bbh-tasks``,
  ``--truthfulqa-mode``;
* ``--truthfulqa-judges TRUTH INFO``: the paper's judged TruthfulQA (``mode="gen"`` with these two judges).

``--mmlu-shots`` stays as an alias of ``--mmlu-num-fewshot``.

Examples
--------
>>> import argparse
>>> p = argparse.ArgumentParser()
>>> add_eval_arguments(p)
>>> config = eval_config_from_args(p.parse_args(["--tasks", "gsm8k", "mmlu", "--mmlu-shots", "5", "--limit", "20"]))
>>> config.tasks, config.limit, config.task_options
(('gsm8k', 'mmlu'), 20, {'mmlu': {'num_fewshot': 5}})
>>> eval_config_from_args(p.parse_args(["--tasks", "none"])) is None
True
"""

from __future__ import annotations

import argparse

from .._argparse import Option, add_dataclass_arguments, changed_values
from .runner import EvalConfig
from .tasks import TASKS

_ALIASES = {"tasks": ["--tasks"], "backend": ["--backend"], "data_dir": ["--data-dir"], "limit": ["--limit"],
            "chat_format": ["--chat-format"]}
_TASK_ALIASES = {"mmlu": {"num_fewshot": ["--mmlu-shots"]}}


def _register(parser) -> tuple[dict[str, Option], dict[str, dict[str, Option]]]:
    """Add the options to ``parser``; what was registered for ``EvalConfig`` and for each task."""
    group = parser.add_argument_group("benchmarks (paper: MMLU 0-shot, GSM8K 8-shot CoT on 200, BBH 3-shot CoT, "
                                      "TruthfulQA, TyDiQA 1-shot F1)")
    config = add_dataclass_arguments(group, EvalConfig, prefix="eval_", exclude=("task_options",), aliases=_ALIASES)
    group.add_argument("--truthfulqa-judges", nargs=2, default=None, metavar=("TRUTH", "INFO"),
                       help="score TruthfulQA generations with these judge models (the paper: "
                       "allenai/truthfulqa-truth-judge-llama2-7B allenai/truthfulqa-info-judge-llama2-7B) instead "
                       "of multiple choice")
    per_task = {}
    for name, cls in TASKS.items():
        group = parser.add_argument_group(f"{cls.display} (ds2_hf.evaluation.tasks.{cls.__name__})")
        per_task[name] = add_dataclass_arguments(group, cls, prefix=f"{name}_", aliases=_TASK_ALIASES.get(name))
    return config, per_task


def add_eval_arguments(parser: argparse.ArgumentParser) -> None:
    """Register the :class:`EvalConfig` options and every task's options on an ``argparse`` parser."""
    _register(parser)


def eval_config_from_args(args: argparse.Namespace) -> EvalConfig | None:
    """Build an :class:`EvalConfig` from :func:`add_eval_arguments`; ``None`` when ``--tasks none``.

    Raises
    ------
    ValueError
        An unknown task or option value (see :class:`EvalConfig`).
    """
    config, per_task = _register(argparse.ArgumentParser(add_help=False))  # the same options, to read them back
    values = changed_values(args, config)
    tasks = values.get("tasks")
    if tasks and [t.lower() for t in tasks] == ["none"]:
        return None
    if tasks:
        values["tasks"] = tuple(t.lower() for t in tasks)
    task_options = {name: opts for name, registered in per_task.items() if (opts := changed_values(args, registered))}
    if args.truthfulqa_judges:
        truth, info = args.truthfulqa_judges
        task_options.setdefault("truthfulqa", {}).update(mode="gen", truth_judge=truth, info_judge=info)
    return EvalConfig(**values, task_options=task_options)
