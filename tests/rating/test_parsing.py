import numpy as np
import pytest

from ds2_hf.rating.parsing import RatingParseError, parse_answer
from ds2_hf.rating.scores import (
    PAPER_COMPRESSION, compress, distribution_from_logprobs, expected_score, round_score, validate_compression,
)


@pytest.mark.parametrize(
    "text, expected",
    [
        ('{"Rarity": 3, "Complexity": 4, "Informativeness": 5, "Overall rating": 6}', (3, 4, 5, 6)),
        ('Here you go:\n```json\n{"Rarity": "3", "Complexity": 4.0, "Informativeness": "5/10", "Overall rating": 10}\n```',
         (3, 4, 5, 10)),
        ("{'rarity': 2, 'complexity': 2, 'informativeness': 2, 'overall_rating': 9,}", (2, 2, 2, 9)),
        # the format restated first, the answer last: the last complete object wins
        ('{"Rarity": <number>} then {"Rarity": 1, "Complexity": 1, "Informativeness": 1, "Overall Rating": 1}', (1, 1, 1, 1)),
        ('Rarity: 7\nComplexity: 6\nInformativeness: 5\nOverall rating: 8', (7, 6, 5, 8)),
        ('{"Rarity": 3, "Complexity": 4, "Informativeness": 5, "Overall rating": 6, "note": "{nested}"}', (3, 4, 5, 6)),
    ],
)
def test_parse_accepts_common_answer_shapes(text, expected):
    assert parse_answer(text) == expected


@pytest.mark.parametrize(
    "text, fragment",
    [
        ("", "empty answer"),
        ("I cannot rate this.", "no JSON object"),
        ('{"Rarity": 3, "Complexity": 4, "Informativeness": 5}', "missing key(s) ['Overall rating']"),
        ('{"Rarity": 3, "Complexity": 4, "Informativeness": 5, "Overall rating": 11}', "out of range"),
        ('{"Rarity": 0, "Complexity": 4, "Informativeness": 5, "Overall rating": 7}', "'Rarity'=0 is out of range"),
        ('{"Rarity": 3, "Complexity": 4.5, "Informativeness": 5, "Overall rating": 7}', "not an integer"),
        ('{"Rarity": 3, "Complexity": "high", "Informativeness": 5, "Overall rating": 7}', "expected an integer"),
        ('{"Rarity": 3, "Complexity": true, "Informativeness": 5, "Overall rating": 7}', "boolean"),
    ],
)
def test_parse_rejects_with_a_reason(text, fragment):
    with pytest.raises(RatingParseError) as info:
        parse_answer(text)
    assert info.value.reason.startswith("parse: ")
    assert fragment in info.value.reason


def test_compression_is_the_papers():
    assert [compress(s) for s in range(1, 11)] == [0, 0, 0, 0, 1, 2, 3, 4, 5, 5]
    assert compress(None) is None
    custom = (0, 0, 1, 1, 2, 2, 3, 3, 4, 4)
    assert [compress(s, custom) for s in (1, 4, 10)] == [0, 1, 4]
    with pytest.raises(ValueError, match="outside 1..10"):
        compress(0)
    for bad in [(0,) * 9, (1,) + PAPER_COMPRESSION[1:], (0, 0, 0, 0, 1, 2, 3, 4, 5, 4)]:
        with pytest.raises(ValueError, match="10 non-decreasing integers"):
            validate_compression(bad)


def test_expected_and_rounding():
    p = np.zeros(10)
    p[[6, 7]] = 0.5  # scores 7 and 8
    assert expected_score(p) == pytest.approx(7.5)
    assert round_score(7.5) == 8 and round_score(7.49) == 7 and round_score(0.2) == 1 and round_score(10.4) == 10


def test_distribution_single_token_ten_on_known_logits():
    vocab = 20
    score_ids = list(range(1, 10))  # "1".."9" -> ids 1..9, "10" -> id 10
    logits = np.full(vocab, -1e9)
    logits[[3, 10, 15]] = np.log([0.2, 0.3, 0.5])  # score 3, score 10, a non-score token
    dist, mass = distribution_from_logprobs(logits, score_ids, ten_id=10)
    assert mass == pytest.approx(0.5)
    assert dist[2] == pytest.approx(0.4) and dist[9] == pytest.approx(0.6)
    assert expected_score(dist) == pytest.approx(0.4 * 3 + 0.6 * 10)


def test_distribution_two_token_ten_splits_the_one():
    vocab = 12
    one, zero = 1, 0
    score_ids = list(range(1, 10))
    digit_ids = list(range(0, 10))  # "0".."9"
    first = np.full(vocab, -1e9)
    first[[one, 7]] = np.log([0.6, 0.4])  # "1..." and "7"
    second = np.full(vocab, -1e9)
    second[[zero, 5, 11]] = np.log([0.5, 0.25, 0.25])  # "0" -> 10, "5" -> invalid 15, id 11 ends the number
    dist, mass = distribution_from_logprobs(first, score_ids, ten_id=None, digit_ids=digit_ids, second=second)
    p10, p1, p7 = 0.6 * 0.5, 0.6 * 0.25, 0.4
    assert mass == pytest.approx(p10 + p1 + p7)
    assert dist[9] == pytest.approx(p10 / mass) and dist[0] == pytest.approx(p1 / mass) and dist[6] == pytest.approx(p7 / mass)
    with pytest.raises(ValueError, match="two tokens"):
        distribution_from_logprobs(first, score_ids, ten_id=None)


def test_distribution_from_server_top_logprobs():
    from ds2_hf.rating.backends.chat import distribution_from_top_logprobs

    top = [{"token": " 7", "logprob": np.log(0.5)}, {"token": "8", "logprob": np.log(0.25)},
           {"token": "10", "logprob": np.log(0.125)}, {"token": "seven", "logprob": np.log(0.125)}]
    dist, mass = distribution_from_top_logprobs(top)
    assert mass == pytest.approx(0.875)
    assert dist[6] == pytest.approx(0.5 / 0.875) and dist[9] == pytest.approx(0.125 / 0.875)
    # two-token "10": the generated token was "1", the next position tells how often it continues with "0"
    top = [{"token": "1", "logprob": np.log(0.8)}, {"token": "9", "logprob": np.log(0.2)}]
    following = [{"token": "0", "logprob": np.log(0.75)}, {"token": "}", "logprob": np.log(0.25)}]
    dist, _ = distribution_from_top_logprobs(top, following)
    assert dist[9] == pytest.approx(0.6) and dist[0] == pytest.approx(0.2) and dist[8] == pytest.approx(0.2)
    assert distribution_from_top_logprobs([{"token": "x", "logprob": 0.0}]) == (None, 0.0)
