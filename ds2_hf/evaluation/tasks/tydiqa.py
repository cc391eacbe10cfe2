"""TyDiQA GoldP, 1-shot, token F1 averaged over languages (the paper: 100 items per language).

Data: every SQuAD-format JSON file in ``tydiqa/`` (e.g. ``tydiqa-goldp-v1.1-dev.json``).
"""

from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

from .. import metrics
from ..models import LanguageModel
from .base import MissingDataError, TaskResult, batched, need, pct, progress

_TYDIQA_LANGS = {"arabic": "ar", "bengali": "bn", "english": "en", "finnish": "fi", "indonesian": "id",
                 "korean": "ko", "russian": "ru", "swahili": "sw", "telugu": "te"}


@dataclass(frozen=True)
class TyDiQA:
    """TyDiQA GoldP, 1-shot, token F1 averaged over languages (the paper: 100 items per language).

    Reads every SQuAD-format JSON file in ``tydiqa/`` (e.g. ``tydiqa-goldp-v1.1-dev.json``); the language is the
    prefix of each question ``id`` (``"english-..."``). The first item of each language is the exemplar.

    Parameters
    ----------
    num_fewshot : int, default 1
        Exemplars per language (the first items of each, not scored).
    limit : int, optional, default 100
        Items per language.
    max_new_tokens : int, default 50
        Answer length (it stops at the end of the line).
    """

    num_fewshot: int = 1
    limit: int | None = 100
    max_new_tokens: int = 50
    name: ClassVar[str] = "tydiqa"
    display: ClassVar[str] = "TydiQA"
    data_path: ClassVar[str] = "tydiqa"
    metric: ClassVar[str] = "f1"

    def load(self, data_dir: Path, *, seed: int = 42) -> dict[str, list[dict]]:
        root = need(data_dir / "tydiqa", "tydiqa",
                    "Expected TyDiQA GoldP in SQuAD format, e.g. tydiqa/tydiqa-goldp-v1.1-dev.json "
                    "(from https://github.com/google-research-datasets/tydiqa).")
        files = sorted(root.glob("*.json"))
        if not files:
            raise MissingDataError(f"tydiqa: no SQuAD-format *.json file in {str(root)!r}")
        by_lang: dict[str, list[dict]] = defaultdict(list)
        for f in files:
            for article in json.loads(f.read_text(encoding="utf-8"))["data"]:
                for para in article["paragraphs"]:
                    for qa in para["qas"]:
                        lang = _TYDIQA_LANGS.get(str(qa["id"]).split("-")[0], str(qa["id"]).split("-")[0])
                        by_lang[lang].append({"id": qa["id"], "context": para["context"], "question": qa["question"],
                                              "answers": [a["text"] for a in qa["answers"]]})
        keep = self.num_fewshot + (self.limit or 10**9)
        return {lang: rows[:keep] for lang, rows in sorted(by_lang.items())}

    @staticmethod
    def block(row: dict, with_answer: bool) -> str:
        text = f"Passage: {row['context']}\nQuestion: {row['question']}\nAnswer:"
        return text + (f" {row['answers'][0]}" if with_answer else "")

    def run(self, model: LanguageModel, data_dir: Path, *, seed: int = 42, batch_size: int = 8) -> TaskResult:
        data = self.load(data_dir, seed=seed)
        head = "Answer the following question based on the information in the given passage.\n\n"
        preds, per_lang = [], {}
        for lang, rows in progress(data.items(), "tydiqa languages"):
            shots, items = rows[: self.num_fewshot], rows[self.num_fewshot :]
            prefix = head + "".join(self.block(s, True) + "\n\n" for s in shots)
            scores = []
            for batch in batched(items, batch_size):
                outs = model.generate([model.render(prefix + self.block(r, False)) for r in batch],
                                      max_new_tokens=self.max_new_tokens, stop=["\n"])
                for r, out in zip(batch, outs):
                    f1 = metrics.f1_score(out, r["answers"], lang=lang)
                    scores.append(f1)
                    preds.append({"id": r["id"], "lang": lang, "prediction": out.strip(), "target": r["answers"],
                                  "f1": f1})
            if scores:
                per_lang[lang] = pct(sum(scores) / len(scores))
        score = sum(per_lang.values()) / len(per_lang) if per_lang else float("nan")
        return TaskResult(self.name, self.metric, score, len(preds), per_lang, preds,
                          {"num_fewshot": self.num_fewshot, "limit_per_language": self.limit})
