"""Evaluate a model on the paper's benchmarks and report the scores (one row of Table 3).

Two backends share one interface: ``"builtin"`` scores local copies of MMLU, GSM8K, BBH, TruthfulQA (and TyDiQA
when a SQuAD-format file is given) in-process and offline; ``"lm-eval"`` runs lm-evaluation-harness with the
paper's shot counts (downloads the task data from the Hub). ``"auto"`` picks ``builtin`` when ``data_dir`` is set,
else ``lm-eval`` when it is installed.

Examples
--------
>>> from ds2_hf.evaluation import EvalConfig, evaluate
>>> report = evaluate("runs/ds2", config=EvalConfig(data_dir="data/eval", tasks=("gsm8k", "mmlu")))  # doctest: +SKIP
>>> report.scores                                                                                   # doctest: +SKIP
{'gsm8k': 61.5, 'mmlu': 63.8}
"""

from __future__ import annotations

import json
import logging
import math
import os
import time
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Literal, get_args

from .._import_utils import is_available
from .tasks import DISPLAY, TASKS, TaskResult, available_tasks, get_task

logger = logging.getLogger(__name__)

Backend = Literal["auto", "builtin", "lm-eval"]
BACKENDS: tuple[str, ...] = get_args(Backend)


@dataclass(frozen=True, kw_only=True)
class EvalConfig:
    """What to evaluate and how.

    Parameters
    ----------
    tasks : tuple of str, optional
        Any of ``mmlu``, ``truthfulqa``, ``gsm8k``, ``bbh``, ``tydiqa`` (``none`` on the command line: no benchmark).
        ``None`` = all five (lm-eval) or all whose data exist in ``data_dir`` (builtin).
    backend : str, default "auto"
        ``"builtin"``, ``"lm-eval"`` or ``"auto"``.
    data_dir : str, optional
        Folder with the local benchmark files (layout in :mod:`ds2_hf.evaluation.tasks`).
    limit : int, optional
        Cap on items per sub-task for quick runs (MMLU subject, BBH task, TyDiQA language; total for GSM8K and
        TruthfulQA). ``None`` keeps the paper's settings (GSM8K 200, BBH 40 per task, TyDiQA 100 per language,
        MMLU and TruthfulQA in full).
    task_options : dict, optional
        Per-task overrides, e.g. ``{"mmlu": {"num_fewshot": 5}, "bbh": {"tasks": ("navigate",)}}`` (the fields of
        each task's class in :mod:`ds2_hf.evaluation.tasks`).
    chat_format : bool or "auto", default "auto"
        Wrap prompts in the model's chat template (``"auto"``: when it has one).
    batch_size : int, default 8
        Prompts per forward pass.
    seed : int, default 42
        Seed of the GSM8K subsample and lm-eval's samplers.
    max_length : int, default 4096
        Prompt + generation budget in tokens for the builtin backend.
    """

    tasks: tuple[str, ...] | None = None
    backend: Backend = "auto"
    data_dir: str | None = None
    limit: int | None = None
    task_options: dict[str, dict[str, Any]] = field(default_factory=dict)
    chat_format: bool | Literal["auto"] = "auto"
    batch_size: int = 8
    seed: int = 42
    max_length: int = 4096

    def __post_init__(self) -> None:
        if self.backend not in BACKENDS:
            raise ValueError(f"backend={self.backend!r}; expected one of {BACKENDS}")
        if self.chat_format not in (True, False, "auto"):
            raise ValueError(f"chat_format={self.chat_format!r}; expected True, False or 'auto'")
        for t in list(self.tasks or ()) + list(self.task_options):
            if t not in TASKS:
                raise ValueError(f"unknown task {t!r}; expected one of {sorted(TASKS)}")
        if self.limit is not None and self.limit < 1:
            raise ValueError(f"limit={self.limit!r} must be a positive integer or None")
        if self.data_dir is not None and not Path(self.data_dir).is_dir():
            raise FileNotFoundError(f"data_dir={self.data_dir!r} is not a folder")

    def resolved_backend(self) -> str:
        if self.backend != "auto":
            return self.backend
        if self.data_dir is not None:
            return "builtin"
        if is_available("lm_eval"):
            return "lm-eval"
        raise ValueError(
            "no evaluation backend: pass data_dir= (a folder with the benchmark files, for the offline builtin "
            'backend) or install lm-evaluation-harness (pip install "ds2-hf[eval]")'
        )

    def resolved_tasks(self) -> tuple[str, ...]:
        if self.tasks:
            return tuple(self.tasks)
        if self.resolved_backend() == "builtin":
            found = available_tasks(self.data_dir)
            if not found:
                raise FileNotFoundError(f"no benchmark data found under data_dir={self.data_dir!r}")
            return tuple(found)
        return tuple(DISPLAY)


@dataclass
class EvalReport:
    """Scores of one model.

    Attributes
    ----------
    model : str
        What was evaluated.
    results : dict of str to TaskResult
    seconds : float
        Wall time.
    """

    model: str
    results: dict[str, TaskResult]
    config: dict[str, Any] = field(default_factory=dict)
    seconds: float = 0.0

    @property
    def scores(self) -> dict[str, float]:
        return {t: r.score for t, r in self.results.items()}

    @property
    def average(self) -> float:
        vals = [v for v in self.scores.values() if not math.isnan(v)]
        return sum(vals) / len(vals) if vals else float("nan")

    def to_dict(self) -> dict[str, Any]:
        return {"model": self.model, "scores": self.scores, "average": self.average, "seconds": self.seconds,
                "config": self.config, "results": {t: r.summary() for t, r in self.results.items()}}

    def save(self, output_dir: str | os.PathLike) -> Path:
        """Write ``results.json`` and ``predictions/<task>.jsonl`` to ``output_dir``."""
        out = Path(output_dir)
        (out / "predictions").mkdir(parents=True, exist_ok=True)
        (out / "results.json").write_text(json.dumps(self.to_dict(), indent=2, default=str))
        for task, res in self.results.items():
            with open(out / "predictions" / f"{task}.jsonl", "w", encoding="utf-8") as fh:
                for p in res.predictions:
                    fh.write(json.dumps(p, default=str) + "\n")
        return out / "results.json"

    @classmethod
    def load(cls, path: str | os.PathLike) -> EvalReport:
        """Read a ``results.json`` written by :meth:`save` (without per-item predictions)."""
        path = Path(path)
        if path.is_dir():
            path = path / "results.json"
        data = json.loads(path.read_text())
        results = {t: TaskResult(r["task"], r["metric"], r["score"], r["n"], r.get("subscores", {}), [],
                                 r.get("settings", {})) for t, r in data["results"].items()}
        return cls(model=data["model"], results=results, config=data.get("config", {}),
                   seconds=data.get("seconds", 0.0))

    def markdown(self) -> str:
        """A one-row Markdown table in the paper's column order."""
        cols = [t for t in DISPLAY if t in self.results]
        head = "| Model | " + " | ".join(DISPLAY[c] for c in cols) + " | Average |"
        sep = "|---" * (len(cols) + 2) + "|"
        row = f"| {self.model} | " + " | ".join(f"{self.results[c].score:.1f}" for c in cols)
        return "\n".join([head, sep, row + f" | {self.average:.1f} |"])


def evaluate(model, *, config: EvalConfig | None = None, tokenizer=None, name: str | None = None,
             output_dir: str | os.PathLike | None = None) -> EvalReport:
    """Evaluate ``model`` on the configured benchmarks.

    Parameters
    ----------
    model : str, transformers model, or LanguageModel
        A model folder / Hub id / LoRA adapter folder, an in-memory ``transformers`` model (with ``tokenizer``),
        or any object implementing :class:`~ds2_hf.evaluation.models.LanguageModel` (builtin backend only).
    config : EvalConfig, optional
    tokenizer : optional
        Needed with an in-memory ``transformers`` model.
    name : str, optional
        Row name in reports (defaults to the path).
    output_dir : str or path, optional
        Write ``results.json`` and per-task predictions here.

    Raises
    ------
    ValueError
        Unknown task or backend.
    ds2_hf.evaluation.tasks.MissingDataError
        A requested task has no local data (builtin backend).
    """
    config = config or EvalConfig()
    backend = config.resolved_backend()
    tasks = config.resolved_tasks()
    for t in tasks:  # validate every option before any model is loaded
        get_task(t, **_task_overrides(config, t))
    name = name or (str(model) if isinstance(model, (str, os.PathLike)) else type(model).__name__)
    start = time.perf_counter()
    lm = _as_language_model(model, tokenizer, config)
    results: dict[str, TaskResult] = {}
    if backend == "builtin":
        data_dir = Path(config.data_dir) if config.data_dir else Path(".")
        for t in tasks:
            logger.info("evaluating %s on %s (builtin)", name, t)
            results[t] = get_task(t, **_task_overrides(config, t)).run(
                lm, data_dir, seed=config.seed, batch_size=config.batch_size
            )
    else:
        from .harness import run_lm_eval

        if not hasattr(lm, "model"):
            raise ValueError("the lm-eval backend needs a transformers model, not a custom LanguageModel")
        for t in tasks:
            logger.info("evaluating %s on %s (lm-eval)", name, t)
            results[t] = run_lm_eval(lm.model, lm.tokenizer, t, limit=config.limit, batch_size=config.batch_size,
                                     chat_format=lm.chat_format, seed=config.seed)
    cfg = _describe(config) | {"backend": backend, "tasks": list(tasks)}
    report = EvalReport(model=name, results=results, config=cfg, seconds=time.perf_counter() - start)
    if output_dir is not None:
        report.save(output_dir)
    return report


def _describe(config: EvalConfig) -> dict[str, Any]:
    """The config as JSON-friendly values (model objects passed as task options are named, not copied)."""
    plain = (str, int, float, bool, type(None), tuple, list)
    out = {f.name: getattr(config, f.name) for f in fields(config)}
    out["task_options"] = {t: {k: v if isinstance(v, plain) else type(v).__name__ for k, v in o.items()}
                           for t, o in config.task_options.items()}
    return out


def _task_overrides(config: EvalConfig, task: str) -> dict[str, Any]:
    options = dict(config.task_options.get(task, {}))
    if config.limit is not None:
        options.setdefault("limit", config.limit)
    return options


def _as_language_model(model, tokenizer, config: EvalConfig):
    from .models import LanguageModel, TransformersModel

    if isinstance(model, (str, os.PathLike)):
        return TransformersModel.from_pretrained(str(model), chat_format=config.chat_format,
                                                 batch_size=config.batch_size, max_length=config.max_length)
    if isinstance(model, LanguageModel):
        return model
    if tokenizer is None:
        raise ValueError("pass tokenizer= together with an in-memory transformers model")
    return TransformersModel(model, tokenizer, chat_format=config.chat_format, batch_size=config.batch_size,
                             max_length=config.max_length)
