"""Remote backends against a real loopback server that generates with a tiny model (no network)."""

import logging
import pickle

import numpy as np
import pytest

datasets = pytest.importorskip("datasets")
torch = pytest.importorskip("torch")

from ds2_hf.rating import (  # noqa: E402
    AuthenticationError, FatalBackendError, Rater, RatingConfig, ServerUnreachableError, rate,
)
from ds2_hf.rating.backends.remote import RemoteBackend  # noqa: E402
from ds2_hf.rating.backends.transformers import TransformersBackend  # noqa: E402

from .server import FaultPlan, ModelServer  # noqa: E402

CONVS = [f"###user: Add {i} and 3.\n###assistant: {i + 3}\n" for i in range(5)]


@pytest.fixture(scope="module")
def server(wordlevel_dir):
    torch.set_num_threads(1)
    with ModelServer(wordlevel_dir) as srv:
        yield srv


def _cfg(srv, **kw):
    base = dict(model="tiny", backend="openai", base_url=srv.base_url, cache=False, backoff_base=0.01,
                timeout=10.0, top_logprobs=500, max_retries=4)
    base.update(kw)
    return RatingConfig(**base)


@pytest.mark.parametrize("backend", ["openai", "tgi", "vllm-server"])
@pytest.mark.parametrize("mode", ["generate", "logprobs"])
def test_each_dialect_rates_through_the_server(server, backend, mode):
    rater = Rater(_cfg(server, backend=backend, mode=mode, model="" if backend == "tgi" else "tiny"))
    results = rater.rate_texts(CONVS)
    assert all(err is None for _, err in results), results
    for details, _ in results:
        assert 1 <= details["overall"] <= 10
        if mode == "logprobs":
            assert sum(details["distribution"]) == pytest.approx(1.0)
    assert rater.stats.rated == len(CONVS) and rater.stats.prompt_tokens > 0


def test_each_dialect_sends_its_own_payload(server):
    from ds2_hf.rating.prompt import json_schema

    sent = {}
    for backend in ("openai", "tgi", "vllm-server"):
        for mode in ("generate", "logprobs"):
            server.faults = FaultPlan()
            Rater(_cfg(server, backend=backend, mode=mode, model="" if backend == "tgi" else "tiny")).rate_texts(CONVS[:1])
            sent[backend, mode] = server.faults.bodies[-1]
    # TGI / servers behind a base_url: InferenceClient sends TGI's grammar dialect and a placeholder model name
    assert sent["tgi", "generate"]["response_format"] == {"type": "json_object", "value": json_schema()}
    assert sent["tgi", "generate"]["model"] == "dummy"
    # vLLM: its own structured-output fields, the served model name, and answer prefill in logprobs mode
    g = sent["vllm-server", "generate"]
    assert g["model"] == "tiny" and g["structured_outputs"] == {"json": json_schema()} and g["guided_json"] == json_schema()
    assert "response_format" not in g and g["temperature"] == 1.2 and g["top_k"] == 50
    lp = sent["vllm-server", "logprobs"]
    assert lp["continue_final_message"] is True and lp["add_generation_prompt"] is False
    assert lp["messages"][-1] == {"role": "assistant", "content": '{"Overall rating": '} and lp["max_tokens"] == 2
    assert lp["logprobs"] is True and lp["temperature"] == 0.0
    # the paper's prompt, through the chat API: system + user with the sample
    assert [m["role"] for m in sent["openai", "generate"]["messages"]] == ["system", "user"]
    assert sent["openai", "generate"]["messages"][1]["content"].endswith(CONVS[0])


def test_prefilled_server_logprobs_equal_local_logprobs(server, wordlevel_dir):
    """vLLM-style answer prefill + top logprobs reproduces the local forward pass on the same model."""
    remote = Rater(_cfg(server, backend="vllm-server", mode="logprobs")).rate_texts(CONVS[:3])
    local = {}
    TransformersBackend(RatingConfig(model=wordlevel_dir, mode="logprobs")).score(CONVS[:3], local.__setitem__)
    for i, (details, _) in enumerate(remote):
        np.testing.assert_allclose(details["distribution"], local[i].distribution, atol=2e-4)


def test_retries_honour_retry_after_and_recover(server):
    server.faults = FaultPlan([("429", 2), "500", "drop", ("slow", 1.5)])
    waits = []
    cfg = _cfg(server, timeout=0.75, max_concurrency=1)
    rater = Rater(cfg, backend=RemoteBackend(cfg, sleep=waits.append))
    results = rater.rate_texts(CONVS[:2])
    assert all(err is None for _, err in results)
    assert rater.stats.retries == 4
    assert 2.0 in waits  # Retry-After
    assert all(w < 1 for w in waits if w != 2.0)  # exponential backoff from backoff_base


def test_persistent_failures_are_recorded_then_retried(server, tmp_path):
    ds = datasets.Dataset.from_list([{"text": c} for c in CONVS[:3]])
    cfg = _cfg(server, cache=True, cache_path=str(tmp_path / "c.sqlite"), max_retries=1, max_concurrency=1)
    server.faults = FaultPlan(["500", "500"])  # the first row fails twice: out of retries
    rated, stats = rate(ds, cfg, backend=RemoteBackend(cfg, sleep=lambda s: None))
    assert rated["rating"][0] is None and rated["rating_error"][0] == "http_500"
    assert rated["rating"][1] is not None and stats.failed == {"http_500": 1}
    server.faults = FaultPlan()
    rated, stats = rate(ds, cfg)
    assert stats.rated == 1 and stats.cached == 2 and all(r is not None for r in rated["rating"])


def test_bad_request_is_a_per_row_failure(server):
    server.faults = FaultPlan(["400"])
    cfg = _cfg(server, max_concurrency=1)
    res = Rater(cfg).rate_texts(CONVS[:2])
    assert res[0][0] is None and res[0][1].startswith("context_length")
    assert res[1][1] is None


def test_wrong_api_key_names_the_variable_not_the_key(wordlevel_dir, monkeypatch, caplog):
    monkeypatch.setenv("MY_RATER_KEY", "sk-wrong-123")
    with ModelServer(wordlevel_dir, api_key="sk-right-456") as srv, caplog.at_level(logging.DEBUG):
        rater = Rater(_cfg(srv, api_key_env="MY_RATER_KEY"))
        with pytest.raises(AuthenticationError) as info:
            rater.rate_texts(CONVS[:1])
        assert "MY_RATER_KEY" in str(info.value) and "401" in str(info.value)
        assert "sk-wrong-123" not in str(info.value) and "sk-wrong-123" not in caplog.text
        ok = Rater(_cfg(srv), api_key="sk-right-456")
        assert ok.rate_texts(CONVS[:1])[0][1] is None
        assert "sk-right-456" not in repr(ok) + repr(ok.backend) and b"sk-right-456" not in pickle.dumps(ok)
        assert b"sk-right-456" not in pickle.dumps(ok.backend)


def test_unreachable_server_and_wrong_model_are_clear_errors(server):
    import socket

    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()  # nothing listens there now
    cfg = RatingConfig(model="tiny", backend="openai", base_url=f"http://127.0.0.1:{port}/v1", cache=False,
                       max_retries=1, backoff_base=0.01)
    with pytest.raises(ServerUnreachableError, match="Is the server running"):
        Rater(cfg).rate_texts(CONVS[:1])
    with pytest.raises(FatalBackendError, match="404.*'no-such-model'"):
        Rater(_cfg(server, model="no-such-model")).rate_texts(CONVS[:1])


def test_openai_without_key_fails_before_any_request(monkeypatch):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    with pytest.raises(AuthenticationError, match="OPENAI_API_KEY"):
        Rater(model="gpt-4o-mini", backend="openai", cache=False).rate_texts(CONVS[:1])
