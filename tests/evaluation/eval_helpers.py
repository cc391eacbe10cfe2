"""Helpers for the evaluation tests: the bundled benchmark items, an oracle language model, synthetic TyDiQA."""

from __future__ import annotations

import csv
import json
from pathlib import Path

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "eval"
WORDS = ("question answer the a is of and to what which how many in true false yes no one two three four five "
         "six seven eight nine ten plus minus step by think let s so").split()


def write_tydiqa(root: Path) -> Path:
    """A small synthetic TyDiQA GoldP file (SQuAD format), two languages x three questions."""
    qas = []
    for lang in ("english", "finnish"):
        for i in range(3):
            qas.append({"id": f"{lang}-{i}", "question": f"{lang} question {i}?",
                        "answers": [{"text": f"answer {lang} {i}", "answer_start": 0}],
                        "context": f"answer {lang} {i} is written in this passage number {i}."})
    data = {"version": "test", "data": [{"title": "t", "paragraphs": [
        {"context": q["context"], "qas": [{k: v for k, v in q.items() if k != "context"}]} for q in qas]}]}
    (root / "tydiqa").mkdir(parents=True, exist_ok=True)
    path = root / "tydiqa" / "tydiqa-goldp-dev.json"
    path.write_text(json.dumps(data))
    return path


class OracleLM:
    """A :class:`LanguageModel` that knows the answers: ``generate`` returns ``gen[question]`` for the question
    asked last in the prompt; ``loglikelihood`` is 0 for a correct continuation and -5 otherwise."""

    chat_format = False

    def __init__(self, gen: dict[str, str], correct: dict[str, set[str]]):
        self.gen, self.correct = gen, correct
        self.calls = 0

    def _key(self, text: str, keys) -> str:
        found = [(text.rfind(k), k) for k in keys if k in text]
        assert found, f"no known question in prompt {text[-200:]!r}"
        return max(found)[1]

    def render(self, prompt: str, assistant_prefix: str = "") -> str:
        return prompt + assistant_prefix

    def generate(self, prompts, *, max_new_tokens=256, stop=()):
        self.calls += len(prompts)
        return [self.gen[self._key(p, self.gen)] for p in prompts]

    def loglikelihood(self, requests):
        return [0.0 if c.strip() in self.correct[self._key(ctx, self.correct)] else -5.0 for ctx, c in requests]


def oracle(root: Path, *, wrong: bool = False) -> OracleLM:
    """An oracle for every task whose data sit under ``root`` (``wrong=True``: always a wrong answer)."""
    gen: dict[str, str] = {}
    correct: dict[str, set[str]] = {}
    for line in (root / "gsm8k" / "test.jsonl").read_text().splitlines():
        row = json.loads(line)
        gold = int(row["answer"].split("####")[-1].strip().replace(",", ""))
        gen[row["question"]] = f"We add 2 + 2 = 4 first. The answer is {gold + 1 if wrong else gold}."
    for f in (root / "bbh").glob("*.json"):
        for ex in json.loads(f.read_text())["examples"]:
            gen[ex["input"]] = "So the answer is " + ("nonsense" if wrong else ex["target"]) + "."
    for f in (root / "mmlu" / "test").glob("*.csv"):
        with open(f, newline="", encoding="utf-8") as fh:
            mmlu_rows = list(csv.reader(fh))
        for r in mmlu_rows:
            if r[0] == "question":  # header of the converted format
                continue
            index = "ABCD".index(r[5]) if r[5] in "ABCD" else int(r[5])
            correct[r[0] + "\n"] = {"ABCD"[(index + 1) % 4]} if wrong else {"ABCD"[index]}
    with open(root / "truthfulqa" / "TruthfulQA.csv", newline="", encoding="utf-8") as fh:
        tqa_rows = list(csv.DictReader(fh))
    for r in tqa_rows:
        good = {a.strip() for a in r["Correct Answers"].split(";")} | {r["Best Answer"].strip()}
        bad = {a.strip() for a in r["Incorrect Answers"].split(";")}
        correct["Q: " + r["Question"]] = bad if wrong else good
    tydiqa = root / "tydiqa"
    if tydiqa.is_dir():
        for f in tydiqa.glob("*.json"):
            for para in json.loads(f.read_text())["data"][0]["paragraphs"]:
                for qa in para["qas"]:
                    gen[f"Question: {qa['question']}"] = "wrong" if wrong else qa["answers"][0]["text"]
    return OracleLM(gen, correct)

