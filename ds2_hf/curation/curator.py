"""The Hugging Face face of curation: ``dataset.map(ds2_hf.curate, ...)`` and the :class:`Curator` estimator."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

import numpy as np

from ..columns import EMBEDDING, RATING, CurationColumns, check_no_overwrite
from .config import CurationConfig
from .core import CurationResult, curate_scores

logger = logging.getLogger(__name__)


def _column(batch: Mapping[str, Any], name: str, option: str, producer: str):
    if name not in batch:
        raise KeyError(
            f"column {name!r} not found (columns: {sorted(batch)}); {producer}, or name the column with `{option}=...`"
        )
    return batch[name]


def _embeddings(col) -> np.ndarray:
    if isinstance(col, np.ndarray) and col.ndim == 2:
        return col
    try:
        if isinstance(col, np.ndarray) and col.dtype == object:
            return np.stack(col).astype(np.float32)
        return np.asarray(col, dtype=np.float32)
    except (ValueError, TypeError):
        lengths = sorted({len(v) if v is not None else 0 for v in col})
        raise ValueError(
            f"the embedding column has rows of different lengths {lengths[:5]} (or nulls); embed every row with "
            "one model (ds2_hf.embed) before curating"
        ) from None


def _features(columns: CurationColumns, num_classes: int, with_posterior: bool):
    from datasets import Features, List, Value

    feats = {
        columns.curated_rating: Value("int8"),
        columns.confidence: Value("float32"),
        columns.misrated: Value("bool"),
        columns.long_tail: Value("float32"),
        columns.duplicate_group: Value("int64"),
    }
    if with_posterior:
        feats[columns.posterior] = List(Value("float32"), length=num_classes)
    return Features(feats)


def result_columns(result: CurationResult, columns: CurationColumns, index=None, *,
                   with_posterior: bool = True) -> dict[str, Any]:
    """The curation output as a column dict (``index`` selects rows); unrated rows get a null curated rating."""
    sl = slice(None) if index is None else np.asarray(index)
    curated = result.curated[sl]
    out = {
        columns.curated_rating: [None if c < 0 else int(c) for c in curated],
        columns.confidence: result.confidence[sl].astype(np.float32),
        columns.misrated: result.misrated[sl],
        columns.long_tail: result.long_tail[sl].astype(np.float32),
        columns.duplicate_group: result.duplicate_group[sl].astype(np.int64),
    }
    if with_posterior and result.posterior is not None:
        out[columns.posterior] = result.posterior[sl].astype(np.float32)
    return out


class Curator:
    """Fit DS2 curation on a dataset once, inspect it, and add its columns to datasets.

    Follows the scikit-learn estimator convention: options in ``__init__`` (validated there), learned state in
    attributes ending with ``_`` after :meth:`fit`.

    Parameters
    ----------
    config : CurationConfig, optional
        Base options; keyword ``options`` override its fields (see :class:`CurationConfig`).
    rating_column : str, default "rating"
        Integer ratings in ``0..K-1``; nulls are unrated rows (excluded, left uncurated).
    embedding_column : str or None, default "embedding"
        Fixed-length float vectors (``ds2_hf.embed`` writes them). ``None`` with ``rating_columns``: fuse the
        raters alone, without embeddings (no long-tail score).
    rating_columns : sequence of str, optional
        Several raters' rating columns (nulls where a rater did not rate a row), fused into one curated score
        (:mod:`ds2_hf.curation.fused`); replaces ``rating_column``.
    columns : CurationColumns, optional
        Output column names (default: ``curated_rating``, ``curation_confidence``, ``misrated``,
        ``long_tail_score``, ``curation_posterior``).
    add_posterior : bool, default True
        Also write the posterior over the true score (joint method only).
    overwrite : bool, default False
        Replace existing columns with the output names instead of raising.
    group_column : str or None, default "auto"
        The prompt of each row, for pools with several responses per prompt: responses to the same prompt are
        never used as evidence for each other. ``"auto"`` reads the prompt from the rows' text (every message
        before the final response, :mod:`ds2_hf.duplicates`) and uses it when some prompt repeats; a column
        name uses that column; ``None`` ignores prompt groups.
    audit_column : str, optional
        Trusted ratings (people, a strong model) on some rows, null elsewhere, on the rating scale. With one
        rater the guard withholds corrections that disagree with them (:mod:`ds2_hf.curation.diagnostics`);
        with ``rating_columns`` they anchor the estimates.
    find_duplicates : bool, default True
        Find rows with the same response text (:func:`ds2_hf.duplicates.exact_duplicate_groups`); copies are
        not evidence for each other, and the ``duplicate_group`` column lets a selection take each group once.
    formatter : Formatter or str, optional
        How rows are rendered to a prompt and a response (default: the auto-detected format).

    Attributes
    ----------
    result_ : CurationResult
    transition_matrix_ : ndarray (K, K)
    true_prior_ : ndarray (K,)
    report_ : dict
    n_rows_ : int
    rater_transition_matrices_ : ndarray (R, K, K) or None

    Examples
    --------
    >>> import datasets
    >>> from ds2_hf.simulate import simulate
    >>> from ds2_hf import Curator
    >>> sim = simulate(2000, 32, seed=0)
    >>> ds = datasets.Dataset.from_dict({"embedding": sim.embeddings, "rating": sim.rated})
    >>> curator = Curator(progress=False).fit(ds)
    >>> curator.transition_matrix_.shape
    (6, 6)
    >>> sorted(curator.transform(ds).column_names)[:3]
    ['curated_rating', 'curation_confidence', 'curation_posterior']
    """

    def __init__(self, config: CurationConfig | None = None, *, rating_column: str = RATING,
                 embedding_column: str = EMBEDDING, columns: CurationColumns | None = None,
                 add_posterior: bool = True, overwrite: bool = False, rating_columns=None,
                 group_column: str | None = "auto", audit_column: str | None = None, find_duplicates: bool = True,
                 formatter=None, **options) -> None:
        self.config = CurationConfig.from_options(config, **options)
        self.rating_column = rating_column
        self.rating_columns = list(rating_columns) if rating_columns is not None else None
        self.embedding_column = embedding_column
        self.columns = columns or CurationColumns()
        self.add_posterior = add_posterior
        self.overwrite = overwrite
        self.group_column = group_column
        self.audit_column = audit_column
        self.find_duplicates = find_duplicates
        self.formatter = formatter
        self.result_: CurationResult | None = None

    # -- fitting -------------------------------------------------------------------------------------------
    def fit(self, data, ratings=None, *, embeddings=None) -> Curator:
        """Fit on a :class:`datasets.Dataset`, a column dict, or ``(embeddings, ratings)`` arrays.

        ``embeddings`` (an (N, d) array, e.g. a memory-mapped float16 ``.npy`` file) replaces the dataset's
        embedding column; its rows are the dataset's rows in order.
        """
        if ratings is None and self.rating_columns is not None:
            return self._fit_raters(data)
        structure: dict = {}
        if ratings is not None:
            emb, rat = data, ratings
        else:
            if _is_dataset(data):
                needed = [(self.rating_column, "rating_column", "rate the rows first (ds2_hf.Rater / `ds2 rate`)")]
                if embeddings is None:
                    needed.insert(0, (self.embedding_column, "embedding_column",
                                      "embed the rows first (ds2_hf.embed / `ds2 embed`)"))
                for name, option, fix in needed:
                    _column(dict.fromkeys(data.column_names), name, option, fix)
                check_no_overwrite(data.column_names, self._outputs(), option="columns", overwrite=self.overwrite)
                if embeddings is not None:
                    if len(embeddings) != len(data):
                        raise ValueError(f"embeddings have {len(embeddings)} rows but the dataset has {len(data)}; "
                                         "pass one embedding row per dataset row, in the same order")
                    emb = embeddings
                else:
                    emb = _embeddings(
                        data.with_format("numpy", columns=[self.embedding_column])[:][self.embedding_column])
                arrow = data.with_format("arrow", columns=[self.rating_column])[:][self.rating_column]
                rat = np.asarray(arrow.to_numpy(zero_copy_only=False), dtype=np.float64)
            else:
                emb = _embeddings(_column(data, self.embedding_column, "embedding_column",
                                          "embed the rows first (ds2_hf.embed / `ds2 embed`)"))
                rat = _column(data, self.rating_column, "rating_column",  # None = unrated (validate_ratings)
                              "rate the rows first (ds2_hf.Rater / `ds2 rate`)")
            structure = self._structure(data)
        sources = structure.pop("sources", {})
        self.result_ = curate_scores(emb, rat, config=self.config, **structure)
        self.result_.report["structure"].update(sources)
        return self

    def _structure(self, data) -> dict:
        """Prompt groups, exact duplicates and audit ratings of a dataset or column dict (see ``__init__``)."""
        from ..duplicates import exact_duplicate_groups, pool_text_keys

        names = list(data.column_names) if _is_dataset(data) else list(data.keys())
        out: dict = {"sources": {"group_source": None, "duplicate_source": None, "audit_source": None}}
        keys = None
        if self.find_duplicates or self.group_column == "auto":
            keys = pool_text_keys(data, self.formatter)
        if self.group_column == "auto":
            if keys is not None and (np.bincount(keys[0][keys[0] >= 0]) > 1).any():
                out["groups"], out["sources"]["group_source"] = keys[0], "prompt text (auto)"
        elif self.group_column is not None:
            out["groups"] = _values(data, self.group_column, "group_column")
            out["sources"]["group_source"] = self.group_column
        if self.find_duplicates and keys is not None:
            out["duplicates"] = exact_duplicate_groups(*keys)
            out["sources"]["duplicate_source"] = "response text"
        if self.audit_column is not None:
            out["audit"] = _values(data, self.audit_column, "audit_column")
            out["sources"]["audit_source"] = self.audit_column
        return out

    def _fit_raters(self, data) -> Curator:
        """Several rating columns (and optionally an audit column) of a Dataset or a column dict."""
        names = dict.fromkeys(data.column_names if _is_dataset(data) else data)
        for name in self.rating_columns:
            _column(names, name, "rating_columns", "rate the rows with every rater first (ds2_hf.Rater / `ds2 rate`)")
        if self.audit_column is not None:
            _column(names, self.audit_column, "audit_column", "add the trusted scores as a column (null elsewhere)")
        if self.embedding_column is not None:
            _column(names, self.embedding_column, "embedding_column",
                    "embed the rows first (ds2_hf.embed / `ds2 embed`), or pass embedding_column=None")
        if _is_dataset(data):
            check_no_overwrite(data.column_names, self._outputs(), option="columns", overwrite=self.overwrite)
        cols = [_float_column(data, c) for c in [*self.rating_columns, *([self.audit_column] if self.audit_column
                                                                          else [])]]
        emb = None
        if self.embedding_column is not None:
            emb = _embeddings(data.with_format("numpy", columns=[self.embedding_column])[:][self.embedding_column]
                              if _is_dataset(data) else data[self.embedding_column])
        ratings = np.stack(cols[: len(self.rating_columns)], axis=1)
        audit = cols[-1] if self.audit_column is not None else None
        structure = {key: value for key, value in self._structure(data).items() if key in ("groups", "duplicates",
                                                                                          "sources")}
        sources = structure.pop("sources")
        self.result_ = curate_scores(emb, ratings, audit=audit, rater_names=self.rating_columns, config=self.config,
                                     **structure)
        self.result_.report["structure"].update(sources)
        return self

    @property
    def rater_transition_matrices_(self) -> np.ndarray | None:
        return self._fitted().rater_transition_matrices

    @property
    def transition_matrix_(self) -> np.ndarray:
        return self._fitted().transition_matrix

    @property
    def true_prior_(self) -> np.ndarray:
        return self._fitted().true_prior

    @property
    def report_(self) -> dict:
        return self._fitted().report

    @property
    def n_rows_(self) -> int:
        return len(self._fitted().curated)

    def _fitted(self) -> CurationResult:
        if self.result_ is None:
            raise RuntimeError("this Curator is not fitted yet; call .fit(dataset) first")
        return self.result_

    def _outputs(self) -> tuple[str, ...]:
        names = self.columns.names()
        return names if self.add_posterior and self.config.method == "joint" else names[:-1]

    # -- transforming --------------------------------------------------------------------------------------
    def __call__(self, batch: Mapping[str, Any], indices=None) -> dict[str, Any]:
        """``dataset.map(curator, batched=True, with_indices=True)``: the fitted columns of those rows."""
        res = self._fitted()
        if indices is None:
            raise ValueError("map the Curator with `with_indices=True` so each batch knows its rows")
        idx = np.asarray(indices)
        if idx.size and idx.max() >= len(res.curated):
            raise ValueError(
                f"row index {int(idx.max())} is outside the {len(res.curated)} rows the Curator was fitted on; "
                "transform the dataset it was fitted on"
            )
        check_no_overwrite(batch.keys(), self._outputs(), option="columns", overwrite=self.overwrite)
        return result_columns(res, self.columns, idx, with_posterior=self.add_posterior)

    def transform(self, dataset, **map_kwargs):
        """Add the curation columns to ``dataset`` (the one it was fitted on), with typed features."""
        res = self._fitted()
        if len(dataset) != len(res.curated):
            raise ValueError(
                f"the dataset has {len(dataset)} rows but the Curator was fitted on {len(res.curated)}; "
                "fit and transform the same dataset"
            )
        check_no_overwrite(dataset.column_names, self._outputs(), option="columns", overwrite=self.overwrite)
        # Replacing an earlier curation: drop its columns that this method does not write (a stale posterior).
        stale = [c for c in self.columns.names() if c in dataset.column_names and c not in self._outputs()]
        if stale and self.overwrite:
            dataset = dataset.remove_columns(stale)
        features = dataset.features.copy()
        with_post = self.add_posterior and res.posterior is not None
        features.update(_features(self.columns, self.config.num_classes, with_post))
        map_kwargs.setdefault("desc", "Adding curation columns")
        return dataset.map(self, batched=True, with_indices=True, features=features, **map_kwargs)

    def fit_transform(self, dataset, **map_kwargs):
        return self.fit(dataset).transform(dataset, **map_kwargs)

    def __getstate__(self) -> dict:
        # The graph is large and derivable; keep only what transform needs, so hashing stays cheap.
        state = dict(self.__dict__)
        if state.get("result_") is not None:
            from dataclasses import replace

            state["result_"] = replace(state["result_"], graph=None)
        return state

    def __repr__(self) -> str:
        fitted = "fitted" if self.result_ is not None else "not fitted"
        return f"Curator(method={self.config.method!r}, num_classes={self.config.num_classes}, {fitted})"


def _values(data, name: str, option: str) -> list:
    names = list(data.column_names) if _is_dataset(data) else list(data.keys())
    if name not in names:
        raise KeyError(f"column {name!r} not found (columns: {sorted(names)}); pass an existing column as `{option}`")
    return list(data[name])


def _float_column(data, name: str) -> np.ndarray:
    """A rating column as float64 with NaN for nulls."""
    if _is_dataset(data):
        arrow = data.with_format("arrow", columns=[name])[:][name]
        return np.asarray(arrow.to_numpy(zero_copy_only=False), dtype=np.float64)
    return np.asarray([np.nan if v is None else v for v in data[name]], dtype=np.float64)


def _is_dataset(obj) -> bool:
    return hasattr(obj, "column_names") and hasattr(obj, "map")


def curate(batch, indices=None, *, config: CurationConfig | None = None, rating_column: str = RATING,
           embedding_column: str = EMBEDDING, columns: CurationColumns | None = None, add_posterior: bool = True,
           overwrite: bool = False, group_column: str | None = "auto", audit_column: str | None = None,
           find_duplicates: bool = True, formatter=None, **options):
    """Curate ratings: use it as ``dataset.map(ds2_hf.curate, batched=True, batch_size=None)``.

    Curation is a global step (the k-NN graph and the transition matrix use every row), so the whole dataset
    must arrive as one batch: pass ``batch_size=None``. Options go through ``fn_kwargs``::

        ds = ds.map(ds2_hf.curate, batched=True, batch_size=None, fn_kwargs={"method": "faithful"})

    Called directly on a :class:`datasets.Dataset`, it returns the curated dataset (``ds2_hf.curate(ds)``).
    Use :class:`Curator` to keep the transition matrix and report.

    Parameters
    ----------
    batch : dict of columns, or datasets.Dataset
    indices : ignored (accepted so ``with_indices=True`` also works)
    config, rating_column, embedding_column, columns, add_posterior, overwrite, group_column, audit_column,
    find_duplicates, formatter, **options
        As for :class:`Curator`.

    Returns
    -------
    dict of new columns (or a Dataset when given one): ``curated_rating`` (int8, null for unrated rows),
    ``curation_confidence`` (float32), ``misrated`` (bool), ``long_tail_score`` (float32), ``duplicate_group``
    (int64, -1 = unique) and ``curation_posterior`` (K float32, joint method).
    """
    curator = Curator(config, rating_column=rating_column, embedding_column=embedding_column, columns=columns,
                      add_posterior=add_posterior, overwrite=overwrite, group_column=group_column,
                      audit_column=audit_column, find_duplicates=find_duplicates, formatter=formatter, **options)
    if _is_dataset(batch):
        return curator.fit_transform(batch)
    check_no_overwrite(batch.keys(), curator._outputs(), option="columns", overwrite=overwrite)
    curator.fit(batch)
    rep = curator.report_
    logger.info("ds2 curation: %d of %d rated rows changed; transition matrix diagonal %s", rep["n_changed"],
                rep["n_rated"], np.round(np.diag(curator.transition_matrix_), 3).tolist())
    return result_columns(curator.result_, curator.columns, with_posterior=add_posterior)
