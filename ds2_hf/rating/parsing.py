"""Parse a rater's answer into the four DS2 scores, robustly, and say exactly why when it cannot.

The model is asked for ``{"Rarity": n, "Complexity": n, "Informativeness": n, "Overall rating": n}`` with every
``n`` an integer in 1..10. Answers in the wild add prose, code fences, single quotes, trailing commas, spell a key
differently (``overall_rating``, ``"Overall Rating"``), or write ``"7"``, ``7.0`` or ``"7/10"``. This parser
accepts those, and rejects - with a :class:`RatingParseError` whose ``reason`` is recorded as ``rating_error`` -
anything that would need a guess: no JSON at all, a missing key, a non-integral or out-of-range value. It never
turns a failure into a score (the reference turns it into 0).

Examples
--------
>>> from ds2_hf.rating.parsing import parse_answer
>>> parse_answer('Sure! {"Rarity": 3, "Complexity": "4", "Informativeness": 5.0, "Overall rating": 6}')
(3, 4, 5, 6)
>>> parse_answer('{"Rarity": 3, "Complexity": 4, "Informativeness": 5}')
Traceback (most recent call last):
...
ds2_hf.rating.parsing.RatingParseError: parse: missing key(s) ['Overall rating'] in the answer
"""

from __future__ import annotations

import json
import re

JSON_KEYS = ("Rarity", "Complexity", "Informativeness", "Overall rating")
SCORE_MIN, SCORE_MAX = 1, 10

_NUMBER = re.compile(r"^\s*(-?\d+(?:\.\d+)?)\s*(?:/\s*10)?\s*$")


class RatingParseError(ValueError):
    """An answer that does not contain four valid scores. ``reason`` is the text stored in ``rating_error``."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


def _norm_key(key: str) -> str:
    return re.sub(r"[^a-z]", "", key.lower())


_KEY_LOOKUP = {_norm_key(k): k for k in JSON_KEYS} | {"overall": "Overall rating", "overallscore": "Overall rating"}


def _objects(text: str) -> list[str]:
    """Balanced ``{...}`` substrings of ``text``, outermost first, in order of appearance."""
    out, depth, start, in_str, esc = [], 0, -1, False, False
    for i, ch in enumerate(text):
        if in_str:
            esc = (ch == "\\") and not esc
            if ch == '"' and not esc:
                in_str = False
            elif ch != "\\":
                esc = False
            continue
        if ch == '"' and depth > 0:
            in_str = True
        elif ch == "{":
            if depth == 0:
                start = i
            depth += 1
        elif ch == "}" and depth > 0:
            depth -= 1
            if depth == 0:
                out.append(text[start : i + 1])
    return out


def _loads(blob: str) -> dict | None:
    for candidate in (blob, re.sub(r",\s*}", "}", blob.replace("'", '"'))):
        try:
            obj = json.loads(candidate)
        except json.JSONDecodeError:
            continue
        if isinstance(obj, dict):
            return obj
    return None


def _value(key: str, raw) -> int:
    if isinstance(raw, bool):
        raise RatingParseError(f"parse: {key!r} is a boolean ({raw!r}), expected an integer 1-10")
    if isinstance(raw, (int, float)):
        number = float(raw)
    elif isinstance(raw, str) and _NUMBER.match(raw):
        number = float(_NUMBER.match(raw).group(1))
    else:
        raise RatingParseError(f"parse: {key!r} is {raw!r:.40}, expected an integer 1-10")
    if number != int(number):
        raise RatingParseError(f"parse: {key!r} is {number!r}, not an integer")
    value = int(number)
    if not SCORE_MIN <= value <= SCORE_MAX:
        raise RatingParseError(f"parse: {key!r}={value} is out of range {SCORE_MIN}-{SCORE_MAX}")
    return value


def parse_answer(text: str | None) -> tuple[int, int, int, int]:
    """Extract ``(rarity, complexity, informativeness, overall)`` from an answer.

    The last JSON object that has all four keys wins (models sometimes restate the format first). Without any
    parseable object, ``"Key": n`` pairs anywhere in the text are accepted as a fallback.

    Parameters
    ----------
    text : str
        The model's answer.

    Returns
    -------
    tuple of 4 int
        Each in 1..10.

    Raises
    ------
    RatingParseError
        With a ``reason`` starting ``"parse: "``: empty answer, no JSON, missing keys, bad or out-of-range value.
    """
    if not text or not text.strip():
        raise RatingParseError("parse: empty answer")
    found: dict[str, object] | None = None
    partial: dict[str, object] = {}
    for blob in reversed(_objects(text)):
        obj = _loads(blob)
        if obj is None:
            continue
        mapped = {_KEY_LOOKUP[_norm_key(k)]: v for k, v in obj.items() if _norm_key(k) in _KEY_LOOKUP}
        if len(mapped) == len(JSON_KEYS):
            found = mapped
            break
        if len(mapped) > len(partial):
            partial = mapped
    if found is None:
        pairs = {}
        for m in re.finditer(r"[\"']?([A-Za-z_ ]{4,20})[\"']?\s*[:=]\s*[\"']?(-?\d+(?:\.\d+)?)", text):
            key = _KEY_LOOKUP.get(_norm_key(m.group(1)))
            if key is not None:
                pairs[key] = m.group(2)
        if len(pairs) == len(JSON_KEYS):
            found = pairs
        else:
            best = partial if len(partial) >= len(pairs) else pairs
            if not best:
                raise RatingParseError(f"parse: no JSON object with the rating keys in the answer {text[:60]!r}")
            missing = [k for k in JSON_KEYS if k not in best]
            raise RatingParseError(f"parse: missing key(s) {missing} in the answer")
    return tuple(_value(k, found[k]) for k in JSON_KEYS)  # type: ignore[return-value]
