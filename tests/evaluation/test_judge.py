"""Pairwise LLM judging: both orders, position bias cancelled, multi-turn, any chat backend."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

from ds2_hf.evaluation import FunctionChatBackend, TransformersModel
from ds2_hf.evaluation.judge import (
    JUDGE_SYSTEM_PROMPT,
    JudgeError,
    combine,
    generate_answers,
    judge_pairwise,
    load_answers,
    load_questions,
    parse_scores,
    save_answers,
)
from ds2_hf.evaluation.models import ChatBackend

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture()
def questions(eval_data):
    return load_questions(eval_data / "vicuna_bench" / "question.jsonl")


def _answer_between(prompt: str, n: int) -> str:
    start = prompt.index(f"[The Start of Assistant {n}'s Answer]\n") + len(f"[The Start of Assistant {n}'s Answer]\n")
    return prompt[start : prompt.index(f"\n\n[The End of Assistant {n}'s Answer]")]


def length_judge(messages):
    """Prefers the longer answer, whatever its position."""
    assert messages[0] == {"role": "system", "content": JUDGE_SYSTEM_PROMPT}
    prompt = messages[1]["content"]
    a1, a2 = _answer_between(prompt, 1), _answer_between(prompt, 2)
    s1, s2 = (8, 4) if len(a1) > len(a2) else (4, 8) if len(a2) > len(a1) else (6, 6)
    return f"{s1} {s2}\nThe longer answer is more detailed."


def test_consistent_judge_gives_wins(questions):
    ours = {q["question_id"]: ["A long and detailed answer with many words."] for q in questions}
    theirs = {q["question_id"]: ["Short."] for q in questions}
    result = judge_pairwise(FunctionChatBackend(length_judge), questions, ours, theirs)
    assert (result.rates["win"], result.rates["tie"], result.rates["loss"]) == (100.0, 0.0, 0.0)
    flipped = judge_pairwise(FunctionChatBackend(length_judge), questions, theirs, ours)
    assert flipped.rates["loss"] == 100.0
    rec = result.records[0]
    assert rec["scores_model_first"] == (8.0, 4.0) and rec["scores_baseline_first"] == (4.0, 8.0)


def test_position_bias_cancels_to_ties(questions):
    biased = FunctionChatBackend(lambda m: "9 3\nAssistant 1 is better.")  # always prefers the first answer
    ours = {q["question_id"]: ["x"] for q in questions}
    result = judge_pairwise(biased, questions, ours, ours)
    assert result.rates["tie"] == 100.0 and result.rates["adjusted_win_rate"] == 50.0
    assert result.records[0]["verdicts"] == ["win", "loss"]


def test_unparsable_replies_are_counted_not_guessed(questions):
    ours = {q["question_id"]: ["x"] for q in questions}
    result = judge_pairwise(FunctionChatBackend(lambda m: "I cannot decide."), questions, ours, ours)
    assert result.rates["n"] == 0 and result.rates["errors"] == len(questions)


def test_combine_rule():
    assert combine("win", "win") == combine("win", "tie") == "win"
    assert combine("win", "loss") == combine("tie", "tie") == "tie"
    assert combine("loss", "tie") == "loss"
    assert combine("error", "win") == "win" and combine("error", "error") == "error"


def test_parse_scores():
    assert parse_scores("8 6\nbecause") == (8.0, 6.0)
    assert parse_scores("Assistant 1: 7/10, Assistant 2: 9/10") == (7.0, 9.0)
    assert parse_scores("7.5, 3") == (7.5, 3.0)
    assert parse_scores("Both are fine") is None and parse_scores("12 3") is None and parse_scores("") is None


def test_multi_turn_keeps_history_and_roundtrips(eval_data, tmp_path):
    mt = load_questions(eval_data / "mt_bench" / "question.jsonl")
    seen = []

    def backend(messages):
        seen.append([m["role"] for m in messages])
        return f"reply {len(messages)}"

    answers = generate_answers(FunctionChatBackend(backend), mt)
    assert seen == [["user"], ["user", "assistant", "user"]]
    assert answers[mt[0]["question_id"]] == ["reply 1", "reply 3"]
    path = save_answers(answers, tmp_path / "a.jsonl", model_id="m")
    assert load_answers(path) == answers
    result = judge_pairwise(FunctionChatBackend(length_judge), mt, answers, answers)
    assert result.rates["tie"] == 100.0


def test_missing_answers_and_bad_files(questions, tmp_path):
    with pytest.raises(JudgeError, match="no answer from one of the two models"):
        judge_pairwise(FunctionChatBackend(length_judge), questions, {}, {})
    with pytest.raises(FileNotFoundError, match="question.jsonl"):
        load_questions(tmp_path / "none.jsonl")
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps({"id": 1}) + "\n")
    with pytest.raises(JudgeError, match="question_id"):
        load_questions(bad)


def test_tiny_model_answers_and_judges(questions, tiny_model):
    model = TransformersModel.from_pretrained(str(tiny_model))
    assert isinstance(model, ChatBackend)
    answers = generate_answers(model, questions, max_new_tokens=6)
    assert set(answers) == {q["question_id"] for q in questions}
    result = judge_pairwise(model, questions, answers, answers, max_new_tokens=6)
    assert result.rates["n"] + result.rates["errors"] == len(questions)
    assert len(result.records[0]["judge_replies"]) == 2


def test_evaluate_script_judge_mode(eval_data, tiny_model, tmp_path, capsys):
    spec = importlib.util.spec_from_file_location("evaluate_script", REPO / "scripts" / "evaluate.py")
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    code = script.main(["--model", str(tiny_model), "--tasks", "none", "--questions",
                        str(eval_data / "vicuna_bench" / "question.jsonl"), "--baseline", str(tiny_model),
                        "--judge-model", str(tiny_model), "--max-new-tokens", "4", "--output-dir", str(tmp_path)])
    assert code == 0
    assert "win" in capsys.readouterr().out
    summary = json.loads((tmp_path / "judge.json").read_text())["summary"]
    assert summary["n"] + summary["errors"] == 3
    assert (tmp_path / "answers.jsonl").is_file() and (tmp_path / "baseline_answers.jsonl").is_file()
    assert script.main(["--model", str(tiny_model), "--tasks", "arc", "--data-dir", str(eval_data)]) == 2
    assert "unknown task 'arc'" in capsys.readouterr().err
