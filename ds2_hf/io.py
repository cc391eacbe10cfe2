"""Read and write datasets wherever users keep them: a Hub id, a local parquet / jsonl / json / csv file, a
folder of such files (e.g. one written by :func:`ds2_hf.save_subset`), or a ``save_to_disk`` folder; and where
ds2-hf keeps its own files (:func:`cache_dir`) and whether the Hugging Face Hub can be reached."""

from __future__ import annotations

import os
from pathlib import Path

_EXT_BUILDER = {".parquet": "parquet", ".jsonl": "json", ".json": "json", ".csv": "csv", ".arrow": "arrow"}


def load(source: str | os.PathLike, *, split: str = "train", revision: str | None = None, name: str | None = None):
    """Load a :class:`datasets.Dataset` from a Hub id, a local data file, a data folder or a ``save_to_disk`` folder.

    Parameters
    ----------
    source : str or path
        ``"org/name"`` (Hub), ``"rows.parquet"`` / ``.jsonl`` / ``.json`` / ``.csv`` / ``.arrow``, a folder of
        data files, or a folder written by ``Dataset.save_to_disk``.
    split : str, default "train"
        Split to return when the source has several.
    revision, name : str, optional
        Hub revision and config name.

    Raises
    ------
    FileNotFoundError
        A local-looking path that does not exist.
    ds2_hf.publish.ManifestError
        A subset folder (written by :func:`ds2_hf.save_subset`) that does not match its manifest: incomplete,
        edited, or mixing the files of two saves.
    """
    import datasets

    path = Path(source)
    if path.exists():
        if path.is_dir():
            if (path / "dataset_info.json").exists() or (path / "state.json").exists():
                return datasets.load_from_disk(str(path))
            if (path / "dataset_dict.json").exists():
                dd = datasets.load_from_disk(str(path))
                return dd[split] if split in dd else dd[next(iter(dd))]
            from .publish.manifest import verify_folder

            verify_folder(path)  # a subset folder written by save_subset: complete and unmixed, or an error
            return datasets.load_dataset(str(path), split=split)
        suffix = "".join(path.suffixes[-2:]) if path.name.endswith(".gz") else path.suffix
        builder = _EXT_BUILDER.get(suffix.removesuffix(".gz") if suffix.endswith(".gz") else suffix)
        if builder is None:
            raise ValueError(
                f"cannot read {str(path)!r}: unknown file type {path.suffix!r}; use one of "
                f"{sorted(_EXT_BUILDER)} or a dataset folder"
            )
        return datasets.load_dataset(builder, data_files=str(path), split="train")
    looks_local = str(source).startswith((".", "/", "~")) or Path(source).suffix in _EXT_BUILDER
    if looks_local:
        raise FileNotFoundError(f"no such file or folder: {str(source)!r}")
    return datasets.load_dataset(str(source), name, split=split, revision=revision)


def save(dataset, dest: str | os.PathLike, *, overwrite: bool = False) -> Path:
    """Write ``dataset`` atomically: to a data file by extension, else as a ``save_to_disk`` folder.

    The data are written to a temporary sibling, fsynced and renamed over ``dest`` (:mod:`ds2_hf.atomic`): an
    interrupted write leaves the previous output or the new one, never a mix and never nothing, so even
    ``ds2 curate x.parquet x.parquet`` cannot lose its input.

    Parameters
    ----------
    dataset : datasets.Dataset
        The rows to write.
    dest : str or path
        ``.parquet`` / ``.jsonl`` / ``.json`` / ``.csv`` file, or a folder (``save_to_disk``).
    overwrite : bool, default False
        Replace an existing ``dest``.

    Raises
    ------
    ds2_hf.atomic.OutputExistsError
        ``dest`` exists and ``overwrite`` is False.

    Examples
    --------
    >>> import datasets
    >>> from ds2_hf import io
    >>> path = io.save(datasets.Dataset.from_dict({"a": [1, 2]}), "/tmp/ds2-io-doc.parquet", overwrite=True)
    >>> io.load(path)["a"][:]
    [1, 2]
    """
    from .atomic import staged

    dest = Path(dest)
    with staged(dest, overwrite=overwrite) as tmp:
        if dest.suffix == ".parquet":
            dataset.to_parquet(str(tmp))
        elif dest.suffix in (".jsonl", ".json"):
            dataset.to_json(str(tmp), lines=dest.suffix == ".jsonl")
        elif dest.suffix == ".csv":
            dataset.to_csv(str(tmp))
        else:
            dataset.save_to_disk(str(tmp))
    return dest


def cache_dir() -> Path:
    """ds2-hf's own cache folder: ``$DS2_HF_CACHE`` or ``~/.cache/ds2_hf`` (rating cache, converted GGUF models)."""
    return Path(os.environ.get("DS2_HF_CACHE") or os.path.join(os.path.expanduser("~"), ".cache", "ds2_hf"))


def hub_offline() -> bool:
    """True when ``HF_HUB_OFFLINE`` asks every library to stay off the network."""
    return os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in ("1", "true", "yes", "on")


def hub_reachable(repo_id: str, *, timeout: float = 3.0) -> bool:
    """One ``HEAD`` request to the Hub's API page of ``repo_id`` (no retries): can the Hub be reached?

    Any HTTP answer, even 401 / 404, means the Hub is reachable; only a failed connection or a timeout is False.
    """
    import urllib.error
    import urllib.request

    endpoint = os.environ.get("HF_ENDPOINT", "https://huggingface.co").rstrip("/")
    try:
        req = urllib.request.Request(f"{endpoint}/api/models/{repo_id}", method="HEAD")
        with urllib.request.urlopen(req, timeout=timeout):  # noqa: S310 - the configured Hub endpoint
            return True
    except urllib.error.HTTPError:
        return True
    except Exception:  # noqa: BLE001 - DNS failure, refused connection, timeout, proxy error: unreachable
        return False


def json_default(obj):
    """``json.dump(default=...)`` hook for reports: NumPy scalars and arrays, paths, sets, tuples, dataclasses."""
    import dataclasses

    import numpy as np

    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, (Path, os.PathLike)):
        return str(obj)
    if isinstance(obj, (set, frozenset, tuple)):
        return list(obj)
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return dataclasses.asdict(obj)
    raise TypeError(f"{type(obj).__name__} is not JSON serialisable")


def write_json(obj, path: str | os.PathLike, *, overwrite: bool = True) -> Path:
    """Write ``obj`` (NumPy-aware) as indented JSON, atomically (temporary sibling, fsync, rename)."""
    import json

    from .atomic import write_text

    return write_text(path, json.dumps(obj, indent=2, default=json_default) + "\n", overwrite=overwrite)
