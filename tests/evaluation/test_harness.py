"""The lm-evaluation-harness backend, run offline on a local task YAML that reads the bundled GSM8K items."""

from __future__ import annotations

import pytest

from ds2_hf.evaluation.harness import LM_EVAL_TASKS, LmEvalTask, run_lm_eval


def test_pinned_tasks_and_shots_match_the_paper():
    assert LM_EVAL_TASKS["mmlu"].num_fewshot == 0
    assert (LM_EVAL_TASKS["gsm8k"].tasks, LM_EVAL_TASKS["gsm8k"].num_fewshot, LM_EVAL_TASKS["gsm8k"].limit) == (
        ("gsm8k_cot",), 8, 200)
    assert LM_EVAL_TASKS["bbh"].tasks == ("bbh_cot_fewshot",) and LM_EVAL_TASKS["bbh"].num_fewshot == 3
    assert len(LM_EVAL_TASKS["tydiqa"].tasks) == 9 and LM_EVAL_TASKS["tydiqa"].num_fewshot == 1
    with pytest.raises(ValueError, match="unknown task"):
        run_lm_eval(None, None, "arc")


@pytest.mark.slow
def test_lm_eval_backend_on_local_task(eval_data, tiny_model, tmp_path):
    pytest.importorskip("lm_eval")
    from lm_eval.tasks import TaskManager
    from transformers import AutoModelForCausalLM, AutoTokenizer

    (tmp_path / "ds2_tiny_gsm8k.yaml").write_text(
        "task: ds2_tiny_gsm8k\n"
        "dataset_path: json\n"
        f"dataset_kwargs:\n  data_files:\n    test: {eval_data / 'gsm8k' / 'test.jsonl'}\n"
        "test_split: test\n"
        "output_type: generate_until\n"
        "doc_to_text: \"Question: {{question}}\\nAnswer:\"\n"
        "doc_to_target: \"{{answer.split('####')[-1].strip()}}\"\n"
        "generation_kwargs:\n  until: [\"\\n\"]\n  max_gen_toks: 4\n  do_sample: false\n"
        "metric_list:\n  - metric: exact_match\n    aggregation: mean\n    higher_is_better: true\n"
    )
    model = AutoModelForCausalLM.from_pretrained(str(tiny_model))
    tok = AutoTokenizer.from_pretrained(str(tiny_model))
    result = run_lm_eval(model, tok, "gsm8k", limit=2, batch_size=2,
                         task_manager=TaskManager(include_path=str(tmp_path), include_defaults=False),
                         spec=LmEvalTask(("ds2_tiny_gsm8k",), 0, "exact_match,none"))
    assert result.task == "gsm8k" and result.n == 2 and 0.0 <= result.score <= 100.0
    assert result.settings["backend"] == "lm-eval"
