"""MMLU multiple choice, scored by the log-likelihood of each answer letter (open-instruct's protocol).

Data: ``mmlu/test/<subject>_test.csv`` (hendrycks/test, with or without the ``question,choice0..3,answer``
header), few-shot exemplars from ``mmlu/dev/<subject>_dev.csv``. The paper: 0-shot, all 14,042 items.
"""

from __future__ import annotations

import csv
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

from .. import metrics
from ..models import LanguageModel
from .base import MissingDataError, TaskResult, chat, need, pct, progress

_CHOICES = "ABCD"


@dataclass(frozen=True)
class MMLU:
    """MMLU multiple choice, scored by the log-likelihood of each answer letter (open-instruct's protocol).

    Parameters
    ----------
    num_fewshot : int, default 0
        Exemplars per subject from ``mmlu/dev`` (the paper: 0).
    limit : int, optional
        Items per subject (``None`` = all 14,042).
    """

    num_fewshot: int = 0
    limit: int | None = None
    name: ClassVar[str] = "mmlu"
    display: ClassVar[str] = "MMLU"
    data_path: ClassVar[str] = "mmlu/test"
    metric: ClassVar[str] = "accuracy"

    def load(self, data_dir: Path, *, seed: int = 42) -> dict[str, list[dict]]:
        test = need(data_dir / "mmlu" / "test", "mmlu", "Expected the MMLU CSVs as mmlu/test/<subject>_test.csv.")
        files = sorted(test.glob("*_test.csv"))
        if not files:
            raise MissingDataError(f"mmlu: no <subject>_test.csv files in {str(test)!r}")
        out = {}
        for f in files:
            subject = f.name[: -len("_test.csv")]
            rows = _read_mmlu_csv(f)
            out[subject] = rows[: self.limit] if self.limit else rows
        return out

    def prompt(self, subject: str, row: dict, shots: Sequence[dict]) -> str:
        head = f"The following are multiple choice questions (with answers) about {subject.replace('_', ' ')}.\n\n"
        return head + "".join(_mmlu_block(s, True) + "\n\n" for s in shots) + _mmlu_block(row, False)

    def run(self, model: LanguageModel, data_dir: Path, *, seed: int = 42, batch_size: int = 8) -> TaskResult:
        data = self.load(data_dir, seed=seed)
        preds, per_subject = [], {}
        for subject, rows in progress(data.items(), "mmlu subjects"):
            dev = data_dir / "mmlu" / "dev" / f"{subject}_dev.csv"
            shots = _read_mmlu_csv(dev)[: self.num_fewshot] if self.num_fewshot and dev.exists() else []
            if self.num_fewshot and len(shots) < self.num_fewshot:
                raise MissingDataError(f"mmlu: {self.num_fewshot}-shot needs {str(dev)!r} with enough rows")
            correct = []
            prefix = "The answer is:" if chat(model) else ""
            requests = [(model.render(self.prompt(subject, row, shots), prefix), f" {c}")
                        for row in rows for c in _CHOICES]
            flat = model.loglikelihood(requests)  # one call per subject so the model can batch across questions
            for i, row in enumerate(rows):
                scores = flat[4 * i : 4 * i + 4]
                ok = metrics.mc1(scores, row["answer"])
                correct.append(ok)
                preds.append({"subject": subject, "prediction": _CHOICES[max(range(4), key=scores.__getitem__)],
                              "target": _CHOICES[row["answer"]], "correct": ok})
            per_subject[subject] = pct(sum(correct) / len(correct)) if correct else float("nan")
        n = len(preds)
        score = pct(sum(p["correct"] for p in preds) / n) if n else float("nan")
        return TaskResult(self.name, self.metric, score, n, per_subject, preds,
                          {"num_fewshot": self.num_fewshot, "limit_per_subject": self.limit})


def _read_mmlu_csv(path: Path) -> list[dict]:
    with open(path, newline="", encoding="utf-8") as fh:
        rows = list(csv.reader(fh))
    if rows and [c.strip().lower() for c in rows[0][:2]] == ["question", "choice0"]:
        rows = rows[1:]
    out = []
    for i, r in enumerate(rows):
        if len(r) < 6:
            raise ValueError(f"{path}: row {i} has {len(r)} fields; expected question, 4 choices, answer")
        ans = r[5].strip()
        index = _CHOICES.index(ans) if ans in _CHOICES else int(ans)
        out.append({"question": r[0], "choices": r[1:5], "answer": index})
    return out


def _mmlu_block(row: dict, with_answer: bool) -> str:
    text = row["question"] + "".join(f"\n{c}. {t}" for c, t in zip(_CHOICES, row["choices"])) + "\nAnswer:"
    return text + (f" {_CHOICES[row['answer']]}" if with_answer else "")
