"""The manifest of a subset folder: its row count and the hash of every file it was written with.

:func:`ds2_hf.save_subset` writes ``ds2_manifest.json`` last into the staged folder; :func:`verify_folder` checks
a folder against it before anything reads or uploads it (:func:`ds2_hf.io.load`, ``ds2 report``,
:func:`ds2_hf.push_folder`). A folder that lost a file, holds a file that changed, or mixes data shards of two
saves is refused with one error saying how to re-create it.

Examples
--------
>>> import datasets, ds2_hf
>>> from ds2_hf.publish.manifest import verify_folder
>>> ds = datasets.Dataset.from_dict({"text": ["a", "b"], "rating": [3, 5]})
>>> folder = ds2_hf.save_subset(ds, "/tmp/ds2-manifest-doc", overwrite=True, figures=False)
>>> verify_folder(folder)["num_rows"]
2
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

from .config import DATA_DIR, MANIFEST_FILE

MANIFEST_VERSION = 1


class ManifestError(ValueError):
    """A subset folder does not match its manifest (incomplete, changed or mixed)."""


def file_digest(path: Path) -> str:
    """The SHA-256 of a file, read in 1 MiB blocks."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def build_manifest(folder: str | os.PathLike, files: list[str], *, num_rows: int, split: str) -> dict[str, Any]:
    """The manifest of ``files`` (paths relative to ``folder``) holding ``num_rows`` rows of ``split``."""
    folder = Path(folder)
    entries = {rel: {"bytes": (folder / rel).stat().st_size, "sha256": file_digest(folder / rel)}
               for rel in sorted(files)}
    return {"format": "ds2-subset", "version": MANIFEST_VERSION, "split": split, "num_rows": int(num_rows),
            "files": entries}


def write_manifest(folder: str | os.PathLike, files: list[str], *, num_rows: int, split: str) -> Path:
    """Write ``ds2_manifest.json`` into ``folder`` (a staged folder: the whole folder is renamed into place)."""
    path = Path(folder) / MANIFEST_FILE
    manifest = build_manifest(folder, files, num_rows=num_rows, split=split)
    path.write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
    return path


def verify_folder(folder: str | os.PathLike, *, required: bool = False) -> dict[str, Any] | None:
    """Check a subset folder against its manifest; return the manifest, or None when the folder has none.

    Checks that every file of the manifest is there with its size and hash, that ``data/`` holds no other
    file, and that the parquet shards hold ``num_rows`` rows.

    Parameters
    ----------
    folder : str or path
        A folder written by :func:`ds2_hf.save_subset` (or any folder).
    required : bool, default False
        Raise when the folder has no manifest.

    Raises
    ------
    ManifestError
        The folder does not match its manifest, or has none and ``required`` is True.
    """
    folder = Path(folder)
    path = folder / MANIFEST_FILE
    fix = ("re-create it with ds2_hf.save_subset(..., overwrite=True) or `ds2 run ... --overwrite-output` "
           "(an interrupted or concurrent write, or a file edited by hand, leaves such a folder)")
    if not path.is_file():
        if required:
            raise ManifestError(f"{str(folder)!r} has no {MANIFEST_FILE}: it was not written by ds2-hf; {fix}")
        return None
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
        files, num_rows = manifest["files"], int(manifest["num_rows"])
    except (ValueError, KeyError, TypeError) as err:
        raise ManifestError(f"{str(path)!r} is not a valid manifest ({err}); {fix}") from None
    problems = []
    for rel, entry in files.items():
        target = folder / rel
        if not target.is_file():
            problems.append(f"{rel} is missing")
        elif target.stat().st_size != entry.get("bytes") or file_digest(target) != entry.get("sha256"):
            problems.append(f"{rel} differs from the file that was saved")
    data_dir = folder / DATA_DIR
    extra = sorted(p.relative_to(folder).as_posix() for p in data_dir.rglob("*")
                   if p.is_file() and p.relative_to(folder).as_posix() not in files) if data_dir.is_dir() else []
    problems += [f"{rel} is not part of the saved subset" for rel in extra]
    if not problems:
        rows = _parquet_rows(folder, [rel for rel in files if rel.endswith(".parquet")])
        if rows != num_rows:
            problems.append(f"the data files hold {rows} rows, the manifest says {num_rows}")
    if problems:
        shown = "; ".join(problems[:5]) + (f"; and {len(problems) - 5} more" if len(problems) > 5 else "")
        raise ManifestError(f"the subset folder {str(folder)!r} does not match its manifest: {shown}. {fix}")
    return manifest


def _parquet_rows(folder: Path, files: list[str]) -> int:
    import pyarrow.parquet as pq

    return sum(pq.ParquetFile(folder / rel).metadata.num_rows for rel in files)
