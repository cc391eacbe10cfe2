"""GSM8K with the 8 chain-of-thought exemplars of Wei et al.; exact match of the last number of the answer.

Data: ``gsm8k/test.jsonl`` (openai/grade-school-math). The paper: 8-shot CoT on 200 seeded random test items.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

from .. import metrics
from ..models import LanguageModel
from .base import TaskResult, batched, need, pct, progress

#: The 8 chain-of-thought exemplars of Wei et al. (2022), used by open-instruct and lm-eval's ``gsm8k_cot``.
GSM8K_COT_EXEMPLARS: list[tuple[str, str]] = [
    (
        (
            "There are 15 trees in the grove. Grove workers will plant trees in the grove today. After they are "
            "done, there will be 21 trees. How many trees did the grove workers plant today?"
        ),
        (
            "There are 15 trees originally. Then there were 21 trees after some more were planted. So there must "
            "have been 21 - 15 = 6. The answer is 6."
        ),
    ),
    (
        (
            "If there are 3 cars in the parking lot and 2 more cars arrive, how many cars are in the parking lot?"
        ),
        (
            "There are originally 3 cars. 2 more cars arrive. 3 + 2 = 5. The answer is 5."
        ),
    ),
    (
        (
            "Leah had 32 chocolates and her sister had 42. If they ate 35, how many pieces do they have left in "
            "total?"
        ),
        (
            "Originally, Leah had 32 chocolates. Her sister had 42. So in total they had 32 + 42 = 74. After "
            "eating 35, they had 74 - 35 = 39. The answer is 39."
        ),
    ),
    (
        (
            "Jason had 20 lollipops. He gave Denny some lollipops. Now Jason has 12 lollipops. How many lollipops"
            " did Jason give to Denny?"
        ),
        (
            "Jason started with 20 lollipops. Then he had 12 after giving some to Denny. So he gave Denny 20 - 12"
            " = 8. The answer is 8."
        ),
    ),
    (
        (
            "Shawn has five toys. For Christmas, he got two toys each from his mom and dad. How many toys does he"
            " have now?"
        ),
        (
            "Shawn started with 5 toys. If he got 2 toys each from his mom and dad, then that is 4 more toys. 5 +"
            " 4 = 9. The answer is 9."
        ),
    ),
    (
        (
            "There were nine computers in the server room. Five more computers were installed each day, from "
            "monday to thursday. How many computers are now in the server room?"
        ),
        (
            "There were originally 9 computers. For each of 4 days, 5 more computers were added. So 5 * 4 = 20 "
            "computers were added. 9 + 20 is 29. The answer is 29."
        ),
    ),
    (
        (
            "Michael had 58 golf balls. On tuesday, he lost 23 golf balls. On wednesday, he lost 2 more. How many"
            " golf balls did he have at the end of wednesday?"
        ),
        (
            "Michael started with 58 golf balls. After losing 23 on tuesday, he had 58 - 23 = 35. After losing 2 "
            "more, he had 35 - 2 = 33 golf balls. The answer is 33."
        ),
    ),
    (
        (
            "Olivia has $23. She bought five bagels for $3 each. How much money does she have left?"
        ),
        (
            "Olivia had 23 dollars. 5 bagels for 3 dollars each will be 5 x 3 = 15 dollars. So she has 23 - 15 "
            "dollars left. 23 - 15 is 8. The answer is 8."
        ),
    ),
]


@dataclass(frozen=True)
class GSM8K:
    """GSM8K with chain-of-thought exemplars; exact match of the last number of the answer.

    Parameters
    ----------
    num_fewshot : int, default 8
        CoT exemplars (at most 8).
    limit : int, optional, default 200
        Random test items (seeded), as in the paper; ``None`` = all 1,319.
    max_new_tokens : int, default 512
        Generation budget of the chain of thought (it stops at the next "Question:").
    """

    num_fewshot: int = 8
    limit: int | None = 200
    max_new_tokens: int = 512
    name: ClassVar[str] = "gsm8k"
    display: ClassVar[str] = "GSM"
    data_path: ClassVar[str] = "gsm8k/test.jsonl"
    metric: ClassVar[str] = "exact_match"

    def load(self, data_dir: Path, *, seed: int = 42) -> list[dict]:
        path = need(data_dir / "gsm8k" / "test.jsonl", "gsm8k", "Expected gsm8k/test.jsonl (question, answer).")
        rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
        for i, r in enumerate(rows):
            r["id"] = i
        if self.limit is not None and self.limit < len(rows):
            rows = random.Random(seed).sample(rows, self.limit)
        return rows

    def prompt(self, question: str) -> str:
        shots = GSM8K_COT_EXEMPLARS[: self.num_fewshot]
        return "".join(f"Question: {q}\nAnswer: {a}\n\n" for q, a in shots) + f"Question: {question}\nAnswer:"

    def run(self, model: LanguageModel, data_dir: Path, *, seed: int = 42, batch_size: int = 8) -> TaskResult:
        if not 0 <= self.num_fewshot <= len(GSM8K_COT_EXEMPLARS):
            raise ValueError(f"gsm8k num_fewshot={self.num_fewshot}; expected 0..{len(GSM8K_COT_EXEMPLARS)}")
        rows = self.load(data_dir, seed=seed)
        preds = []
        for batch in progress(list(batched(rows, batch_size)), "gsm8k"):
            outs = model.generate([model.render(self.prompt(r["question"])) for r in batch],
                                  max_new_tokens=self.max_new_tokens, stop=["\n\nQuestion:", "Question:"])
            for r, out in zip(batch, outs):
                pred, target = metrics.extract_number(out), metrics.gsm8k_target(r["answer"])
                preds.append({"id": r["id"], "output": out, "prediction": pred, "target": target,
                              "correct": metrics.exact_match(pred, target)})
        score = pct(sum(p["correct"] for p in preds) / len(preds)) if preds else float("nan")
        return TaskResult(self.name, self.metric, score, len(preds), {}, preds,
                          {"num_fewshot": self.num_fewshot, "limit": self.limit, "seed": seed, "prompting": "cot"})
