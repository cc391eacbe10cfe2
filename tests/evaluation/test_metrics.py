"""Scoring functions checked on hand-made predictions with known scores."""

from __future__ import annotations

import math

import pytest

from ds2_hf.evaluation import metrics as M


@pytest.mark.parametrize(
    "text, expected",
    [
        ("5 + 4 = 9. The answer is 9.", "9"),
        ("She pays $1,200 in total.", "1200"),
        ("The answer is: -3", "-3"),
        ("It is 2.50 dollars, so 2.5", "2.5"),
        ("18.0", "18"),
        ("no number here", ""),
        ("First 12, then 7 remain. The answer is 7. Then 100 more", "7"),
    ],
)
def test_extract_number(text, expected):
    assert M.extract_number(text) == expected


def test_gsm8k_target_and_exact_match():
    assert M.gsm8k_target("... so 9 * 2 = 18\n#### 1,018") == "1018"
    predictions = ["The answer is 18.", "The answer is 17.", "so $1,018"]
    targets = ["18", "18", "1018"]
    scores = [M.exact_match(M.extract_number(p), t) for p, t in zip(predictions, targets)]
    assert scores == [1.0, 0.0, 1.0]


@pytest.mark.parametrize(
    "text, expected",
    [
        ("Let's think. A is True. So the answer is False.", "False"),
        ("... So the answer is (B).", "(B)"),
        ("Yes\nmore text", "Yes"),
        ("the answer is: ] ] )", "] ] )"),
        ("", ""),
    ],
)
def test_extract_bbh_answer(text, expected):
    assert M.extract_bbh_answer(text) == expected


def test_f1_known_values():
    # prediction tokens: eiffel tower in paris (articles dropped) vs gold: eiffel tower -> P=2/4, R=1 -> F1=2/3
    assert M.f1_score("the Eiffel tower in Paris", ["Eiffel Tower"]) == pytest.approx(2 / 3)
    assert M.f1_score("Paris.", ["paris", "Lyon"]) == 1.0  # best gold answer, punctuation ignored
    assert M.f1_score("London", ["Paris"]) == 0.0
    # non-English: articles kept, punctuation still removed
    assert M.f1_score("the koira", ["koira"], lang="fi") == pytest.approx(2 / 3)
    with pytest.raises(ValueError):
        M.f1_score("x", [])


def test_mc1_mc2_known_values():
    assert M.mc1([-1.0, -2.0, -3.0], 0) == 1.0
    assert M.mc1([-2.0, -1.0], 0) == 0.0
    assert M.mc1([-1.0, -1.0], 0) == 0.0  # a tie is not a win
    true, false = [math.log(0.4), math.log(0.2)], [math.log(0.3), math.log(0.1)]
    assert M.mc2(true, false) == pytest.approx(0.6)


def test_win_tie_loss_rates():
    r = M.win_tie_loss(["win", "win", "tie", "loss", "error"])
    assert (r["win"], r["tie"], r["loss"], r["n"], r["errors"]) == (50.0, 25.0, 25.0, 4, 1)
    assert r["adjusted_win_rate"] == 62.5
    assert math.isnan(M.win_tie_loss(["error"])["win"])
