#!/usr/bin/env python
"""Build the demo dataset shipped in ``ds2_hf/data/demo/`` from the AlpacaEval judge annotations.

Input: a folder holding ``alpaca_eval_rated_outputs.jsonl`` (6,440 rows = 8 models x 805 AlpacaEval instructions,
joined from ``tatsu-lab/alpaca_eval`` ``results/<model>/model_outputs.json`` and the judges' ``annotations.json``
at commit cd543a149df89434d8a54582c0151c0b945c3d20) and the repository's ``LICENSE`` (Apache-2.0).

Output (``--out``, default ``ds2_hf/data/demo``):

* ``alpaca_eval_rated.parquet``: every row, the source columns unchanged, plus ``rating`` (int8 0..5 or null)
  derived from the GPT-4-turbo judge preference by :func:`preference_to_rating`;
* ``LICENSE``: copy of the source repository's licence;
* ``README.md``: the data card (provenance, the rating rule, class counts), generated from the data.

Usage::

    python scripts/build_demo_data.py --source ../shared/data/alpaca_eval_rated

The build is deterministic: the same input gives a byte-identical parquet file.
"""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

REPO = Path(__file__).resolve().parents[1]
DEFAULT_SOURCE = REPO.parent / "shared" / "data" / "alpaca_eval_rated"
DEFAULT_OUT = REPO / "ds2_hf" / "data" / "demo"
DATA_FILE = "alpaca_eval_rated.parquet"
SOURCE_FILE = "alpaca_eval_rated_outputs.jsonl"
SOURCE_COMMIT = "cd543a149df89434d8a54582c0151c0b945c3d20"

# The judge's weighted preference compared each output with the gpt4_1106_preview baseline; that model's own rows
# were "compared to itself" and carry a constant 1.5 that no judge produced. Their rating is left null (unrated).
BASELINE = "gpt4_1106_preview"
# Rating k is reached when the judge's odds that the output beats the baseline reach 10 ** LOG10_ODDS_EDGES[k-1]:
# one rating point per decade of odds, rating 5 = the judge prefers this output (p >= 0.5).
LOG10_ODDS_EDGES = (-4.0, -3.0, -2.0, -1.0, 0.0)
NUM_CLASSES = 6

COLUMNS = ("instruction", "output", "generator", "dataset", "pref_weighted_gpt4_turbo", "pref_alpaca_eval_gpt4")


def preference_to_rating(pref: np.ndarray) -> np.ndarray:
    """Map the AlpacaEval 2 weighted preference (float in [1, 2]) to a 0-5 rating, monotone non-decreasing.

    ``p = pref - 1`` is the judge's probability that the output beats the baseline. With odds ``p / (1 - p)``, the
    rating is the number of edges in :data:`LOG10_ODDS_EDGES` that ``log10(odds)`` reaches:
    odds < 1e-4 -> 0, [1e-4, 1e-3) -> 1, [1e-3, 1e-2) -> 2, [1e-2, 0.1) -> 3, [0.1, 1) -> 4, >= 1 -> 5.
    """
    p = np.clip(np.asarray(pref, dtype=np.float64) - 1.0, 0.0, 1.0)
    odds_edges = 10.0 ** np.asarray(LOG10_ODDS_EDGES)
    p_edges = odds_edges / (1.0 + odds_edges)  # the same edges on the probability scale
    return np.searchsorted(p_edges, p, side="right").astype(np.int8)


def build(source: Path, out: Path) -> dict:
    rows = [json.loads(line) for line in (source / SOURCE_FILE).read_text(encoding="utf-8").splitlines() if line]
    if len(rows) != 6440:
        raise ValueError(f"expected 6,440 rows in {source / SOURCE_FILE}, found {len(rows)}")
    table = {c: [r.get(c) for r in rows] for c in COLUMNS}
    pref = np.asarray(table["pref_weighted_gpt4_turbo"], dtype=np.float64)
    if not ((pref >= 1) & (pref <= 2)).all():
        raise ValueError("pref_weighted_gpt4_turbo outside [1, 2]")
    rating = preference_to_rating(pref)
    rated = np.asarray([g != BASELINE for g in table["generator"]])
    arrays = {
        "instruction": pa.array(table["instruction"], pa.string()),
        "output": pa.array(table["output"], pa.string()),
        "generator": pa.array(table["generator"], pa.string()),
        "dataset": pa.array(table["dataset"], pa.string()),
        "pref_weighted_gpt4_turbo": pa.array(pref, pa.float64()),
        "pref_alpaca_eval_gpt4": pa.array(table["pref_alpaca_eval_gpt4"], pa.float64()),
        "rating": pa.array(rating, pa.int8(), mask=~rated),
    }
    features = {
        "instruction": {"dtype": "string", "_type": "Value"},
        "output": {"dtype": "string", "_type": "Value"},
        "generator": {"dtype": "string", "_type": "Value"},
        "dataset": {"dtype": "string", "_type": "Value"},
        "pref_weighted_gpt4_turbo": {"dtype": "float64", "_type": "Value"},
        "pref_alpaca_eval_gpt4": {"dtype": "float64", "_type": "Value"},
        "rating": {"dtype": "int8", "_type": "Value"},
    }
    schema = pa.schema([(k, v.type) for k, v in arrays.items()]).with_metadata(
        {"huggingface": json.dumps({"info": {"features": features}})}
    )
    out.mkdir(parents=True, exist_ok=True)
    pq.write_table(
        pa.table(arrays, schema=schema),
        out / DATA_FILE,
        compression="zstd",
        compression_level=19,
        row_group_size=len(rows),
        use_dictionary=["instruction", "generator", "dataset"],
        write_statistics=False,
    )
    shutil.copyfile(source / "LICENSE", out / "LICENSE")
    stats = _stats(table, rating, rated)
    (out / "README.md").write_text(_card(stats, (out / DATA_FILE).stat().st_size), encoding="utf-8")
    return stats


def _stats(table: dict, rating: np.ndarray, rated: np.ndarray) -> dict:
    gens = np.asarray(table["generator"])
    per_model = {}
    for g in sorted(set(gens), key=lambda g: (g == BASELINE, g)):
        mask = gens == g
        counts = np.bincount(rating[mask & rated], minlength=NUM_CLASSES).tolist()
        per_model[g] = {"rows": int(mask.sum()), "counts": counts if rated[mask].any() else None}
    return {
        "rows": len(gens),
        "rated": int(rated.sum()),
        "counts": np.bincount(rating[rated], minlength=NUM_CLASSES).tolist(),
        "per_model": per_model,
        "datasets": {d: int(n) for d, n in zip(*np.unique(table["dataset"], return_counts=True), strict=True)},
    }


def _card(stats: dict, size: int) -> str:
    header = "| generator | rows | " + " | ".join(f"r={k}" for k in range(NUM_CLASSES)) + " |"
    lines = [header, "|" + "---|" * (NUM_CLASSES + 2)]
    for g, s in stats["per_model"].items():
        cells = [str(c) for c in s["counts"]] if s["counts"] else ["null"] * NUM_CLASSES
        lines.append(f"| {g} | {s['rows']} | " + " | ".join(cells) + " |")
    lines.append(f"| **all rated** | {stats['rated']} | " + " | ".join(str(c) for c in stats["counts"]) + " |")
    table = "\n".join(lines)
    sources = ", ".join(f"{d} {n // 8}" for d, n in sorted(stats["datasets"].items(), key=lambda x: -x[1]))
    return f"""# ds2-hf demo data: AlpacaEval outputs with real GPT-4 judge ratings

`alpaca_eval_rated.parquet` ({size / 1e6:.1f} MB, {stats['rows']:,} rows) is the dataset `ds2 run --demo` and
`ds2_hf.load_demo()` use: 805 AlpacaEval instructions answered by 8 models, each answer carrying the preference an
LLM judge (GPT-4-turbo) gave it. It is small, real, and its ratings are genuinely noisy, which is what DS2 curates.

## Source and licence

* Repository: [tatsu-lab/alpaca_eval](https://github.com/tatsu-lab/alpaca_eval), commit `{SOURCE_COMMIT}`.
* Files: `results/<model>/model_outputs.json`, joined on (instruction, output) with
  `results/<model>/weighted_alpaca_eval_gpt4_turbo/annotations.json` and
  `results/<model>/alpaca_eval_gpt4/annotations.json`. No source value was altered.
* Licence: the alpaca_eval repository is Apache-2.0 (copied in `LICENSE`). The outputs are generations of the
  models named in `generator` and remain subject to their providers' terms of use. Please cite AlpacaEval:
  Li et al., *AlpacaEval: An Automatic Evaluator of Instruction-following Models* (2023), and Dubois et al.,
  *Length-Controlled AlpacaEval* (2024).
* Built by `scripts/build_demo_data.py` (deterministic).

## Columns

| column | type | meaning |
|---|---|---|
| `instruction` | string | the AlpacaEval instruction (805 distinct) |
| `output` | string | the model's answer |
| `generator` | string | the model that wrote `output` |
| `dataset` | string | the instruction's origin, per model: {sources} |
| `pref_weighted_gpt4_turbo` | float64 in [1, 2] | AlpacaEval 2 judge (GPT-4-turbo): logprob-weighted preference vs the `gpt4_1106_preview` baseline; 1 = baseline better, 2 = this output better |
| `pref_alpaca_eval_gpt4` | float64, nullable | AlpacaEval 1 judge (GPT-4) vs `text_davinci_003`: 1 / 1.5 / 2 (and 0 in 27 rows, as in the source); null where the source has no such annotation |
| `rating` | int8 0..5, nullable | the DS2-style rating derived below; null for the {stats['rows'] - stats['rated']} `{BASELINE}` rows |

## How `rating` is derived

`p = pref_weighted_gpt4_turbo - 1` is the judge's probability that the output beats the baseline. Most values sit
extremely close to 0 (the median over rated rows is 6e-5), so six equal-width bins over [1, 2] would put 79% of the rows in
class 0 and leave the middle classes nearly empty. The rating instead counts decades of the judge's odds
`p / (1 - p)`: one point per decade, monotone in the preference:

| rating | odds p/(1-p) | p = pref - 1 |
|---|---|---|
| 0 | < 1e-4 | < 0.0001 |
| 1 | [1e-4, 1e-3) | [0.0001, 0.001) |
| 2 | [1e-3, 1e-2) | [0.001, 0.0099) |
| 3 | [1e-2, 0.1) | [0.0099, 0.0909) |
| 4 | [0.1, 1) | [0.0909, 0.5) |
| 5 | >= 1 | >= 0.5 (the judge prefers this output) |

Every class is populated. `{BASELINE}` was compared with itself, so its constant 1.5 is not a judgment: its
rating is null (unrated), and DS2's k-NN consensus can suggest one.

{table}

## Known rating noise, and what curation does and does not do here

* `NullModel` is the adversarial "null model" of *Cheating Automatic LLM Benchmarks* (Zheng et al., 2024): one
  fixed, judge-gaming string (872 characters, identical in all 805 rows) that answers no instruction, yet the
  judge rated {stats['per_model']['NullModel']['counts'][5]} of its 805 rows 5. It is a *systematic* rating error: every copy fools the judge the same way,
  so no consensus of neighbours can correct it. What removes it from a subset is duplicate detection: the 805 rows
  share one response, form one duplicate group, and a selection takes at most one row of a group.
* The ratings are relative to one strong baseline: most answers of the weaker models land in ratings 0-1, so the
  scale ranks answers against GPT-4-turbo rather than measuring absolute quality.
* **k-NN curation cannot help on this pool, and the curation guard says so.** Every instruction has 8 answers, and
  an embedding of instruction plus answer puts them next to each other: half of a row's 10 nearest neighbours are
  answers to its own instruction. They share the instruction (its topic, its difficulty), not the answer's
  quality, which is what the judge rates. ds2-hf finds the prompt groups in the text, never uses answers to the
  same instruction as evidence for each other, and checks what is left. The fitted model's latent scores do not
  line up with the rating scale (it claims that answers of true score 3 are rated 0 most of the time), so the
  guard withholds every correction and the ratings are kept as rated.
* Measured (`scripts/bench/bench_real.py --suites demo`; the independent reference is the second judge,
  `pref_alpaca_eval_gpt4`, on 3,223 rows): the default curation keeps the ratings' Spearman agreement with that
  judge at 0.275 and the per-generator order (claude-2 > gpt-3.5-turbo > vicuna-13b > the 7-12B models), where the
  paper's method (`method="faithful"`) lowers it to 0.069 and cleanlab to 0.000. The default subset of 214 or 500
  rows holds no more than one NullModel row and no repeated answer; ranking the raw ratings by the paper's rule
  puts 39% NullModel copies into a 500-row subset.
* What would let curation act on a pool like this: trusted ratings on a sample of rows (`audit_column`), a second
  rater, or an embedding of the answer that sees its quality.
"""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--source", type=Path, default=DEFAULT_SOURCE, help=f"input folder (default: {DEFAULT_SOURCE})")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help=f"output folder (default: {DEFAULT_OUT})")
    args = parser.parse_args(argv)
    if not (args.source / SOURCE_FILE).is_file():
        parser.error(f"{args.source / SOURCE_FILE} not found; pass --source FOLDER")
    stats = build(args.source, args.out)
    print(f"wrote {args.out / DATA_FILE}: {stats['rows']} rows, {stats['rated']} rated, classes {stats['counts']}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
