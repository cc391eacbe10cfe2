import os
import pickle

import pytest

from ds2_hf.rating import PromptTemplate, RatingCache, RatingConfig
from ds2_hf.rating.cache import make_key
from ds2_hf.rating.prompt import ChatTemplateMissingError, json_schema, render_chat


def test_prompt_has_the_papers_criteria_and_keys():
    msgs = PromptTemplate().messages("###user: hi\n###assistant: hello\n")
    assert [m["role"] for m in msgs] == ["system", "user"]
    for word in ("Rarity", "Complexity", "Informativeness", "1 to 10"):
        assert word in msgs[0]["content"]
    for key in ('"Rarity"', '"Complexity"', '"Informativeness"', '"Overall rating"'):
        assert key in msgs[1]["content"]
    assert msgs[1]["content"].endswith("###user: hi\n###assistant: hello\n")
    assert set(json_schema()["required"]) == {"Rarity", "Complexity", "Informativeness", "Overall rating"}


def test_template_hash_tracks_every_text():
    base = PromptTemplate()
    assert base.hash() == PromptTemplate().hash()
    assert base.hash() != PromptTemplate(system="Rate it.").hash()
    assert base.hash() != PromptTemplate(answer_prefix='{"Overall rating":').hash()
    with pytest.raises(ValueError, match="conversation"):
        PromptTemplate(user="no field here")
    with pytest.raises(ValueError, match="str.format"):
        PromptTemplate(user="{conversation} {other}")


def test_namespace_changes_with_what_changes_a_rating():
    a = RatingConfig(model="m")
    assert a.namespace() == RatingConfig(model="m", column_prefix="x_", batch_size=3).namespace()
    for other in (RatingConfig(model="m2"), RatingConfig(model="m", mode="logprobs"),
                  RatingConfig(model="m", temperature=0.7), RatingConfig(model="m", prompt=PromptTemplate(system="s")),
                  RatingConfig(model="m", chat_template="{{ messages }}")):
        assert other.namespace() != a.namespace()
    # sampling parameters do not matter in logprobs mode
    assert (RatingConfig(model="m", mode="logprobs", temperature=0.1).namespace()
            == RatingConfig(model="m", mode="logprobs").namespace())


def test_config_validation_names_the_options():
    with pytest.raises(ValueError, match="backend='nope'.*transformers"):
        RatingConfig(model="m", backend="nope")
    with pytest.raises(ValueError, match="mode="):
        RatingConfig(model="m", mode="vibes")
    with pytest.raises(ValueError, match="base_url"):
        RatingConfig(model="m", backend="tgi")
    with pytest.raises(ValueError, match="needs `model=`"):
        RatingConfig(backend="transformers")


def test_render_uses_the_chat_template_and_refuses_without_one(llama_dir, no_template_dir):
    import transformers

    tok = transformers.AutoTokenizer.from_pretrained(llama_dir)
    msgs = PromptTemplate().messages("###user: hi\n")
    text = render_chat(tok, msgs)
    assert text.startswith("<|im_start|>system\n") and text.endswith("<|im_start|>assistant\n")
    other = render_chat(tok, msgs, chat_template="{% for m in messages %}[{{ m['role'] }}]{{ m['content'] }}{% endfor %}")
    assert other.startswith("[system]")
    bare = transformers.AutoTokenizer.from_pretrained(no_template_dir)
    with pytest.raises(ChatTemplateMissingError, match="chat_template"):
        render_chat(bare, msgs)


def test_cache_roundtrip_failures_and_persistence(tmp_path):
    path = tmp_path / "sub" / "r.sqlite"
    c = RatingCache(path)
    c.put_many([("a", {"overall": 7}, None), ("b", None, "parse: empty answer"), ("c", None, "http_500")])
    assert c.get_many(["a", "b", "c", "d"]) == {"a": {"overall": 7}}
    c.put_many([("a", None, "timeout")])  # a later failure never replaces a success
    c.put_many([("b", {"overall": 3}, None)])  # a later success replaces a failure
    c.close()
    again = pickle.loads(pickle.dumps(RatingCache(path)))
    assert again.get_many(["a", "b", "c"]) == {"a": {"overall": 7}, "b": {"overall": 3}}
    assert again.failures() == {"http_500": 1}
    assert len(again) == 3
    assert os.path.exists(str(path) + "-wal") or again._con().execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert make_key("ns1", "text") != make_key("ns2", "text") and make_key("ns1", "text") == make_key("ns1", "text")
