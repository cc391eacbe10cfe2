"""Prompt groups and duplicate responses: the structure of a pool that curation and selection must respect.

* **Prompt groups.** Rows whose prompt (every message before the final response) is the same text answer the
  same prompt: a multi-response pool (preference data, best-of-n sampling, several models per instruction).
  Curation never uses them as evidence for each other (:mod:`ds2_hf.curation.structure`).
* **Exact duplicates.** Rows whose response is the same text after normalisation (Unicode NFKC, case folded,
  white space collapsed). A response repeated across *different* prompts counts only when it is at least
  ``min_chars`` long, so short answers that are legitimately shared ("yes", "positive") are not duplicates of each
  other, while a long canned answer is (a judge-gaming answer, a refusal template). Rows that repeat both prompt
  and response are duplicates whatever their length.
* **Near duplicates.** Rows whose embeddings have cosine similarity of at least ``threshold`` (default 0.995) on
  the k-NN graph curation already builds, except between rows of one prompt group, whose similarity is mostly
  the shared prompt's (two answers "7 eggs" and "8 eggs" to one question are not duplicates).

Each duplicate group enters a selected subset at most once (:func:`first_of_groups`, used by
:func:`ds2_hf.selection.select`).

Examples
--------
>>> import numpy as np
>>> from ds2_hf.selection.duplicates import exact_duplicate_groups, first_of_groups, text_keys
>>> prompts, responses, chars = text_keys(["q1", "q2", "q3", "q1"], ["A long canned answer " * 3, "yes",
...                                       "a long canned answer " * 3, "yes"])
>>> exact_duplicate_groups(prompts, responses, chars).tolist()
[0, -1, 0, -1]
>>> first_of_groups(np.array([2, 1, 0, 3]), np.array([0, -1, 0, -1])).tolist()  # row 0 copies row 2
[2, 1, 3]
"""

from __future__ import annotations

import hashlib
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

#: A response repeated across different prompts is a duplicate only from this many characters (normalised).
MIN_CHARS = 32
#: Cosine similarity from which two rows (of different prompt groups) are near duplicates.
NEAR_DUPLICATE_THRESHOLD = 0.995


def normalize(text: str) -> str:
    """The text duplicates are compared on: NFKC, case folded, runs of white space as one space, stripped."""
    return " ".join(unicodedata.normalize("NFKC", text).casefold().split())


def _hash(text: str) -> int:
    return int.from_bytes(hashlib.blake2b(text.encode("utf-8"), digest_size=8).digest(), "little", signed=True)


def _codes(values: Sequence[int | None]) -> np.ndarray:
    """Dense codes ``0..G-1`` for hashable values; ``None`` -> ``-1``."""
    table: dict = {}
    return np.array([-1 if v is None else table.setdefault(v, len(table)) for v in values], dtype=np.int64)


def text_keys(prompts: Sequence[str | None], responses: Sequence[str | None]) -> tuple[np.ndarray, ...]:
    """Prompt codes, response codes and normalised response lengths of rows given as text.

    ``None`` (a row that could not be rendered) gets code ``-1`` and length 0. Empty prompts get ``-1``.

    Returns
    -------
    prompt_codes, response_codes : ndarray (N,) int64
    response_chars : ndarray (N,) int64
    """
    p_norm = [None if p is None else normalize(p) for p in prompts]
    r_norm = [None if r is None else normalize(r) for r in responses]
    p_codes = _codes([_hash(p) if p else None for p in p_norm])
    r_codes = _codes([None if r is None else _hash(r) for r in r_norm])
    chars = np.array([0 if r is None else len(r) for r in r_norm], dtype=np.int64)
    return p_codes, r_codes, chars


def exact_duplicate_groups(prompt_codes: np.ndarray, response_codes: np.ndarray, response_chars: np.ndarray, *,
                           min_chars: int = MIN_CHARS) -> np.ndarray:
    """Duplicate-group id of every row (``-1`` = unique): the same response, long enough or to the same prompt.

    Parameters
    ----------
    prompt_codes, response_codes : ndarray (N,) int64
        From :func:`text_keys` (``-1`` = unknown).
    response_chars : ndarray (N,) int64
        Normalised response lengths.
    min_chars : int, default 32
        Shorter responses are duplicates only of rows with the same prompt too.
    """
    n = len(response_codes)
    parent = np.arange(n)
    known = response_codes >= 0
    long_ = known & (response_chars >= min_chars)
    # long responses: one group per response text; short ones: per (prompt, response) pair
    key = np.where(long_, response_codes, -1)
    short = known & ~long_ & (prompt_codes >= 0)
    pair = np.where(short, prompt_codes * (int(response_codes.max()) + 1 if n else 1) + response_codes, -1)
    for k, offset in ((key, 0), (pair, 1)):
        rows = np.flatnonzero(k >= 0)
        if rows.size:
            _, first = np.unique(k[rows], return_index=True)
            _, inverse = np.unique(k[rows], return_inverse=True)
            parent[rows] = rows[first][inverse.reshape(-1)]
    return _compact(parent)


def first_of_groups(order: np.ndarray, groups: np.ndarray | None) -> np.ndarray:
    """``order`` without the rows whose duplicate group (``-1`` = none) already appeared earlier in it.

    Examples
    --------
    >>> import numpy as np
    >>> first_of_groups(np.array([3, 0, 2, 1]), np.array([5, -1, 5, -1])).tolist()  # rows 0 and 2 are copies
    [3, 0, 1]
    """
    return order if groups is None else order[first_mask(order, groups)]


def first_mask(order: np.ndarray, groups: np.ndarray) -> np.ndarray:
    """Over ``order``: True for ungrouped rows and for the first row of each duplicate group."""
    g = groups[order]
    grouped = np.flatnonzero(g >= 0)
    first = np.zeros(len(order), dtype=bool)
    first[grouped[np.unique(g[grouped], return_index=True)[1]]] = True
    return (g < 0) | first


def _compact(parent: np.ndarray) -> np.ndarray:
    """Group ids ``0..G-1`` for roots shared by at least two rows, ``-1`` for singletons."""
    counts = np.bincount(parent, minlength=len(parent))
    multi = counts[parent] > 1
    out = np.full(len(parent), -1, dtype=np.int64)
    if multi.any():
        out[multi] = np.unique(parent[multi], return_inverse=True)[1].reshape(-1)
    return out


def near_duplicate_groups(indices: np.ndarray, similarities: np.ndarray, *, threshold: float = NEAR_DUPLICATE_THRESHOLD,
                          exact: np.ndarray | None = None, groups: np.ndarray | None = None) -> np.ndarray:
    """Connected components of exact duplicates and k-NN edges with cosine similarity ``>= threshold``.

    Parameters
    ----------
    indices, similarities : ndarray (N, k)
        A k-NN graph (``-1`` padding allowed), e.g. :class:`ds2_hf.knn.KnnGraph`'s arrays.
    threshold : float, default 0.995
        Cosine similarity from which an edge joins two rows.
    exact : ndarray (N,) int64, optional
        Exact duplicate groups (:func:`exact_duplicate_groups`) to merge in.
    groups : ndarray (N,) int64, optional
        Prompt groups: edges inside one group are ignored (their similarity is the shared prompt's).

    Returns
    -------
    ndarray (N,) int64
        Group ids ``0..G-1``; ``-1`` for rows with no duplicate.
    """
    from scipy.sparse import csr_matrix
    from scipy.sparse.csgraph import connected_components

    n = len(indices)
    edge = (similarities >= threshold) & (indices >= 0)
    if groups is not None:
        edge &= ~((groups[:, None] >= 0) & (groups[np.maximum(indices, 0)] == groups[:, None]))
    rows, cols = np.nonzero(edge)
    src, dst = [rows], [indices[rows, cols]]
    if exact is not None:
        dup = np.flatnonzero(exact >= 0)
        _, first = np.unique(exact[dup], return_index=True)
        root = dup[first][np.unique(exact[dup], return_inverse=True)[1].reshape(-1)]
        src.append(dup)
        dst.append(root)
    src, dst = np.concatenate(src), np.concatenate(dst)
    graph = csr_matrix((np.ones(len(src), np.int8), (src, dst)), shape=(n, n))
    _, labels = connected_components(graph, directed=False)
    return _compact(labels.astype(np.int64))


@dataclass
class DuplicateSummary:
    """Counts of a duplicate grouping, for reports and cards.

    Attributes
    ----------
    n_groups : int
        Groups with at least two rows.
    n_rows : int
        Rows in those groups.
    n_redundant : int
        Rows beyond the first of each group (what deduplication removes).
    largest : list of [int, int]
        ``[size, example row]`` of the largest groups, largest first.
    """

    n_groups: int
    n_rows: int
    n_redundant: int
    largest: list = field(default_factory=list)

    @classmethod
    def of(cls, codes: np.ndarray, *, top: int = 5) -> DuplicateSummary:
        grouped = np.flatnonzero(codes >= 0)
        if grouped.size == 0:
            return cls(0, 0, 0, [])
        sizes = np.bincount(codes[grouped])
        first = np.full(len(sizes), -1)
        first[codes[grouped][::-1]] = grouped[::-1]
        n_groups = int((sizes > 0).sum())
        order = np.argsort(-sizes, kind="stable")[:min(top, n_groups)]
        return cls(n_groups, int(grouped.size), int(grouped.size - n_groups),
                   [[int(sizes[g]), int(first[g])] for g in order])

    def to_dict(self) -> dict:
        return {"n_groups": self.n_groups, "n_rows": self.n_rows, "n_redundant": self.n_redundant,
                "largest": self.largest}


def prompt_and_response(messages: Sequence[dict]) -> tuple[str, str]:
    """Split normalised messages into the prompt (every message before the last assistant turn) and the response.

    A conversation without an assistant turn is all response (a plain text sample), with an empty prompt.

    Examples
    --------
    >>> prompt_and_response([{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello"}])
    ('user: Hi', 'Hello')
    """
    last = max((i for i, m in enumerate(messages) if m["role"] == "assistant"), default=None)
    if last is None:
        return "", "\n".join(m["content"] for m in messages)
    prompt = "\n".join(f"{m['role']}: {m['content']}" for m in messages[:last])
    return prompt, messages[last]["content"]


def pool_text_keys(data, formatter=None, *, batch_size: int = 1000) -> tuple[np.ndarray, ...] | None:
    """:func:`text_keys` of a :class:`datasets.Dataset` (or a column dict) rendered by ``formatter``.

    Returns ``None`` when the columns name no known format (and no template is given). Rows that cannot be
    rendered (an empty conversation) get code ``-1``.
    """
    from tqdm.auto import tqdm

    from ..formats import FormatError, as_formatter

    fmt = as_formatter(formatter)
    names = list(data.column_names) if hasattr(data, "column_names") else list(data.keys())
    try:
        cols = fmt.columns(names)
    except FormatError:
        return None
    if hasattr(data, "select_columns"):
        data = data.select_columns(cols).with_format(None)
        n = len(data)
    else:
        data = {c: data[c] for c in cols}
        n = len(data[cols[0]]) if cols else 0
    prompts: list[str | None] = []
    responses: list[str | None] = []
    for start in tqdm(range(0, n, batch_size), desc="prompt groups and duplicates", unit="batch",
                      disable=n < 50_000, leave=False):
        batch = data[start: start + batch_size] if hasattr(data, "select_columns") else {
            c: v[start: start + batch_size] for c, v in data.items()}
        for i, row in enumerate(fmt.batch_rows(batch), start=start):
            try:
                p, r = prompt_and_response(fmt.messages(row, where=f"row {i}"))
            except FormatError:
                p = r = None
            prompts.append(p)
            responses.append(r)
    return text_keys(prompts, responses)
