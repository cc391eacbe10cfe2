"""Tests of ds2_hf.formats: every row format, detection, templates, text styles and error messages."""

from __future__ import annotations

import pickle

import pytest

from ds2_hf.formats import (
    FORMATS,
    EmptyConversationError,
    FormatError,
    Formatter,
    as_formatter,
    detect_format,
    messages_to_text,
    row_to_messages,
)

USER_ASSISTANT = [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello!"}]


# --------------------------------------------------------------------------------------------- formats


def test_messages_format():
    row = {"messages": [{"role": "system", "content": "Be brief."}, *USER_ASSISTANT], "id": 3}
    assert Formatter().messages(row) == [{"role": "system", "content": "Be brief."}, *USER_ASSISTANT]


@pytest.mark.parametrize(
    ("user_role", "assistant_role"),
    [("human", "gpt"), ("Human", "GPT"), ("user", "assistant"), ("prompter", "bot"), (" human ", "chatgpt"),
     ("question", "answer"), ("user", "model"), ("user", "bard"), ("user", "bing")],
)
def test_sharegpt_role_aliases(user_role, assistant_role):
    row = {"conversations": [{"from": user_role, "value": "Hi"}, {"from": assistant_role, "value": "Hello!"}]}
    assert Formatter().messages(row) == USER_ASSISTANT


def test_sharegpt_system_turn_kept():
    row = {"conversations": [{"from": "system", "value": "S"}, {"from": "human", "value": "Q"},
                             {"from": "gpt", "value": "A"}]}
    assert [m["role"] for m in Formatter().messages(row)] == ["system", "user", "assistant"]


def test_alpaca_with_input():
    row = {"instruction": "Translate.", "input": "Bonjour", "output": "Hello"}
    assert Formatter().messages(row) == [
        {"role": "user", "content": "Translate.\n\nBonjour"},
        {"role": "assistant", "content": "Hello"},
    ]


@pytest.mark.parametrize("row", [
    {"instruction": "Add 2 and 3.", "input": "", "output": "5"},
    {"instruction": "Add 2 and 3.", "input": None, "output": "5"},
    {"instruction": "Add 2 and 3.", "output": "5"},
    {"instruction": "Add 2 and 3.", "input": "   ", "output": "5"},
])
def test_alpaca_without_input(row):
    assert Formatter().messages(row) == [
        {"role": "user", "content": "Add 2 and 3."},
        {"role": "assistant", "content": "5"},
    ]
    assert Formatter().text(row) == "###user: Add 2 and 3.\n###assistant: 5\n"


def test_dolly_with_and_without_context():
    f = Formatter()
    with_ctx = {"instruction": "Summarise.", "context": "Long text.", "response": "Short.", "category": "summ"}
    assert f.messages(with_ctx) == [
        {"role": "user", "content": "Summarise.\n\nLong text."},
        {"role": "assistant", "content": "Short."},
    ]
    no_ctx = {"instruction": "Name a colour.", "context": "", "response": "Blue."}
    assert f.messages(no_ctx)[0] == {"role": "user", "content": "Name a colour."}


def test_prompt_completion_strings():
    row = {"prompt": "2+2=", "completion": "4"}
    assert Formatter().messages(row) == [{"role": "user", "content": "2+2="}, {"role": "assistant", "content": "4"}]


def test_prompt_completion_trl_message_lists():
    row = {
        "prompt": [{"role": "system", "content": "S"}, {"role": "user", "content": "What colour is the sky?"}],
        "completion": [{"role": "assistant", "content": "Blue."}],
    }
    assert Formatter().messages(row) == [
        {"role": "system", "content": "S"},
        {"role": "user", "content": "What colour is the sky?"},
        {"role": "assistant", "content": "Blue."},
    ]


def test_text_format():
    assert Formatter().messages({"text": "just text", "label": 1}) == [{"role": "user", "content": "just text"}]
    assert Formatter(style="plain").text({"text": "just text"}) == "just text"


def test_multimodal_text_parts_are_joined():
    row = {"messages": [{"role": "user", "content": [{"type": "text", "text": "a"}, {"type": "image", "text": "x"},
                                                     {"type": "text", "text": "b"}]},
                        {"role": "assistant", "content": "ok"}]}
    assert Formatter().messages(row)[0] == {"role": "user", "content": "a\nb"}


def test_empty_assistant_turn_kept_but_empty_user_turn_dropped():
    row = {"messages": [{"role": "system", "content": ""}, {"role": "user", "content": "Q"},
                        {"role": "assistant", "content": ""}]}
    assert Formatter().messages(row) == [{"role": "user", "content": "Q"}, {"role": "assistant", "content": ""}]


# --------------------------------------------------------------------------------------------- detection


@pytest.mark.parametrize(("columns", "expected"), [
    (["messages", "conversations", "instruction", "output", "prompt", "completion", "text"], "messages"),
    (["conversations", "instruction", "output", "text"], "sharegpt"),
    (["instruction", "output", "response", "prompt", "completion", "text"], "alpaca"),
    (["instruction", "response", "context", "prompt", "completion", "text"], "dolly"),
    (["prompt", "completion", "text"], "prompt_completion"),
    (["text", "label"], "text"),
])
def test_detection_order(columns, expected):
    assert detect_format(columns) == expected


def test_detection_needs_both_columns():
    with pytest.raises(FormatError):
        detect_format(["instruction"])  # neither output nor response
    assert detect_format(["instruction", "text"]) == "text"
    assert detect_format(["prompt", "text"]) == "text"


def test_no_usable_columns_error_lists_columns_and_template():
    with pytest.raises(FormatError) as err:
        Formatter().text({"question": "q", "answer": "a"})
    msg = str(err.value)
    assert "['answer', 'question']" in msg
    assert "template" in msg
    assert isinstance(err.value, ValueError)


def test_explicit_format_overrides_detection():
    row = {"messages": USER_ASSISTANT, "text": "other"}
    assert Formatter(format="text").messages(row) == [{"role": "user", "content": "other"}]


# --------------------------------------------------------------------------------------------- templates


def test_template_renders_one_user_message():
    f = Formatter(template="Q: {question}\nA: {answer}")
    row = {"question": "Why?", "answer": "Because.", "messages": USER_ASSISTANT}  # template beats detection
    assert f.resolve(row) == "template"
    assert f.messages(row) == [{"role": "user", "content": "Q: Why?\nA: Because."}]
    assert f.text(row) == "###user: Q: Why?\nA: Because.\n"


def test_template_missing_column_names_it():
    f = Formatter(template="{question} {answr}")
    with pytest.raises(FormatError) as err:
        f.messages({"question": "q", "answer": "a"}, where="row 7")
    msg = str(err.value)
    assert "'answr'" in msg
    assert "row 7" in msg
    assert "['answer', 'question']" in msg


# --------------------------------------------------------------------------------------------- styles


def test_three_text_styles():
    msgs = [{"role": "system", "content": "S"}, *USER_ASSISTANT]
    assert messages_to_text(msgs, "reference") == "###system: S\n###user: Hi\n###assistant: Hello!\n"
    assert messages_to_text(msgs, "tulu") == "<|system|>\nS\n<|user|>\nHi\n<|assistant|>\nHello!\n"
    assert messages_to_text(msgs, "plain") == "S\n\nHi\n\nHello!"
    with pytest.raises(ValueError, match="unknown text style 'html'"):
        messages_to_text(msgs, "html")


def test_formatter_style_and_max_chars():
    row = {"messages": USER_ASSISTANT}
    assert Formatter(style="tulu").text(row) == "<|user|>\nHi\n<|assistant|>\nHello!\n"
    assert Formatter(style="plain", max_chars=4).text(row) == "Hi\n\n"
    assert Formatter(max_chars=None).text(row) == "###user: Hi\n###assistant: Hello!\n"


def test_invalid_formatter_options():
    with pytest.raises(ValueError, match="format='chatml'"):
        Formatter(format="chatml")
    with pytest.raises(ValueError, match="style='fancy'"):
        Formatter(style="fancy")
    with pytest.raises(FormatError, match="unknown format 'xml'"):
        row_to_messages({"text": "t"}, "xml")


# --------------------------------------------------------------------------------------------- bad rows


@pytest.mark.parametrize("row", [
    {"messages": []},
    {"messages": [{"role": "user", "content": "   "}, {"role": "assistant", "content": ""}]},
    {"text": ""},
    {"instruction": "", "input": "", "output": ""},
    {"prompt": "", "completion": ""},
])
def test_empty_conversation(row):
    with pytest.raises(EmptyConversationError, match="row 4: the conversation is empty"):
        Formatter().messages(row, where="row 4")


def test_find_problems_reports_every_bad_row_of_a_batch():
    from ds2_hf.validation import InputError

    batch = {"messages": [USER_ASSISTANT, [], [{"role": "user", "content": 42}], [{"role": "user", "content": " "}]]}
    empty, invalid = Formatter().find_problems(batch, offset=100)
    assert empty == [101, 103]
    assert [(row, "content must be a string" in msg) for row, msg in invalid] == [(102, True)]
    assert issubclass(EmptyConversationError, FormatError) and issubclass(FormatError, InputError)
    assert Formatter().find_problems({"messages": [USER_ASSISTANT]}) == ([], [])


@pytest.mark.parametrize("row", [
    {"messages": [{"role": "user", "content": 42}]},
    {"text": 3.5},
    {"instruction": ["a", "b"], "output": "x"},
    {"conversations": [{"from": "human", "value": {"nested": True}}]},
])
def test_non_string_content(row):
    with pytest.raises(FormatError, match="content must be a string"):
        Formatter().messages(row)


def test_non_string_content_names_row_and_message():
    row = {"messages": [{"role": "user", "content": "ok"}, {"role": "assistant", "content": 42}]}
    with pytest.raises(FormatError, match=r"row 9, message 1: content must be a string, got int"):
        Formatter().messages(row, where="row 9")


def test_unknown_role():
    row = {"conversations": [{"from": "narrator", "value": "Once"}, {"from": "gpt", "value": "upon"}]}
    with pytest.raises(FormatError) as err:
        Formatter().messages(row)
    assert "unknown role 'narrator'" in str(err.value)
    assert "'human'" in str(err.value) and "'gpt'" in str(err.value)


def test_non_string_role_and_non_list_messages():
    with pytest.raises(FormatError, match="role must be a string, got int"):
        Formatter().messages({"messages": [{"role": 1, "content": "x"}]})
    with pytest.raises(FormatError, match="expected a list of messages, got str"):
        Formatter().messages({"messages": "hello"})
    with pytest.raises(FormatError, match="message 0: expected a mapping with `from`"):
        Formatter().messages({"conversations": [{"role": "user", "content": "x"}]})


# --------------------------------------------------------------------------------------------- batches


def test_batch_texts_and_error_offsets():
    batch = {"text": ["a", "b", ""]}
    f = Formatter(style="plain")
    assert f.batch_texts({"text": ["a", "b"]}) == ["a", "b"]
    assert f.batch_messages({"text": ["a"]}) == [[{"role": "user", "content": "a"}]]
    with pytest.raises(FormatError, match="row 12: the conversation is empty"):
        f.batch_texts(batch, offset=10)
    assert f.batch_rows({}) == []


def test_as_formatter():
    assert as_formatter(None) == Formatter()
    f = Formatter(style="plain")
    assert as_formatter(f) is f
    assert as_formatter("alpaca") == Formatter(format="alpaca")
    with pytest.raises(TypeError, match="got int"):
        as_formatter(3)
    assert set(FORMATS) == {"messages", "sharegpt", "alpaca", "dolly", "prompt_completion", "text"}


# --------------------------------------------------------------------------------------------- caching


def test_formatter_pickles_and_fingerprints_stably():
    from datasets.fingerprint import Hasher

    a = Formatter(template="{q}", style="plain", max_chars=100)
    b = pickle.loads(pickle.dumps(a))
    assert b == a
    assert b.text({"q": "hello"}) == "hello"
    assert Hasher.hash(a) == Hasher.hash(Formatter(template="{q}", style="plain", max_chars=100))
    assert Hasher.hash(Formatter()) == Hasher.hash(Formatter())
    assert Hasher.hash(Formatter(style="tulu")) != Hasher.hash(Formatter())


def test_formatter_in_datasets_map_hits_cache(tmp_path):
    import datasets

    ds = datasets.Dataset.from_dict({"instruction": ["a", "b"], "output": ["1", "2"]})
    ds.save_to_disk(str(tmp_path / "ds"))
    ds = datasets.load_from_disk(str(tmp_path / "ds"))

    f = Formatter(style="plain")

    def render(batch):
        return {"txt": f.batch_texts(batch)}

    first = ds.map(render, batched=True)
    second = ds.map(render, batched=True)
    assert first["txt"] == ["a\n\n1", "b\n\n2"]
    assert first._fingerprint == second._fingerprint
    assert first.cache_files == second.cache_files
