"""Finetune + evaluate several subsets with one recipe and tabulate them like the paper's Table 3."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("trl")
datasets = pytest.importorskip("datasets")

from eval_helpers import WORDS  # noqa: E402

from ds2_hf.evaluation import EvalConfig, compare  # noqa: E402
from ds2_hf.evaluation.comparison import Comparison  # noqa: E402
from ds2_hf.evaluation.runner import EvalReport  # noqa: E402
from ds2_hf.evaluation.tasks import TaskResult  # noqa: E402
from ds2_hf.training import lora_config, sft_config  # noqa: E402

REPO = Path(__file__).resolve().parents[2]


def _subset(path: Path, offset: int) -> Path:
    rows = [{"messages": [{"role": "user", "content": " ".join(WORDS[(i + offset) % 20 : (i + offset) % 20 + 5])},
                          {"role": "assistant", "content": " ".join(WORDS[i % 10 : i % 10 + 3])}]}
            for i in range(16)]
    datasets.Dataset.from_list(rows).to_parquet(str(path))
    return path


@pytest.fixture()
def setup(tmp_path, eval_data):
    torch.set_num_threads(1)
    subsets = {"DS2": str(_subset(tmp_path / "ds2.parquet", 0)), "Random": str(_subset(tmp_path / "rnd.parquet", 7))}
    ft = {"training_args": sft_config(max_steps=2, batch_size=8, per_device_train_batch_size=8, max_length=64,
                                      use_cpu=True, save_strategy="no", seed=3),
          "peft_config": lora_config(r=4)}
    ev = EvalConfig(data_dir=str(eval_data), tasks=("gsm8k", "mmlu"), limit=1,
                    task_options={"gsm8k": {"max_new_tokens": 4}})
    return subsets, ft, ev


def test_compare_writes_table_plot_and_reuses_runs(setup, tiny_model, tmp_path, monkeypatch):
    subsets, ft, ev = setup
    out = tmp_path / "cmp"
    table = compare(subsets, model=str(tiny_model), output_dir=out, **ft, eval_config=ev)
    assert list(table.reports) == ["Base model", "DS2", "Random"]
    md = (out / "comparison.md").read_text()
    lines = md.splitlines()
    assert lines[0] == "| Model | Rows | MMLU | GSM | Average |"
    assert lines[2].startswith("| Base model | - |") and lines[3].startswith("| DS2 | 16 |")
    assert (out / "comparison.png").stat().st_size > 1000
    meta = json.loads((out / "DS2" / "training_config.json").read_text())
    assert meta["config"]["sft"]["seed"] == 3 and meta["config"]["lora"]["r"] == 4 and meta["dataset"] == subsets["DS2"]
    assert json.loads((out / "comparison.json").read_text())["rows"][1]["model"] == "DS2"

    import ds2_hf.training

    def no_training(*a, **k):
        raise AssertionError("finished runs must be reused")

    monkeypatch.setattr(ds2_hf.training, "finetune", no_training)
    again = compare(subsets, model=str(tiny_model), output_dir=out, **ft, eval_config=ev)
    assert again.markdown() == table.markdown()
    from dataclasses import replace

    with pytest.raises(AssertionError, match="must be reused"):  # another recipe is trained again
        compare(subsets, model=str(tiny_model), output_dir=out, eval_config=ev, peft_config=ft["peft_config"],
                training_args=replace(ft["training_args"], seed=4))


def test_markdown_bolds_best_per_column():
    def report(name, gsm, mmlu):
        results = {"gsm8k": TaskResult("gsm8k", "em", gsm, 1), "mmlu": TaskResult("mmlu", "acc", mmlu, 1)}
        return EvalReport(name, results)

    table = Comparison({"DS2": report("DS2", 60.0, 63.0), "Random": report("Random", 55.0, 64.0)},
                       sizes={"DS2": 10000, "Random": 10000})
    lines = table.markdown().splitlines()
    assert lines[2] == "| DS2 | 10,000 | 63.0 | **60.0** | **61.5** |"
    assert lines[3] == "| Random | 10,000 | **64.0** | 55.0 | 59.5 |"


def test_compare_input_errors(tiny_model, tmp_path):
    with pytest.raises(ValueError, match="at least one subset"):
        compare({}, model=str(tiny_model), output_dir=tmp_path)
    with pytest.raises(ValueError, match="collide"):
        compare({"a b": "x", "a-b": "y"}, model=str(tiny_model), output_dir=tmp_path)


def test_compare_script(setup, tiny_model, tmp_path, eval_data, capsys):
    subsets, _, _ = setup
    spec = importlib.util.spec_from_file_location("compare_script", REPO / "scripts" / "compare.py")
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    argv = ["--model", str(tiny_model), "--output-dir", str(tmp_path / "c"), "--no-base",
            "--subset", f"DS2={subsets['DS2']}", "--subset", f"Random={subsets['Random']}",
            "--lora-r", "4", "--max-steps", "1", "--batch-size", "8", "--per-device-batch-size", "8",
            "--max-length", "64", "--cpu", "--save-strategy", "no",
            "--data-dir", str(eval_data), "--tasks", "mmlu", "--limit", "1"]
    assert script.main(argv) == 0
    out = capsys.readouterr().out
    assert "| DS2 | 16 |" in out and "| Random | 16 |" in out
    assert script.main(argv[:-8] + ["--subset", "broken"]) == 2
    assert "expected NAME=PATH" in capsys.readouterr().err


def test_repeated_runs_get_a_mean_row():
    def report(name, gsm):
        return EvalReport(name, {"gsm8k": TaskResult("gsm8k", "em", gsm, 1)})

    table = Comparison({"DS2": report("DS2", 60.0), "Random#1": report("Random#1", 50.0),
                        "Random#2": report("Random#2", 54.0), "Random#3": report("Random#3", 52.0)})
    rows = table.rows()
    assert rows[-1]["model"] == "Random (mean of 3)" and rows[-1]["gsm8k"] == pytest.approx(52.0)
    assert "| Random (mean of 3) | - | 52.0 | 52.0 |" in table.markdown()
