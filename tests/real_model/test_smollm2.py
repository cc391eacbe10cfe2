"""Every model stage on a real instruct LLM, offline on CPU: SmolLM2-135M-Instruct from its GGUF file.

Rating in both modes (through its own chat template), a LoRA finetune on a real curated subset, the benchmark
tasks on the shipped fixtures with real generations, and the pairwise judge with the real model as the judge.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from ds2_hf.rating import PAPER_COMPRESSION, Rater, RatingConfig  # noqa: E402
from ds2_hf.rating.backends.transformers import TransformersBackend  # noqa: E402

pytestmark = pytest.mark.slow  # a real 135M model on CPU: seconds to tens of seconds per test


@pytest.fixture(autouse=True)
def _one_thread():
    torch.set_num_threads(1)


def _rater(smollm2, path, **options) -> Rater:
    model, tok = smollm2
    options.setdefault("column_prefix", "smollm2_")
    cfg = RatingConfig(model=path, cache=False, max_input_tokens=1024, **options)
    return Rater(cfg, backend=TransformersBackend(cfg, model=model, tokenizer=tok))


# --------------------------------------------------------------------------------------------- loading
def test_gguf_is_converted_once_and_read_back_exactly(smollm2, smollm2_file, monkeypatch):
    import gguf
    import transformers

    from ds2_hf.causal_lm import gguf_cache_folder, gguf_info, load_causal_lm, resolve_model

    folder = gguf_cache_folder(resolve_model(smollm2_file))
    assert (folder / "model.safetensors").is_file() and (folder / "ds2_gguf.json").is_file()
    info = gguf_info(smollm2_file)
    assert info["size"] == __import__("os").path.getsize(smollm2_file) and len(info["sha256"]) == 64
    # a second load reads the cached folder: transformers never sees the GGUF file again
    calls = []
    original = transformers.AutoModelForCausalLM.from_pretrained
    monkeypatch.setattr(transformers.AutoModelForCausalLM, "from_pretrained",
                        lambda *a, **k: calls.append(k.get("gguf_file")) or original(*a, **k))
    again, _ = load_causal_lm(smollm2_file)
    assert calls == [None] and again.name_or_path == smollm2_file
    # the cached float32 weights are the GGUF file's, dequantised (token embeddings: no reordering involved)
    reader = gguf.GGUFReader(smollm2_file)
    tensor = next(t for t in reader.tensors if t.name == "token_embd.weight")
    expected = gguf.quants.dequantize(tensor.data, tensor.tensor_type).reshape(-1, 576)
    np.testing.assert_array_equal(smollm2[0].get_input_embeddings().weight.detach().numpy(), expected)


# --------------------------------------------------------------------------------------------- rating
def test_prompt_goes_through_the_models_chat_template(smollm2, smollm2_file):
    backend = _rater(smollm2, smollm2_file).backend
    text = backend._render("###user: Add 2 and 3.\n###assistant: 5\n")
    assert text.startswith("<|im_start|>system\nAs a data quality estimator")
    assert "<|im_start|>user\nNow, please carefully evaluate" in text and text.endswith("<|im_start|>assistant\n")
    st = backend.score_tokens  # SmolLM2 splits digits: "10" is "1" + "0", one extra KV-cached step
    assert st.trim == "" and len(st.paths[9]) == 2 and len(st.steps) == 2


def test_logprobs_rating_reads_a_real_distribution(smollm2, smollm2_file, short_demo_rows):
    rated = short_demo_rows.map(_rater(smollm2, smollm2_file, mode="logprobs"), batched=True,
                                   load_from_cache_file=False)
    for rating, d, err in zip(rated["smollm2_rating"], rated["smollm2_rating_details"], rated["smollm2_rating_error"]):
        assert err is None and len(d["distribution"]) == 10
        assert sum(d["distribution"]) == pytest.approx(1.0, abs=1e-5)
        assert d["score_mass"] > 0.5  # a real model puts most of its mass on the score tokens (random weights: ~0)
        assert max(d["distribution"]) - min(d["distribution"]) > 0.01
        assert d["overall"] == math.floor(d["expected"] + 0.5) and rating == PAPER_COMPRESSION[d["overall"] - 1]


def test_generate_rating_writes_valid_json(smollm2, smollm2_file, short_demo_rows):
    rater = _rater(smollm2, smollm2_file, mode="generate", do_sample=False)
    rated = short_demo_rows.select(range(3)).map(rater, batched=True, load_from_cache_file=False)
    for rating, d in zip(rated["smollm2_rating"], rated["smollm2_rating_details"]):
        assert all(1 <= d[k] <= 10 for k in ("rarity", "complexity", "informativeness", "overall"))
        assert rating == PAPER_COMPRESSION[d["overall"] - 1]
    backend = rater.backend  # the KV-cached skeleton decodes what re-encoding at every step decodes
    from ds2_hf.rating.backends.transformers import _sample_rng

    prompt = [backend._render("###user: Name a colour.\n###assistant: Blue.\n")]
    assert backend._skeleton(prompt, [_sample_rng(0, "x")], cached=True) == \
        backend._skeleton(prompt, [_sample_rng(0, "x")], cached=False)


def test_free_generation_is_parsed_or_fails_with_a_reason(smollm2, smollm2_file, short_demo_rows):
    rater = _rater(smollm2, smollm2_file, mode="generate", structured_output=False, do_sample=False,
                   max_new_tokens=48)
    rated = short_demo_rows.select(range(3)).map(rater, batched=True, load_from_cache_file=False)
    for rating, d, err in zip(rated["smollm2_rating"], rated["smollm2_rating_details"], rated["smollm2_rating_error"]):
        if err is None:
            assert all(1 <= d[k] <= 10 for k in ("rarity", "complexity", "informativeness", "overall"))
        else:
            assert rating is None and d is None and err.startswith("parse: ")
    assert rater.stats.completion_tokens > 0


def test_demo_rows_rated_offline_keep_the_judges_rating(smollm2_file, tmp_path):
    from ds2_hf.demo import rate_demo, sample_rated_demo

    rated, stats = rate_demo(2, seed=5, cache_path=str(tmp_path / "r.sqlite"))
    assert stats.rated == 2 and rated["judge_rating"] == sample_rated_demo(2, seed=5)[0]["rating"]
    assert all(r in range(6) for r in rated["rating"])
    assert all(d["score_mass"] > 0.5 for d in rated["rating_details"])


def test_the_space_rates_an_upload_under_a_row_cap(smollm2, smollm2_file, short_demo_rows):
    from space_app import space_modules

    with space_modules() as space:
        assert space.data.offline_rater_available()
        rater = _rater(smollm2, smollm2_file, mode="logprobs", column_prefix="")
        rated = space.data.rate_upload(short_demo_rows, cap=2, rater=rater)
    assert rated.num_rows == 2 and rated["uploaded_rating"] == short_demo_rows["rating"][:2]
    assert all(r in range(6) for r in rated["rating"]) and rated["rating_error"] == [None, None]


# --------------------------------------------------------------------------------------------- finetuning
def test_lora_finetune_on_a_curated_subset_lowers_the_loss(smollm2_file, tmp_path):
    import ds2_hf
    from ds2_hf.causal_lm import load_causal_lm
    from ds2_hf.demo import load_demo
    from ds2_hf.training import finetune, lora_config, sft_config

    pool = ds2_hf.embed(load_demo(rated_only=True, num_rows=400, seed=3), backend="wordllama")
    curated = ds2_hf.Curator(progress=False).fit_transform(pool)
    short = curated.filter(lambda r: len(r["instruction"]) + len(r["output"]) < 260)
    subset = ds2_hf.select(short, k=4)
    args = sft_config(tmp_path / "lora", max_steps=4, batch_size=2, per_device_train_batch_size=2, learning_rate=2e-3,
                      warmup_steps=0.0, max_length=128, use_cpu=True, logging_steps=1, save_strategy="no", seed=0)
    result = finetune(subset, model=smollm2_file, args=args, peft_config=lora_config(r=8, lora_dropout=0.0))
    first, last = result.losses[:2], result.losses[-2:]  # the same two batches, before and after training
    assert len(result.losses) == 4 and np.mean(last) < np.mean(first), result.losses
    adapter = json.loads((tmp_path / "lora" / "adapter_config.json").read_text())
    assert adapter["base_model_name_or_path"] == smollm2_file  # the GGUF file, not a cache folder
    tuned, tok = load_causal_lm(tmp_path / "lora")  # the shared loader: base from the GGUF, then the adapter
    ids = tok("Hello", return_tensors="pt")["input_ids"]
    base, _ = load_causal_lm(smollm2_file)
    with torch.no_grad():
        assert not torch.allclose(tuned(ids).logits, base(ids).logits)


# --------------------------------------------------------------------------------------------- evaluation
def test_benchmarks_on_the_shipped_fixtures_with_real_generations(smollm2):
    from pathlib import Path

    from ds2_hf.evaluation import EvalConfig, TransformersModel, evaluate

    fixtures = Path(__file__).resolve().parents[1] / "fixtures" / "eval"
    lm = TransformersModel(*smollm2, batch_size=2)
    options = {"gsm8k": {"num_fewshot": 1, "max_new_tokens": 40},  # fewer shots and tokens: CPU time in CI
               "bbh": {"tasks": ("boolean_expressions",), "cot_prompts": "none", "num_fewshot": 1,
                       "max_new_tokens": 8}}
    config = EvalConfig(data_dir=str(fixtures), tasks=("mmlu", "gsm8k", "bbh", "truthfulqa"), limit=1,
                        task_options=options)
    report = evaluate(lm, config=config, name="SmolLM2-135M-Instruct")
    assert set(report.scores) == {"mmlu", "gsm8k", "bbh", "truthfulqa"}
    assert all(0 <= s <= 100 for s in report.scores.values())
    reasoning = [p["output"] for p in report.results["gsm8k"].predictions]  # real generations: words, not noise
    assert reasoning and all(len(o.split()) >= 3 for o in reasoning), reasoning
    assert all(p["output"].strip() for p in report.results["bbh"].predictions)
    assert {p["prediction"] for p in report.results["mmlu"].predictions} <= set("ABCD")


def test_pairwise_judge_with_the_real_model_as_judge(smollm2):
    from pathlib import Path

    from ds2_hf.evaluation import TransformersModel, generate_answers, judge_pairwise, load_questions

    fixtures = Path(__file__).resolve().parents[1] / "fixtures" / "eval"
    lm = TransformersModel(*smollm2)
    questions = load_questions(fixtures / "vicuna_bench" / "question.jsonl")[:1]
    answers = generate_answers(lm, questions, max_new_tokens=32)
    assert all(a[0].strip() for a in answers.values())
    baseline = {q["question_id"]: ["I do not know."] for q in questions}
    result = judge_pairwise(lm, questions, answers, baseline, max_new_tokens=24)
    record = result.records[0]
    assert len(record["judge_replies"]) == 2 and all(r.strip() for r in record["judge_replies"])
    assert record["outcome"] in {"win", "tie", "loss", "error"}
    assert result.rates["n"] + result.rates["errors"] == 1  # a 135M judge may not write the two scores
