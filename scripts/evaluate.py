#!/usr/bin/env python
"""Evaluate a (finetuned) model on the DS2 paper's benchmarks, and optionally judge it pairwise against a baseline.

    # offline, from local benchmark files
    python scripts/evaluate.py --model runs/ds2 --data-dir data/eval --output-dir runs/ds2/eval
    # lm-evaluation-harness (pip install "ds2-hf[eval]"; downloads task data)
    python scripts/evaluate.py --model runs/ds2 --backend lm-eval
    # Vicuna-bench pairwise judging against another model, both answer orders
    python scripts/evaluate.py --model runs/ds2 --tasks none --questions data/vicuna_bench/question.jsonl \
        --baseline runs/random --judge-model meta-llama/Llama-3.1-8B-Instruct
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path


def build_parser() -> argparse.ArgumentParser:
    from ds2_hf.evaluation.arguments import add_eval_arguments

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", required=True, help="model folder, Hub id, or LoRA adapter folder")
    p.add_argument("--name", default=None, help="row name in the report (default: --model)")
    p.add_argument("--output-dir", default=None, help="write results.json, predictions/ and judge files here")
    add_eval_arguments(p)
    g = p.add_argument_group("pairwise LLM judge (Vicuna-bench / MT-bench)")
    g.add_argument("--questions", default=None, help="FastChat question.jsonl; enables judging")
    g.add_argument("--baseline", default=None, help="baseline model (folder / Hub id / adapter) to answer too")
    g.add_argument("--baseline-answers", default=None, help="FastChat answer JSONL of the baseline instead")
    g.add_argument("--judge-model", default=None, help="local judge model (folder / Hub id)")
    g.add_argument("--max-new-tokens", type=int, default=512, help="answer and judge length")
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    from ds2_hf.evaluation import MissingDataError
    from ds2_hf.evaluation.judge import JudgeError

    try:
        return _run(args)
    except (ValueError, FileNotFoundError, ImportError, MissingDataError, JudgeError) as err:
        print(f"evaluate: error: {err}", file=sys.stderr)
        return 2


def _run(args) -> int:
    from ds2_hf.evaluation import TransformersModel, evaluate
    from ds2_hf.evaluation import judge as J
    from ds2_hf.evaluation.arguments import eval_config_from_args

    config = eval_config_from_args(args)
    if args.questions and not args.judge_model:
        raise ValueError("--questions needs --judge-model (and --baseline or --baseline-answers)")
    if args.questions and not (args.baseline or args.baseline_answers):
        raise ValueError("judging needs --baseline MODEL or --baseline-answers FILE")
    if config is None and not args.questions:
        raise ValueError("--tasks none leaves nothing to do; add --questions to judge")
    out = Path(args.output_dir) if args.output_dir else None
    name = args.name or args.model
    if config is not None:
        report = evaluate(args.model, config=config, name=name, output_dir=out)
        print(report.markdown())
    if args.questions:
        questions = J.load_questions(args.questions)
        model = TransformersModel.from_pretrained(args.model)
        ours = J.generate_answers(model, questions, max_new_tokens=args.max_new_tokens, model_id=name)
        if args.baseline_answers:
            theirs, baseline_name = J.load_answers(args.baseline_answers), Path(args.baseline_answers).stem
        else:
            baseline = TransformersModel.from_pretrained(args.baseline)
            theirs = J.generate_answers(baseline, questions, max_new_tokens=args.max_new_tokens,
                                        model_id=args.baseline)
            baseline_name = args.baseline
        judge = TransformersModel.from_pretrained(args.judge_model)
        result = J.judge_pairwise(judge, questions, ours, theirs, model_name=name, baseline_name=baseline_name,
                                  max_new_tokens=args.max_new_tokens)
        r = result.rates
        print(f"{name} vs {baseline_name}: win {r['win']:.1f}%  tie {r['tie']:.1f}%  loss {r['loss']:.1f}%  "
              f"(win + tie/2 = {r['adjusted_win_rate']:.1f}%, n={r['n']}, unparsed={r['errors']})")
        if out is not None:
            out.mkdir(parents=True, exist_ok=True)
            J.save_answers(ours, out / "answers.jsonl", model_id=name)
            J.save_answers(theirs, out / "baseline_answers.jsonl", model_id=baseline_name)
            (out / "judge.json").write_text(json.dumps({"summary": result.summary(), "records": result.records},
                                                       indent=2, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
