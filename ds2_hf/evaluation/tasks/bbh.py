"""BIG-Bench Hard: 27 tasks, 3-shot chain-of-thought, exact match of the text after "the answer is".

Data: ``bbh/<task>.json`` (suzgunmirac/BIG-Bench-Hard) and its ``cot-prompts/<task>.txt`` when present. The paper:
3-shot CoT, 40 items per task (open-instruct's setting).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

from .. import metrics
from ..models import LanguageModel
from .base import MissingDataError, TaskResult, batched, need, pct, progress


@dataclass(frozen=True)
class BBH:
    """BIG-Bench Hard: 27 tasks, exact match of the text after "the answer is", averaged over all items.

    Prompting (``cot_prompts``): the official 3-shot chain-of-thought prompts, read from
    ``bbh/cot-prompts/<task>.txt`` (the BIG-Bench-Hard repository layout) or, when that folder is absent and
    lm-evaluation-harness is installed, from its ``bbh_cot_fewshot`` task files (the same exemplars), all offline.
    Without either (or with ``cot_prompts="none"``) the first ``num_fewshot`` examples of each task become
    direct-answer exemplars and are left out of its test items. ``settings["prompting"]`` records which was used.

    Parameters
    ----------
    num_fewshot : int, default 3
        Exemplars for direct prompting (the CoT prompt files hold 3).
    cot_prompts : str, default "auto"
        ``"auto"``, ``"none"`` (direct prompting), or a folder of ``<task>.txt`` CoT prompts.
    limit : int, optional, default 40
        Items per task (open-instruct's setting); ``None`` = all 6,511.
    tasks : tuple of str, optional
        Subset of BBH tasks (``None`` = every ``*.json`` found).
    max_new_tokens : int, default 512
        Generation budget of a chain of thought (direct answers get 32 tokens).
    """

    num_fewshot: int = 3
    limit: int | None = 40
    tasks: tuple[str, ...] | None = None
    max_new_tokens: int = 512
    cot_prompts: str = "auto"
    name: ClassVar[str] = "bbh"
    display: ClassVar[str] = "BBH"
    data_path: ClassVar[str] = "bbh"
    metric: ClassVar[str] = "exact_match"

    def load(self, data_dir: Path, *, seed: int = 42) -> dict[str, dict]:
        root = need(data_dir / "bbh", "bbh", "Expected the BIG-Bench-Hard task files as bbh/<task>.json.")
        files = sorted(root.glob("*.json"))
        if self.tasks:
            missing = sorted(set(self.tasks) - {f.stem for f in files})
            if missing:
                raise MissingDataError(f"bbh: no task file for {missing} in {str(root)!r}")
            files = [f for f in files if f.stem in self.tasks]
        if not files:
            raise MissingDataError(f"bbh: no <task>.json files in {str(root)!r}")
        out = {}
        for f in files:
            examples = json.loads(f.read_text(encoding="utf-8"))["examples"]
            prefix = self._cot_prefix(root, f.stem)
            if prefix is not None:
                prompting = "cot"
            else:
                shots, examples = examples[: self.num_fewshot], examples[self.num_fewshot :]
                prefix = "".join(f"Q: {s['input']}\nA: {s['target']}\n\n" for s in shots)
                prompting = "direct"
            out[f.stem] = {"prefix": prefix, "prompting": prompting,
                           "examples": examples[: self.limit] if self.limit else examples}
        return out

    def _cot_prefix(self, root: Path, task: str) -> str | None:
        if self.cot_prompts == "none":
            return None
        folder = root / "cot-prompts" if self.cot_prompts == "auto" else Path(self.cot_prompts)
        if self.cot_prompts != "auto" and not folder.is_dir():
            raise MissingDataError(f"bbh: cot_prompts={self.cot_prompts!r} is not a folder of <task>.txt files")
        if (folder / f"{task}.txt").is_file():
            return _read_cot_prompt(folder / f"{task}.txt")
        if self.cot_prompts == "auto":
            return _lm_eval_cot_prompt(task)
        raise MissingDataError(f"bbh: no CoT prompt {str(folder / (task + '.txt'))!r}")

    def run(self, model: LanguageModel, data_dir: Path, *, seed: int = 42, batch_size: int = 8) -> TaskResult:
        data = self.load(data_dir, seed=seed)
        preds, per_task, prompting = [], {}, set()
        for task, spec in progress(data.items(), "bbh tasks"):
            prompting.add(spec["prompting"])
            cot = spec["prompting"] == "cot"
            suffix = "A: Let's think step by step." if cot else "A:"
            correct = []
            for batch in batched(spec["examples"], batch_size):
                prompts = [model.render(spec["prefix"] + f"Q: {ex['input']}\n{suffix}") for ex in batch]
                outs = model.generate(prompts, max_new_tokens=self.max_new_tokens if cot else 32,
                                      stop=["\n\nQ:", "\nQ:"] if cot else ["\n"])
                for ex, out in zip(batch, outs):
                    pred = metrics.extract_bbh_answer(out)
                    ok = metrics.exact_match(pred, ex["target"])
                    correct.append(ok)
                    preds.append({"task": task, "output": out, "prediction": pred, "target": ex["target"],
                                  "correct": ok})
            per_task[task] = pct(sum(correct) / len(correct)) if correct else float("nan")
        score = pct(sum(p["correct"] for p in preds) / len(preds)) if preds else float("nan")
        return TaskResult(self.name, self.metric, score, len(preds), per_task, preds,
                          {"num_fewshot": self.num_fewshot, "limit_per_task": self.limit,
                           "prompting": "/".join(sorted(prompting))})


def _lm_eval_cot_prompt(task: str) -> str | None:
    """The 3-shot CoT prompt of ``task`` from an installed lm-evaluation-harness, or None."""
    import importlib.util

    spec = importlib.util.find_spec("lm_eval")
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(spec.submodule_search_locations[0]) / "tasks" / "bbh" / "cot_fewshot" / f"{task}.yaml"
    if not path.is_file():
        return None
    import yaml

    cfg = yaml.safe_load(path.read_text(encoding="utf-8"))
    samples = (cfg.get("fewshot_config") or {}).get("samples") or []
    if not samples:
        return None
    shots = "".join(f"Q: {s['input']}\nA: Let's think step by step.\n{s['target']}\n\n" for s in samples)
    return cfg.get("description", "") + shots


def _read_cot_prompt(path: Path) -> str:
    """A BIG-Bench-Hard ``cot-prompts/<task>.txt`` file without its canary header."""
    text = path.read_text(encoding="utf-8")
    if "-----" in text:
        text = text.split("-----", 1)[1]
    return text.strip() + "\n\n"
