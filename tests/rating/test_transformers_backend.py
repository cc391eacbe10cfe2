"""The local transformers backend end to end, in both modes, with tiny random-weight models."""

import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

datasets = pytest.importorskip("datasets")
torch = pytest.importorskip("torch")

from ds2_hf.columns import ColumnExistsError  # noqa: E402
from ds2_hf.rating import ChatTemplateMissingError, Rater, RatingCache, RatingConfig, rate  # noqa: E402
from ds2_hf.rating.backends.base import probe_score_tokens  # noqa: E402
from ds2_hf.rating.backends.transformers import TransformersBackend  # noqa: E402

ROWS = [{"instruction": f"Add {i} and 3.", "input": "", "output": f"The answer is {i + 3}."} for i in range(6)]


@pytest.fixture(autouse=True)
def _one_thread():
    torch.set_num_threads(1)


def _ds(rows=ROWS):
    return datasets.Dataset.from_list(rows)


class Recording:
    """Wraps a backend; records what it was asked to rate and can stop after ``stop_after`` results."""

    def __init__(self, inner, stop_after=None):
        self.inner, self.stop_after, self.asked, self.done = inner, stop_after, [], 0

    def identity(self):
        return self.inner.identity()

    def close(self):
        pass

    def _wrap(self, on_result):
        def cb(i, res):
            if self.stop_after is not None and self.done >= self.stop_after:
                raise KeyboardInterrupt("simulated kill")
            self.done += 1
            on_result(i, res)
        return cb

    def generate(self, convs, on_result):
        self.asked += list(convs)
        self.inner.generate(convs, self._wrap(on_result))

    def score(self, convs, on_result):
        self.asked += list(convs)
        self.inner.score(convs, self._wrap(on_result))


def test_score_tokens_for_both_tokenizer_kinds(llama_dir, wordlevel_dir):
    import transformers

    split = probe_score_tokens(transformers.AutoTokenizer.from_pretrained(llama_dir), '{"Overall rating": ')
    assert split.trim == "" and split.paths[9] == split.paths[0] + (split.digits[0],) and len(split.steps) == 2
    assert len({p[0] for p in split.paths[:9]}) == 9
    single = probe_score_tokens(transformers.AutoTokenizer.from_pretrained(wordlevel_dir), '{"Overall rating": ')
    assert len(single.paths[9]) == 1 and single.paths[9] not in single.paths[:9] and single.steps == ((),)


@pytest.mark.parametrize("mode", ["generate", "logprobs"])
def test_rate_end_to_end(llama_dir, cache_path, mode):
    bad = [{"instruction": "", "input": "", "output": ""}, {"instruction": "   ", "input": None, "output": ""}]
    rated, stats = rate(_ds(ROWS + bad), model=llama_dir, mode=mode, cache_path=cache_path, max_input_tokens=512)
    f = rated.features
    assert f["rating"].dtype == "int8" and f["rating_details"]["overall"].dtype == "int8"
    assert f["rating_details"]["expected"].dtype == "float32"
    good = rated.select(range(len(ROWS)))
    assert all(0 <= r <= 5 for r in good["rating"])
    assert all(e is None for e in good["rating_error"])
    for d in good["rating_details"]:
        assert 1 <= d["overall"] <= 10 and d["truncated"] is False
        if mode == "generate":  # structured decoding always yields four valid numbers
            assert all(1 <= d[k] <= 10 for k in ("rarity", "complexity", "informativeness"))
            assert d["expected"] is None
        else:
            assert len(d["distribution"]) == 10 and sum(d["distribution"]) == pytest.approx(1, abs=1e-5)
            assert d["overall"] == int(np.floor(d["expected"] + 0.5))
    # bad rows: null rating and details, a reason - never 0
    assert rated["rating"][-2:] == [None, None] and rated["rating_details"][-2:] == [None, None]
    assert all("format:" in e and "empty" in e for e in rated["rating_error"][-2:])
    assert stats.rated == len(ROWS) and stats.failed == {"format": 2} and stats.prompt_tokens > 0
    # compression is the paper's
    table = (0, 0, 0, 0, 1, 2, 3, 4, 5, 5)
    assert good["rating"] == [table[d["overall"] - 1] for d in good["rating_details"]]
    # a second run is answered from the cache, with identical results
    again, stats2 = rate(_ds(ROWS + bad), model=llama_dir, mode=mode, cache_path=cache_path, max_input_tokens=512)
    assert stats2.rated == 0 and stats2.cached == len(ROWS)
    assert again["rating_details"] == rated["rating_details"]


def test_non_string_content_is_a_per_row_failure(llama_dir, cache_path):
    rater = Rater(model=llama_dir, mode="logprobs", cache_path=cache_path)
    out = rater({"messages": [[{"role": "user", "content": 5}], [{"role": "user", "content": "Hi"}]]})
    assert out["rating"][0] is None and "content must be a string" in out["rating_error"][0]
    assert out["rating"][1] is not None and out["rating_error"][1] is None


def test_logprobs_do_not_depend_on_batching(llama_dir):
    be = TransformersBackend(RatingConfig(model=llama_dir, mode="logprobs", batch_size=4))
    texts = [be._render(f"###user: {'word ' * (3 * i)}question {i}\n") + '{"Overall rating": ' for i in range(4)]
    batched = be.distributions(texts)
    for text, (dist, mass) in zip(texts, batched):
        d1, m1 = be.distributions([text])[0]
        np.testing.assert_allclose(dist, d1, atol=1e-5)
        assert mass == pytest.approx(m1, rel=1e-4)


def test_objects_passed_in_are_padded_on_the_left(llama_dir):
    """A model and tokenizer handed to the backend (tokenizer padding on the right) batch like a loaded one."""
    import transformers

    tok = transformers.AutoTokenizer.from_pretrained(llama_dir)
    tok.padding_side = "right"
    model = transformers.AutoModelForCausalLM.from_pretrained(llama_dir)
    given = TransformersBackend(RatingConfig(model=llama_dir, mode="logprobs"), model=model, tokenizer=tok)
    loaded = TransformersBackend(RatingConfig(model=llama_dir, mode="logprobs"))
    texts = [loaded._render(f"###user: {'word ' * (5 * i)}q{i}\n") + '{"Overall rating": ' for i in range(3)]
    for (a, _), (b, _) in zip(given.distributions(texts), loaded.distributions(texts)):
        np.testing.assert_allclose(a, b, atol=1e-5)


def test_generate_is_reproducible_and_seeded(llama_dir):
    convs = [f"###user: q{i}\n###assistant: a{i}\n" for i in range(3)]
    answers = {}
    for seed, bs in ((0, 1), (0, 3), (1, 3)):
        out = {}
        TransformersBackend(RatingConfig(model=llama_dir, seed=seed, batch_size=bs)).generate(convs, out.__setitem__)
        answers[(seed, bs)] = [out[i].text for i in range(3)]
    assert answers[(0, 1)] == answers[(0, 3)]  # batching does not change a sample's rating
    assert answers[(0, 3)] != answers[(1, 3)]


@pytest.mark.parametrize("which", ["llama_dir", "wordlevel_dir"])
@pytest.mark.parametrize("do_sample", [False, True])
def test_kv_cached_skeleton_equals_recomputing(which, do_sample, request):
    """The incremental (KV cache) JSON-skeleton decoding picks what full re-encoding at every step picks."""
    from ds2_hf.rating.backends.transformers import _sample_rng

    be = TransformersBackend(RatingConfig(model=request.getfixturevalue(which), do_sample=do_sample, temperature=5.0))
    prompts = [be._render(f"###user: {'many words ' * (4 * i)}q{i}\n") for i in range(3)]
    cached = be._skeleton(prompts, [_sample_rng(0, p) for p in prompts], cached=True)
    full = be._skeleton(prompts, [_sample_rng(0, p) for p in prompts], cached=False)
    assert cached == full
    if do_sample:  # high temperature: the sampled scores differ between rows
        assert len(set(cached)) > 1


def test_free_generation_goes_through_the_parser(llama_dir, cache_path):
    # a random model does not write JSON: every row fails with a parse reason, never a score
    rated, stats = rate(_ds(ROWS[:2]), model=llama_dir, structured_output=False, max_new_tokens=8,
                        cache_path=cache_path, max_input_tokens=512)
    assert rated["rating"] == [None, None]
    assert all(e.startswith("parse: ") for e in rated["rating_error"])
    assert set(stats.failed) == {"parse"}


def test_long_conversation_is_truncated_and_flagged(llama_dir, cache_path):
    long_row = {"instruction": "Summarise: " + "lorem ipsum dolor sit amet " * 200, "input": "", "output": "ok"}
    rated, stats = rate(_ds([long_row, ROWS[0]]), model=llama_dir, mode="logprobs", max_input_tokens=400,
                        cache_path=cache_path)
    assert [d["truncated"] for d in rated["rating_details"]] == [True, False]
    assert stats.truncated == 1 and rated["rating"][0] is not None
    # a budget smaller than the prompt itself is a per-row failure that says what to change
    rated, _ = rate(_ds([ROWS[1]]), model=llama_dir, mode="logprobs", max_input_tokens=50, cache_path=cache_path)
    assert rated["rating"] == [None] and "max_input_tokens" in rated["rating_error"][0]


def test_model_without_chat_template_is_a_clear_error(no_template_dir, cache_path):
    with pytest.raises(ChatTemplateMissingError, match="chat template"):
        rate(_ds(ROWS[:1]), model=no_template_dir, cache_path=cache_path)


def test_interrupted_run_resumes_and_failures_are_retried(llama_dir, cache_path):
    cfg = RatingConfig(model=llama_dir, mode="logprobs", cache_path=cache_path, batch_size=2)
    first = Recording(TransformersBackend(cfg), stop_after=3)
    with pytest.raises(KeyboardInterrupt):
        rate(_ds(), cfg, backend=first)
    assert len(RatingCache(cache_path)) == 3
    second = Recording(TransformersBackend(cfg))
    rated, stats = rate(_ds(), cfg, backend=second)
    assert len(second.asked) == len(ROWS) - 3 and stats.cached == 3 and stats.rated == len(ROWS) - 3
    assert all(r is not None for r in rated["rating"])


def test_failures_are_recorded_then_retried_only(llama_dir, cache_path):
    from ds2_hf.rating import RawResult

    cfg = RatingConfig(model=llama_dir, mode="logprobs", cache_path=cache_path)

    class Flaky(Recording):
        def score(self, convs, on_result):
            self.asked += list(convs)
            ok = [c for c in convs if "Add 1 " not in c]
            for i, c in enumerate(convs):
                if c not in ok:
                    on_result(i, RawResult(error="http_503", retries=6))
            self.inner.score(ok, lambda j, r: on_result(convs.index(ok[j]), r))

    rated, stats = rate(_ds(), cfg, backend=Flaky(TransformersBackend(cfg)))
    assert rated["rating"][1] is None and rated["rating_error"][1] == "http_503"
    assert stats.failed == {"http_503": 1} and stats.retries == 6
    again = Recording(TransformersBackend(cfg))
    rated, stats = rate(_ds(), cfg, backend=again)
    assert len(again.asked) == 1 and "Add 1 " in again.asked[0]
    assert rated["rating"][1] is not None and stats.cached == len(ROWS) - 1


def test_map_fingerprint_is_config_only_and_hits_the_cache(llama_dir, tmp_path):
    _ds().save_to_disk(str(tmp_path / "ds"))
    ds = datasets.load_from_disk(str(tmp_path / "ds"))
    cfg = RatingConfig(model=llama_dir, mode="logprobs", cache_path=str(tmp_path / "c.sqlite"))
    rater = Rater(cfg, api_key="sk-secret")
    first = ds.map(rater, batched=True)
    assert rater._backend is not None  # the model was loaded ...
    second = ds.map(Rater(cfg), batched=True)  # ... but a fresh rater fingerprints the same
    assert first._fingerprint == second._fingerprint
    assert first.cache_files[0]["filename"] == second.cache_files[0]["filename"]
    import pickle

    blob = pickle.dumps(rater)
    assert b"sk-secret" not in blob and len(blob) < 20_000
    assert pickle.loads(blob).config == cfg


def test_column_prefix_lets_raters_sit_side_by_side(llama_dir, cache_path):
    rated, _ = rate(_ds(ROWS[:2]), model=llama_dir, mode="logprobs", cache_path=cache_path)
    with pytest.raises(ColumnExistsError, match="column_prefix"):
        rate(rated, model=llama_dir, mode="logprobs", cache_path=cache_path)
    both, _ = rate(rated, model=llama_dir, mode="generate", cache_path=cache_path, column_prefix="gen_")
    assert {"rating", "gen_rating", "gen_rating_details", "gen_rating_error"} <= set(both.column_names)


@pytest.mark.slow
def test_killed_process_resumes(llama_dir, tmp_path):
    """SIGKILL a rating process mid-run; the next run re-uses every finished rating and rates only the rest."""
    n = 16
    data = tmp_path / "rows.jsonl"
    _ds([{"instruction": f"Question {i}?", "output": f"Answer {i}."} for i in range(n)]).to_json(str(data))
    cache = tmp_path / "c.sqlite"
    args = [sys.executable, "-c", "import sys; from ds2_hf.cli import main; sys.exit(main())", "rate"]
    cmd = args + [str(data), str(tmp_path / "out.parquet"), "--model", llama_dir, "--mode", "generate",
                  "--batch-size", "1", "--cache-path", str(cache), "--max-input-tokens", "512"]
    env = dict(os.environ, OMP_NUM_THREADS="1")
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    try:
        deadline = time.time() + 60
        while time.time() < deadline:
            if cache.exists() and len(RatingCache(cache)) >= 3:
                break
            time.sleep(0.05)
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.wait()
    done = len(RatingCache(cache))
    assert 3 <= done < n, "the run should have been killed part-way"
    cfg = RatingConfig(model=llama_dir, mode="generate", batch_size=1, cache_path=str(cache), max_input_tokens=512)
    rec = Recording(TransformersBackend(cfg))
    rated, stats = rate(datasets.load_dataset("json", data_files=str(data), split="train"), cfg, backend=rec)
    assert len(rec.asked) == n - done and stats.cached == done
    assert all(r is not None for r in rated["rating"])
