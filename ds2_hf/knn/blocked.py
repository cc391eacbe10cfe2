"""Out-of-core rows: embeddings that stay on disk (a memory-mapped ``.npy``, typically float16) and are read in
blocks as unit float32 rows, so a pool whose float32 embeddings do not fit in memory still gets its graph.

10M x 256 embeddings take 10.2 GB as float32 and 5.1 GB as float16 on disk; memory-mapped, only the blocks in
use are resident (the operating system's page cache holds the rest and may drop it). Validation reads the file
once in blocks and keeps one float32 inverse norm per row; every later read (``rows[a:b]``, ``rows[ids]``)
returns unit float32 rows. The search code of this package takes such an object wherever it takes an array.

Examples
--------
>>> import numpy as np, os, tempfile
>>> from ds2_hf.knn.blocked import load_embeddings, open_rows
>>> path = os.path.join(tempfile.mkdtemp(), "emb.npy")
>>> np.save(path, np.random.default_rng(0).standard_normal((1000, 16)).astype("float16"))
>>> rows = open_rows(load_embeddings(path), progress=False)
>>> rows.shape, rows[:2].dtype, bool(np.allclose(np.linalg.norm(rows[10:20], axis=1), 1, atol=1e-3))
((1000, 16), dtype('float32'), True)
"""

from __future__ import annotations

import math
import os

import numpy as np

from .graph import check_shape, row_norms, validate_embeddings

_FLOAT_KINDS = (np.float16, np.float32, np.float64)


class MappedRows:
    """Unit float32 rows of an (N, d) array read on demand.

    Parameters
    ----------
    data : ndarray or numpy.memmap, shape (N, d), float16 / float32 / float64
        The stored rows (not copied).
    inv_norms : ndarray (N,) float32
        ``1 / ||data[i]||``.
    """

    dtype = np.dtype(np.float32)

    def __init__(self, data: np.ndarray, inv_norms: np.ndarray):
        self.data = data
        self.inv_norms = inv_norms
        self.shape = tuple(data.shape)

    def __len__(self) -> int:
        return self.shape[0]

    def __getitem__(self, key) -> np.ndarray:
        block = np.asarray(self.data[key], dtype=np.float32)
        block *= self.inv_norms[key][..., None]
        return block

    @property
    def nbytes_stored(self) -> int:
        return int(self.data.nbytes)


def is_out_of_core(embeddings) -> bool:
    """True for arrays the graph reads in blocks: memory maps and float16 arrays."""
    return isinstance(embeddings, np.memmap) or (isinstance(embeddings, np.ndarray) and embeddings.dtype == np.float16)


def as_rows(embeddings, *, block: int = 1 << 18, progress: bool = True, name: str = "embeddings"):
    """Validated unit rows: :func:`open_rows` for memory maps and float16 arrays (read in blocks, never copied
    whole), :func:`~ds2_hf.validation.validate_embeddings` (a float32 array) for everything else. Rows already
    opened (a :class:`MappedRows`) are returned as they are."""
    if isinstance(embeddings, MappedRows):
        return embeddings
    if is_out_of_core(embeddings):
        return open_rows(embeddings, block=block, progress=progress, name=name)
    return validate_embeddings(embeddings, name=name)


def load_embeddings(path: str | os.PathLike) -> np.ndarray:
    """Memory-map an ``(N, d)`` ``.npy`` file of float16 / float32 embeddings (nothing is read yet).

    Raises
    ------
    FileNotFoundError
        No such file.
    ValueError
        Not a ``.npy`` array of shape (N, d) with a float dtype (the message says how to write one).
    """
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"no such embeddings file: {path!r} (expected an (N, d) .npy file)")
    try:
        arr = np.load(path, mmap_mode="r")
    except ValueError as err:  # pickled object arrays, not a .npy file
        raise ValueError(
            f"{path!r} is not a plain .npy array ({err}); write one with "
            "np.save(path, embeddings.astype(np.float16))"
        ) from None
    if not isinstance(arr, np.ndarray) or arr.ndim != 2 or arr.dtype.type not in _FLOAT_KINDS:
        shape = getattr(arr, "shape", None)
        dtype = getattr(arr, "dtype", None)
        raise ValueError(
            f"{path!r} holds an array of shape {shape} and dtype {dtype}; expected (N, d) float16 or float32, "
            "one row per dataset row: np.save(path, embeddings.astype(np.float16))"
        )
    return arr


def open_rows(embeddings, *, block: int = 1 << 18, progress: bool = True, name: str = "embeddings") -> MappedRows:
    """Validate ``embeddings`` block by block (NaN / inf, zero rows) and return them as :class:`MappedRows`.

    Parameters
    ----------
    embeddings : ndarray or numpy.memmap, shape (N, d)
        float16 / float32 / float64 rows (any norm).
    block : int, default 262144
        Rows read at once (``block * d * 4`` bytes of temporary memory).
    progress : bool, default True
        Show a progress bar.

    Returns
    -------
    MappedRows
    """
    data = embeddings if isinstance(embeddings, np.ndarray) else np.asarray(embeddings)
    if data.dtype.type not in _FLOAT_KINDS:
        raise ValueError(f"{name} must be float16 / float32 / float64 for out-of-core search; got {data.dtype}")
    check_shape(data, name)
    n = len(data)
    inv = np.empty(n, dtype=np.float32)
    starts = range(0, n, block)
    if progress and n > block:
        from tqdm.auto import tqdm

        starts = tqdm(starts, desc="checking embeddings", unit="block", total=math.ceil(n / block))
    for s in starts:
        chunk = np.asarray(data[s : s + block], dtype=np.float32)
        inv[s : s + len(chunk)] = 1.0 / row_norms(chunk, offset=s, name=name)
    return MappedRows(data, inv)
