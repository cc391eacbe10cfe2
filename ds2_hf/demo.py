"""The demo dataset that ships inside the package: AlpacaEval answers with real GPT-4 judge ratings.

6,440 rows = 805 AlpacaEval instructions x 8 models, each answer carrying the GPT-4-turbo judge's preference
against a GPT-4-turbo baseline, mapped to a DS2-style 0-5 ``rating`` (one point per decade of the judge's odds;
null for the baseline's own 805 rows, which the judge never rated). Source: ``tatsu-lab/alpaca_eval``
(Apache-2.0); the full provenance, the rating rule and per-model class counts are in :func:`demo_card`.
It loads offline from the installed package: ``ds2 run --demo`` and the Gradio Space start from it.

Examples
--------
>>> from ds2_hf.demo import load_demo
>>> ds = load_demo()
>>> ds.num_rows, ds.features["rating"]
(6440, Value('int8'))
>>> sorted(set(ds.unique("generator")))[:3]
['NullModel', 'alpaca-7b', 'claude-2']
"""

from __future__ import annotations

from collections.abc import Sequence
from importlib import resources
from pathlib import Path

DEMO_DIR = ("data", "demo")
DEMO_FILE = "alpaca_eval_rated.parquet"
NUM_ROWS = 6440
NUM_CLASSES = 6


def _resource(name: str):
    return resources.files("ds2_hf").joinpath(*DEMO_DIR, name)


def demo_path() -> Path:
    """Path of the shipped parquet file (inside the installed package)."""
    path = Path(str(_resource(DEMO_FILE)))
    if not path.is_file():
        raise FileNotFoundError(
            f"the demo data file {DEMO_FILE!r} is missing from the installed package ({path}); reinstall ds2-hf, "
            "or rebuild it from the AlpacaEval annotations with `python scripts/build_demo_data.py --source DIR`"
        )
    return path


def demo_card() -> str:
    """The demo data card (provenance, licence, how ``rating`` is derived, class counts) as Markdown."""
    return _resource("README.md").read_text(encoding="utf-8")


def load_demo(
    *,
    rated_only: bool = False,
    generators: Sequence[str] | None = None,
    num_rows: int | None = None,
    seed: int = 0,
    keep_in_memory: bool = False,
):
    """Load the shipped demo dataset, offline.

    Parameters
    ----------
    rated_only : bool, default False
        Drop the 805 rows of the ``gpt4_1106_preview`` baseline, whose ``rating`` is null.
    generators : sequence of str, optional
        Keep only these models (``generator`` values), e.g. ``["claude-2", "alpaca-7b"]``.
    num_rows : int, optional
        Keep a random sample of this many rows (after the filters), drawn with ``seed``; order is preserved.
    seed : int, default 0
        Seed of the ``num_rows`` sample.
    keep_in_memory : bool, default False
        Load into memory instead of the ``datasets`` cache (in-memory datasets do not cache later ``map`` calls).

    Returns
    -------
    datasets.Dataset
        Columns ``instruction``, ``output`` (string), ``generator``, ``dataset`` (string), ``pref_weighted_gpt4_turbo``
        (float64 in [1, 2]), ``pref_alpaca_eval_gpt4`` (float64, nullable), ``rating`` (int8 in 0..5, nullable).

    Examples
    --------
    >>> from ds2_hf.demo import load_demo
    >>> small = load_demo(rated_only=True, num_rows=500)
    >>> small.num_rows, None in small["rating"]
    (500, False)
    """
    import datasets
    import numpy as np

    ds = datasets.load_dataset(
        "parquet", data_files=str(demo_path()), split="train", keep_in_memory=keep_in_memory
    )
    if generators is not None:
        known = set(ds.unique("generator"))
        unknown = sorted(set(generators) - known)
        if unknown:
            raise ValueError(f"generators={unknown} are not in the demo data; choose from {sorted(known)}")
        wanted = set(generators)
        ds = ds.filter(lambda g: g in wanted, input_columns="generator", keep_in_memory=keep_in_memory)
    if rated_only:
        ds = ds.filter(lambda r: r is not None, input_columns="rating", keep_in_memory=keep_in_memory)
    if num_rows is not None:
        if not 0 < num_rows <= ds.num_rows:
            raise ValueError(f"num_rows={num_rows} must be in 1..{ds.num_rows} (rows left after the filters)")
        rng = np.random.default_rng(seed)
        ds = ds.select(np.sort(rng.choice(ds.num_rows, size=num_rows, replace=False)), keep_in_memory=keep_in_memory)
    return ds
