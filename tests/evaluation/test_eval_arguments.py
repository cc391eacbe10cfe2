"""The evaluation command line is generated from EvalConfig and the task classes; every task follows the protocol."""

from __future__ import annotations

import argparse
import dataclasses

import pytest

from ds2_hf.evaluation.arguments import add_eval_arguments, eval_config_from_args
from ds2_hf.evaluation.runner import EvalConfig
from ds2_hf.evaluation.tasks import DATA_PATHS, DISPLAY, TASKS, Task, get_task


def _config(argv):
    p = argparse.ArgumentParser()
    add_eval_arguments(p)
    return eval_config_from_args(p.parse_args(argv))


def test_earlier_flags_give_the_same_config(eval_data):
    config = _config(["--tasks", "MMLU", "bbh", "truthfulqa", "--backend", "builtin", "--data-dir", str(eval_data),
                      "--limit", "3", "--mmlu-shots", "5", "--bbh-tasks", "navigate", "snarks",
                      "--truthfulqa-judges", "truth-model", "info-model", "--chat-format", "no",
                      "--eval-batch-size", "2", "--eval-seed", "7"])
    assert config == EvalConfig(
        tasks=("mmlu", "bbh", "truthfulqa"), backend="builtin", data_dir=str(eval_data), limit=3, chat_format=False,
        batch_size=2, seed=7, task_options={"mmlu": {"num_fewshot": 5}, "bbh": {"tasks": ("navigate", "snarks")},
                                            "truthfulqa": {"mode": "gen", "truth_judge": "truth-model",
                                                           "info_judge": "info-model"}})
    assert _config([]) == EvalConfig() and _config(["--tasks", "none"]) is None


def test_every_task_option_is_on_the_command_line():
    config = _config(["--gsm8k-limit", "20", "--gsm8k-max-new-tokens", "64", "--tydiqa-num-fewshot", "0",
                      "--bbh-cot-prompts", "none", "--truthfulqa-mode", "mc", "--eval-max-length", "1024"])
    assert config.max_length == 1024
    assert config.task_options == {"gsm8k": {"limit": 20, "max_new_tokens": 64}, "tydiqa": {"num_fewshot": 0},
                                   "bbh": {"cot_prompts": "none"}}  # mode=mc is the default: not an override
    p = argparse.ArgumentParser()
    add_eval_arguments(p)
    dests = {a.dest for a in p._actions}
    for name, cls in TASKS.items():
        for f in dataclasses.fields(cls):
            assert f"{name}_{f.name}" in dests, (name, f.name)


@pytest.mark.parametrize("argv, match", [
    (["--chat-format", "maybe"], "invalid choice"),
    (["--backend", "vllm"], "invalid choice"),
])
def test_bad_values_are_usage_errors(argv, match, capsys):
    with pytest.raises(SystemExit):
        _config(argv)
    assert match in capsys.readouterr().err


def test_every_task_follows_the_protocol_and_the_registry_derives_from_it():
    assert list(TASKS) == ["mmlu", "truthfulqa", "gsm8k", "bbh", "tydiqa"]  # the paper's column order
    for name, cls in TASKS.items():
        task = get_task(name)
        assert isinstance(task, Task) and task.name == name
        assert DISPLAY[name] == cls.display and DATA_PATHS[name] == cls.data_path
        assert dataclasses.is_dataclass(cls) and cls.__dataclass_params__.frozen
    with pytest.raises(ValueError, match="has no option\\(s\\) \\['shots'\\]; valid"):
        get_task("mmlu", shots=5)
