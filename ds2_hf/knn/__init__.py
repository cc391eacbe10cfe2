"""The k-nearest-neighbour graph over unit-normalised embeddings (cosine similarity).

One global graph serves every curation step: HOC consensus, detection, the joint posterior and the long-tail
score. ``method="auto"`` searches exactly (faiss ``IndexFlatIP``) while that is cheap and switches to an
inverted-file (IVF) search above a work threshold (:mod:`~ds2_hf.knn.ivf`: cells by spherical k-means, searched
cell by cell at matrix-multiply speed). Approximate search measures its recall@k on a random sample of queries
against exact search and raises ``nprobe`` until it reaches ``target_recall``. Every search is costed before it
starts (:mod:`~ds2_hf.knn.cost`) and none is started beyond ``max_seconds`` or the memory budget; when IVF cannot
reach ``min_recall``, the graph escalates to exact search, then HNSW, then accepts the measured recall, and says
why (:mod:`~ds2_hf.knn.build`). GPU faiss does the products when installed (:mod:`~ds2_hf.knn.gpu`), and
memory-mapped float16 embeddings are read in blocks, never copied whole (:mod:`~ds2_hf.knn.blocked`).

Modules: ``graph`` (the contract and options), ``exact``, ``ivf``, ``hnsw``, ``gpu``, ``blocked`` (out of
core), ``cost`` and ``build`` (the choice of search).

Examples
--------
>>> import numpy as np
>>> from ds2_hf.knn import build_knn_graph
>>> x = np.random.default_rng(0).standard_normal((500, 16)).astype("float32")
>>> x /= np.linalg.norm(x, axis=1, keepdims=True)
>>> g = build_knn_graph(x, k=5)
>>> g.indices.shape, g.method
((500, 5), 'exact')
>>> bool((g.indices != np.arange(500)[:, None]).all())   # self is excluded
True
"""

from .blocked import MappedRows, load_embeddings, open_rows
from .build import build_knn_graph
from .graph import KNN_DEVICES, KNN_METHODS, KnnConfig, KnnGraph, knn_config_dict, validate_embeddings
from .graph import strip_self as _strip_self  # noqa: F401  (kept importable under its former name)

__all__ = [
    "KNN_DEVICES", "KNN_METHODS", "KnnConfig", "KnnGraph", "MappedRows", "build_knn_graph", "knn_config_dict",
    "load_embeddings", "open_rows", "validate_embeddings",
]
