"""Did the selection help? Finetune the same base model on several subsets and compare them in one table.

Every subset is trained with the same recipe (one ``trl.SFTConfig`` and ``peft.LoraConfig``, same seed; see
:mod:`ds2_hf.training`) and evaluated with the same :class:`~ds2_hf.evaluation.runner.EvalConfig`; the result is a
Markdown table in the layout of the paper's Table 3 (best score per column in bold), a JSON file and a grouped bar
chart. Finished runs are reused, so an interrupted comparison resumes where it stopped.

Examples
--------
>>> from ds2_hf.evaluation import compare
>>> table = compare({"DS2": "subsets/ds2", "Random": "subsets/random", "AlpaGasus": "subsets/score"},
...                 model="meta-llama/Llama-3.1-8B", output_dir="runs/compare",
...                 eval_config=EvalConfig(data_dir="data/eval"))                     # doctest: +SKIP
>>> print(table.markdown())                                                         # doctest: +SKIP
"""

from __future__ import annotations

import json
import logging
import math
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .runner import EvalConfig, EvalReport, evaluate
from .tasks import DISPLAY

logger = logging.getLogger(__name__)


@dataclass
class Comparison:
    """Scores of several finetuned models side by side.

    Attributes
    ----------
    reports : dict of str to EvalReport
        Row name -> evaluation report, in insertion order.
    sizes : dict of str to int
        Row name -> training rows (0 for the untouched base model).
    """

    reports: dict[str, EvalReport]
    sizes: dict[str, int] = field(default_factory=dict)

    @property
    def tasks(self) -> list[str]:
        present = {t for r in self.reports.values() for t in r.results}
        return [t for t in DISPLAY if t in present]

    def rows(self) -> list[dict[str, Any]]:
        """One dict per report (``model``, ``rows``, one key per task, ``average``), followed by one mean row per
        group of repeated runs: reports named ``"Random#1"``, ``"Random#2"``, ... are averaged into
        ``"Random (mean of 2)"`` (the paper reports random selection as the mean of three seeds)."""
        out = []
        groups: dict[str, list[dict[str, Any]]] = {}
        for name, rep in self.reports.items():
            row = {"model": name, "rows": self.sizes.get(name)}
            row.update({t: rep.results[t].score if t in rep.results else float("nan") for t in self.tasks})
            row["average"] = rep.average
            out.append(row)
            base, sep, _ = name.rpartition("#")
            if sep and base:
                groups.setdefault(base, []).append(row)
        for base, members in groups.items():
            if len(members) < 2:
                continue
            mean = {"model": f"{base} (mean of {len(members)})", "rows": members[0]["rows"]}
            for key in self.tasks + ["average"]:
                vals = [m[key] for m in members if not math.isnan(m[key])]
                mean[key] = sum(vals) / len(vals) if vals else float("nan")
            out.append(mean)
        return out

    def markdown(self) -> str:
        """Table 3-style Markdown: one row per subset, the paper's task columns, the average; the best value of
        each column (as printed, one decimal) in bold."""
        cols = self.tasks + ["average"]
        rows = self.rows()
        best = {c: max((r[c] for r in rows if not math.isnan(r[c])), default=float("nan")) for c in cols}
        head = "| Model | Rows | " + " | ".join(DISPLAY.get(c, "Average") for c in cols) + " |"
        sep = "|---|---:|" + "---:|" * len(cols)
        lines = [head, sep]
        for r in rows:
            cells = []
            for c in cols:
                v = r[c]
                cell = "n/a" if math.isnan(v) else f"{v:.1f}"
                is_best = not math.isnan(v) and round(v, 1) == round(best[c], 1) and len(rows) > 1
                cells.append(f"**{cell}**" if is_best else cell)
            size = "-" if not r["rows"] else f"{r['rows']:,}"
            lines.append(f"| {r['model']} | {size} | " + " | ".join(cells) + " |")
        return "\n".join(lines)

    def plot(self, path: str | os.PathLike) -> Path:
        """A grouped bar chart (one group per task, one bar per subset) saved with the Agg backend."""
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        import numpy as np

        cols = self.tasks + ["average"]
        rows = self.rows()
        x = np.arange(len(cols))
        width = 0.8 / max(len(rows), 1)
        fig, ax = plt.subplots(figsize=(1.6 + 1.4 * len(cols), 4))
        for i, r in enumerate(rows):
            vals = [0.0 if math.isnan(r[c]) else r[c] for c in cols]
            ax.bar(x + (i - (len(rows) - 1) / 2) * width, vals, width, label=r["model"])
        ax.set_xticks(x, [DISPLAY.get(c, "Average") for c in cols])
        ax.set_ylabel("score (%)")
        ax.set_title("Finetuned on different subsets")
        ax.legend(fontsize="small", frameon=False)
        ax.grid(axis="y", alpha=0.3)
        fig.tight_layout()
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(path, dpi=120)
        plt.close(fig)
        return path

    def save(self, output_dir: str | os.PathLike) -> dict[str, Path]:
        """Write ``comparison.md``, ``comparison.json`` and ``comparison.png``."""
        out = Path(output_dir)
        out.mkdir(parents=True, exist_ok=True)
        md = out / "comparison.md"
        md.write_text(self.markdown() + "\n")
        js = out / "comparison.json"
        js.write_text(json.dumps({"rows": self.rows(), "reports": {k: r.to_dict() for k, r in self.reports.items()}},
                                 indent=2, default=str))
        return {"markdown": md, "json": js, "plot": self.plot(out / "comparison.png")}


def _slug(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "-", name).strip("-") or "subset"


def compare(
    subsets: Mapping[str, Any],
    *,
    model: str,
    output_dir: str | os.PathLike,
    training_args=None,
    peft_config=None,
    finetune_options=None,
    eval_config: EvalConfig | None = None,
    include_base: bool = True,
    reuse: bool = True,
) -> Comparison:
    """Finetune ``model`` on each subset with the same recipe and seed, evaluate each, and tabulate.

    Parameters
    ----------
    subsets : mapping of str to Dataset or str
        Row name -> training subset (a :class:`datasets.Dataset` or anything :func:`ds2_hf.io.load` reads).
        Subsets of different sizes are allowed (e.g. a full-data row) but logged.
    model : str
        Base model (Hub id or folder).
    output_dir : str or path
        ``<output_dir>/<name>/`` gets each adapter and its ``eval/results.json``; the table goes to the top.
    training_args : trl.SFTConfig, optional
        Shared training arguments (default :func:`ds2_hf.training.sft_config`, the paper's); each run writes to
        its own ``<output_dir>/<name>/`` whatever ``training_args.output_dir`` says.
    peft_config : peft.LoraConfig, optional
        Shared adapter (default :func:`ds2_hf.training.lora_config`, the paper's).
    finetune_options : FinetuneOptions, optional
        Shared data / chat-template options; ``dataset_name`` defaults to each subset's path.
    eval_config : EvalConfig, optional
        Shared evaluation settings.
    include_base : bool, default True
        Add a row for the base model without finetuning ("Vanilla base model").
    reuse : bool, default True
        Skip training / evaluation whose outputs already exist in ``output_dir`` with the same recipe and settings
        (resume an interrupted run).

    Raises
    ------
    ValueError
        No subsets, or duplicate names after slugging.
    """
    from dataclasses import replace

    from ..io import load
    from ..training import FinetuneOptions, finetune, lora_config, recipe, sft_config

    if not subsets:
        raise ValueError("compare() needs at least one subset, e.g. {'DS2': 'subsets/ds2', 'Random': ...}")
    slugs = [_slug(n) for n in subsets]
    if len(set(slugs)) != len(slugs):
        raise ValueError(f"subset names {list(subsets)} collide as folder names {slugs}; rename them")
    out = Path(output_dir)
    training_args = training_args if training_args is not None else sft_config(out)
    peft_config = peft_config if peft_config is not None else lora_config()
    finetune_options = finetune_options or FinetuneOptions()
    eval_config = eval_config or EvalConfig()
    datasets_ = {n: (load(s) if isinstance(s, (str, os.PathLike)) else s) for n, s in subsets.items()}
    sizes = {n: len(d) for n, d in datasets_.items()}
    if len(set(sizes.values())) > 1:
        logger.warning("subsets differ in size %s: the comparison mixes data quantity with data quality", sizes)

    reports: dict[str, EvalReport] = {}
    if include_base:
        reports["Base model"] = _evaluate_cached(model, out / "base" / "eval", "Base model", eval_config, reuse)
    for name, slug in zip(datasets_, slugs):
        run_dir, source = out / slug, subsets[name]
        args = replace(training_args, output_dir=str(run_dir))
        options = finetune_options
        if options.dataset_name is None and isinstance(source, (str, os.PathLike)):
            options = replace(options, dataset_name=str(source))
        if not (reuse and _finished(run_dir, recipe(args, peft_config, options))):
            logger.info("finetuning on %s (%d rows)", name, sizes[name])
            finetune(datasets_[name], model=model, args=args, peft_config=peft_config, options=options,
                     resume_from_checkpoint=True if reuse else None)
        target = run_dir / "merged" if (run_dir / "merged" / "config.json").is_file() else run_dir
        reports[name] = _evaluate_cached(str(target), run_dir / "eval", name, eval_config, reuse)
    comparison = Comparison(reports=reports, sizes={"Base model": 0, **sizes} if include_base else sizes)
    comparison.save(out)
    return comparison


def _normalise(obj: Any) -> Any:
    return json.loads(json.dumps(obj, default=str))


def _finished(run_dir: Path, wanted: dict[str, Any]) -> bool:
    """A finished training run in ``run_dir`` with the recipe ``wanted`` (else it is retrained)."""
    meta_file = run_dir / "training_config.json"
    if not ((run_dir / "adapter_config.json").is_file() and meta_file.is_file()):
        return False
    same = json.loads(meta_file.read_text()).get("config") == wanted
    if not same:
        logger.warning("%s was trained with another recipe: training again", run_dir)
    return same


def _evaluate_cached(model: str, eval_dir: Path, name: str, config: EvalConfig, reuse: bool) -> EvalReport:
    from .runner import _describe

    cached = eval_dir / "results.json"
    if reuse and cached.is_file():
        report = EvalReport.load(cached)
        wanted = _describe(config) | {"backend": config.resolved_backend(), "tasks": list(config.resolved_tasks())}
        if report.config == _normalise(wanted):
            logger.info("reusing %s", cached)
            report.model = name
            return report
    return evaluate(model, config=config, name=name, output_dir=eval_dir)
