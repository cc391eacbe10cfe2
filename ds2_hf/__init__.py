"""ds2-hf: DS2 data selection (ICLR 2025) natively inside the Hugging Face ecosystem.

Rate every sample with an LLM, embed it, curate the noisy ratings with k-NN consensus, select a small, clean,
diverse subset and publish it with a dataset card::

    import datasets, ds2_hf
    ds = datasets.load_dataset("json", data_files="pool.jsonl", split="train")   # has a `rating` column
    ds = ds2_hf.embed(ds)                                                         # adds `embedding`
    ds = ds.map(ds2_hf.curate, batched=True, batch_size=None)                     # adds curated_rating, ...
    subset = ds2_hf.select(ds, k=1000)                                            # curated desc, long-tail desc
    ds2_hf.save_subset(subset, "my-subset")                                        # parquet + card + figures

Public names are imported lazily, so ``import ds2_hf`` stays fast and needs none of the optional extras.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

__version__ = "0.1.0"

_LAZY = {
    # formats
    "Formatter": "ds2_hf.formats",
    "detect_format": "ds2_hf.formats",
    # embedding
    "Embedder": "ds2_hf.embedding",
    "EmbeddingConfig": "ds2_hf.embedding",
    "embed": "ds2_hf.embedding",
    "embed_texts": "ds2_hf.embedding",
    "EmbeddingBackend": "ds2_hf.embedding",
    "EmbeddingError": "ds2_hf.embedding",
    "embed_on_ray": "ds2_hf.embedding_scale",
    "embed_multi_process": "ds2_hf.embedding_scale",
    # k-NN
    "KnnConfig": "ds2_hf.knn",
    "KnnGraph": "ds2_hf.knn",
    "build_knn_graph": "ds2_hf.knn",
    "load_embeddings": "ds2_hf.knn",
    # curation
    "CurationConfig": "ds2_hf.curation",
    "CurationResult": "ds2_hf.curation",
    "Curator": "ds2_hf.curation",
    "curate": "ds2_hf.curation",
    "curate_scores": "ds2_hf.curation",
    # selection
    "select": "ds2_hf.selection",
    "SelectionConfig": "ds2_hf.selection",
    "SelectionReport": "ds2_hf.selection",
    "select_indices": "ds2_hf.selection",
    # simulation
    "simulate": "ds2_hf.simulate",
    "evaluate_curation": "ds2_hf.simulate",
    "curation_ceiling": "ds2_hf.simulate",
    "inject_noise": "ds2_hf.simulate",
    # rating
    "Rater": "ds2_hf.rating",
    "RatingConfig": "ds2_hf.rating",
    "rate": "ds2_hf.rating",
    "RayOptions": "ds2_hf.rating.ray_engine",
    # publishing
    "save_subset": "ds2_hf.publish",
    "push_subset": "ds2_hf.publish",
    "push_folder": "ds2_hf.publish",
    "build_card": "ds2_hf.publish",
    "PublishConfig": "ds2_hf.publish",
    "PushResult": "ds2_hf.publish",
    "PushError": "ds2_hf.publish",
    "write_report_html": "ds2_hf.publish",
    # the one pipeline and its report
    "run_pipeline": "ds2_hf.pipeline",
    "PipelineResult": "ds2_hf.pipeline",
    "Report": "ds2_hf.report",
    # data
    "load_demo": "ds2_hf.demo",
    # training and evaluation
    "finetune": "ds2_hf.training",
    "sft_config": "ds2_hf.training",
    "lora_config": "ds2_hf.training",
    "FinetuneOptions": "ds2_hf.training",
    "EvalConfig": "ds2_hf.evaluation",
    "compare": "ds2_hf.evaluation",
}

__all__ = sorted(_LAZY) + ["__version__"]

if TYPE_CHECKING:  # pragma: no cover
    from .curation import CurationConfig, CurationResult, Curator, curate, curate_scores
    from .embedding import Embedder, EmbeddingConfig, embed
    from .formats import Formatter, detect_format
    from .knn import KnnConfig, KnnGraph, build_knn_graph
    from .selection import SelectionConfig, select


def __getattr__(name: str):
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'ds2_hf' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__():
    return __all__
