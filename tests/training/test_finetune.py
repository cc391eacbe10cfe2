"""LoRA finetuning with TRL on a tiny random-weight Llama built locally (no download)."""

from __future__ import annotations

import importlib.util
import json
import logging
import shutil
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("trl")
pytest.importorskip("peft")
datasets = pytest.importorskip("datasets")

from ds2_hf.training import (  # noqa: E402
    TULU_CHAT_TEMPLATE,
    FinetuneOptions,
    TrainingDataError,
    build_tiny_model,
    check_lengths,
    finetune,
    lora_config,
    resolve_chat_template,
    sft_config,
    to_messages,
)

REPO = Path(__file__).resolve().parents[2]
WORDS = ("what is the sum of two and three answer five four six seven plus minus one name a colour red blue "
         "green sky grass is are please tell me").split()


def _rows(n: int = 64) -> list[dict]:
    """8 distinct Alpaca-style conversations repeated to ``n`` rows (a repeated batch)."""
    base = []
    for i in range(8):
        q = " ".join(WORDS[(i * 3 + j) % len(WORDS)] for j in range(6))
        a = " ".join(WORDS[(i * 5 + j) % len(WORDS)] for j in range(4))
        base.append({"instruction": q, "input": "", "output": a, "rating": i % 6})
    return [dict(base[i % 8]) for i in range(n)]


@pytest.fixture(scope="module", autouse=True)
def _threads():
    torch.set_num_threads(1)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> Path:
    return build_tiny_model(tmp_path_factory.mktemp("tiny") / "model", [" ".join(WORDS)])


@pytest.fixture(scope="module")
def subset_dir(tmp_path_factory) -> Path:
    """A subset in the layout save_subset writes: data/*.parquet + README.md."""
    root = tmp_path_factory.mktemp("subset") / "ds2-64"
    (root / "data").mkdir(parents=True)
    datasets.Dataset.from_list(_rows()).to_parquet(str(root / "data" / "train-00000-of-00001.parquet"))
    (root / "README.md").write_text("---\nlicense: apache-2.0\n---\n# ds2-64\n")
    return root


def _recipe(output_dir, *, lora_r: int = 8, options: FinetuneOptions | None = None, **kw) -> dict:
    """finetune() keywords: a small, fast recipe (8 steps) on the paper's defaults."""
    base = dict(learning_rate=2e-2, batch_size=8, per_device_train_batch_size=8, max_length=64, use_cpu=True,
                logging_steps=1, max_steps=8, save_strategy="steps", save_steps=4, warmup_steps=0.0, seed=0)
    base.update(kw)
    return {"args": sft_config(output_dir, **base), "peft_config": lora_config(r=lora_r),
            "options": options or FinetuneOptions()}


@pytest.fixture(scope="module")
def run(tiny, subset_dir, tmp_path_factory):
    """One shared finetuning run of 8 steps on the 64-row subset folder."""
    out = tmp_path_factory.mktemp("run") / "adapter"
    return finetune(str(subset_dir), model=str(tiny), **_recipe(out))


def test_loss_decreases_on_repeated_batch(run):
    losses = run.losses
    assert len(losses) == 8
    assert sum(losses[-3:]) / 3 < losses[0] - 0.05, losses


def test_adapter_tokenizer_and_model_card_written(run, subset_dir):
    out = run.output_dir
    for name in ("adapter_config.json", "adapter_model.safetensors", "tokenizer.json", "README.md",
                 "training_config.json"):
        assert (out / name).is_file(), name
    adapter = json.loads((out / "adapter_config.json").read_text())
    assert adapter["r"] == 8 and adapter["lora_alpha"] == 16 and adapter["lora_dropout"] == 0.1
    card = (out / "README.md").read_text()
    assert str(subset_dir) in card and "library_name: peft" in card and "assistant tokens only" in card
    meta = json.loads((out / "training_config.json").read_text())
    assert meta["num_rows"] == 64 and meta["global_steps"] == 8 and meta["dataset"] == str(subset_dir)
    assert sorted(p.name for p in out.glob("checkpoint-*")) == ["checkpoint-4", "checkpoint-8"]


def test_adapter_loads_and_differs_from_base(run, tiny):
    from peft import AutoPeftModelForCausalLM
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(str(run.output_dir))
    ids = tok("what is the sum", return_tensors="pt")["input_ids"]
    tuned = AutoPeftModelForCausalLM.from_pretrained(str(run.output_dir))
    base = AutoModelForCausalLM.from_pretrained(str(tiny))
    with torch.no_grad():
        assert not torch.allclose(tuned(ids).logits, base(ids).logits)


def test_resume_continues_from_last_checkpoint(run, tiny, tmp_path):
    out = tmp_path / "resumed"
    shutil.copytree(run.output_dir, out)
    shutil.rmtree(out / "checkpoint-8")  # pretend the run died after step 4
    state_file = out / "checkpoint-4" / "trainer_state.json"
    state = json.loads(state_file.read_text())
    state["log_history"].append({"step": 4, "marker": "from checkpoint-4"})
    state_file.write_text(json.dumps(state))
    result = finetune(datasets.Dataset.from_list(_rows()), model=str(tiny), **_recipe(out),
                      resume_from_checkpoint=True)
    assert {"step": 4, "marker": "from checkpoint-4"} in result.log_history  # the state came from the checkpoint
    steps = [e["step"] for e in result.log_history if "loss" in e]
    assert steps == [1, 2, 3, 4, 5, 6, 7, 8]  # restored 1-4, trained 5-8
    assert (out / "checkpoint-8").is_dir()


def test_resume_from_missing_checkpoint_is_an_error(tiny, tmp_path):
    with pytest.raises(FileNotFoundError, match="not a checkpoint folder"):
        finetune(datasets.Dataset.from_list(_rows(8)), model=str(tiny), **_recipe(tmp_path / "o", max_steps=1),
                 resume_from_checkpoint=str(tmp_path / "nope"))


def test_merge_and_base_model_without_chat_template(tmp_path):
    base = build_tiny_model(tmp_path / "base", [" ".join(WORDS)], chat_template=None)
    result = finetune(datasets.Dataset.from_list(_rows(16)), model=str(base),
                      **_recipe(tmp_path / "out", max_steps=1, save_strategy="no", options=FinetuneOptions(merge=True)))
    meta = json.loads((tmp_path / "out" / "training_config.json").read_text())
    assert meta["chat_template"] == "tulu"
    assert result.merged_dir is not None and (result.merged_dir / "config.json").is_file()
    assert "library_name: transformers" in (result.merged_dir / "README.md").read_text()
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(str(result.merged_dir))
    assert tok.chat_template == TULU_CHAT_TEMPLATE
    AutoModelForCausalLM.from_pretrained(str(result.merged_dir))


def test_assistant_mask_covers_only_the_answer_and_eos(tiny):
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(str(tiny))
    msgs = [{"role": "user", "content": "what is two plus three"}, {"role": "assistant", "content": "five"}]
    enc = tok.apply_chat_template(msgs, return_dict=True, return_assistant_tokens_mask=True, tokenize=True)
    kept = [i for i, m in zip(enc["input_ids"], enc["assistant_masks"]) if m]
    assert tok.convert_ids_to_tokens(kept) == ["five", "</s>"]
    msgs += [{"role": "user", "content": "and two plus four"}, {"role": "assistant", "content": "six"}]
    enc = tok.apply_chat_template(msgs, return_dict=True, return_assistant_tokens_mask=True, tokenize=True)
    kept = [i for i, m in zip(enc["input_ids"], enc["assistant_masks"]) if m]
    assert tok.convert_ids_to_tokens(kept) == ["five", "</s>", "six", "</s>"]  # every assistant turn, no user text


def test_to_messages_accepts_formats_and_is_cached(tmp_path):
    ds = datasets.Dataset.from_list([{"conversations": [{"from": "human", "value": "hi"},
                                                         {"from": "gpt", "value": "hello"}]}] * 4)
    ds.save_to_disk(str(tmp_path / "d"))
    ds = datasets.load_from_disk(str(tmp_path / "d"))
    first = to_messages(ds)
    second = to_messages(ds)
    assert first.column_names == ["messages"]
    assert first[0]["messages"] == [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"}]
    assert first.cache_files == second.cache_files  # same fingerprint: the map hit the cache


def test_template_and_response_column():
    ds = datasets.Dataset.from_list([{"q": "two plus three", "a": "five"}])
    out = to_messages(ds, template="Question: {q}", response_column="a")
    assert out[0]["messages"] == [{"role": "user", "content": "Question: two plus three"},
                                  {"role": "assistant", "content": "five"}]


@pytest.mark.parametrize(
    "rows, match",
    [
        ([{"text": "just some text"}], "plain `text` column"),
        ([{"foo": "x", "bar": "y"}], "cannot tell how to render"),
        ([{"instruction": "say hi", "input": "", "output": ""}], "no assistant answer"),
    ],
)
def test_bad_datasets_are_clear_errors(rows, match, tiny, tmp_path):
    with pytest.raises(TrainingDataError, match=match):
        finetune(datasets.Dataset.from_list(rows), model=str(tiny), **_recipe(tmp_path))


def test_empty_subset_is_an_error(tiny, tmp_path):
    empty = datasets.Dataset.from_list(_rows(2)).select([])
    with pytest.raises(TrainingDataError, match="empty"):
        finetune(empty, model=str(tiny), **_recipe(tmp_path))


def test_max_length_shorter_than_prompt(tiny, tmp_path, caplog):
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(str(tiny))
    long_row = {"messages": [{"role": "user", "content": " ".join(WORDS * 3)}, {"role": "assistant", "content": "ok"}]}
    short_row = {"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "ok"}]}
    with pytest.raises(TrainingDataError, match="max_length=16 is shorter than every row's prompt"):
        finetune(datasets.Dataset.from_list([long_row]), model=str(tiny), **_recipe(tmp_path, max_length=16))
    mixed = datasets.Dataset.from_list([long_row, short_row])
    with caplog.at_level(logging.WARNING, logger="ds2_hf.training.data"):
        kept = check_lengths(mixed, tok, max_length=16, drop=True)
    assert len(kept) == 1 and "dropping 1 of 2 rows" in caplog.text
    with pytest.raises(TrainingDataError, match="row 0's prompt"):
        check_lengths(mixed, tok, max_length=16, drop=False)


def test_chat_template_choices(tiny):
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(str(tiny))
    assert resolve_chat_template(tok, "auto") == "tokenizer"
    tok.chat_template = "{% for m in messages %}{{ m['content'] }}{% endfor %}"  # no generation markers
    assert resolve_chat_template(tok, "auto") == "tulu" and tok.chat_template == TULU_CHAT_TEMPLATE
    assert resolve_chat_template(tok, "{{ messages[0]['content'] }}") == "custom"
    with pytest.raises(ValueError, match="neither 'auto'"):
        resolve_chat_template(tok, "no-such-template")


@pytest.mark.parametrize("option", [{"load_in_4bit": True}, {"attn_implementation": "flash_attention_2"}])
def test_gpu_only_options_fail_clearly_on_cpu(option, tiny, tmp_path):
    with pytest.raises(ValueError, match="needs a CUDA GPU"):
        finetune(datasets.Dataset.from_list(_rows(8)), model=str(tiny),
                 **_recipe(tmp_path, options=FinetuneOptions(**option)))


def test_finetune_script(tiny, subset_dir, tmp_path, capsys):
    spec = importlib.util.spec_from_file_location("finetune_script", REPO / "scripts" / "finetune.py")
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    code = script.main(["--model", str(tiny), "--dataset", str(subset_dir), "--output-dir", str(tmp_path / "o"),
                        "--lora-r", "4", "--max-steps", "1", "--batch-size", "8", "--per-device-batch-size", "8",
                        "--max-length", "64", "--cpu", "--save-strategy", "no"])
    assert code == 0 and (tmp_path / "o" / "adapter_config.json").is_file()
    assert "mean train loss" in capsys.readouterr().out
    assert script.main(["--model", str(tiny), "--dataset", str(tmp_path / "missing.parquet"),
                        "--output-dir", str(tmp_path / "x"), "--cpu"]) == 2
    assert "no such file" in capsys.readouterr().err
