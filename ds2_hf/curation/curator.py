"""The scikit-learn face of curation: the :class:`Curator` estimator (fit once, inspect, transform)."""

from __future__ import annotations

import inspect
from typing import Any

import numpy as np

from ..columns import EMBEDDING, RATING, CurationColumns, check_no_overwrite
from ..validation import (EmptyInputError, InputError, InputTypeError, UnknownOptionError, as_matrix, check_dataset,
                          merge_options, rating_codes, validate_rating_matrix)
from .config import CurationConfig
from .core import curate_scores
from .table import ColumnSource, FittedRows, content_fingerprint, is_dataset, output_features

_PARAMS = ("config", "rating_column", "embedding_column", "columns", "add_posterior", "overwrite", "rating_columns",
           "group_column", "audit_column", "find_duplicates", "formatter")
_LEARNED = ("config_", "result_", "transition_matrix_", "true_prior_", "report_", "n_rows_",
            "rater_transition_matrices_", "fingerprint_")


class NotFittedError(ValueError, AttributeError):
    """A fitted attribute or :meth:`Curator.transform` was used before :meth:`Curator.fit` (as scikit-learn's)."""


class DatasetMismatchError(InputError):
    """:meth:`Curator.transform` was given a dataset other than the one the curator was fitted on."""


class Curator:
    """Fit DS2 curation on a dataset once, inspect it, and add its columns to that dataset.

    Follows the scikit-learn estimator convention: ``__init__`` stores the parameters as given, :meth:`fit`
    validates them and sets the learned attributes (ending with ``_``), :meth:`get_params` / :meth:`set_params`
    read and change the parameters (so ``sklearn.base.clone`` works). Curation is transductive: it corrects the
    ratings of the rows it was fitted on, so :meth:`fit_transform` is its face, and :meth:`transform` refuses any
    other dataset by a content fingerprint of what curation read (ratings and embeddings), not by its length.

    Parameters
    ----------
    config : CurationConfig, optional
        Base options; keyword ``options`` override its fields (see :class:`CurationConfig`).
    rating_column : str, default "rating"
        Integer ratings in ``0..K-1``; nulls are unrated rows (excluded, left uncurated).
    embedding_column : str or None, default "embedding"
        Fixed-length float vectors (``ds2_hf.embed`` writes them). ``None`` with ``rating_columns``: fuse the
        raters alone, without embeddings (no long-tail score).
    columns : CurationColumns, optional
        Output column names (default: ``curated_rating``, ``curation_confidence``, ``misrated``,
        ``long_tail_score``, ``duplicate_group``, ``curation_posterior``).
    add_posterior : bool, default True
        Also write the posterior over the true score (joint method only).
    overwrite : bool, default False
        Replace existing columns with the output names instead of raising.
    rating_columns : sequence of str, optional
        Several raters' rating columns (nulls where a rater did not rate a row), fused into one curated score
        (:mod:`ds2_hf.curation.fused`); replaces ``rating_column``.
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
    **options
        Fields of :class:`CurationConfig` (``method="faithful"``, ``num_classes=6``, ``progress=False``, ...).

    Attributes
    ----------
    config_ : CurationConfig
        The options fit used: ``config`` with ``options`` applied.
    result_ : CurationResult
        Everything curation computed, per row and for the pool.
    transition_matrix_ : ndarray of float64, shape (K, K)
        Estimated ``P(rated = j | true = i)``; rows sum to 1.
    true_prior_ : ndarray of float64, shape (K,)
        Estimated distribution of the true score.
    report_ : dict
        The curation report (counts, transition matrix, guard, k-NN, structure, options).
    n_rows_ : int
        Rows of the fitted dataset.
    rater_transition_matrices_ : ndarray of float64, shape (R, K, K), or None
        One transition matrix per rater (``rating_columns`` only).
    fingerprint_ : dict of str to str
        BLAKE2b digests of the ratings (``"ratings"``, int codes, -1 = unrated), the embeddings (``"embeddings"``,
        when read from the dataset) and the audit column (``"audit"``) that :meth:`transform` checks.

    Examples
    --------
    >>> import datasets
    >>> from ds2_hf.simulate import simulate
    >>> from ds2_hf import Curator
    >>> sim = simulate(2000, 32, seed=0)
    >>> ds = datasets.Dataset.from_dict({"embedding": sim.embeddings, "rating": sim.rated})
    >>> curator = Curator(progress=False)
    >>> pool = curator.fit_transform(ds)
    >>> curator.transition_matrix_.shape, sorted(pool.column_names)[:3]
    ((6, 6), ['curated_rating', 'curation_confidence', 'curation_posterior'])
    >>> other = ds.map(lambda row: {"rating": (row["rating"] + 1) % 6})
    >>> curator.transform(other)
    Traceback (most recent call last):
    ...
    ds2_hf.curation.curator.DatasetMismatchError: the dataset's ratings differ from those the Curator was fitted \
on...
    """

    def __init__(self, config: CurationConfig | None = None, *, rating_column: str = RATING,
                 embedding_column: str | None = EMBEDDING, columns: CurationColumns | None = None,
                 add_posterior: bool = True, overwrite: bool = False, rating_columns=None,
                 group_column: str | None = "auto", audit_column: str | None = None, find_duplicates: bool = True,
                 formatter=None, **options) -> None:
        self.config = config
        self.rating_column = rating_column
        self.embedding_column = embedding_column
        self.columns = columns
        self.add_posterior = add_posterior
        self.overwrite = overwrite
        self.rating_columns = rating_columns
        self.group_column = group_column
        self.audit_column = audit_column
        self.find_duplicates = find_duplicates
        self.formatter = formatter
        self.options = options

    # -- parameters ----------------------------------------------------------------------------------------
    def get_params(self, deep: bool = True) -> dict[str, Any]:
        """The parameters as given to ``__init__`` (the ``options`` flattened in), for ``clone`` and grids."""
        return {**{name: getattr(self, name) for name in _PARAMS}, **self.options}

    def set_params(self, **params) -> Curator:
        """Change parameters (``__init__`` names or :class:`CurationConfig` fields); they apply at the next fit."""
        fields = set(CurationConfig.__dataclass_fields__)
        unknown = sorted(set(params) - set(_PARAMS) - fields)
        if unknown:
            raise UnknownOptionError(f"unknown Curator parameter(s) {unknown}; valid: {sorted({*_PARAMS, *fields})}")
        for name, value in params.items():
            if name in _PARAMS:
                setattr(self, name, value)
            else:
                self.options[name] = value
        return self

    def resolved_config(self) -> CurationConfig:
        """The :class:`CurationConfig` :meth:`fit` uses: ``config`` with the keyword options applied.

        Raises
        ------
        UnknownOptionError, InputTypeError
            An option :class:`CurationConfig` does not have; a ``config`` that is not a CurationConfig.
        """
        return merge_options(self.config, self.options, cls=CurationConfig, what="curation")

    def _check_params(self) -> CurationConfig:
        """Validate every parameter (called by :meth:`fit`, before any work); return the resolved config."""
        config = self.resolved_config()
        names = {"rating_column": self.rating_column, "group_column": self.group_column,
                 "audit_column": self.audit_column, "embedding_column": self.embedding_column}
        for name, value in names.items():
            if not isinstance(value, str) and (value is not None or name == "rating_column"):
                raise InputTypeError(f"{name} must be a column name (str), got {value!r}")
        raters = self.rating_columns
        if raters is not None and (isinstance(raters, str) or not all(isinstance(c, str) for c in raters)):
            raise InputTypeError(f"rating_columns must be a list of column names, got {raters!r}; for one rater "
                                 "pass rating_column=...")
        if self.embedding_column is None and raters is None:
            raise InputError("embedding_column=None fuses several raters alone: pass rating_columns=[...] too, or "
                             "name the embedding column")
        if self.columns is not None and not isinstance(self.columns, CurationColumns):
            raise InputTypeError(f"columns must be a ds2_hf.columns.CurationColumns, got {type(self.columns).__name__}")
        return config

    def _outputs(self, config: CurationConfig) -> tuple[str, ...]:
        names = (self.columns or CurationColumns()).names()
        return names if self.add_posterior and config.method == "joint" else names[:-1]

    # -- fitting -------------------------------------------------------------------------------------------
    def fit(self, data, ratings=None, *, embeddings=None) -> Curator:
        """Fit on a :class:`datasets.Dataset`, a column dict, or ``(embeddings, ratings)`` arrays.

        Parameters
        ----------
        data : datasets.Dataset, mapping of str to column, or array-like (N, d)
            The pool; with ``ratings`` given, its embeddings.
        ratings : array-like, shape (N,) or (N, R), optional
            The ratings, when ``data`` is an embedding matrix (no text: no prompt groups, no duplicates).
        embeddings : array-like, shape (N, d), optional
            Replaces the dataset's embedding column (e.g. a memory-mapped float16 ``.npy`` file); its rows are the
            dataset's rows in order. The fingerprint then covers the dataset's ratings only.

        Returns
        -------
        Curator
            ``self``, fitted.
        """
        config = self._check_params()
        if ratings is not None:  # arrays: no text, so no prompt groups and no duplicates
            emb = None if data is None else as_matrix(data, dtype=None)
            codes, structure = _codes(ratings, len(ratings), config, "ratings"), {}
        else:
            if is_dataset(data):
                check_dataset(data, what="curate")  # a DatasetDict: "pick a split"
            source = ColumnSource(data)
            if source.num_rows == 0:
                raise EmptyInputError("the pool has no rows, so there is nothing to curate; check the input")
            self._check_columns(source, config, external_embeddings=embeddings is not None)
            if embeddings is not None and len(embeddings) != source.num_rows:
                raise InputError(f"embeddings have {len(embeddings)} rows but the dataset has {source.num_rows}; "
                                 "pass one embedding row per dataset row, in the same order")
            codes = self._read_part(source, "ratings", config)
            emb = embeddings
            if emb is None and self.embedding_column is not None:
                emb = source.embeddings(self.embedding_column)
            structure = self._structure(source, config)
        sources = structure.pop("sources", {})
        raters = {"rater_names": list(self.rating_columns)} if self.rating_columns is not None else {}
        result = curate_scores(emb, codes, config=config, **structure, **raters)
        result.report["structure"].update(sources)
        fingerprint = {"ratings": content_fingerprint(codes)}
        if emb is not None and embeddings is None:  # embeddings passed beside a dataset are not part of it
            fingerprint["embeddings"] = content_fingerprint(emb)
        if structure.get("audit") is not None:
            fingerprint["audit"] = content_fingerprint(structure["audit"])
        self._set_learned(config, result, fingerprint)
        return self

    def _set_learned(self, config: CurationConfig, result, fingerprint: dict[str, str]) -> None:
        self.config_, self.result_, self.fingerprint_ = config, result, fingerprint
        self.transition_matrix_, self.true_prior_ = result.transition_matrix, result.true_prior
        self.report_, self.n_rows_ = result.report, len(result.curated)
        self.rater_transition_matrices_ = result.rater_transition_matrices

    def _check_columns(self, source: ColumnSource, config: CurationConfig, *, external_embeddings: bool) -> None:
        """The input columns exist and the output columns would not replace user columns (before any work)."""
        if self.rating_columns is not None:
            for name in self.rating_columns:
                source.require(name, "rating_columns", "rate the rows with every rater first (ds2_hf.Rater)")
        else:
            source.require(self.rating_column, "rating_column", "rate the rows first (ds2_hf.Rater / `ds2 rate`)")
        if self.embedding_column is not None and not external_embeddings:
            source.require(self.embedding_column, "embedding_column", "embed the rows first (ds2_hf.embed / "
                           "`ds2 embed`)" + (", or pass embedding_column=None" if self.rating_columns else ""))
        if self.audit_column is not None:
            source.require(self.audit_column, "audit_column", "add the trusted scores as a column (null elsewhere)")
        if self.group_column not in (None, "auto"):
            source.require(self.group_column, "group_column", "add the prompt of each row as a column")
        check_no_overwrite(source.names, self._outputs(config), option="columns", overwrite=self.overwrite)

    def _structure(self, source: ColumnSource, config: CurationConfig) -> dict:
        """Prompt groups, exact duplicates and audit codes of the pool (see ``__init__``)."""
        from ..duplicates import exact_duplicate_groups, pool_text_keys

        out: dict = {"sources": {"group_source": None, "duplicate_source": None, "audit_source": None}}
        keys = None
        if self.find_duplicates or self.group_column == "auto":
            keys = pool_text_keys(source.text_view(), self.formatter)
        if self.group_column == "auto":
            if keys is not None and (np.bincount(keys[0][keys[0] >= 0]) > 1).any():
                out["groups"], out["sources"]["group_source"] = keys[0], "prompt text (auto)"
        elif self.group_column is not None:
            out["groups"], out["sources"]["group_source"] = source.values(self.group_column), self.group_column
        if self.find_duplicates and keys is not None:
            out["duplicates"] = exact_duplicate_groups(*keys)
            out["sources"]["duplicate_source"] = "response text"
        if self.audit_column is not None:
            out["audit"] = self._read_part(source, "audit", config)
            out["sources"]["audit_source"] = self.audit_column
        return out

    # -- the learned state ---------------------------------------------------------------------------------
    def __getattr__(self, name: str):
        if name in _LEARNED:
            raise NotFittedError(f"this Curator is not fitted yet, so it has no {name}; call .fit(dataset) or "
                                 ".fit_transform(dataset) first")
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")

    def __getstate__(self) -> dict:
        # The graph is large and derivable; keep only what transform needs, so pickling and hashing stay cheap.
        state = dict(self.__dict__)
        if state.get("result_") is not None:
            from dataclasses import replace

            state["result_"] = replace(state["result_"], graph=None)
        return state

    def __repr__(self) -> str:
        params = ", ".join(f"{k}={v!r}" for k, v in self.get_params().items()
                           if k in self.options or v != _DEFAULTS.get(k))
        return f"Curator({params})"

    # -- transforming --------------------------------------------------------------------------------------
    def transform(self, dataset, **map_kwargs):
        """Add the fitted curation columns to ``dataset``, which must be the one the curator was fitted on.

        Parameters
        ----------
        dataset : datasets.Dataset
            The fitted dataset: the same ratings and embeddings in the same order (other columns may differ).
        **map_kwargs
            Passed to :meth:`datasets.Dataset.map` (``cache_file_name``, ``load_from_cache_file``, ...).

        Returns
        -------
        datasets.Dataset
            ``dataset`` with the curation columns (typed: int8, float32, bool, float32, int64, K x float32).

        Raises
        ------
        NotFittedError
            Called before :meth:`fit`.
        DatasetMismatchError
            Another number of rows, or ratings / embeddings / audit ratings whose content fingerprint differs.
        """
        if "result_" not in self.__dict__:
            raise NotFittedError("this Curator is not fitted yet; call .fit_transform(dataset), or .fit(dataset) "
                                 "then .transform(dataset)")
        self._check_same_data(ColumnSource(dataset))
        return self._add_columns(dataset, map_kwargs)

    def fit_transform(self, dataset, *, embeddings=None, **map_kwargs):
        """:meth:`fit` on ``dataset`` (and ``embeddings``), then add the curation columns to it (the same dataset:
        no fingerprint check needed)."""
        return self.fit(dataset, embeddings=embeddings)._add_columns(dataset, map_kwargs)

    def _add_columns(self, dataset, map_kwargs: dict):
        outputs = self._outputs(self.config_)
        check_no_overwrite(dataset.column_names, outputs, option="columns", overwrite=self.overwrite)
        columns = self.columns or CurationColumns()
        stale = [c for c in columns.names() if c in dataset.column_names and c not in outputs]
        if stale and self.overwrite:  # replacing an earlier curation: drop what this method does not write
            dataset = dataset.remove_columns(stale)
        with_posterior = self.add_posterior and self.result_.posterior is not None
        features = dataset.features.copy()
        features.update(output_features(columns, self.config_.num_classes, with_posterior))
        map_kwargs.setdefault("desc", "Adding curation columns")
        rows = FittedRows(self.result_, columns, with_posterior=with_posterior)
        return dataset.map(rows, batched=True, with_indices=True, features=features, **map_kwargs)

    def _check_same_data(self, source: ColumnSource) -> None:
        if source.num_rows != self.n_rows_:
            raise DatasetMismatchError(f"the dataset has {source.num_rows} rows but the Curator was fitted on "
                                       f"{self.n_rows_}; transform the dataset it was fitted on, or "
                                       "curator.fit_transform(dataset) to curate this one")
        for part, expected in self.fingerprint_.items():
            if content_fingerprint(self._read_part(source, part)) != expected:
                raise DatasetMismatchError(
                    f"the dataset's {part} differ from those the Curator was fitted on (content fingerprint); "
                    "transform the dataset it was fitted on, in the same row order, or curator.fit_transform(dataset)"
                    " to curate this one")

    def _read_part(self, source: ColumnSource, part: str, config: CurationConfig | None = None):
        """The fingerprinted ``part`` ("ratings", "embeddings", "audit") of ``source``, read as :meth:`fit` reads it:
        int64 rating codes of shape (N,) or (N, R), or the embedding blocks."""
        if part == "embeddings":
            source.require(self.embedding_column, "embedding_column", "transform the dataset the Curator was fit on")
            return source.embedding_chunks(self.embedding_column)
        config = config or self.config_
        names = [self.audit_column] if part == "audit" else (self.rating_columns or [self.rating_column])
        for name in names:
            source.require(name, "audit_column" if part == "audit" else "rating_column",
                           "transform the dataset the Curator was fitted on")
        codes = [_codes(source.ratings(name), source.num_rows, config, f"column {name!r}") for name in names]
        return np.stack(codes, axis=1) if part == "ratings" and self.rating_columns is not None else codes[0]


_DEFAULTS = {name: p.default for name, p in inspect.signature(Curator.__init__).parameters.items()}


def _codes(values, n: int, config: CurationConfig, name: str) -> np.ndarray:
    """Ratings as int64 codes (-1 = unrated), validated: shape (N,), or (N, R) for several raters."""
    if np.ndim(values) == 2:
        return validate_rating_matrix(values, config.num_classes, allow_empty_classes=True)
    return rating_codes(values, n, config.num_classes, name=name)

