"""A user's mistake on the command line is one line ``ds2 <cmd>: error: ...`` and an exit status, never a
traceback (``--debug`` shows it): usage errors exit 2, runtime failures 1 (ds2_hf.cli.errors)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from ds2_hf.cli import main
from ds2_hf.validation import EmptyInputError

DS2 = [sys.executable, "-c", "import sys; from ds2_hf.cli import main; sys.exit(main())"]


def _one_error_line(err: str, command: str) -> str:
    lines = [line for line in err.splitlines() if "error" in line.lower()]
    assert "Traceback" not in err, err
    assert len(lines) == 1 and lines[0].startswith(f"ds2 {command}: error: "), err
    return lines[0]


@pytest.fixture(scope="module")
def pool(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("pool") / "pool.parquet"
    assert main(["simulate", str(path), "--n", "600", "--dim", "16"]) == 0
    return path


def _never(what: str):
    def fail(*args, **kwargs):
        raise AssertionError(f"{what} ran before the bad input was reported")

    return fail


# --------------------------------------------------------------------------------------------- empty input


@pytest.mark.parametrize("content", ["", "\n\n"], ids=["no-bytes", "blank-lines"])
def test_an_empty_input_file(content, tmp_path, capsys):
    (tmp_path / "empty.jsonl").write_text(content)
    assert main(["embed", str(tmp_path / "empty.jsonl"), str(tmp_path / "out.parquet")]) == 2
    line = _one_error_line(capsys.readouterr().err, "embed")
    assert "empty.jsonl" in line and "empty" in line
    assert not (tmp_path / "out.parquet").exists()


def test_an_input_with_a_header_and_no_rows(tmp_path, capsys):
    (tmp_path / "rows.csv").write_text("instruction,output\n")
    assert main(["select", str(tmp_path / "rows.csv"), str(tmp_path / "out.parquet"), "-k", "3"]) == 2
    line = _one_error_line(capsys.readouterr().err, "select")
    assert "rows.csv" in line and "no rows" in line


def test_debug_shows_the_traceback(tmp_path):
    (tmp_path / "empty.jsonl").write_text("")
    with pytest.raises(EmptyInputError, match="empty"):
        main(["--debug", "embed", str(tmp_path / "empty.jsonl"), str(tmp_path / "out.parquet")])


# --------------------------------------------------------------------------------------------- unreadable input


def test_an_unreadable_input(pool, tmp_path, capsys, monkeypatch):
    """`chmod 000` does not stop root, so the permission check is shown its answer through os.access."""
    real_access = os.access
    monkeypatch.setattr(os, "access", lambda path, mode, **kw: Path(path) != pool and real_access(path, mode, **kw))
    assert main(["curate", str(pool), str(tmp_path / "out.parquet")]) == 2
    line = _one_error_line(capsys.readouterr().err, "curate")
    assert str(pool) in line and "permission denied" in line


def test_a_permission_error_from_deep_inside_is_one_line(pool, tmp_path, capsys, monkeypatch):
    import datasets

    def denied(*args, **kwargs):
        raise PermissionError(13, "Permission denied", "/cache/datasets/lock")

    monkeypatch.setattr(datasets, "load_dataset", denied)
    assert main(["select", str(pool), str(tmp_path / "out.parquet"), "-k", "3"]) == 2
    assert "'/cache/datasets/lock': permission denied" in _one_error_line(capsys.readouterr().err, "select")


# A read-only output folder: tests/test_atomic.py::test_an_unwritable_output_fails_before_any_work (a really
# read-only folder, for every writing command).


# --------------------------------------------------------------------------------------------- the Hub


def test_offline_mode_with_a_missing_local_path(tmp_path):
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "HF_HOME": str(tmp_path / "hf")}
    proc = subprocess.run([*DS2, "embed", "someone/missing-dataset", str(tmp_path / "out.parquet")], env=env,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2, proc.stderr
    line = _one_error_line(proc.stderr, "embed")
    assert "'someone/missing-dataset'" in line and "HF_HUB_OFFLINE" in line


@pytest.mark.parametrize("token, problem", [("hf_not_a_valid_token", "rejected the token (HTTP 401)"),
                                            ("hf_stub_read_only_token", "may only read")])
def test_run_push_to_with_a_bad_token_fails_before_any_work(token, problem, stub, pool, tmp_path, capsys, monkeypatch):
    from ds2_hf import io

    monkeypatch.setenv("HF_TOKEN", token)
    monkeypatch.setenv("HF_ENDPOINT", stub.endpoint)
    monkeypatch.setattr(io, "load", _never("loading the input"))
    code = main(["run", str(pool), "--output", str(tmp_path / "out"), "-k", "10", "--push-to", "org/subset"])
    err = capsys.readouterr().err
    assert code == 1
    assert problem in _one_error_line(err, "run") and token not in err
    assert not (tmp_path / "out").exists()


def test_push_to_an_unreachable_hub(pool, tmp_path, capsys, monkeypatch):
    import huggingface_hub.constants as hf_constants

    monkeypatch.setattr(hf_constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setenv("HF_TOKEN", "hf_some_token")
    code = main(["push", str(pool), "org/subset", "--endpoint", "http://127.0.0.1:9"])  # port 9: nothing listens
    err = capsys.readouterr().err
    assert code == 1
    line = _one_error_line(err, "push")
    assert "127.0.0.1" in line or "connect" in line.lower()
    assert "hf_some_token" not in err
