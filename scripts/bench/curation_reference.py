#!/usr/bin/env python
"""Reference outputs of ``curate_scores`` on fixed draws, to prove a change of the curation core changes nothing.

    python scripts/bench/curation_reference.py record /tmp/ref        # before the change
    python scripts/bench/curation_reference.py compare /tmp/ref       # after: identical, or how far each output moved

The draws: the public generator ``../shared/bench/synth.py`` at 20k x 256 (gpt-like, llama-like, and gpt-like with
15% clusterability violators; seed 0) and 60k x 64 (gpt-like: the model selection then runs on a 50k subset), the shipped demo embedded with WordLlama through ``ds2_hf.Curator`` (prompt
groups and duplicates found from the text), ``ds2_hf.simulate.simulate_multi_response`` with prompt groups and
duplicate copies (also without the back-off and with the second stage forced, so that the
posterior is not hidden by the guard), and a three-rater fusion as in ``tests/curation/test_fused.py``. For each draw it stores the
curated ratings, the posterior, ``T``, the prior, the confidence, the flags, the long-tail score, the duplicate groups
and the guard's gate and verdict. ``compare`` prints one line per draw: whether the integer outputs and the
guard's decisions are identical, and the largest absolute difference of every float output.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_accuracy import PUBLIC_SYNTH  # noqa: E402

INTEGER = ("curated", "misrated", "suggested", "duplicate_group")
FLOAT = ("posterior", "transition_matrix", "true_prior", "confidence", "noise_score", "long_tail",
         "rater_transition_matrices")


def _synth(n: int, dim: int, preset: str, violate: float):
    if str(PUBLIC_SYNTH.parent) not in sys.path:
        sys.path.insert(0, str(PUBLIC_SYNTH.parent))
    import synth

    g = synth.generate(n, dim, synth.get_T(preset), synth.P_DEFAULT, seed=0, violate=violate)
    return g["embeddings"], g["rated"]


def draws():
    """Name -> a function returning a CurationResult."""
    from ds2_hf.curation import curate_scores

    def synth_draw(preset, violate=0.05, n=20000, dim=256):
        def run():
            x, y = _synth(n, dim, preset, violate)
            return curate_scores(x, y, progress=False)
        return run

    def demo():
        import ds2_hf

        curator = ds2_hf.Curator(progress=False)
        curator.fit(ds2_hf.embed(ds2_hf.load_demo(), backend="wordllama"))
        return curator.result_

    def multi(**options):
        def run():
            from ds2_hf.simulate import simulate_multi_response

            data = simulate_multi_response(1500, 4, seed=0)
            dup = np.full(len(data.rated), -1)
            dup[:600:2] = np.arange(300)  # copies: pairs of rows with the same response text
            dup[1:600:2] = np.arange(300)
            return curate_scores(data.embeddings, data.rated, groups=data.prompt, duplicates=dup, progress=False,
                                 **options)
        return run

    def fusion():
        from ds2_hf.simulate import inject_noise, simulate

        data = simulate(3000, 32, seed=1)
        presets = ("gpt-like", "mistral-like", "llama-like")
        Y = np.stack([inject_noise(data.true, p, seed=30 + r) for r, p in enumerate(presets)], axis=1).astype(float)
        Y[np.random.default_rng(0).random(len(Y)) > 0.2, 0] = np.nan
        return curate_scores(data.embeddings, Y, rater_names=list(presets), progress=False)

    return {"synth_gpt": synth_draw("gpt-like"), "synth_llama": synth_draw("llama-like"),
            "synth_gpt_violate": synth_draw("gpt-like", 0.15),
            "synth_gpt_60k": synth_draw("gpt-like", n=60000, dim=64), "demo": demo, "multi_response": multi(),
            "multi_response_no_backoff": multi(backoff=False, neighbourhood_prior=True),
            "fusion": fusion}


def outputs(res) -> tuple[dict, dict]:
    arrays = {name: getattr(res, name) for name in INTEGER + FLOAT if getattr(res, name) is not None}
    clus = res.clusterability
    meta = {"gate": None if clus is None else clus.gate, "status": None if clus is None else clus.status,
            "verdict": None if clus is None else clus.verdict,
            "details": {k: v for k, v in res.details.items() if k != "candidates"},
            "candidates": res.details.get("candidates"), "n_changed": res.report["n_changed"]}
    return arrays, json.loads(json.dumps(meta, default=float))


def record(folder: Path, names) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for name, run in draws().items():
        if names and name not in names:
            continue
        arrays, meta = outputs(run())
        np.savez_compressed(folder / f"{name}.npz", **arrays)
        (folder / f"{name}.json").write_text(json.dumps(meta, indent=1))
        print(f"{name}: recorded (changed {meta['n_changed']}, gate {meta['gate']})", flush=True)


def compare(folder: Path, names) -> int:
    bad = 0
    for name, run in draws().items():
        if names and name not in names:
            continue
        ref = np.load(folder / f"{name}.npz")
        ref_meta = json.loads((folder / f"{name}.json").read_text())
        arrays, meta = outputs(run())
        same = [k for k in INTEGER if k in ref and np.array_equal(ref[k], arrays[k])]
        diffs = {k: float(np.max(np.abs(ref[k].astype(np.float64) - arrays[k]))) for k in FLOAT if k in ref}
        guard = (ref_meta["status"], ref_meta["verdict"]) == (meta["status"], meta["verdict"])
        ok = len(same) == sum(k in ref for k in INTEGER) and guard and ref_meta["details"] == meta["details"]
        bad += not ok
        print(f"{name}: {'SAME' if ok else 'DIFFERENT'} integers {same} guard {guard} "
              f"details {ref_meta['details'] == meta['details']} gate {ref_meta['gate']} -> {meta['gate']} "
              f"max|diff| {({k: f'{v:.1e}' for k, v in diffs.items()})}", flush=True)
        if ref_meta["details"] != meta["details"]:
            print("   details before:", ref_meta["details"], "\n   details after: ", meta["details"])
    return bad


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("action", choices=("record", "compare"))
    ap.add_argument("folder")
    ap.add_argument("--only", nargs="*", default=None, help="draw names (default: all)")
    args = ap.parse_args(argv)
    if args.action == "record":
        record(Path(args.folder), args.only)
        return 0
    return 1 if compare(Path(args.folder), args.only) else 0


if __name__ == "__main__":
    sys.exit(main())
