"""The built-in benchmark path: oracle models score 100 %, wrong ones 0 %, the tiny model runs end to end."""

from __future__ import annotations

import shutil

import pytest
from eval_helpers import oracle, write_tydiqa

from ds2_hf.evaluation import (
    EvalConfig,
    EvalReport,
    MissingDataError,
    evaluate,
    get_task,
)
from ds2_hf.evaluation.tasks import (
    BBH,
    GSM8K,
    MMLU,
    TruthfulQA,
    TyDiQA,
    available_tasks,
)


@pytest.fixture()
def data(eval_data, tmp_path):
    root = tmp_path / "data"
    shutil.copytree(eval_data, root)
    write_tydiqa(root)
    return root


def test_oracle_scores_100_and_wrong_model_0(data):
    config = EvalConfig(data_dir=str(data), tasks=("mmlu", "gsm8k", "bbh", "truthfulqa", "tydiqa"),
                        task_options={"bbh": {"cot_prompts": "none"}})
    good = evaluate(oracle(data), config=config, name="oracle")
    bad = evaluate(oracle(data, wrong=True), config=config, name="wrong")
    assert good.scores["mmlu"] == good.scores["gsm8k"] == good.scores["bbh"] == good.scores["tydiqa"] == 100.0
    assert good.scores["truthfulqa"] > 99.0 and good.results["truthfulqa"].subscores["mc1"] == 100.0
    assert bad.scores["mmlu"] == bad.scores["gsm8k"] == bad.scores["bbh"] == bad.scores["tydiqa"] == 0.0
    assert bad.scores["truthfulqa"] < 1.0
    n = {t: r.n for t, r in good.results.items()}
    # 2 subjects x 3, 4 questions, 2 tasks x (6 - 3 exemplars), 3 questions, 2 languages x (3 - 1 exemplar)
    assert n == {"mmlu": 6, "gsm8k": 4, "bbh": 6, "truthfulqa": 3, "tydiqa": 4}
    assert good.results["bbh"].settings["prompting"] == "direct"
    assert set(good.results["tydiqa"].subscores) == {"en", "fi"}


def test_bbh_uses_official_cot_prompts_when_present(data):
    (data / "bbh" / "cot-prompts").mkdir()
    (data / "bbh" / "cot-prompts" / "navigate.txt").write_text(
        "canary line\n-----\nNavigation.\n\nQ: Take 1 step. Are you back?\nA: Let's think step by step.\n"
        "We moved. So the answer is No."
    )
    result = BBH(tasks=("navigate",)).run(oracle(data), data)
    assert result.settings["prompting"] == "cot" and result.n == 6 and result.score == 100.0
    prompt = BBH(tasks=("navigate",)).load(data)["navigate"]["prefix"]
    assert prompt.startswith("Navigation.") and "canary" not in prompt


def test_bbh_cot_prompts_from_installed_lm_eval_or_direct(data):
    pytest.importorskip("lm_eval")
    spec = BBH(tasks=("navigate",)).load(data)["navigate"]
    assert spec["prompting"] == "cot" and len(spec["examples"]) == 6  # no test item spent on exemplars
    assert spec["prefix"].count("A: Let's think step by step.") == 3 and "So the answer is" in spec["prefix"]
    direct = BBH(tasks=("navigate",), cot_prompts="none").load(data)["navigate"]
    assert direct["prompting"] == "direct" and len(direct["examples"]) == 3
    with pytest.raises(MissingDataError, match="not a folder"):
        BBH(tasks=("navigate",), cot_prompts=str(data / "nope")).load(data)


def test_gsm8k_prompt_has_eight_cot_exemplars_and_seeded_subsample(data):
    p = GSM8K().prompt("How many?")
    assert p.count("Question:") == 9 and p.count("The answer is") == 8 and p.endswith("Question: How many?\nAnswer:")
    a = [r["id"] for r in GSM8K(limit=2).load(data, seed=1)]
    assert a == [r["id"] for r in GSM8K(limit=2).load(data, seed=1)] and len(a) == 2


def test_mmlu_fewshot_and_upstream_headerless_format(data):
    (data / "mmlu" / "test" / "astronomy_test.csv").write_text('"What is 1+1?",1,2,3,4,B\n')
    rows = MMLU().load(data)["astronomy"]
    assert rows == [{"question": "What is 1+1?", "choices": ["1", "2", "3", "4"], "answer": 1}]
    prompt = MMLU(num_fewshot=2).prompt("astronomy", rows[0], MMLU().load(data)["high_school_mathematics"][:2])
    assert prompt.startswith("The following are multiple choice questions (with answers) about astronomy.")
    assert prompt.count("Answer:") == 3 and prompt.endswith("D. 4\nAnswer:")
    result = MMLU(num_fewshot=5).run(oracle(data), data)
    assert result.settings["num_fewshot"] == 5 and result.n == 4


def test_tiny_model_through_the_builtin_path(data, tiny_model, tmp_path):
    config = EvalConfig(data_dir=str(data), limit=2, task_options={"gsm8k": {"max_new_tokens": 8},
                                                                   "bbh": {"max_new_tokens": 8}})
    report = evaluate(str(tiny_model), config=config, output_dir=tmp_path / "eval")
    assert list(report.results) == ["mmlu", "truthfulqa", "gsm8k", "bbh", "tydiqa"]
    assert all(0.0 <= s <= 100.0 for s in report.scores.values())
    assert report.results["gsm8k"].n == 2 and report.results["mmlu"].n == 4
    loaded = EvalReport.load(tmp_path / "eval")
    assert loaded.scores == pytest.approx(report.scores)
    assert (tmp_path / "eval" / "predictions" / "gsm8k.jsonl").read_text().count("\n") == 2
    table = report.markdown()
    assert table.splitlines()[0] == "| Model | MMLU | TruthfulQA | GSM | BBH | TydiQA | Average |"


def test_available_tasks(eval_data, data):
    assert available_tasks(eval_data) == ["mmlu", "truthfulqa", "gsm8k", "bbh"]
    assert available_tasks(data) == ["mmlu", "truthfulqa", "gsm8k", "bbh", "tydiqa"]


def test_unknown_task_name_is_a_clear_error(eval_data):
    with pytest.raises(ValueError, match=r"unknown task 'arc'.*'bbh', 'gsm8k', 'mmlu', 'truthfulqa', 'tydiqa'"):
        EvalConfig(data_dir=str(eval_data), tasks=("arc",))
    with pytest.raises(ValueError, match="unknown task"):
        get_task("squad")
    with pytest.raises(ValueError, match="has no option"):
        get_task("gsm8k", shots=3)


def test_missing_local_data_is_a_clear_error(eval_data, tmp_path):
    with pytest.raises(MissingDataError, match=r"tydiqa: no local data at .*tydiqa.*--data-dir"):
        evaluate(oracle(eval_data), config=EvalConfig(data_dir=str(eval_data), tasks=("tydiqa",)))
    with pytest.raises(MissingDataError, match="gsm8k/test.jsonl"):
        GSM8K().load(tmp_path)
    with pytest.raises(MissingDataError, match=r"no task file for \['nope'\]"):
        BBH(tasks=("nope",)).load(eval_data)
    with pytest.raises(FileNotFoundError, match="not a folder"):
        EvalConfig(data_dir=str(tmp_path / "absent"))


def test_truthfulqa_rows_parsed(eval_data):
    rows = TruthfulQA().load(eval_data)
    assert len(rows) == 3 and rows[0]["best"] in rows[0]["correct"] and rows[0]["incorrect"]


def test_tydiqa_exemplar_is_not_scored(data):
    loaded = TyDiQA(limit=1).load(data)
    assert {k: len(v) for k, v in loaded.items()} == {"en": 2, "fi": 2}


class _Judge:
    """Says " yes" when the answer in the judge prompt is in ``good``."""

    chat_format = False

    def __init__(self, good):
        self.good = good

    def loglikelihood(self, requests):
        out = []
        for context, cont in requests:
            answer = context.rsplit("\nA: ", 1)[1].rsplit("\n", 1)[0]
            yes = answer in self.good
            out.append(0.0 if (cont == " yes") == yes else -3.0)
        return out


def test_truthfulqa_generation_judged_like_the_paper(data):
    rows = TruthfulQA().load(data)
    # the model answers the best answer for 2 of 3 questions, an incorrect one for the last
    gen = {f"Q: {r['question']}": (r["best"] if i < 2 else r["incorrect"][0]) for i, r in enumerate(rows)}
    from eval_helpers import OracleLM

    model = OracleLM(gen, {})
    truthful = _Judge({r["best"] for r in rows})
    informative = _Judge({r["best"] for r in rows} | {rows[2]["incorrect"][0]})
    result = TruthfulQA(mode="gen", truth_judge=truthful, info_judge=informative).run(model, data)
    assert result.metric == "truth_x_info"
    assert result.subscores["truthful"] == pytest.approx(200 / 3) and result.subscores["informative"] == 100.0
    assert result.score == pytest.approx(200 / 3)
    assert result.predictions[2]["truthful"] == 0.0
    with pytest.raises(ValueError, match="needs truth_judge"):
        TruthfulQA(mode="gen")
    with pytest.raises(ValueError, match="mode='judge'"):
        TruthfulQA(mode="judge")
