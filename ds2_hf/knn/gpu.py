"""GPU faiss: the same searches with their distance products on GPUs.

GPU faiss (``pip uninstall faiss-cpu && pip install faiss-gpu-cu12``, or conda's ``faiss-gpu``) provides
``faiss.knn_gpu`` (brute-force top-k in memory-limited blocks on one GPU) and ``faiss.index_cpu_to_all_gpus``
(an index sharded over every visible GPU). :class:`GpuKernel` plugs them under the searches of this package, so
exact search shards the flat index over all GPUs, the IVF cell products and the blocked exact products run on
the first GPU, and the recall check, escalation and graph contract are those of the CPU path.

Examples
--------
>>> from ds2_hf.knn.gpu import gpu_count
>>> gpu_count() >= 0
True
"""

from __future__ import annotations

import numpy as np

from .._import_utils import require

GPU_INSTALL = (
    "install GPU faiss in place of faiss-cpu: `pip uninstall -y faiss-cpu && pip install faiss-gpu-cu12` "
    "(CUDA 12), or `conda install -c pytorch faiss-gpu`"
)


def gpu_count(faiss=None) -> int:
    """GPUs visible to faiss (0 for a CPU-only faiss build)."""
    faiss = faiss or require("faiss", purpose="the k-NN graph")
    get = getattr(faiss, "get_num_gpus", None)
    return int(get()) if get is not None else 0


class GpuKernel:
    """faiss on GPUs: ``knn`` through ``faiss.knn_gpu`` on ``device``; ``flat_index`` sharded over all GPUs.

    Raises
    ------
    ImportError
        faiss has no GPU support or sees no GPU (the message says how to install GPU faiss).
    """

    name = "gpu"

    def __init__(self, device: int = 0):
        faiss = require("faiss", purpose="the k-NN graph")
        n = gpu_count(faiss)
        if n == 0 or not hasattr(faiss, "knn_gpu"):
            raise ImportError(
                "KnnConfig(device='gpu') needs faiss with GPU support and a visible GPU, but the installed faiss "
                f"{'sees no GPU' if hasattr(faiss, 'knn_gpu') else 'is a CPU-only build'}; {GPU_INSTALL}. "
                "Or use device='cpu' (device='auto' picks the GPU only when one is there)."
            )
        self.faiss = faiss
        self.device = device
        self.n_gpus = n
        self.resources = faiss.StandardGpuResources()

    def knn(self, xq: np.ndarray, xb: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        f = self.faiss
        return f.knn_gpu(self.resources, xq, xb, k, metric=f.METRIC_INNER_PRODUCT, device=self.device)

    def flat_index(self, d: int):
        f = self.faiss
        return f.index_cpu_to_all_gpus(f.IndexFlatIP(d))


def make_kernel(device: str):
    """The kernel for ``KnnConfig.device``: ``"gpu"`` (error without GPU faiss), ``"cpu"``, or ``"auto"``."""
    from .exact import CpuKernel

    if device == "gpu" or (device == "auto" and gpu_count() > 0):
        return GpuKernel()
    return CpuKernel()
