"""Rating on Ray Data (engine="ray") against the loopback server, on one session-wide local Ray with 2 CPUs."""

from __future__ import annotations

import json

import pytest

datasets = pytest.importorskip("datasets")
torch = pytest.importorskip("torch")

from ds2_hf.cli import main  # noqa: E402
from ds2_hf.rating import FatalBackendError, RatingConfig, rate  # noqa: E402
from ds2_hf.rating.ray_engine import RayBackend, RayOptions, _VllmPre, to_raw, vllm_response  # noqa: E402

from .server import FaultPlan, ModelServer  # noqa: E402

ROWS = [{"instruction": f"Add {i} and 3.", "output": str(i + 3)} for i in range(10)]


@pytest.fixture(scope="module")
def server(wordlevel_dir):
    torch.set_num_threads(1)
    with ModelServer(wordlevel_dir) as srv:
        yield srv


def _cfg(srv, tmp_path, **kw):
    base = dict(model="tiny", backend="vllm-server", base_url=srv.base_url, mode="logprobs", top_logprobs=500,
                cache_path=str(tmp_path / "ratings.sqlite"), timeout=10.0, max_retries=2, backoff_base=0.01)
    return RatingConfig(**{**base, **kw})


def test_ray_rates_like_the_plain_path_and_resumes(server, ray_session, tmp_path):
    ds = datasets.Dataset.from_list(ROWS)
    server.faults = FaultPlan()
    plain, _ = rate(ds, _cfg(server, tmp_path / "plain"))
    plain_bodies = list(server.faults.bodies)
    server.faults = FaultPlan()
    rated, stats = rate(ds, _cfg(server, tmp_path / "ray"), engine="ray", ray=RayOptions(concurrency=2, batch_size=4))
    assert isinstance(rated, datasets.Dataset) and stats.rated == 10 and server.faults.requests == 10
    assert rated.features == plain.features  # the column contract: int8 rating, details struct, error string
    assert rated["rating"] == plain["rating"] and rated["rating_error"] == [None] * 10  # logprobs: deterministic
    for a, b in zip(rated["rating_details"], plain["rating_details"]):
        assert a["distribution"] == pytest.approx(b["distribution"], abs=1e-6)
    by_text = lambda bodies: sorted(json.dumps(b, sort_keys=True) for b in bodies)  # noqa: E731
    assert by_text(server.faults.bodies) == by_text(plain_bodies)  # the same requests as the plain path
    # resume: a re-run sends no request for a row that already has a rating
    server.faults = FaultPlan()
    again, stats = rate(ds, _cfg(server, tmp_path / "ray"), engine="ray")
    assert server.faults.requests == 0 and stats.cached == 10 and again["rating"] == rated["rating"]


@pytest.mark.parametrize("backend", ["openai", "tgi"])
def test_ray_generate_mode_sends_the_plain_payload(server, ray_session, tmp_path, backend):
    cfg = _cfg(server, tmp_path, backend=backend, model="" if backend == "tgi" else "tiny", mode="generate",
               cache=False)
    ds = datasets.Dataset.from_list(ROWS[:3])
    server.faults = FaultPlan()
    rate(ds, cfg)
    plain = sorted(json.dumps(b, sort_keys=True) for b in server.faults.bodies)
    server.faults = FaultPlan()
    rated, stats = rate(ds, cfg, engine="ray")
    assert sorted(json.dumps(b, sort_keys=True) for b in server.faults.bodies) == plain
    assert stats.rated == 3 and all(0 <= r <= 5 for r in rated["rating"])
    assert all(1 <= d["overall"] <= 10 for d in rated["rating_details"])


def test_ray_failures_are_recorded_then_retried(server, ray_session, tmp_path):
    ds = datasets.Dataset.from_list(ROWS[:4])
    cfg = _cfg(server, tmp_path)
    server.faults = FaultPlan(["400"])  # a non-retryable error body: one row fails, the rest are rated
    rated, stats = rate(ds, cfg, engine="ray")
    failed = [i for i, r in enumerate(rated["rating"]) if r is None]
    assert len(failed) == 1 and rated["rating_error"][failed[0]].startswith("context_length: ")
    assert rated["rating_details"][failed[0]] is None and stats.failed == {"context_length": 1}
    server.faults = FaultPlan()
    rated, stats = rate(ds, cfg, engine="ray")  # only the failed row is sent again
    assert server.faults.requests == 1 and stats.rated == 1 and stats.cached == 3
    assert all(r is not None for r in rated["rating"])


def test_ray_run_out_of_retries_stops_and_keeps_finished_ratings(server, ray_session, tmp_path):
    ds = datasets.Dataset.from_list(ROWS[:3])
    cfg = _cfg(server, tmp_path, max_retries=1)
    # the driver's first request passes; the Ray requests stay rate-limited through their retry
    server.faults = FaultPlan([None] + [("429", 0)] * 6)
    with pytest.raises(FatalBackendError, match="re-run the same command to resume"):
        rate(ds, cfg, engine="ray", ray=RayOptions(batch_size=1))
    server.faults = FaultPlan()
    rated, stats = rate(ds, cfg, engine="ray")
    assert all(r is not None for r in rated["rating"]) and stats.rated + stats.cached == 3


def test_ray_engine_checks_url_model_and_key_before_ray_work(wordlevel_dir, ray_session, tmp_path, monkeypatch):
    from ds2_hf.rating import AuthenticationError, ServerUnreachableError

    ds = datasets.Dataset.from_list(ROWS[:3])
    with ModelServer(wordlevel_dir, api_key="s3cr3t-key") as srv:
        monkeypatch.setenv("VLLM_API_KEY", "wrong-key")
        with pytest.raises(AuthenticationError) as err:
            rate(ds, _cfg(srv, tmp_path), engine="ray")
        assert "wrong-key" not in str(err.value) and "HTTP 401" in str(err.value)
        monkeypatch.setenv("VLLM_API_KEY", "s3cr3t-key")
        rated, stats = rate(ds, _cfg(srv, tmp_path), engine="ray")  # the key reaches the Ray request actors
        assert stats.rated == 3 and srv.faults.requests == 3
    import socket

    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()  # nothing listens there (a port never served: no pooled keep-alive connection to it)
    cfg = _cfg(srv, tmp_path / "fresh").replace(base_url=f"http://127.0.0.1:{port}/v1", max_retries=1)
    with pytest.raises(ServerUnreachableError, match="cannot connect"):
        rate(ds, cfg, engine="ray")


def test_cli_engine_ray(server, ray_session, tmp_path, capsys):
    ds = datasets.Dataset.from_list(ROWS[:3])
    ds.to_json(str(tmp_path / "in.jsonl"))
    rc = main(["rate", str(tmp_path / "in.jsonl"), str(tmp_path / "out.parquet"), "--backend", "vllm-server",
               "--model", "tiny", "--base-url", server.base_url, "--mode", "logprobs", "--top-logprobs", "500",
               "--cache-path", str(tmp_path / "c.sqlite"), "--engine", "ray", "--ray-concurrency", "2"])
    assert rc == 0, capsys.readouterr().err
    out = datasets.load_dataset("parquet", data_files=str(tmp_path / "out.parquet"), split="train")
    assert all(r is not None for r in out["rating"]) and "3 rated" in capsys.readouterr().out


def test_ray_engine_rejects_what_it_cannot_run(tmp_path):
    with pytest.raises(ValueError, match="engine='ray' rates through a server"):
        RayBackend(RatingConfig(model="m", backend="transformers"))
    with pytest.raises(ValueError, match="engine='local', 'nope'|expected one of"):
        rate(datasets.Dataset.from_list(ROWS[:1]), RatingConfig(model="m"), engine="nope")
    with pytest.raises(ValueError, match="RayOptions.concurrency=0"):
        RayOptions(concurrency=0)


def test_vllm_rows_in_and_out_without_vllm():
    """The vLLM engine path's request rows and the parsing of its output rows (vLLM itself needs GPUs)."""
    cfg = RatingConfig(model="Qwen/Qwen2.5-0.5B-Instruct", backend="vllm", mode="logprobs", top_logprobs=20)
    req = _VllmPre(cfg, "logprobs")({"i": 3, "text": "###user: hi\n"})
    assert req["i"] == 3 and req["messages"][-1] == {"role": "assistant", "content": '{"Overall rating": '}
    assert req["sampling_params"] == {"max_tokens": 2, "temperature": 0.0, "logprobs": 20}
    gen = _VllmPre(cfg.replace(mode="generate"), "generate")({"i": 0, "text": "x"})["sampling_params"]
    assert gen["structured_outputs"]["json"]["required"][-1] == "Overall rating" and gen["top_k"] == 50
    row = {"generated_text": "7", "num_input_tokens": 90, "num_generated_tokens": 1,
           "logprobs": [{11: {"logprob": -0.105, "rank": 1, "decoded_token": "7"},
                         12: {"logprob": -2.303, "rank": 2, "decoded_token": "8"},
                         13: {"logprob": -9.0, "rank": 3, "decoded_token": "}"}}]}
    raw = to_raw(vllm_response(row), "logprobs", prefilled=True)
    assert raw.error is None and raw.prompt_tokens == 90
    assert raw.distribution[6] == pytest.approx(0.9 / 1.0, abs=1e-3) and raw.distribution[7] == pytest.approx(0.1, abs=1e-3)
    assert to_raw({"error": {"message": "maximum context length is 512"}}, "generate", prefilled=False).error \
        .startswith("context_length: ")
    assert to_raw({"choices": []}, "generate", prefilled=False).error.startswith("bad_response: ")
