"""The paper's recipe as TRL's SFTConfig and PEFT's LoraConfig, and the command line generated from them."""

from __future__ import annotations

import argparse
import dataclasses
import typing

import pytest

pytest.importorskip("torch")
trl = pytest.importorskip("trl")
peft = pytest.importorskip("peft")

from ds2_hf._argparse import option_kwargs  # noqa: E402
from ds2_hf.training import FinetuneOptions, gradient_accumulation_steps, lora_config, recipe, sft_config  # noqa: E402
from ds2_hf.training.arguments import (  # noqa: E402
    _LORA_FIXED,
    _SFT_ELSEWHERE,
    add_finetune_arguments,
    finetune_configs_from_args,
)


def test_the_library_objects_carry_the_paper_recipe(tmp_path, monkeypatch):
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    args, lora = sft_config(tmp_path, use_cpu=True), lora_config()
    assert isinstance(args, trl.SFTConfig) and isinstance(lora, peft.LoraConfig)
    assert (lora.r, lora.lora_alpha, lora.lora_dropout, lora.target_modules) == (64, 16, 0.1, "all-linear")
    assert (args.learning_rate, args.num_train_epochs, args.warmup_steps, args.max_length) == (1e-4, 5.0, 0.03, 2048)
    assert args.per_device_train_batch_size * args.gradient_accumulation_steps == 128  # the global batch
    assert args.assistant_only_loss and getattr(args.lr_scheduler_type, "value", None) == "linear"
    assert args.bf16 is False and args.activation_checkpointing is False  # CPU: both off (TRL turns them on)
    assert args.output_dir == str(tmp_path)


def test_accumulation_is_derived_from_the_global_batch(tmp_path, monkeypatch):
    assert gradient_accumulation_steps(128, 4, processes=8) == 4  # 4 per device x 4 steps x 8 GPUs = 128
    monkeypatch.setattr("ds2_hf.training.config.world_size", lambda: 8)  # as under `accelerate launch` on 8 GPUs
    assert sft_config(tmp_path, use_cpu=True).gradient_accumulation_steps == 4
    assert sft_config(tmp_path, use_cpu=True, gradient_accumulation_steps=2).gradient_accumulation_steps == 2


@pytest.mark.parametrize("make, kwargs, match", [
    (lora_config, {"lora_dropout": 1.5}, "lora_dropout"),
    (lora_config, {"r": 0}, "LoRA r=0"),
    (lora_config, {"rank": 8}, "no field"),
    (sft_config, {"learning_rate": 0.0}, "learning_rate"),
    (sft_config, {"warmup_steps": 1.5}, "ratio in \\[0, 1\\)"),
    (sft_config, {"num_train_epochs": 0}, "num_train_epochs > 0 or max_steps > 0"),
    (sft_config, {"num_train_epoch": 1}, "num_train_epochs"),  # the close name is suggested
    (FinetuneOptions, {"template": "{q}"}, "template"),
])
def test_out_of_range_values_and_unknown_fields_fail_before_training(make, kwargs, match):
    with pytest.raises(ValueError, match=match):
        make(**({"use_cpu": True} if make is sft_config else {}), **kwargs)


def test_a_recipe_ignores_the_output_folder_and_orders_module_sets(tmp_path):
    lora = lora_config(target_modules=["v_proj", "q_proj", "k_proj"])
    a = recipe(sft_config(tmp_path / "a", use_cpu=True), lora, FinetuneOptions())
    b = recipe(dataclasses.replace(sft_config(tmp_path / "b", use_cpu=True)), lora, FinetuneOptions())
    assert a == b and a["lora"]["target_modules"] == ["k_proj", "q_proj", "v_proj"]
    assert recipe(sft_config(tmp_path, use_cpu=True, seed=4), lora, FinetuneOptions()) != a


def _parse(argv):
    p = argparse.ArgumentParser()
    add_finetune_arguments(p)
    return finetune_configs_from_args(p.parse_args(argv), output_dir="runs/x")


def test_the_command_line_defaults_are_the_paper_recipe(monkeypatch):
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    args, lora, options = _parse(["--cpu"])
    paper = sft_config("runs/x", use_cpu=True)
    assert recipe(args, lora, options) == recipe(paper, lora_config(), FinetuneOptions())


def test_earlier_flags_still_work_and_every_field_is_an_option(monkeypatch):
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    args, lora, options = _parse([
        "--lora-r", "8", "--lora-alpha", "32", "--lora-dropout", "0", "--lora-target-modules", "q_proj", "v_proj",
        "--learning-rate", "3e-4", "--lr-scheduler-type", "cosine", "--warmup-ratio", "0.1", "--epochs", "2",
        "--max-steps", "7", "--batch-size", "16", "--per-device-batch-size", "2", "--weight-decay", "0.01",
        "--max-length", "512", "--seed", "3", "--no-assistant-only-loss", "--no-drop-long-prompts", "--merge",
        "--cpu", "--logging-steps", "1", "--save-strategy", "no", "--report-to", "tensorboard",
        "--format", "alpaca", "--chat-template", "tulu", "--dataset-name", "ds2-10k",
        "--optim", "adamw_torch_fused",  # a TRL option the earlier parser did not have
    ])
    assert (lora.r, lora.lora_alpha, lora.lora_dropout) == (8, 32, 0.0)
    assert sorted(lora.target_modules) == ["q_proj", "v_proj"]
    assert (args.learning_rate, args.warmup_steps, args.num_train_epochs, args.max_steps) == (3e-4, 0.1, 2.0, 7)
    assert (args.per_device_train_batch_size, args.gradient_accumulation_steps) == (2, 8)  # 2 x 8 = 16
    assert (args.weight_decay, args.max_length, args.seed, args.use_cpu) == (0.01, 512, 3, True)
    assert not args.assistant_only_loss and args.report_to == ["tensorboard"] and args.logging_steps == 1
    assert getattr(args.optim, "value", args.optim) == "adamw_torch_fused"
    assert options == FinetuneOptions(format="alpaca", chat_template="tulu", dataset_name="ds2-10k", merge=True,
                                      drop_long_prompts=False)
    _, one, _ = _parse(["--lora-target-modules", "all-linear"])
    assert one.target_modules == "all-linear"  # one value of a str | list[str] field stays the string


def test_only_secrets_bookkeeping_and_unparsable_fields_stay_off_the_command_line():
    p = argparse.ArgumentParser()
    add_finetune_arguments(p)
    dests = {a.dest for a in p._actions}
    for cls, prefix, kept_off in ((trl.SFTConfig, "", _SFT_ELSEWHERE), (peft.LoraConfig, "lora_", _LORA_FIXED)):
        hints = typing.get_type_hints(cls)
        for f in dataclasses.fields(cls):
            if not f.init or f.name in kept_off or option_kwargs(hints[f.name]) is None:
                continue
            assert (f.name if f.name.startswith(prefix) else prefix + f.name) in dests, f.name
    assert "hub_token" not in dests and "output_dir" not in dests
