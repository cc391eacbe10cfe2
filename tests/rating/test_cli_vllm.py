import json
import os

import pytest

datasets = pytest.importorskip("datasets")

from ds2_hf.cli import main  # noqa: E402
from ds2_hf.rating import RatingConfig  # noqa: E402
from ds2_hf.rating.backends.vllm import VLLMBackend  # noqa: E402


def test_ds2_rate_command(llama_dir, tmp_path, capsys):
    src = tmp_path / "rows.jsonl"
    datasets.Dataset.from_list(
        [{"messages": [{"role": "user", "content": f"Say {i}."}, {"role": "assistant", "content": str(i)}]}
         for i in range(4)]
    ).to_json(str(src))
    out, stats = tmp_path / "rated.parquet", tmp_path / "stats.json"
    code = main(["rate", str(src), str(out), "--model", llama_dir, "--mode", "logprobs", "--cache-path",
                 str(tmp_path / "c.sqlite"), "--max-input-tokens", "400", "--column-prefix", "tiny_",
                 "--stats", str(stats)])
    assert code == 0
    rated = datasets.load_dataset("parquet", data_files=str(out), split="train")
    assert rated.features["tiny_rating"].dtype == "int8" and None not in rated["tiny_rating"]
    assert json.loads(stats.read_text())["rated"] == 4
    assert "4 rated" in capsys.readouterr().out


def test_ds2_rate_reports_unreachable_server(tmp_path, capsys):
    src = tmp_path / "rows.jsonl"
    datasets.Dataset.from_list([{"text": "hello"}]).to_json(str(src))
    code = main(["rate", str(src), str(tmp_path / "o.parquet"), "--backend", "openai", "--model", "m",
                 "--base-url", "http://127.0.0.1:9/v1", "--max-retries", "0", "--no-cache"])
    assert code == 1 and "cannot connect" in capsys.readouterr().err


def test_vllm_backend_without_vllm_names_the_extra():
    pytest.importorskip("torch")
    try:
        import vllm  # noqa: F401
    except ImportError:
        be = VLLMBackend(RatingConfig(model="some/model", backend="vllm"))
        with pytest.raises(ImportError, match=r'pip install "ds2-hf\[vllm\]"'):
            be.generate(["x"], lambda i, r: None)
    else:
        pytest.skip("vllm is installed")


@pytest.mark.vllm
@pytest.mark.skipif(not os.environ.get("DS2_VLLM_URL"), reason="set DS2_VLLM_URL to a running `vllm serve` (see README)")
def test_vllm_server_both_modes():
    from ds2_hf.rating import Rater

    url, model = os.environ["DS2_VLLM_URL"], os.environ.get("DS2_VLLM_MODEL", "Qwen/Qwen2.5-0.5B-Instruct")
    convs = ["###user: What is 2+2?\n###assistant: 4\n", "###user: Write a haiku about rain.\n###assistant: ...\n"]
    for mode in ("generate", "logprobs"):
        rater = Rater(model=model, backend="vllm-server", base_url=url, mode=mode, cache=False, do_sample=False)
        results = rater.rate_texts(convs)
        assert all(err is None for _, err in results), results
        assert all(1 <= d["overall"] <= 10 for d, _ in results)
