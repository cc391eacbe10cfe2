"""Outputs that are never half written and never lose what was there: stage, fsync, rename over.

Every file or folder ds2-hf writes (datasets, subset folders, reports, HTML pages) goes through :func:`staged`:

1. the new output is written to a temporary sibling ``.<name>.ds2-tmp-<pid>-<random>`` in the same folder;
2. every file and folder of it is fsynced;
3. it is renamed over the destination in one step. A file replaces a file with :func:`os.replace`; a folder is
   exchanged with the old one by Linux's ``renameat2(RENAME_EXCHANGE)``, so the destination always holds either
   the complete old output or the complete new one. Only then is the old output (now in the temporary sibling)
   deleted.

The old output is never deleted first, so a process killed at any moment (even ``kill -9``) leaves the old
output or the new one, and at most a temporary sibling, which the next write to the same destination removes
(:func:`clean_leftovers`). Where ``renameat2`` is missing (not Linux), a folder is replaced by two renames; a
kill between them leaves the old folder in ``.<name>.ds2-old-<pid>-<random>``, which the next write, or
:func:`clean_leftovers`, puts back.

:func:`check_writable` runs before any expensive step: it refuses to replace an existing output unless asked to
(``overwrite=True``, ``--overwrite-output``) and proves with a real probe file that the folder can be written.

Examples
--------
>>> from pathlib import Path
>>> from ds2_hf.atomic import staged
>>> dest = Path("/tmp/ds2-atomic-doc.txt")
>>> with staged(dest, overwrite=True) as tmp:
...     _ = tmp.write_text("all or nothing")
>>> dest.read_text()
'all or nothing'
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import errno
import os
import secrets
import shutil
from collections.abc import Iterator
from pathlib import Path

__all__ = ["OutputExistsError", "OutputNotWritableError", "check_writable", "staged", "clean_leftovers",
           "write_bytes", "write_text"]

_TMP, _OLD = "ds2-tmp", "ds2-old"


class OutputExistsError(ValueError):
    """The output already exists and replacing it was not asked for."""


class OutputNotWritableError(ValueError):
    """The output's folder cannot be written (permissions, read-only file system, a file in the way)."""


def check_writable(dest: str | os.PathLike, *, overwrite: bool = False, flag: str = "--overwrite-output") -> Path:
    """Fail now, before any expensive step, when ``dest`` cannot or may not be written.

    Parameters
    ----------
    dest : str or path
        The file or folder about to be written.
    overwrite : bool, default False
        Whether an existing ``dest`` may be replaced.
    flag : str
        How the caller spells "overwrite" (named in the error), e.g. ``"--overwrite-output"`` or
        ``"overwrite=True"``.

    Returns
    -------
    pathlib.Path
        ``dest``.

    Raises
    ------
    OutputExistsError
        ``dest`` exists and ``overwrite`` is False.
    OutputNotWritableError
        No file can be created next to ``dest`` (a probe file is created and removed).
    """
    dest = Path(dest)
    if (dest.exists() or dest.is_symlink()) and not overwrite:
        kind = "folder" if dest.is_dir() else "file"
        raise OutputExistsError(
            f"the output {kind} {str(dest)!r} already exists; choose another path, or pass {flag} to replace it"
        )
    parent = dest.parent if str(dest.parent) else Path(".")
    existing = parent
    while not existing.exists():
        existing = existing.parent
    if not existing.is_dir():
        raise OutputNotWritableError(f"cannot write {str(dest)!r}: {str(existing)!r} is a file, not a folder")
    try:
        probe = existing / f".{dest.name}.{_TMP}-probe-{os.getpid()}-{secrets.token_hex(4)}"
        probe.touch(exist_ok=False)
        probe.unlink()
    except OSError as err:
        raise OutputNotWritableError(
            f"cannot write {str(dest)!r}: the folder {str(existing)!r} is not writable ({err.strerror}); choose an "
            "output in a folder you can write to"
        ) from None
    return dest


@contextlib.contextmanager
def staged(dest: str | os.PathLike, *, overwrite: bool = False) -> Iterator[Path]:
    """Yield a temporary sibling path to write the new output to; on success, put it in place atomically.

    Write a file or a folder at the yielded path. When the block ends without an exception, the new output is
    fsynced and renamed over ``dest`` (the old output is deleted only afterwards); when it raises, the
    temporary output is removed and ``dest`` is untouched.

    Raises
    ------
    OutputExistsError
        ``dest`` exists and ``overwrite`` is False.
    """
    dest = Path(dest)
    check_writable(dest, overwrite=overwrite, flag="overwrite=True")
    dest.parent.mkdir(parents=True, exist_ok=True)
    clean_leftovers(dest)
    tmp = _sibling(dest, _TMP)
    try:
        yield tmp
        if not (tmp.exists() or tmp.is_symlink()):
            raise FileNotFoundError(f"nothing was written to the staging path {str(tmp)!r} for {str(dest)!r}")
        _fsync_tree(tmp)
        _commit(tmp, dest, overwrite=overwrite)
    finally:
        _remove(tmp)


def write_bytes(dest: str | os.PathLike, data: bytes, *, overwrite: bool = True) -> Path:
    """Write ``data`` to ``dest`` atomically (temporary sibling, fsync, rename)."""
    with staged(dest, overwrite=overwrite) as tmp:
        tmp.write_bytes(data)
    return Path(dest)


def write_text(dest: str | os.PathLike, text: str, *, overwrite: bool = True) -> Path:
    """Write UTF-8 ``text`` to ``dest`` atomically (temporary sibling, fsync, rename)."""
    return write_bytes(dest, text.encode("utf-8"), overwrite=overwrite)


def clean_leftovers(dest: str | os.PathLike) -> list[Path]:
    """Remove the temporary siblings of ``dest`` left by killed processes; restore a lost old output.

    Only siblings named by this module whose process is gone are touched. When ``dest`` is missing and a killed
    two-rename replacement left the old output aside (``.<name>.ds2-old-*``), it is renamed back first.

    Returns
    -------
    list of pathlib.Path
        The paths removed or restored.
    """
    dest = Path(dest)
    if not dest.parent.is_dir():
        return []
    touched = []
    for path in sorted(dest.parent.glob(f".{glob_escape(dest.name)}.ds2-*-*")):
        kind, pid = _parse_sibling(dest, path)
        if kind is None or _alive(pid):
            continue
        if kind == _OLD and not (dest.exists() or dest.is_symlink()):
            os.rename(path, dest)  # the interrupted replacement's old output: put it back
        else:
            _remove(path)
        touched.append(path)
    return touched


def glob_escape(name: str) -> str:
    """``name`` with the glob metacharacters ``*?[`` escaped."""
    return "".join(f"[{c}]" if c in "*?[" else c for c in name)


# ---------------------------------------------------------------------------------------------------- internals
def _sibling(dest: Path, kind: str) -> Path:
    return dest.with_name(f".{dest.name}.{kind}-{os.getpid()}-{secrets.token_hex(4)}")


def _parse_sibling(dest: Path, path: Path) -> tuple[str | None, int]:
    rest = path.name[len(dest.name) + 2:]  # "<kind>-<pid>-<hex>"
    for kind in (_TMP, _OLD):
        if rest.startswith(kind + "-"):
            pid, _, token = rest[len(kind) + 1:].partition("-")
            if pid.isdigit() and token:
                return kind, int(pid)
    return None, 0


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's live process
        return True
    return True


def _fsync_tree(path: Path) -> None:
    """fsync every file under ``path`` (or ``path`` itself), then every folder, so the rename publishes data."""
    if path.is_file():
        _fsync(path)
        return
    for root, dirs, files in os.walk(path):
        for name in files:
            _fsync(Path(root) / name)
    for root, dirs, _ in os.walk(path, topdown=False):
        for name in dirs:
            _fsync_dir(Path(root) / name)
    _fsync_dir(path)


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    except OSError:  # platforms that cannot open folders
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _commit(tmp: Path, dest: Path, *, overwrite: bool) -> None:
    """Put ``tmp`` at ``dest``. Afterwards ``tmp`` holds the old output (to be removed), or nothing."""
    exists = dest.exists() or dest.is_symlink()
    if exists and not overwrite:  # appeared while the output was being written
        raise OutputExistsError(f"{str(dest)!r} appeared while it was being written; nothing was replaced")
    if not exists:
        os.rename(tmp, dest)
    elif tmp.is_file() and dest.is_file() and not dest.is_symlink():
        os.replace(tmp, dest)
    elif not _exchange(tmp, dest):
        old = _sibling(dest, _OLD)
        os.rename(dest, old)
        os.rename(tmp, dest)
        os.rename(old, tmp)
    _fsync_dir(dest.parent)


_RENAME_EXCHANGE = 2
_AT_FDCWD = -100


def _exchange(a: Path, b: Path) -> bool:
    """Swap two paths in one atomic step (Linux ``renameat2``); False where that is not available."""
    renameat2 = _renameat2()
    if renameat2 is None:
        return False
    if renameat2(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE) == 0:
        return True
    err = ctypes.get_errno()
    if err in (errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP):  # a file system without exchange
        return False
    raise OSError(err, os.strerror(err), str(b))


def _renameat2():
    if not hasattr(_renameat2, "fn"):
        fn = None
        name = ctypes.util.find_library("c")
        if name and os.name == "posix":
            libc = ctypes.CDLL(name, use_errno=True)
            fn = getattr(libc, "renameat2", None)
            if fn is not None:
                fn.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
                fn.restype = ctypes.c_int
        _renameat2.fn = fn
    return _renameat2.fn


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    elif path.exists() or path.is_symlink():
        path.unlink(missing_ok=True)
