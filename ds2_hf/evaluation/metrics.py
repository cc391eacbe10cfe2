"""Answer extraction and scoring: exact match (MMLU, GSM8K, BBH, TruthfulQA MC) and token F1 (TyDiQA).

Pure functions over strings and floats, so every metric can be checked on hand-made predictions.

Examples
--------
>>> from ds2_hf.evaluation.metrics import extract_number, f1_score, exact_match
>>> extract_number("5 + 4 = 9 toys. The answer is 9.")
'9'
>>> exact_match(extract_number("So she has $1,200 left."), "1200")
1.0
>>> round(f1_score("the Eiffel tower in Paris", ["Eiffel Tower"]), 3)
0.667
"""

from __future__ import annotations

import math
import re
import string
import unicodedata
from collections import Counter
from collections.abc import Sequence

_NUMBER = re.compile(r"-?[\d,]*\.?\d+")
_ASCII_PUNCT = frozenset(string.punctuation)


def _is_punct(ch: str) -> bool:
    return ch in _ASCII_PUNCT or unicodedata.category(ch).startswith("P")


def normalize_number(text: str) -> str:
    """``"1,200.00"`` -> ``"1200"``, ``"$5"`` -> ``"5"``; non-numbers are returned stripped."""
    t = text.strip().replace(",", "").replace("$", "").rstrip(".")
    try:
        value = float(t)
    except ValueError:
        return text.strip()
    return str(int(value)) if value == int(value) else repr(value)


def extract_number(text: str) -> str:
    """The last number in a (chain-of-thought) answer, normalised; ``""`` when there is none.

    Prefers the number after "The answer is" when the text contains that phrase (the CoT exemplars end so).
    """
    match = re.search(r"answer is\s*:?\s*\$?(-?[\d,]*\.?\d+)", text, flags=re.IGNORECASE)
    if match:
        return normalize_number(match.group(1))
    numbers = _NUMBER.findall(text)
    return normalize_number(numbers[-1]) if numbers else ""


def gsm8k_target(answer: str) -> str:
    """The gold number of a GSM8K answer (the text after ``####``)."""
    return normalize_number(answer.split("####")[-1])


def extract_bbh_answer(text: str) -> str:
    """The answer of a BBH output: after the last "the answer is", else the first line; trailing period dropped."""
    lower = text.lower()
    i = lower.rfind("the answer is")
    if i != -1:
        ans = text[i + len("the answer is") :]
    else:
        ans = text.strip().split("\n")[0] if text.strip() else ""
    ans = ans.strip().strip(":").strip()
    return ans[:-1].strip() if ans.endswith(".") else ans


def exact_match(prediction: str, target: str, *, ignore_case: bool = False) -> float:
    """1.0 when the stripped strings are equal, else 0.0."""
    p, t = prediction.strip(), target.strip()
    if ignore_case:
        p, t = p.lower(), t.lower()
    return float(p == t)


def normalize_answer(text: str, lang: str = "en") -> str:
    """SQuAD / TyDiQA normalisation: lower case, drop punctuation (and English articles), squeeze spaces."""
    text = "".join(ch for ch in text.lower() if not _is_punct(ch))
    if lang == "en":
        text = re.sub(r"\b(a|an|the)\b", " ", text)
    return " ".join(text.split())


def _f1(prediction: str, truth: str, lang: str) -> float:
    pred = normalize_answer(prediction, lang).split()
    gold = normalize_answer(truth, lang).split()
    if not pred and not gold:
        return 1.0
    common = Counter(pred) & Counter(gold)
    same = sum(common.values())
    if same == 0:
        return 0.0
    precision, recall = same / len(pred), same / len(gold)
    return 2 * precision * recall / (precision + recall)


def f1_score(prediction: str, truths: Sequence[str], *, lang: str = "en") -> float:
    """Token F1 of ``prediction`` against the best-matching gold answer, in [0, 1] (TyDiQA GoldP / SQuAD)."""
    if isinstance(truths, str):
        truths = [truths]
    if not truths:
        raise ValueError("f1_score needs at least one gold answer")
    return max(_f1(prediction, t, lang) for t in truths)


def mc1(scores: Sequence[float], correct_index: int = 0) -> float:
    """1.0 when the correct choice has the strictly highest log-likelihood (TruthfulQA MC1, MMLU accuracy)."""
    best = max(range(len(scores)), key=lambda i: scores[i])
    return float(best == correct_index and sum(s == scores[best] for s in scores) == 1)


def mc2(true_scores: Sequence[float], false_scores: Sequence[float]) -> float:
    """Normalised probability mass on the true answers (TruthfulQA MC2), in [0, 1]."""
    all_scores = list(true_scores) + list(false_scores)
    top = max(all_scores)
    probs = [math.exp(s - top) for s in all_scores]
    return sum(probs[: len(true_scores)]) / sum(probs)


def win_tie_loss(outcomes: Sequence[str]) -> dict[str, float]:
    """Rates (in %) of ``"win"``, ``"tie"``, ``"loss"`` over the decided outcomes, plus the adjusted win rate
    ``win + tie / 2`` that the paper's Table 13 reports, and the count of ``"error"`` outcomes."""
    decided = [o for o in outcomes if o in ("win", "tie", "loss")]
    n = len(decided)
    rates = {k: (100.0 * decided.count(k) / n if n else float("nan")) for k in ("win", "tie", "loss")}
    rates["adjusted_win_rate"] = rates["win"] + rates["tie"] / 2 if n else float("nan")
    rates["n"] = n
    rates["errors"] = len(outcomes) - n
    return rates
