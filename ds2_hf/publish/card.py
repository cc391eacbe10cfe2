"""The dataset card: YAML metadata and the text that explains and reproduces the selection.

:func:`card_context` turns a :class:`~ds2_hf.publish.summary.Summary` and a typed :class:`~ds2_hf.report.Report`
into plain template variables, shared by the Markdown card (``cards/dataset_card.md``) and the HTML report
(``cards/report.html``). What was not recorded is written as "not recorded", never guessed.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from importlib import resources
from pathlib import Path
from typing import Any

from ..report import CurationInfo, GuardInfo, RatersInfo, Report
from .config import DATA_DIR, PublishConfig, as_list, size_category
from .summary import Summary

NOT_RECORDED = "not recorded"
CITATION = """@inproceedings{pang2025improving,
  title     = {Improving Data Efficiency via Curating {LLM}-Driven Rating Systems},
  author    = {Pang, Jinlong and Wei, Jiaheng and Shah, Ankit Parag and Zhu, Zhaowei and Wang, Yaxuan and
               Qian, Chen and Liu, Yang and Bao, Yujia and Wei, Wei},
  booktitle = {International Conference on Learning Representations (ICLR)},
  year      = {2025},
  url       = {https://arxiv.org/abs/2410.10877}
}"""
#: How the card speaks of the ratings, by :attr:`ds2_hf.report.RatingInfo.origin`: (how they were made, noun, tag).
RATING_WORDS = {
    "llm": ("every sample was rated by an LLM", "the LLM's rating", "synthetic-ratings"),
    "judge": ("every sample carries an LLM judge's rating from an existing evaluation", "the judge's rating",
              "llm-judge-ratings"),
    "supplied": ("every sample carries a rating supplied with the data (how it was made was not recorded)",
                 "the supplied rating", None),
}


def rating_origin(report: Report) -> str:
    """``"llm"``, ``"judge"`` or ``"supplied"`` (no rating section: the ratings came with the data)."""
    return report.rating.effective_origin if report.rating is not None else "supplied"


def fmt(value, digits: int = 3) -> str:
    if value is None:
        return NOT_RECORDED
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:.{digits}g}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def card_context(summary: Summary, report: Report, config: PublishConfig, figures: Sequence[str]) -> dict[str, Any]:
    """Template variables shared by the Markdown card and the HTML report (plain data, no markup)."""
    curation = report.curation
    sentence = _summary_sentence(summary, report)
    return {
        "pretty_name": config.pretty_name or default_name(report),
        "summary_sentence": sentence,
        "summary_sentence_plain": re.sub(r"\[([^\]]+)\]\([^)]+\)", r"\1", sentence).replace("`", ""),
        "provenance": [(name, fmt(value)) for name, value in _provenance(summary, report)],
        "unknown": [name for name, value in _provenance(summary, report) if value is None],
        "options": _options(report),
        **_matrix(curation),
        **_distribution_rows(summary),
        "rating_noun": RATING_WORDS[rating_origin(report)][1],
        "long_tail": _long_tail_context(summary),
        **_composition_rows(summary),
        "examples": summary.examples,
        "guard": _guard_context(curation.clusterability if curation else None),
        "matrix_withheld": bool(curation and curation.clusterability
                                and curation.clusterability.status == "withheld"),
        "duplicates": summary.duplicates,
        "command": report.command.text if report.command else None,
        "figures": {Path(f).stem: f for f in figures},
        "columns": _column_docs(summary.columns_present, config, report),
        "citation": CITATION,
        "num_rows": summary.num_rows,
        "subset_changed": summary.subset_changed,
        "subset_flagged": summary.subset_flagged,
        "curated": summary.curated,
        "split": config.split,
        "load_id": config.repo_id,
        **_rater_context(curation.raters if curation else None),
    }


def default_name(report: Report) -> str:
    dataset = report.source.dataset if report.source else None
    return f"{Path(str(dataset).rstrip('/')).name or dataset} (DS2 subset)" if dataset else "DS2 subset"


def _n_pool(report: Report) -> int | None:
    if report.selection is not None and report.selection.n_pool:
        return report.selection.n_pool
    return report.curation.n if report.curation is not None else None


def _curation_method(curation: CurationInfo | None) -> str | None:
    """The curation method, with the joint model's second stage (neighbourhood prior) when it was tried."""
    if curation is None:
        return None
    stage = curation.neighbourhood_prior
    if curation.method != "joint" or "heldout_gain_second" not in stage:
        return curation.method
    if stage.get("used"):
        return "joint: EM over the k-NN graph, then the neighbourhood prior (it predicted held-out ratings better)"
    return ("joint: EM over the k-NN graph (the neighbourhood prior was tried and not kept: it predicted held-out "
            "ratings worse)")


def _knn_text(curation: CurationInfo | None) -> str | None:
    knn = curation.knn if curation else None
    if knn is None:
        return None
    recall = f", recall@k = {knn.recall:.3f}" if knn.recall is not None else ", recall not measured"
    return f"{knn.method or '?'}, k = {knn.k if knn.k is not None else '?'}{recall}"


def _provenance(summary: Summary, report: Report) -> list[tuple[str, Any]]:
    source, rating, embedding = report.source, report.rating, report.embedding
    curation, selection = report.curation, report.selection
    k, n_pool, selected = summary.num_classes, _n_pool(report), summary.num_rows
    guard = curation.clusterability if curation else None
    dataset = None
    if source is not None and source.dataset:
        dataset = source.dataset + (" (a local file or folder)" if source.local else "")
    return [
        ("Source dataset", dataset),
        ("Source revision", source.revision if source else None),
        ("Source licence", source.license if source else None),
        ("Rater", (" / ".join(str(v) for v in (rating.backend, rating.model) if v) or None) if rating else None),
        ("Rating mode", rating.mode if rating else None),
        ("Prompt-template hash", None if rating is None else rating.template_hash
         if rating.effective_origin == "llm" else "none: these ratings were not made with the DS2 prompt"),
        ("Embedder", (" / ".join(str(v) for v in (embedding.backend, embedding.model) if v) or None)
         if embedding else None),
        ("Embedding dimension", embedding.dim if embedding else None),
        ("k-NN", _knn_text(curation)),
        ("Curation method", _curation_method(curation)),
        ("Number of scores K", f"{k} (inferred from the largest rating)"
         if k is not None and summary.num_classes_inferred else k),
        ("Rows rated / pool", f"{fmt(curation.n_rated)} / {fmt(curation.n)}" if curation else None),
        ("Ratings flagged / changed by curation",
         f"{fmt(curation.n_flagged)} / {fmt(curation.n_changed)}" if curation else None),
        ("Curation guard", f"{guard.status or 'trust'} (trust {guard.gate:.2f})"
         if guard is not None and guard.gate is not None else None),
        ("Selection strategy", selection.strategy if selection else None),
        ("Selected rows", f"{selected:,}" + (f" of {int(n_pool):,} ({selected / n_pool:.1%})" if n_pool else "")),
    ]


def _options(report: Report) -> list[tuple[str, str]]:
    """``stage.option`` rows with the values used (curation defaults left open are shown resolved)."""
    curation, selection = report.curation, report.selection
    selection_cfg = selection.config if selection else None
    if selection is not None and selection_cfg is None:  # a flat selection report: its scalar settings
        shown = {"strategy", "k", "n_pool", "n_selected"}
        selection_cfg = {key: value for key, value in selection.to_dict().items()
                         if key not in shown and isinstance(value, (str, int, float, bool))}
    rows = []
    for stage, cfg in (("curation", curation.effective_options() if curation else None),
                       ("selection", selection_cfg)):
        rows += [(f"{stage}.{key}", json.dumps(value, default=str)) for key, value in sorted((cfg or {}).items())]
    return rows


def _summary_sentence(summary: Summary, report: Report) -> str:
    source, selected, n_pool = report.source, summary.num_rows, _n_pool(report)
    dataset, hub_id = (source.dataset, source.hub_id) if source else (None, None)
    of = (f" of [`{hub_id}`](https://huggingface.co/datasets/{hub_id})" if hub_id
          else f" of `{dataset}`" if dataset else "")
    if not (summary.curated or report.curation):
        return (f"A {selected:,}-row subset{of} published with ds2-hf. Its rows carry no DS2 curation columns, so "
                "the curation details below are not recorded.")
    guard = report.curation.clusterability if report.curation else None
    withheld = guard is not None and guard.status == "withheld"
    how = RATING_WORDS[rating_origin(report)][0]
    return (
        f"A {selected:,}-row subset{of}" + (f" ({selected / n_pool:.1%} of {int(n_pool):,} rows)" if n_pool else "")
        + f", selected with [DS2](https://arxiv.org/abs/2410.10877): {how}, "
        + ("the ratings were checked for k-NN consensus between embeddings and kept as rated, because the curation "
           "guard found that neighbours here do not share the rated quality (see below), " if withheld else
           "the noisy ratings were corrected with a score transition matrix estimated from k-NN agreement between "
           "embeddings, ")
        + "and the highest-scored samples were kept, each duplicate once."
    )


def _matrix(curation: CurationInfo | None) -> dict[str, Any]:
    T = curation.transition_matrix if curation else None
    labels = [str(i) for i in range(len(T))] if T else []
    rows = [(labels[i], [f"{float(v):.3f}" for v in row]) for i, row in enumerate(T)] if T else []
    return {"matrix_labels": labels, "matrix_rows": rows}


def _distribution_rows(summary: Summary) -> dict[str, Any]:
    dist, k = summary.distributions, summary.num_classes
    rows = [(str(s), [fmt(counts[s]) for counts in dist.values()]) for s in range(k)] if dist and k else []
    return {"dist_names": list(dist), "dist_rows": rows}


def _long_tail_context(summary: Summary) -> dict[str, Any]:
    """The long-tail numbers, with the sentence that says truthfully where the ``ds2`` rule stopped."""
    lt = dict(summary.long_tail)
    if "cut" not in lt:
        return lt
    score, cut = lt["cut_score"], f"{lt['cut']:.4g}"
    top = summary.num_classes is not None and score >= summary.num_classes - 1
    lt["cut_sentence"] = (
        f"Every selected row has the top curated score, {score}; among those rows, only the ones with a long-tail "
        f"score of at least {cut} were selected." if top else
        f"Every row with a curated score above {score} was selected (each duplicate group once); among rows with "
        f"curated score {score}, only those with a long-tail score of at least {cut} were."
    )
    return lt


def _composition_rows(summary: Summary) -> dict[str, Any]:
    comp = summary.composition
    if not comp:
        return {"composition_column": None, "composition_rows": []}
    n_sub = sum(comp["subset"].values()) or 1
    n_pool = sum((comp["pool"] or {}).values()) or None
    rows = []
    for name in list(comp["subset"])[:20]:
        n, p = comp["subset"][name], (comp["pool"] or {}).get(name)
        rows.append((name, f"{n:,}", f"{n / n_sub:.1%}", f"{p:,}" if p is not None else "–",
                     f"{p / n_pool:.1%}" if p is not None and n_pool else "–"))
    return {"composition_column": comp["column"], "composition_rows": rows}


def _guard_context(guard: GuardInfo | None) -> dict[str, Any]:
    """The curation guard's verdict, advice and checks, as plain strings for the card."""
    if guard is None or not guard.verdict:
        return {}
    return {"status": guard.status, "verdict": guard.verdict, "advice": guard.advice or "",
            "checks": [(c.name, c.result, c.summary) for c in guard.checks]}


def _rater_context(raters: RatersInfo | None) -> dict[str, Any]:
    """The per-rater table, trust line and audit line of a fused curation (several rating columns)."""
    if raters is None:
        return {"raters": [], "raters_trust": None, "raters_audit": None}
    rows = [(s["name"], f"{s['n_rated']:,}", f"{s['accuracy']:.3f}", f"{s['bias']:+.3f}",
             f"{s['agreement_with_fused']:.3f}") for s in raters.summary]
    audit, line = raters.audit, None
    if audit:
        moved = ", ".join(f"{s['name']} {a['accuracy_shift']:+.3f}" for s, a in zip(raters.summary, audit["raters"]))
        line = (f"{audit['n_audited']:,} rows carry trusted audit scores; they moved the estimated accuracies by "
                f"{moved} and changed the fused score of {audit['changed_rows']:.1%} of the other rows.")
    return {"raters": rows, "raters_trust": raters.trust, "raters_audit": line}


def _column_docs(present: Sequence[str], config: PublishConfig, report: Report) -> list[tuple[str, str]]:
    cols = config.curation_columns
    noun = RATING_WORDS[rating_origin(report)][1]
    docs = {
        config.rating_column: f"raw rating ({noun}), integer 0..K-1 (null when there is none)",
        cols.curated_rating: "rating after DS2 curation, integer 0..K-1",
        cols.confidence: "confidence of the curated rating, float in [0, 1]",
        cols.misrated: "true when curation judged the raw rating wrong",
        cols.long_tail: "long-tail (rarity) score in embedding space, higher = rarer",
        cols.posterior: "posterior over the K true scores (sums to 1)",
    }
    return [(c, docs[c]) for c in present if c in docs]


# ---------------------------------------------------------------------------------------------------- metadata
def card_data(features, summary: Summary, report: Report, config: PublishConfig, num_bytes: int, download_size: int):
    """The card's YAML metadata (``huggingface_hub.DatasetCardData``) with features, splits and configs."""
    import datasets
    from datasets.info import DatasetInfosDict
    from datasets.splits import SplitDict, SplitInfo
    from datasets.utils.metadata import MetadataConfigs
    from huggingface_hub import DatasetCardData

    source = report.source
    tag = RATING_WORDS[rating_origin(report)][2]
    tags = ["ds2", "data-selection"] + ([tag] if tag else [])
    tags += [t for t in as_list(config.tags) if t not in tags]
    data = DatasetCardData(
        pretty_name=config.pretty_name or default_name(report),
        license=config.license or (source.license if source else None) or "unknown",
        language=as_list(config.language or (source.language if source else None)) or None,
        task_categories=list(config.task_categories) or None,
        size_categories=[size_category(summary.num_rows)],
        source_datasets=[source.hub_id] if source is not None and source.hub_id else None,
        tags=tags,
    )
    info = datasets.DatasetInfo(features=features, dataset_size=num_bytes, download_size=download_size)
    info.splits = SplitDict()
    info.splits.add(SplitInfo(name=config.split, num_bytes=num_bytes, num_examples=summary.num_rows))
    DatasetInfosDict({"default": info}).to_dataset_card_data(data)
    MetadataConfigs({"default": {"data_files": [{"split": config.split, "path": f"{DATA_DIR}/{config.split}-*"}]}}
                    ).to_dataset_card_data(data)
    data["ds2"] = _ds2_metadata(summary, report)
    return data


def _ds2_metadata(summary: Summary, report: Report) -> dict[str, Any]:
    curation, selection, rating = report.curation, report.selection, report.rating
    values = {
        "num_classes": summary.num_classes,
        "curation_method": curation.method if curation else None,
        "selection_strategy": selection.strategy if selection else None,
        "selected": summary.num_rows,
        "pool": _n_pool(report),
        "rater_model": rating.model if rating else None,
        "rating_origin": rating_origin(report),
        "prompt_template_hash": rating.template_hash if rating else None,
        "embedding_model": report.embedding.model if report.embedding else None,
        "knn_recall": curation.knn.recall if curation and curation.knn else None,
        "source_revision": report.source.revision if report.source else None,
    }
    return {key: value for key, value in values.items() if value is not None}


def template_path(name: str) -> Path:
    path = resources.files("ds2_hf") / "cards" / name
    if not path.is_file():
        raise FileNotFoundError(
            f"card template {name!r} is missing from the installed package (expected {path}); reinstall ds2-hf"
        )
    return Path(str(path))


def render_card(data, context: dict):
    """The Markdown card (a ``huggingface_hub.DatasetCard``) of ``data`` and the template ``context``."""
    from huggingface_hub import DatasetCard

    from .._import_utils import require

    require("jinja2", extra=None, purpose="rendering the dataset card")
    return DatasetCard.from_template(data, template_path=template_path("dataset_card.md"), ctx=context)
