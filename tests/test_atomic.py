"""Nothing lost: every output is staged, fsynced and renamed over; kill -9 at the file operations leaves the old
output or the new one; an existing output is replaced only when asked; unwritable outputs fail before any work;
a subset folder that does not match its manifest is neither read nor pushed."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import datasets
import numpy as np
import pytest

from ds2_hf import atomic, io
from ds2_hf.cli import main

# Runs `ds2 ARGV...` in a fresh process that SIGKILLs itself at the file operation named by $KILL_AT.
KILLER = textwrap.dedent("""
    import os, signal, sys
    import ds2_hf.atomic as atomic

    def die():
        os.kill(os.getpid(), signal.SIGKILL)

    point, commit, rename = os.environ["KILL_AT"], atomic._commit, os.rename
    if point == "before-rename":          # the new output is complete and fsynced, not yet in place
        atomic._commit = lambda tmp, dest, overwrite: die()
    elif point == "after-rename":         # the new output is in place, the old one not yet deleted
        def _commit(tmp, dest, overwrite):
            commit(tmp, dest, overwrite=overwrite)
            die()
        atomic._commit = _commit
    elif point == "between-renames":      # no renameat2: the old folder moved aside, the new one not yet in place
        atomic._renameat2.fn = None
        def _rename(src, dst):
            rename(src, dst)
            if ".ds2-old-" in str(dst):
                die()
        os.rename = _rename
    elif point == "mid-folder":           # a subset folder half staged: shards and figures, no card yet
        import ds2_hf.publish.save as save
        save.render_card = lambda *args, **kwargs: die()
    from ds2_hf.cli import main
    sys.exit(main(sys.argv[1:]))
""")


def _ds2_killed(point: str, *argv: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "KILL_AT": point}
    return subprocess.run([sys.executable, "-c", KILLER, *argv], env=env, capture_output=True, text=True,
                          timeout=300)


def _leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if ".ds2-" in p.name)


@pytest.fixture(scope="module")
def simulated(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("sim") / "sim.parquet"
    assert main(["simulate", str(path), "--n", "600", "--dim", "8"]) == 0
    return path


# ------------------------------------------------------------------------------------------------ no replacing unasked
def test_every_stage_refuses_to_replace_an_existing_output(simulated, tmp_path, capsys):
    unrelated = tmp_path / "existing.parquet"
    unrelated.write_bytes(b"someone else's file")
    for argv in (["select", str(simulated), str(unrelated), "-k", "10", "--strategy", "score"],
                 ["curate", str(simulated), str(unrelated)],
                 ["embed", str(simulated), str(unrelated), "--backend", "column", "--source", "embedding",
                  "--column", "e2"],
                 ["select", str(simulated), str(tmp_path / "new.parquet"), "-k", "10", "--strategy", "score",
                  "--report", str(unrelated)]):
        assert main(argv) == 2
        err = capsys.readouterr().err
        assert f"{str(unrelated)!r} already exists" in err and "--overwrite-output" in err, err
        assert "Traceback" not in err
    assert unrelated.read_bytes() == b"someone else's file" and not (tmp_path / "new.parquet").exists()
    assert main(["select", str(simulated), str(unrelated), "-k", "10", "--strategy", "score", "--overwrite-output"]) == 0
    assert io.load(unrelated).num_rows == 10 and _leftovers(tmp_path) == []


def test_curating_a_file_onto_itself_keeps_it_whole(simulated, tmp_path):
    path = tmp_path / "x.parquet"
    path.write_bytes(simulated.read_bytes())
    assert main(["curate", str(path), str(path), "--overwrite-output"]) == 0
    assert "curated_rating" in io.load(path).column_names and _leftovers(tmp_path) == []


# ------------------------------------------------------------------------------------------------ kill -9
@pytest.mark.slow
@pytest.mark.parametrize("point", ["before-rename", "after-rename"])
@pytest.mark.parametrize("name", ["x.parquet", "x_folder"])
def test_kill_at_the_rename_leaves_the_old_or_the_new_output(simulated, tmp_path, point, name):
    path = tmp_path / name
    io.save(io.load(simulated), path)  # a file, or a save_to_disk folder
    proc = _ds2_killed(point, "curate", str(path), str(path), "--overwrite-output")
    assert proc.returncode == -9, proc.stderr
    back = io.load(path)  # never lost, never half written
    assert back.num_rows == 600
    assert ("curated_rating" in back.column_names) == (point == "after-rename")
    # the killed process could not clean up (a replaced file leaves nothing: os.replace moved it over) ...
    assert bool(_leftovers(tmp_path)) == (point == "before-rename" or name == "x_folder")
    assert main(["curate", str(simulated), str(tmp_path / name), "--overwrite-output"]) == 0
    assert _leftovers(tmp_path) == []  # ... the next write to the same output does


@pytest.mark.slow
def test_kill_between_the_two_renames_of_the_fallback_loses_nothing(simulated, tmp_path):
    path = tmp_path / "x_folder"
    io.save(io.load(simulated), path)
    proc = _ds2_killed("between-renames", "curate", str(path), str(path), "--overwrite-output")
    assert proc.returncode == -9, proc.stderr
    assert not path.exists()  # the killed moment of a two-rename replacement: the old folder is aside
    assert atomic.clean_leftovers(path)  # ... and is put back, the half-done new one removed
    assert io.load(path).column_names == ["embedding", "rating", "true_rating"] and _leftovers(tmp_path) == []


@pytest.mark.slow
def test_run_killed_mid_folder_leaves_the_previous_subset_which_still_pushes(simulated, tmp_path, stub,
                                                                            monkeypatch):
    from hub_server import DEFAULT_TOKEN

    out = tmp_path / "subset"
    assert main(["run", str(simulated), "--output", str(out), "-k", "40"]) == 0
    before = {p.relative_to(out).as_posix(): p.read_bytes() for p in out.rglob("*") if p.is_file()}
    proc = _ds2_killed("mid-folder", "run", str(simulated), "--output", str(out), "-k", "20", "--overwrite-output")
    assert proc.returncode == -9, proc.stderr
    after = {p.relative_to(out).as_posix(): p.read_bytes() for p in out.rglob("*") if p.is_file()}
    assert after == before  # not a new README beside old data: the old folder, whole
    monkeypatch.setenv("HF_TOKEN", DEFAULT_TOKEN)
    assert main(["push", str(out), "org/whole", "--endpoint", stub.endpoint]) == 0
    assert datasets.load_dataset(str(out), split="train").num_rows == 40


# ------------------------------------------------------------------------------------------------ the manifest
def _saved(tmp_path: Path) -> Path:
    import ds2_hf

    subset = datasets.Dataset.from_dict({"text": ["a", "b", "c"], "rating": [1, 5, 3]})
    return ds2_hf.save_subset(subset, tmp_path / "subset", figures=False)


def test_a_mixed_or_damaged_folder_is_neither_read_nor_pushed(tmp_path, stub, monkeypatch, capsys):
    from hub_server import DEFAULT_TOKEN

    from ds2_hf.publish import ManifestError, push_folder, verify_folder

    folder = _saved(tmp_path)
    assert verify_folder(folder)["num_rows"] == 3
    stale = folder / "data" / "train-00000-of-00002.parquet"  # a shard of another save
    datasets.Dataset.from_dict({"text": ["z"], "rating": [0]}).to_parquet(str(stale))
    with pytest.raises(ManifestError, match="train-00000-of-00002.parquet is not part of the saved subset"):
        io.load(folder)
    with pytest.raises(ManifestError, match="does not match its manifest"):
        push_folder(folder, "org/mixed", token=DEFAULT_TOKEN, endpoint=stub.endpoint)
    stale.unlink()
    (folder / "README.md").write_text("edited")
    monkeypatch.setenv("HF_TOKEN", DEFAULT_TOKEN)
    assert main(["push", str(folder), "org/mixed", "--endpoint", stub.endpoint]) == 2
    assert "README.md differs from the file that was saved" in capsys.readouterr().err
    assert main(["report", str(folder)]) == 2
    assert stub.requests == []  # nothing was uploaded


# ------------------------------------------------------------------------------------------------ read-only outputs
@contextlib.contextmanager
def read_only(folder: Path):
    """A folder nobody can write to, the test's user included (root: the immutable attribute; others: chmod)."""
    folder.mkdir()
    if os.geteuid() == 0:
        subprocess.run(["chattr", "+i", str(folder)], check=True)
        undo = ["chattr", "-i", str(folder)]
    else:
        folder.chmod(0o555)
        undo = None
    try:
        with pytest.raises(OSError):
            (folder / "probe").touch()
        yield folder
    finally:
        subprocess.run(undo, check=True) if undo else folder.chmod(0o755)


def test_an_unwritable_output_fails_before_any_work(simulated, tmp_path, capsys):
    with read_only(tmp_path / "ro") as ro:
        for argv in (["curate", str(simulated), str(ro / "out.parquet")],
                     ["select", str(simulated), str(ro / "out.parquet"), "-k", "5", "--strategy", "score"],
                     ["run", str(simulated), "--output", str(ro / "subset")],
                     ["curate", str(simulated), str(tmp_path / "ok.parquet"), "--report", str(ro / "r.json")]):
            assert main(argv) == 2
            err = capsys.readouterr().err
            assert "is not writable" in err and "Traceback" not in err, err
            assert "Adding curation columns" not in err  # refused before curating
        with pytest.raises(atomic.OutputNotWritableError):
            _saved(ro)
    assert not (tmp_path / "ok.parquet").exists()


def test_staged_writes_clean_up_after_a_failure_and_keep_other_files(tmp_path):
    dest = tmp_path / "out.json"
    dest.write_text("old")
    with pytest.raises(RuntimeError, match="boom"):
        with atomic.staged(dest, overwrite=True) as tmp:
            tmp.write_text("half")
            raise RuntimeError("boom")
    assert dest.read_text() == "old" and _leftovers(tmp_path) == []
    atomic.write_text(dest, "new")
    assert dest.read_text() == "new"
    with pytest.raises(atomic.OutputExistsError, match="overwrite=True"):
        atomic.write_text(dest, "newer", overwrite=False)
    folder = _saved(tmp_path)
    (folder / "notes.txt").write_text("mine")
    import ds2_hf

    ds2_hf.save_subset(datasets.Dataset.from_dict({"text": ["q"], "rating": [2]}), folder, overwrite=True,
                       figures=False)
    assert (folder / "notes.txt").read_text() == "mine" and io.load(folder).num_rows == 1
    assert np.array_equal(sorted(p.name for p in tmp_path.iterdir()), ["out.json", "subset"])
