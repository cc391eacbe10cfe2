"""Pairwise LLM-judge evaluation (Vicuna-bench / MT-bench): win / tie / loss against a baseline's answers.

The judge sees the question and both answers in the template of the paper's Table 12 (FastChat's Vicuna-bench
reviewer prompt) and scores each assistant 1-10. Every question is judged twice with the answers swapped, so a
judge's preference for a position cancels out; the two verdicts are combined as in AlpaGasus (which the DS2
evaluation follows): win = wins in both orders or wins once and ties once; tie = ties twice or wins once and loses
once; loss otherwise. The paper reports the rates and ``win + tie / 2`` (Table 13, last column).

Any :class:`~ds2_hf.evaluation.models.ChatBackend` can answer or judge: a local
:class:`~ds2_hf.evaluation.models.TransformersModel`, a server client, or ``FunctionChatBackend(fn)``.

Examples
--------
>>> from ds2_hf.evaluation.judge import load_questions, generate_answers, judge_pairwise
>>> questions = load_questions("vicuna_bench/question.jsonl")                       # doctest: +SKIP
>>> ours = generate_answers(model, questions)                                       # doctest: +SKIP
>>> base = generate_answers(baseline, questions)                                    # doctest: +SKIP
>>> result = judge_pairwise(judge, questions, ours, base)                           # doctest: +SKIP
>>> result.rates["win"], result.rates["adjusted_win_rate"]                          # doctest: +SKIP
(53.8, 63.1)
"""

from __future__ import annotations

import json
import logging
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .metrics import win_tie_loss
from .models import ChatBackend

logger = logging.getLogger(__name__)

JUDGE_SYSTEM_PROMPT = "You are a helpful and precise assistant for checking the quality of the answer."

JUDGE_INSTRUCTION = (
    "We would like to request your feedback on the performance of two AI assistants in response to the user "
    "question displayed above.\nPlease rate the helpfulness, relevance, accuracy, level of details of their "
    "responses. Each assistant receives an overall score on a scale of 1 to 10, where a higher score indicates "
    "better overall performance.\nPlease first output a single line containing only two values indicating the "
    "scores for Assistant 1 and 2, respectively. The two scores are separated by a space. In the subsequent line, "
    "please provide a comprehensive explanation of your evaluation, avoiding any potential bias and ensuring that "
    "the order in which the responses were presented does not affect your judgment."
)

JUDGE_TEMPLATE = (
    "[Question]\n{question}\n\n"
    "[The Start of Assistant 1's Answer]\n{answer_1}\n\n[The End of Assistant 1's Answer]\n\n"
    "[The Start of Assistant 2's Answer]\n{answer_2}\n\n[The End of Assistant 2's Answer]\n\n"
    "[System]\n{instruction}\n\n"
)


class JudgeError(ValueError):
    """Questions and answers do not line up, or an answers file is malformed."""


def load_questions(path: str | os.PathLike) -> list[dict[str, Any]]:
    """Read a FastChat ``question.jsonl`` (``question_id``, ``category``, ``turns``: list of str).

    Raises
    ------
    FileNotFoundError
        The file does not exist.
    JudgeError
        A line without ``question_id`` and ``turns``.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(
            f"no question file at {str(path)!r}; expected a FastChat question.jsonl (Vicuna-bench or MT-bench)"
        )
    out = []
    for i, line in enumerate(path.read_text(encoding="utf-8").splitlines()):
        if not line.strip():
            continue
        row = json.loads(line)
        if "question_id" not in row or not isinstance(row.get("turns"), list) or not row["turns"]:
            raise JudgeError(f"{path}, line {i + 1}: expected `question_id` and a non-empty `turns` list")
        out.append(row)
    return out


def generate_answers(backend: ChatBackend, questions: Sequence[Mapping[str, Any]], *, max_new_tokens: int = 512,
                     model_id: str = "model") -> dict[Any, list[str]]:
    """Answer every turn of every question (multi-turn questions keep the conversation history).

    Returns
    -------
    dict
        ``question_id -> [answer to turn 1, answer to turn 2, ...]``.
    """
    from tqdm.auto import tqdm

    answers = {}
    for q in tqdm(questions, desc=f"answering ({model_id})", leave=False):
        messages, turns = [], []
        for turn in q["turns"]:
            messages.append({"role": "user", "content": turn})
            reply = backend.chat(list(messages), max_new_tokens=max_new_tokens, temperature=0.0)
            messages.append({"role": "assistant", "content": reply})
            turns.append(reply)
        answers[q["question_id"]] = turns
    return answers


def save_answers(answers: Mapping[Any, list[str]], path: str | os.PathLike, *, model_id: str) -> Path:
    """Write answers in FastChat's ``model_answer`` JSONL format."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8") as fh:
        for qid, turns in answers.items():
            fh.write(json.dumps({"question_id": qid, "model_id": model_id,
                                 "choices": [{"index": 0, "turns": list(turns)}]}) + "\n")
    return path


def load_answers(path: str | os.PathLike) -> dict[Any, list[str]]:
    """Read FastChat ``model_answer`` JSONL (``question_id`` + ``choices[0].turns``, or a plain ``turns`` list)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no answers file at {str(path)!r}")
    out = {}
    for i, line in enumerate(path.read_text(encoding="utf-8").splitlines()):
        if not line.strip():
            continue
        row = json.loads(line)
        turns = row["choices"][0]["turns"] if "choices" in row else row.get("turns")
        if "question_id" not in row or not isinstance(turns, list):
            raise JudgeError(f"{path}, line {i + 1}: expected `question_id` and `choices[0].turns` (or `turns`)")
        out[row["question_id"]] = turns
    return out


def parse_scores(text: str) -> tuple[float, float] | None:
    """The two 1-10 scores on the judge's first line, or None when it holds no such pair.

    Accepts ``"8 6"`` (the requested form), ``"8, 6"``, ``"8/10 6/10"`` and ``"Assistant 1: 8, Assistant 2: 6"``.
    """
    lines = text.strip().splitlines()
    if not lines:
        return None
    first = re.sub(r"assistant\s*[12]", " ", lines[0], flags=re.IGNORECASE)
    first = re.sub(r"/\s*10(?:\.0)?\b", " ", first)
    numbers = [float(n) for n in re.findall(r"\d+(?:\.\d+)?", first)]
    if len(numbers) != 2 or not all(0 <= n <= 10 for n in numbers):
        return None
    return numbers[0], numbers[1]


def _render(turns: Sequence[str], label: str) -> str:
    if len(turns) == 1:
        return turns[0]
    return "\n\n".join(f"({label} turn {i + 1}) {t}" for i, t in enumerate(turns))


def _outcome(model_score: float, baseline_score: float) -> str:
    return "win" if model_score > baseline_score else "loss" if model_score < baseline_score else "tie"


def combine(first: str, second: str) -> str:
    """Combine the verdicts of the two orders (AlpaGasus rule); ``"error"`` verdicts are ignored."""
    votes = [v for v in (first, second) if v != "error"]
    if not votes:
        return "error"
    total = sum({"win": 1, "tie": 0, "loss": -1}[v] for v in votes)
    return "win" if total > 0 else "loss" if total < 0 else "tie"


@dataclass
class PairwiseResult:
    """Outcome of a pairwise judging run.

    Attributes
    ----------
    rates : dict
        ``win``, ``tie``, ``loss`` and ``adjusted_win_rate`` in %, ``n`` judged questions, ``errors`` unparsable.
    records : list of dict
        Per question: the scores of both orders, the verdicts and the judge's raw replies.
    """

    model: str
    baseline: str
    rates: dict[str, float]
    records: list[dict[str, Any]] = field(default_factory=list)

    def summary(self) -> dict[str, Any]:
        return {"model": self.model, "baseline": self.baseline, **self.rates}


def judge_pairwise(
    judge: ChatBackend,
    questions: Sequence[Mapping[str, Any]],
    answers: Mapping[Any, Sequence[str]],
    baseline_answers: Mapping[Any, Sequence[str]],
    *,
    model_name: str = "model",
    baseline_name: str = "baseline",
    max_new_tokens: int = 512,
) -> PairwiseResult:
    """Judge ``answers`` against ``baseline_answers`` on ``questions`` in both orders.

    Parameters
    ----------
    judge : ChatBackend
        The judge model (the paper: GPT-4o-mini).
    questions : sequence of dict
        From :func:`load_questions`.
    answers, baseline_answers : mapping
        ``question_id -> list of turn answers`` (from :func:`generate_answers` or :func:`load_answers`).

    Raises
    ------
    JudgeError
        A question has no answer from one of the two models.
    """
    from tqdm.auto import tqdm

    missing = [q["question_id"] for q in questions if q["question_id"] not in answers
               or q["question_id"] not in baseline_answers]
    if missing:
        raise JudgeError(f"no answer from one of the two models for question ids {missing[:10]}"
                         f"{' ...' if len(missing) > 10 else ''}; generate answers for every question first")
    records, outcomes = [], []
    for q in tqdm(questions, desc="judging", leave=False):
        qid = q["question_id"]
        question = _render(q["turns"], "user")
        ours, theirs = _render(answers[qid], "assistant"), _render(baseline_answers[qid], "assistant")
        verdicts, replies, scores = [], [], []
        for a1, a2, model_first in ((ours, theirs, True), (theirs, ours, False)):
            prompt = JUDGE_TEMPLATE.format(question=question, answer_1=a1, answer_2=a2, instruction=JUDGE_INSTRUCTION)
            reply = judge.chat([{"role": "system", "content": JUDGE_SYSTEM_PROMPT},
                                {"role": "user", "content": prompt}], max_new_tokens=max_new_tokens, temperature=0.0)
            parsed = parse_scores(reply)
            replies.append(reply)
            scores.append(parsed)
            if parsed is None:
                verdicts.append("error")
            else:
                m, b = parsed if model_first else parsed[::-1]
                verdicts.append(_outcome(m, b))
        final = combine(*verdicts)
        outcomes.append(final)
        records.append({"question_id": qid, "category": q.get("category"), "scores_model_first": scores[0],
                        "scores_baseline_first": scores[1], "verdicts": verdicts, "outcome": final,
                        "judge_replies": replies})
    rates = win_tie_loss(outcomes)
    if rates["errors"]:
        logger.warning("the judge's reply could not be parsed for %d of %d questions", rates["errors"], len(outcomes))
    return PairwiseResult(model=model_name, baseline=baseline_name, rates=rates, records=records)
