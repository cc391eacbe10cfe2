#!/usr/bin/env python
"""Peak memory of the two faces of curation on one saved dataset: ``dataset.map(ds2_hf.curate, ...)`` against
``Curator().fit_transform(dataset)``.

A pool of ``--n`` rows (a ``--dim`` float32 embedding and an int8 rating each; the public generator
``../shared/bench/synth.py`` when present, else ``ds2_hf.simulate``, gpt-like, seed 0) is saved with
``save_to_disk`` and loaded back memory-mapped, as a pool embedded by ``ds2_hf.embed`` is. Each face then runs in
its own process, so its peak RSS (``ru_maxrss``) is its own; both write their output to a fresh Arrow cache file.
The script checks that the two faces give the same curated ratings.

Usage::

    python scripts/bench/bench_map_memory.py --n 100000 --dim 256
    python scripts/bench/bench_map_memory.py --n 100000 --dim 1024          # the issue's size (about 1.5 GB a face)
    python scripts/bench/bench_map_memory.py --n 100000 --dim 256 --faces map

Prints one JSON line per face and a last line with the ratio of the peaks (map / Curator).
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

PUBLIC_SYNTH = Path(__file__).resolve().parents[2].parent / "shared" / "bench" / "synth.py"
FACES = ("curator", "map")


def peak_rss_gb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2


def prepare(n: int, dim: int, folder: Path) -> dict:
    """Generate the pool and save it to ``folder`` (in its own process: its memory is not the faces')."""
    import datasets
    import numpy as np

    t = time.perf_counter()
    if PUBLIC_SYNTH.exists():
        sys.path.insert(0, str(PUBLIC_SYNTH.parent))
        import synth

        g = synth.generate(n, dim, synth.get_T("gpt-like"), synth.P_DEFAULT, seed=0)
        embeddings, rated = g["embeddings"], g["rated"]
    else:
        from ds2_hf.simulate import simulate

        sim = simulate(n, dim, transition="gpt-like", seed=0)
        embeddings, rated = sim.embeddings, sim.rated
    features = datasets.Features({"embedding": datasets.List(datasets.Value("float32"), length=dim),
                                  "rating": datasets.Value("int8")})
    table = {"embedding": np.asarray(embeddings, dtype=np.float32), "rating": np.asarray(rated, dtype=np.int8)}
    datasets.Dataset.from_dict(table, features=features).save_to_disk(str(folder))
    return {"n": n, "dim": dim, "generate_and_save_seconds": round(time.perf_counter() - t, 1)}


def run_face(face: str, folder: Path, out: Path) -> dict:
    """Curate the saved pool through one face; save its curated ratings to ``out`` (.npy)."""
    import datasets
    import numpy as np

    import ds2_hf

    pool = datasets.load_from_disk(str(folder))
    rss_loaded = peak_rss_gb()
    t = time.perf_counter()
    if face == "map":
        curated = pool.map(ds2_hf.curate, batched=True, batch_size=None, fn_kwargs={"progress": False},
                           load_from_cache_file=False)
    else:
        curated = ds2_hf.Curator(progress=False).fit_transform(pool, load_from_cache_file=False)
    seconds = time.perf_counter() - t
    ratings = curated.with_format("numpy", columns=["curated_rating"])[:]["curated_rating"]
    np.save(out, np.asarray(ratings, dtype=np.int8))
    return {"face": face, "n": len(pool), "dim": pool.features["embedding"].length, "seconds": round(seconds, 1),
            "peak_rss_gb": round(peak_rss_gb(), 2), "rss_after_loading_gb": round(rss_loaded, 2)}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--n", type=int, default=100000)
    ap.add_argument("--dim", type=int, default=256)
    ap.add_argument("--faces", nargs="+", choices=FACES, default=list(FACES))
    ap.add_argument("--child", choices=("prepare", *FACES), help=argparse.SUPPRESS)
    ap.add_argument("--folder", type=Path, help=argparse.SUPPRESS)
    a = ap.parse_args(argv)
    if a.child == "prepare":
        print(json.dumps(prepare(a.n, a.dim, a.folder)), flush=True)
        return 0
    if a.child:
        print(json.dumps(run_face(a.child, a.folder / "pool", a.folder / f"{a.child}.npy")), flush=True)
        return 0
    import numpy as np

    with tempfile.TemporaryDirectory(prefix="ds2-map-bench-") as tmp:
        folder = Path(tmp)

        def child(role: str, target: Path) -> dict:
            cmd = [sys.executable, __file__, "--child", role, "--folder", str(target), "--n", str(a.n),
                   "--dim", str(a.dim)]
            line = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout.strip().splitlines()[-1]
            print(line, flush=True)
            return json.loads(line)

        child("prepare", folder / "pool")
        runs = {face: child(face, folder) for face in a.faces}
        if len(runs) == 2:
            same = np.array_equal(np.load(folder / "map.npy"), np.load(folder / "curator.npy"))
            ratio = runs["map"]["peak_rss_gb"] / runs["curator"]["peak_rss_gb"]
            print(json.dumps({"map_over_curator_peak_rss": round(ratio, 2), "same_curated_ratings": bool(same)}))
            if not same:
                return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
