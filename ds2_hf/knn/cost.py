"""What a search will cost, estimated before it starts: multiply-adds, seconds at this machine's speed, memory.

The speed is measured once per process, device and dimension: a timed top-k product of 4,096 queries against
1,024 rows (the shape of one IVF cell product, including faiss' top-k selection), about 0.1 s on a CPU.
Exact search is the same product over all rows, so its estimate is ``N**2 * d`` multiply-adds at that speed; the
IVF estimate counts, per query, the rows of the probed cells as measured on the recall sample (and the centroid
scores when the probes must be computed again), times :data:`IVF_OVERHEAD`. That overhead is a prior: before
the IVF search would be skipped for its estimate, :mod:`ds2_hf.knn.build` times one search part on random rows
of the pool itself and estimates at the rate measured there (``rate`` below; at 10M x 256 the prior was 3 times
too slow). A search whose estimate exceeds ``KnnConfig.max_seconds`` or whose memory exceeds the budget is never
started (:mod:`ds2_hf.knn.build` escalates or raises instead).

Examples
--------
>>> from ds2_hf.knn.cost import Cost, human_seconds
>>> human_seconds(90), human_seconds(5400), human_seconds(5e5)
('90 s', '90 min', '5.8 days')
>>> c = Cost("exact", madds=1e16, bytes=2e9, speed=2e10)
>>> c.seconds, c.over_budget(max_seconds=3600, max_bytes=8e9)
(500000.0, 'estimated 5.8 days (1e+16 multiply-adds at 2e+10/s) > max_seconds=3600')
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

from .graph import id_dtype

_SPEED: dict[tuple[str, int], float] = {}
# The prior for the IVF cell search before it is timed on the pool: about a third of the calibrated product speed
# (gathering each cell's rows and queries, merging the candidates). 120k x 64 clustered, nprobe 8 and 128,
# measured 3-5 times the product-only estimate on this project's 2-core machine; 10M x 256 (cells of 400 rows
# on average, the large cells probed most) measured 1 time, hence the timing on the pool before a skip.
IVF_OVERHEAD = 3.0


def measured_speed(kernel, d: int) -> float:
    """Multiply-adds per second of ``kernel.knn`` at dimension ``d`` (measured once per process, best of 3)."""
    key = (kernel.name, int(d))
    if key not in _SPEED:
        rng = np.random.default_rng(0)
        xq = rng.standard_normal((4096, d)).astype(np.float32)
        xb = rng.standard_normal((1024, d)).astype(np.float32)
        kernel.knn(xq[:64], xb[:128], 8)  # warm-up (thread pool, GPU context)
        best = np.inf
        for _ in range(3):
            t = time.perf_counter()
            kernel.knn(xq, xb, 41)
            best = min(best, time.perf_counter() - t)
        _SPEED[key] = len(xq) * len(xb) * d / max(best, 1e-6)
    return _SPEED[key]


def human_seconds(s: float) -> str:
    """``90 s``, ``90 min``, ``3.2 h``, ``5.8 days``."""
    if s < 120:
        return f"{s:.0f} s"
    if s < 7200:
        return f"{s / 60:.0f} min"
    if s < 172800:
        return f"{s / 3600:.1f} h"
    return f"{s / 86400:.1f} days"


@dataclass(frozen=True)
class Cost:
    """An estimate: ``madds`` multiply-adds at ``speed`` per second, ``bytes`` of memory held by the search."""

    what: str
    madds: float
    bytes: float
    speed: float
    measured: str | None = None  # how ``speed`` was measured when it is the search's own rate
    extra_seconds: float = 0.0  # measured seconds of a step outside the multiply-adds (computing probes again)

    @property
    def seconds(self) -> float:
        return self.madds / self.speed + self.extra_seconds

    def over_budget(self, *, max_seconds: float | None, max_bytes: float) -> str | None:
        """Why the search must not start, or ``None`` when it fits."""
        if max_seconds is not None and self.seconds > max_seconds:
            basis = f", {self.measured}" if self.measured else ""
            return (f"estimated {human_seconds(self.seconds)} ({self.madds:.0e} multiply-adds at {self.speed:.0e}/s"
                    f"{basis}) > max_seconds={max_seconds:g}")
        if self.bytes > max_bytes:
            return f"needs about {self.bytes / 1e9:.1f} GB > the memory budget of {max_bytes / 1e9:.1f} GB"
        return None

    def as_dict(self) -> dict:
        out = {"what": self.what, "multiply_adds": float(f"{self.madds:.3g}"),
               "seconds": round(self.seconds, 1), "gb": round(self.bytes / 1e9, 2)}
        if self.measured:
            out["rate"] = self.measured
        return out


def exact_cost(n: int, d: int, k: int, speed: float, *, in_memory: bool) -> Cost:
    """All-pairs products; a flat index copies in-memory rows, memory-mapped rows are read in blocks."""
    held = n * (k + 1) * 12 + (n * d * 4 if in_memory else 0)
    return Cost("exact", float(n) * n * d, held, speed)


@dataclass(frozen=True)
class Rate:
    """The IVF search's own speed, timed on one search part of ``rows`` random queries of the pool: ``madds``
    multiply-adds (their probed cell rows times ``d``) in ``seconds``."""

    rows: int
    nprobe: int
    madds: float
    seconds: float

    @property
    def speed(self) -> float:
        return self.madds / max(self.seconds, 1e-9)

    def describe(self) -> str:
        return f"the rate of {self.rows:,} queries searched at nprobe {self.nprobe} in {self.seconds:.1f} s"


def ivf_cost(n: int, d: int, k: int, nprobe: int, probed_rows: float, speed: float, *, rate: Rate | None = None,
             probe_seconds: float = 0.0) -> Cost:
    """IVF search of ``n`` queries over ``probed_rows`` cell rows each (mean), after ``probe_seconds`` to compute
    their probes again (measured when the index assigned the rows; 0 when it holds enough probes).

    Without a ``rate`` the products run at ``speed / IVF_OVERHEAD`` (the prior); with one, at the search's own
    rate measured on the pool.
    """
    held = n * nprobe * 4 + n * 16 + min(1 << 30, n * nprobe * (k + 1) * 8) + n * k * (id_dtype(n).itemsize + 4)
    work = float(n) * d * probed_rows
    if rate is None:  # the prior
        return Cost(f"ivf (nprobe {nprobe})", IVF_OVERHEAD * work, held, speed, extra_seconds=probe_seconds)
    return Cost(f"ivf (nprobe {nprobe})", work, held, rate.speed, measured=rate.describe(),
                extra_seconds=probe_seconds)


def hnsw_bytes(n: int, d: int, m: int, k: int, *, half: bool) -> float:
    """An HNSW index over ``n`` rows (vectors plus about ``2 m`` links of 4 bytes each) and the graph."""
    return n * ((2 if half else 4) * d + 8 * m) + n * k * 12
