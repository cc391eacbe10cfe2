"""Prompt groups and duplicate responses (ds2_hf.selection.duplicates)."""

import datasets
import numpy as np

from ds2_hf.selection.duplicates import (
    DuplicateSummary,
    exact_duplicate_groups,
    near_duplicate_groups,
    normalize,
    pool_text_keys,
    prompt_and_response,
    text_keys,
)

LONG = "I cannot help with that request, but here is a long canned answer anyway."


def test_normalize_folds_case_space_and_unicode():
    assert normalize("  Ｈｅｌｌｏ\n\tWORLD ") == "hello world"


def test_long_responses_repeat_across_prompts_short_ones_only_within_a_prompt():
    prompts = ["p1", "p2", "p3", "p1", "p4", "p1"]
    responses = [LONG, LONG.upper(), "yes", "yes", "yes", "no"]
    groups = exact_duplicate_groups(*text_keys(prompts, responses))
    assert groups[0] == groups[1] >= 0  # the same long answer to two prompts
    assert groups[2] == groups[4] == -1  # "yes" to different prompts is not a duplicate
    assert groups[3] == -1 and groups[5] == -1  # "yes" (p1) and "no" (p1) differ
    same = exact_duplicate_groups(*text_keys(["p1", "p1"], ["yes", "Yes "]))
    assert same[0] == same[1] >= 0  # same prompt, same short answer


def test_unrenderable_rows_are_never_duplicates():
    groups = exact_duplicate_groups(*text_keys([None, None, "p"], [None, None, "x"]))
    assert groups.tolist() == [-1, -1, -1]


def test_near_duplicates_join_components_but_not_inside_a_prompt_group():
    ids = np.array([[1, 2], [0, 2], [3, 0], [2, 1]])
    sims = np.array([[0.999, 0.5], [0.999, 0.4], [0.999, 0.3], [0.999, 0.2]])
    assert near_duplicate_groups(ids, sims).tolist() == [0, 0, 1, 1]
    groups = np.array([7, 7, -1, -1])  # rows 0 and 1 answer the same prompt: their similarity is the prompt's
    assert near_duplicate_groups(ids, sims, groups=groups).tolist() == [-1, -1, 0, 0]
    exact = np.array([-1, 3, 3, -1])  # exact duplicates join too
    assert near_duplicate_groups(ids, sims, groups=groups, exact=exact).tolist() == [-1, 0, 0, 0]


def test_summary_counts_groups_and_redundant_rows():
    s = DuplicateSummary.of(np.array([2, -1, 2, 0, 2, 0, -1]))
    assert (s.n_groups, s.n_rows, s.n_redundant) == (2, 5, 3)
    assert s.largest == [[3, 0], [2, 3]]
    assert DuplicateSummary.of(np.full(3, -1)).to_dict() == {"n_groups": 0, "n_rows": 0, "n_redundant": 0,
                                                             "largest": []}


def test_prompt_is_everything_before_the_last_answer():
    msgs = [{"role": "system", "content": "S"}, {"role": "user", "content": "Q1"},
            {"role": "assistant", "content": "A1"}, {"role": "user", "content": "Q2"},
            {"role": "assistant", "content": "A2"}]
    prompt, response = prompt_and_response(msgs)
    assert response == "A2" and prompt.endswith("user: Q2") and "assistant: A1" in prompt
    assert prompt_and_response([{"role": "user", "content": "only text"}]) == ("", "only text")


def test_pool_keys_from_every_format():
    alpaca = datasets.Dataset.from_dict({"instruction": ["q", "q", "r"], "output": [LONG, "b", LONG],
                                         "embedding": [[1.0, 0.0]] * 3})
    p, r, chars = pool_text_keys(alpaca)
    assert p[0] == p[1] != p[2] and r[0] == r[2] != r[1] and chars[1] == 1
    sharegpt = {"conversations": [[{"from": "human", "value": "hi"}, {"from": "gpt", "value": LONG}], []]}
    p, r, _ = pool_text_keys(sharegpt)
    assert r[0] >= 0 and r[1] == -1 and p[1] == -1  # an empty conversation cannot be rendered
    assert pool_text_keys({"embedding": [[1.0]], "rating": [3]}) is None  # no text columns
