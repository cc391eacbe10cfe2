"""The local transformers backend: batching must not change scores or generations."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")

from ds2_hf.evaluation.models import (  # noqa: E402
    ChatBackend,
    FunctionChatBackend,
    LanguageModel,
    TransformersModel,
    cut_at_stop,
)


@pytest.fixture(scope="module")
def lm(tiny_model):
    torch.set_num_threads(1)
    return TransformersModel.from_pretrained(str(tiny_model), batch_size=4)


def test_protocols(lm):
    assert isinstance(lm, LanguageModel) and isinstance(lm, ChatBackend)
    assert isinstance(FunctionChatBackend(lambda m: "x"), ChatBackend)
    assert lm.chat_format  # the tiny tokenizer has a chat template
    assert lm.render("what is two", "The answer is:").endswith("<|assistant|>\nThe answer is:")


def test_loglikelihood_matches_manual_computation_and_is_batch_invariant(lm):
    context, continuation = "what is two plus", " three"
    ids = lm.tokenizer(context + continuation, add_special_tokens=False, return_tensors="pt")["input_ids"]
    with torch.no_grad():
        logp = torch.log_softmax(lm.model(ids).logits[0].float(), -1)
    n_ctx = len(lm.tokenizer(context, add_special_tokens=False)["input_ids"])
    manual = sum(float(logp[p - 1, ids[0, p]]) for p in range(n_ctx, ids.shape[1]))
    requests = [(context, continuation), ("a much longer context with many words is here", " yes"), ("no", " one two")]
    batched = lm.loglikelihood(requests)
    single = [lm.loglikelihood([r])[0] for r in requests]
    assert batched[0] == pytest.approx(manual, abs=1e-4)
    assert batched == pytest.approx(single, abs=1e-4)
    assert all(s < 0 for s in batched)


def test_generation_is_batch_invariant(lm):
    prompts = [lm.render("what is two"), lm.render("please tell me a long story about the sky and the grass")]
    batched = lm.generate(prompts, max_new_tokens=5)
    single = [lm.generate([p], max_new_tokens=5)[0] for p in prompts]
    assert batched == single


def test_cut_at_stop():
    assert cut_at_stop("answer 5\n\nQuestion: next", ["\n\nQuestion:", "Q:"]) == "answer 5"
    assert cut_at_stop("no stop here", ["\n"]) == "no stop here"


def test_chat_format_without_template_is_an_error(lm):
    tok = lm.tokenizer.__class__.from_pretrained(lm.tokenizer.name_or_path)
    tok.chat_template = None
    with pytest.raises(ValueError, match="no chat template"):
        TransformersModel(lm.model, tok, chat_format=True)
    assert TransformersModel(lm.model, tok).chat_format is False


def test_generation_stops_at_stop_strings(lm):
    prompt = lm.render("what is two")
    full = lm.generate([prompt], max_new_tokens=12)[0]
    words = full.split()
    assert len(words) >= 2, full
    stop = " " + words[1]
    cut = lm.generate([prompt], max_new_tokens=12, stop=[stop])[0]
    assert cut == full[: full.index(stop)]
