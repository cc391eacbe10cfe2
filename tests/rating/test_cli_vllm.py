import json
import os

import numpy as np
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


class _FakeVLLM:
    """The slice of ``vllm.LLM`` the backend uses, answered by a transformers model (full-vocabulary logprobs)."""

    def __init__(self, path):
        import torch
        import transformers

        self.torch = torch
        self.tok = transformers.AutoTokenizer.from_pretrained(path)
        self.model = transformers.AutoModelForCausalLM.from_pretrained(path).eval()

    def get_tokenizer(self):
        return self.tok

    def generate(self, prompts, params, use_tqdm=False):
        from types import SimpleNamespace as NS

        outs = []
        for p in prompts:
            ids = p["prompt_token_ids"]
            with self.torch.inference_mode():
                lp = self.torch.log_softmax(self.model(self.torch.tensor([ids])).logits[0, -1].float(), -1)
            k = min(params["logprobs"], lp.numel())
            top = self.torch.topk(lp, k)
            logprobs = {int(t): NS(logprob=float(v)) for v, t in zip(top.values, top.indices)}
            best = int(lp.argmax())
            outs.append(NS(prompt_token_ids=ids, outputs=[NS(text=self.tok.decode([best]), token_ids=[best],
                                                             logprobs=[logprobs])]))
        return outs


@pytest.mark.parametrize("which", ["llama_dir", "wordlevel_dir", "gpt2like_dir"])
def test_vllm_backend_logprobs_match_transformers(which, request):
    """The vLLM backend's arithmetic (the two-token '10' step, a space merged into the number) equals the
    transformers backend's."""
    torch = pytest.importorskip("torch")
    torch.set_num_threads(1)
    from ds2_hf.rating.backends.transformers import TransformersBackend

    path = request.getfixturevalue(which)
    convs = ["###user: Add 2 and 3.\n###assistant: 5\n", "###user: Name a colour.\n###assistant: Blue.\n"]
    fake = _FakeVLLM(path)
    cfg = RatingConfig(model=path, backend="vllm", mode="logprobs", top_logprobs=len(fake.tok))
    got, want = {}, {}
    VLLMBackend(cfg, llm=fake, sampling_params=dict).score(convs, got.__setitem__)
    TransformersBackend(cfg.replace(backend="transformers")).score(convs, want.__setitem__)
    for i in range(len(convs)):
        np.testing.assert_allclose(got[i].distribution, want[i].distribution, rtol=1e-3, atol=1e-6)
        assert got[i].score_mass == pytest.approx(want[i].score_mass, rel=1e-3)
