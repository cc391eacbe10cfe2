"""``ds2 rate`` against the loopback server: offline mode, kill -9, runs where every row fails, setup errors."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time

import pytest

datasets = pytest.importorskip("datasets")
torch = pytest.importorskip("torch")

from ds2_hf.cli import main  # noqa: E402
from ds2_hf.rating.cache import RatingCache  # noqa: E402

from .server import FaultPlan, ModelServer  # noqa: E402

DS2 = [sys.executable, "-c", "import sys; from ds2_hf.cli import main; sys.exit(main())"]


@pytest.fixture(scope="module")
def server(wordlevel_dir):
    torch.set_num_threads(1)
    with ModelServer(wordlevel_dir, latency=0.02) as srv:  # 20 ms of "network" per answer, outside the model lock
        yield srv


def _rows(tmp_path, n: int, name: str = "rows.jsonl") -> str:
    path = tmp_path / name
    datasets.Dataset.from_list([{"instruction": f"Add {i} and 3.", "output": str(i + 3)} for i in range(n)]
                               ).to_json(str(path))
    return str(path)


def _rate_args(srv, src: str, out: str, cache: str, *extra: str) -> list[str]:
    return ["rate", src, out, "--backend", "vllm-server", "--model", "tiny", "--base-url", srv.base_url,
            "--mode", "logprobs", "--top-logprobs", "500", "--cache-path", cache, *extra]


def _env(**extra) -> dict:
    return dict(os.environ, OMP_NUM_THREADS="1", **extra)


def test_offline_mode_rates_through_a_local_server(server, tmp_path):
    """HF_HUB_OFFLINE=1 forbids the Hub, not a server on this machine: every row is rated, exit 0."""
    server.faults = FaultPlan()
    src, out = _rows(tmp_path, 6), tmp_path / "rated.parquet"
    cmd = DS2 + ["rate", src, str(out), "--backend", "openai", "--model", "tiny", "--base-url", server.base_url,
                 "--no-cache"]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=_env(HF_HUB_OFFLINE="1"), timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert server.faults.served == 6 and "6 rated" in proc.stdout
    rated = datasets.load_dataset("parquet", data_files=str(out), split="train")
    assert None not in rated["rating"] and set(rated["rating_error"]) == {None}


@pytest.mark.slow
def test_kill_9_repeats_at_most_the_requests_in_flight(server, tmp_path):
    """Kill the rating process three times at random moments; the requests the server answered more than once
    must be no more than the requests in flight at the kills (max_concurrency each)."""
    n, concurrency, kills = 400, 8, 3
    src, cache = _rows(tmp_path, n), str(tmp_path / "c.sqlite")
    args = _rate_args(server, src, str(tmp_path / "out.parquet"), cache, "--max-concurrency", str(concurrency))
    server.faults = FaultPlan()
    rng = random.Random(0)
    for _ in range(kills):
        target = server.faults.served + rng.randint(20, 60)
        proc = subprocess.Popen(DS2 + args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=_env())
        try:
            deadline = time.time() + 120
            while server.faults.served < target and proc.poll() is None and time.time() < deadline:
                time.sleep(0.002)
            proc.send_signal(signal.SIGKILL)
        finally:
            proc.wait()
        assert proc.returncode == -signal.SIGKILL, "the run should have been killed part-way"
    stored = len(RatingCache(cache))
    assert stored < n
    assert subprocess.run(DS2 + args, capture_output=True, env=_env(), timeout=300).returncode == 0
    rated = datasets.load_dataset("parquet", data_files=str(tmp_path / "out.parquet"), split="train")
    assert None not in rated["rating"]
    # In flight at a kill: the `concurrency` requests sent and not yet answered, plus at most one answer being
    # written to the cache (microseconds). Collecting answers once a second repeated 121 here.
    repeated = server.faults.served - n
    assert 0 <= repeated <= kills * (concurrency + 1), f"{repeated} requests were answered twice"


def test_a_run_in_which_every_row_failed_exits_non_zero(server, tmp_path, capsys):
    server.faults = FaultPlan(["400"] * 4)  # a non-retryable answer for every row
    out = tmp_path / "rated.parquet"
    code = main(_rate_args(server, _rows(tmp_path, 4), str(out), str(tmp_path / "c.sqlite"),
                           "--max-concurrency", "1", "--stats", str(tmp_path / "stats.json")))
    err = capsys.readouterr().err
    assert code == 1 and "every one of the 4 rows failed" in err and "context_length" in err
    assert not out.exists() and (tmp_path / "stats.json").is_file()
    server.faults = FaultPlan()  # fixed: the same command rates every row
    assert main(_rate_args(server, _rows(tmp_path, 4), str(out), str(tmp_path / "c.sqlite"))) == 0 and out.exists()


def test_wrong_key_stops_at_once_with_one_line(wordlevel_dir, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("VLLM_API_KEY", "sk-wrong")
    with ModelServer(wordlevel_dir, api_key="sk-right") as srv:
        code = main(_rate_args(srv, _rows(tmp_path, 20), str(tmp_path / "o.parquet"), str(tmp_path / "c.sqlite")))
        assert srv.faults.requests <= 8  # the requests already sent when the first 401 came back; no retry
    err = capsys.readouterr().err
    errors = [line for line in err.splitlines() if "error" in line.lower()]  # (the rest is progress bars)
    assert code == 1 and len(errors) == 1 and errors[0].startswith("ds2 rate: error: ") and "Traceback" not in err
    assert "HTTP 401" in errors[0] and "VLLM_API_KEY" in errors[0]
    assert "sk-wrong" not in err and not (tmp_path / "o.parquet").exists()


def test_the_rate_command_offers_the_library_choices():
    """`ds2 --help` stays numpy-free, so the command names its choices itself: they must be the library's."""
    from ds2_hf.cli import rate as command
    from ds2_hf.formats import STYLES
    from ds2_hf.rating.backends.chat import DIALECTS
    from ds2_hf.rating.config import BACKENDS, MODES

    assert command.BACKENDS == BACKENDS and set(DIALECTS) < set(BACKENDS)
    assert command.MODES == MODES and command.STYLES == STYLES
