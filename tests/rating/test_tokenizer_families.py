"""Logprobs mode reads the score distribution right whatever a tokenizer does with the space and with "10".

For every family of :mod:`tokenizer_families` the probe must find token paths that spell exactly ``" 1"`` ..
``" 10"`` after the prompt, and the backend's distribution (one batched forward pass plus KV-cached steps) must
equal a brute-force reference: one full forward pass per score over ``prompt + that score's tokens``.
"""

from __future__ import annotations

import numpy as np
import pytest
from .tokenizer_families import FAMILIES

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

from ds2_hf.rating import RatingConfig, rate  # noqa: E402
from ds2_hf.rating.backends.base import probe_score_tokens  # noqa: E402
from ds2_hf.rating.backends.transformers import TransformersBackend  # noqa: E402

PREFIX = '{"Overall rating": '
# family -> (trim, "10" is one token after the stem, forward steps per batch)
EXPECTED = {
    "llama3": ("", True, 1),
    "qwen2": ("", False, 2),
    "llama2-sp": ("", False, 2),
    "gemma-like": ("", False, 2),
    "gpt2-like": (" ", True, 1),
    "gpt2-like-split-ten": (" ", False, 2),
}


# the two real 128k / 151k-token vocabularies make the brute-force reference take seconds
@pytest.fixture(scope="module", params=[pytest.param(f, marks=pytest.mark.slow) if f in ("llama3", "qwen2") else f
                                        for f in sorted(FAMILIES)])
def family(request):
    return request.param, FAMILIES[request.param]()


@pytest.fixture(scope="module")
def model_dir(family, tmp_path_factory):
    """A 2-layer random LLaMA over the family's whole vocabulary, saved with its tokenizer."""
    name, tok = family
    torch.set_num_threads(1)
    torch.manual_seed(0)
    cfg = transformers.LlamaConfig(vocab_size=len(tok), hidden_size=16, intermediate_size=32, num_hidden_layers=2,
                                   num_attention_heads=2, num_key_value_heads=1, max_position_embeddings=1024,
                                   tie_word_embeddings=True)
    model = transformers.LlamaForCausalLM(cfg)
    with torch.no_grad():  # sharper logits than the init's, so the distributions are far from uniform
        model.model.embed_tokens.weight.mul_(40.0)
    path = tmp_path_factory.mktemp(f"tiny-{name}")
    model.save_pretrained(path)
    tok.save_pretrained(path)
    return str(path)


def test_probe_spells_every_score(family):
    name, tok = family
    st = probe_score_tokens(tok, PREFIX)
    trim, ten_one_token, steps = EXPECTED[name]
    assert st.trim == trim and len(st.steps) == steps
    stem = "answer:\n" + st.stem(PREFIX)
    stem_ids = tok(stem, add_special_tokens=False)["input_ids"]
    for s, path in enumerate(st.paths, start=1):
        assert tok.decode(stem_ids + list(path)) == stem + trim + str(s)
        assert tok(stem + trim + str(s), add_special_tokens=False)["input_ids"] == stem_ids + list(path)
    assert (len(st.paths[9]) == len(st.paths[0])) == ten_one_token
    if not ten_one_token:  # the digits after "1" are known, "0" among them
        assert st.digits[0] == st.paths[9][-1] and len(set(st.digits)) == 10


def _reference(model, tok, text, st):
    """P(score) by brute force: one full forward pass per score path, no cache, no padding."""
    ids = tok(text, add_special_tokens=False)["input_ids"]

    def logprobs(seq, last):  # log-probabilities at the last `last` positions
        with torch.no_grad():
            return torch.log_softmax(model(torch.tensor([seq])).logits[0, -last:].float(), -1).numpy()

    p = np.empty(10)
    for s, path in enumerate(st.paths):
        lp = logprobs(ids + list(path), len(path) + 1)
        p[s] = np.exp(sum(lp[j, t] for j, t in enumerate(path)))
    one, ten = st.paths[0], st.paths[9]
    if len(ten) > len(one) and ten[: len(one)] == one:
        after = logprobs(ids + list(one), 1)[-1]
        p[0] *= 1 - np.exp(after[[d for d in st.digits if d >= 0]]).sum()
    return p / p.sum(), p.sum()


def test_distribution_equals_brute_force(family, model_dir):
    backend = TransformersBackend(RatingConfig(model=model_dir, mode="logprobs", batch_size=2))
    model, tok = backend._load()
    st = backend.score_tokens
    stem = st.stem(PREFIX)
    texts = [backend._render(f"###user: {'a long question ' * 3 * i}number {i}\n") + stem for i in range(2)]
    for text, (dist, mass) in zip(texts, backend.distributions(texts)):
        ref, ref_mass = _reference(model, tok, text, st)
        np.testing.assert_allclose(dist, ref, rtol=2e-4, atol=1e-7)
        assert mass == pytest.approx(ref_mass, rel=2e-4)
        assert dist.sum() == pytest.approx(1.0) and dist.max() < 0.999  # a real distribution, not a point mass


@pytest.mark.parametrize("mode", ["logprobs", "generate"])
def test_rating_works_where_the_space_merges_into_the_number(mode, tmp_path):
    """The byte-level BPE that merges " 7" into one token was refused before; both modes now rate with it."""
    import datasets

    tok = FAMILIES["gpt2-like-split-ten"]()
    torch.manual_seed(0)
    model = transformers.LlamaForCausalLM(transformers.LlamaConfig(
        vocab_size=len(tok), hidden_size=16, intermediate_size=32, num_hidden_layers=1, num_attention_heads=2,
        num_key_value_heads=1, max_position_embeddings=4096))
    model.save_pretrained(tmp_path / "m")
    tok.save_pretrained(tmp_path / "m")
    rows = datasets.Dataset.from_list([{"instruction": f"Add {i} and 3.", "output": f"{i + 3}"} for i in range(3)])
    rated, stats = rate(rows, model=str(tmp_path / "m"), mode=mode, cache=False, max_input_tokens=4000)
    assert stats.rated == 3 and all(r is not None for r in rated["rating"])
    details = rated["rating_details"]
    if mode == "logprobs":
        assert all(sum(d["distribution"]) == pytest.approx(1, abs=1e-5) for d in details)
    else:
        assert all(1 <= d[k] <= 10 for d in details for k in ("rarity", "complexity", "informativeness", "overall"))
