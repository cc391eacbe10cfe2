"""Publishing (ds2_hf.publish): dataset card, local save in Hub layout, HTML report, and pushes with the real
huggingface_hub client over real HTTP to a loopback Hub stub (tests/hub_server.py). No network."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from pathlib import Path

import datasets
import numpy as np
import pytest
from huggingface_hub import DatasetCard

import ds2_hf
from ds2_hf import publish
from ds2_hf.report import SCHEMA_VERSION, Report
from ds2_hf.publish import render_report_html, write_report_html

try:
    from hub_server import DEFAULT_TOKEN, USER, HubStub
except ImportError:  # tests/ imported as a package
    from .hub_server import DEFAULT_TOKEN, USER, HubStub

K = 6
EXPECTED_FIGURES = ["composition.png", "long_tail.png", "rating_distribution.png", "transition_matrix.png"]


# ------------------------------------------------------------------------------------------------ data
def make_pool(n: int = 200, seed: int = 0, *, dim: int = 8) -> tuple[datasets.Dataset, dict]:
    """A curated pool with known columns and a matching report (random ratings, 30% of them noisy)."""
    rng = np.random.default_rng(seed)
    true = rng.integers(0, K, n)
    rating = np.where(rng.random(n) < 0.7, true, rng.integers(0, K, n))
    features = datasets.Features({
        "instruction": datasets.Value("string"),
        "output": datasets.Value("string"),
        "source": datasets.Value("string"),
        "rating": datasets.Value("int8"),
        "curated_rating": datasets.Value("int8"),
        "curation_confidence": datasets.Value("float32"),
        "misrated": datasets.Value("bool"),
        "long_tail_score": datasets.Value("float32"),
        "embedding": datasets.List(datasets.Value("float32"), length=dim),
    })
    pool = datasets.Dataset.from_dict(
        {
            "instruction": [f"Explain topic {i % 17} | part {i} <b>bold</b>" for i in range(n)],
            "output": [f"Answer {i}." for i in range(n)],
            "source": rng.choice(["alpaca", "dolly", "flan_v2", "oasst1"], n).tolist(),
            "rating": rating,
            "curated_rating": true,
            "curation_confidence": rng.random(n),
            "misrated": true != rating,
            "long_tail_score": rng.random(n),
            "embedding": rng.normal(size=(n, dim)),
        },
        features=features,
    )
    T = np.full((K, K), 0.3 / (K - 1))
    np.fill_diagonal(T, 0.7)
    report = {
        "curation": {
            "method": "faithful", "num_classes": K, "n": n, "n_rated": n,
            "transition_matrix": T.tolist(), "true_prior": [1 / K] * K, "rated_prior": [1 / K] * K,
            "counts_raw": np.bincount(rating, minlength=K).tolist(),
            "counts_curated": np.bincount(true, minlength=K).tolist(),
            "n_flagged": int((true != rating).sum()), "n_changed": int((true != rating).sum()),
            "knn": {"method": "exact", "k": 10, "recall": 0.987},
            "clusterability": {"score": 0.81, "per_class": [0.8] * K, "verdict": "ok"},
            "config": {"k": 10, "rounds": 21},
        },
        "selection": {"strategy": "ds2", "k": 50, "n_pool": n, "config": {"k": 50}},
        "rating": {"backend": "tgi", "model": "meta-llama/Llama-3.1-8B-Instruct", "mode": "json",
                   "template_hash": "tmpl-abc123"},
        "embedding": {"backend": "wordllama", "model": "l2_supercat", "dim": dim},
        "source": {"dataset": "org/pool", "revision": "deadbeef", "license": "apache-2.0"},
        "command": "ds2 run org/pool -k 50 --out my-subset",
    }
    return pool, report


def ds2_select(pool: datasets.Dataset, k: int) -> datasets.Dataset:
    order = np.lexsort((-np.asarray(pool["long_tail_score"][:]), -np.asarray(pool["curated_rating"][:])))
    return pool.select(order[:k])


@pytest.fixture(scope="module")
def pool_and_report():
    return make_pool()


@pytest.fixture(scope="module")
def saved(tmp_path_factory, pool_and_report):
    pool, report = pool_and_report
    subset = ds2_select(pool, 50)
    folder = publish.save_subset(subset, tmp_path_factory.mktemp("save") / "subset", report=report, pool=pool,
                             language="en")
    return folder, subset, report


def _tree(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


# ------------------------------------------------------------------------------------------------ local save
def test_save_writes_hub_layout_and_load_dataset_round_trips(saved):
    folder, subset, _ = saved
    files = sorted(_tree(folder))
    assert files == ["README.md", "data/train-00000-of-00001.parquet", "ds2_manifest.json", "ds2_report.json"] + [
        f"figures/{name}" for name in EXPECTED_FIGURES
    ]
    back = datasets.load_dataset(str(folder), split="train")
    expected = subset.remove_columns("embedding")  # dropped by default
    assert back.features == expected.features
    assert back.to_dict() == expected.to_dict()


def test_card_metadata_parses_and_describes_the_selection(saved):
    folder, subset, report = saved
    card = DatasetCard.load(folder / "README.md")
    meta = card.data.to_dict()
    assert meta["license"] == "apache-2.0"  # inherited from the source
    assert meta["language"] == ["en"]
    assert meta["task_categories"] == ["text-generation"]
    assert meta["size_categories"] == ["n<1K"]
    assert meta["source_datasets"] == ["org/pool"]
    assert meta["tags"] == ["ds2", "data-selection", "synthetic-ratings"]
    assert meta["configs"] == [{"config_name": "default", "data_files": [{"split": "train", "path": "data/train-*"}]}]
    assert datasets.Features._from_yaml_list(meta["dataset_info"]["features"]) == subset.remove_columns(
        "embedding").features
    assert meta["dataset_info"]["splits"][0]["num_examples"] == 50
    assert meta["ds2"]["prompt_template_hash"] == "tmpl-abc123" and meta["ds2"]["knn_recall"] == 0.987
    body = card.text
    for name in EXPECTED_FIGURES:
        assert f"(figures/{name})" in body
    for fact in ("org/pool", "deadbeef", "meta-llama/Llama-3.1-8B-Instruct", "tmpl-abc123", "wordllama",
                 "exact, k = 10, recall@k = 0.987", "faithful", "50 of 200 (25.0%)", report["command"],
                 "@inproceedings{pang2025improving", "| **0** | 0.700 | 0.060 |"):
        assert fact in body, fact
    # the pool-level counts of the report appear in the distribution table
    counts_raw = report["curation"]["counts_raw"]
    assert f"| 0 | {counts_raw[0]} |" in body
    # corrected examples: old score, new score, confidence; pipes escaped so the table stays intact
    examples = json.loads((folder / "ds2_report.json").read_text())["summary"]["examples"]
    assert len(examples) == 5 and all(e["rating"] != e["curated_rating"] for e in examples)
    assert examples == sorted(examples, key=lambda e: -e["confidence"])
    assert "Explain topic" in body and "\\| part" in body


@pytest.mark.parametrize("used", [True, False])
def test_card_names_the_joint_models_second_stage(pool_and_report, used):
    pool, report = pool_and_report
    stage = {"used": used, "heldout_gain_first": 0.41, "heldout_gain_second": 0.42 if used else 0.40}
    joint_report = {**report, "curation": {**report["curation"], "method": "joint",
                                           "joint": {"k": 40, "neighbourhood_prior": stage}}}
    body = str(publish.build_card(ds2_select(pool, 20), report=joint_report, pool=pool, language="en"))
    expected = ("then the neighbourhood prior (it predicted held-out ratings better)" if used
                else "the neighbourhood prior was tried and not kept")
    assert expected in body


def test_report_json_keeps_report_and_summary(saved):
    folder, _, report = saved
    payload = publish.load_summary(folder)
    assert Report.from_dict(payload) == Report.from_dict(report)  # the typed report, round-tripped
    assert payload["report"]["schema_version"] == SCHEMA_VERSION
    summary = payload["summary"]
    assert summary["num_rows"] == 50 and summary["num_classes"] == K
    assert summary["composition"]["column"] == "source"
    assert sum(summary["composition"]["subset"].values()) == 50
    assert sum(summary["composition"]["pool"].values()) == 200
    assert summary["long_tail"]["cut_score"] == min(summary["distributions"]["subset, curated"].index(c)
                                                    for c in summary["distributions"]["subset, curated"] if c)
    assert list(summary["distributions"]) == ["pool, raw", "pool, curated", "subset, raw", "subset, curated"]


def test_save_is_byte_reproducible(tmp_path, saved, pool_and_report):
    folder, subset, report = saved
    pool, _ = pool_and_report
    again = publish.save_subset(subset, tmp_path / "again", report=report, pool=pool, language="en")
    assert _tree(again) == _tree(folder)  # required for an idempotent re-push


def test_subset_without_curation_columns_says_what_is_unknown(tmp_path):
    plain = datasets.Dataset.from_dict({"text": ["first row", "second row", "third row"]})
    folder = publish.save_subset(plain, tmp_path / "plain")
    card = DatasetCard.load(folder / "README.md")
    assert card.data.license == "unknown"
    assert "synthetic-ratings" not in card.data.tags and card.data.source_datasets is None
    assert "Not recorded: this subset was published without a curation report" in card.text
    assert "Not recorded: the command that produced this subset was not saved" in card.text
    assert "| Rater | not recorded |" in card.text
    assert not (folder / "figures").exists() or not list((folder / "figures").iterdir())
    assert datasets.load_dataset(str(folder), split="train")["text"][:] == ["first row", "second row", "third row"]


def test_raw_ratings_only_gives_a_distribution_but_no_matrix(tmp_path):
    rated = datasets.Dataset.from_dict({"text": list("abcdef"), "rating": [0, 1, 1, 2, 2, 2]})
    card = publish.build_card(rated, license="mit")
    assert card.data.license == "mit"
    assert "| 2 | 3 | 3 |" not in card.text and "| 2 | 3 |" in card.text
    assert "transition matrix is unknown" in card.text


def test_keep_embedding_round_trips_the_fixed_size_list(tmp_path, pool_and_report):
    pool, report = pool_and_report
    subset = ds2_select(pool, 20)
    folder = publish.save_subset(subset, tmp_path / "emb", report=report, keep_embedding=True, figures=False)
    back = datasets.load_dataset(str(folder), split="train")
    assert back.features["embedding"] == datasets.List(datasets.Value("float32"), length=8)
    np.testing.assert_array_equal(np.asarray(back["embedding"][:]), np.asarray(subset["embedding"][:]))
    assert not (folder / "figures").exists()


def test_small_shards_are_all_read_back(tmp_path, pool_and_report):
    pool, report = pool_and_report
    folder = publish.save_subset(pool, tmp_path / "sharded", report=report, max_shard_size=2_000, figures=False)
    shards = sorted(p.name for p in (folder / "data").iterdir())
    assert len(shards) > 1 and shards[0] == f"train-00000-of-{len(shards):05d}.parquet"
    assert datasets.load_dataset(str(folder), split="train").num_rows == 200


def test_bad_input_is_refused_with_a_clear_message(tmp_path, pool_and_report):
    pool, report = pool_and_report
    with pytest.raises(ValueError, match="empty"):
        publish.save_subset(pool.select([]), tmp_path / "empty", report=report)
    with pytest.raises(TypeError, match="unknown publishing option"):
        publish.save_subset(pool, tmp_path / "x", colour="blue")
    with pytest.raises(TypeError, match="DatasetDict"):
        publish.save_subset(datasets.DatasetDict({"train": pool}), tmp_path / "x")
    with pytest.raises(ValueError, match="composition_column='nope' is not a column"):
        publish.save_subset(pool, tmp_path / "x", composition_column="nope")
    with pytest.raises(ValueError, match="max_shard_size"):
        publish.PublishConfig(max_shard_size="lots")
    assert not (tmp_path / "x").exists() and not (tmp_path / "empty").exists()


def test_non_empty_folder_needs_overwrite_and_other_files_survive(tmp_path, pool_and_report):
    pool, report = pool_and_report
    folder = tmp_path / "busy"
    (folder / "data").mkdir(parents=True)
    (folder / "notes.txt").write_text("mine")
    (folder / "data" / "train-00000-of-00009.parquet").write_bytes(b"stale shard")
    with pytest.raises(ValueError, match="not empty.*overwrite=True"):
        publish.save_subset(ds2_select(pool, 10), folder, report=report)
    assert (folder / "data" / "train-00000-of-00009.parquet").read_bytes() == b"stale shard"
    publish.save_subset(ds2_select(pool, 10), folder, report=report, overwrite=True, figures=False)
    assert (folder / "notes.txt").read_text() == "mine"
    assert sorted(p.name for p in (folder / "data").iterdir()) == ["train-00000-of-00001.parquet"]
    assert datasets.load_dataset(str(folder / "data"), split="train").num_rows == 10


def test_report_files_merge_section_by_section(tmp_path):
    (tmp_path / "a.json").write_text(json.dumps({"curation": {"method": "joint", "n": 9}, "command": "x"}))
    (tmp_path / "b.json").write_text(json.dumps({"strategy": "ds2", "k": 3, "n_pool": 9}))  # `ds2 select` of 0.1.0
    (tmp_path / "c.json").write_text(json.dumps({"curation": {"n": 10}, "source": {"dataset": "org/x"}}))
    merged = Report.read_many([tmp_path / "a.json", tmp_path / "b.json", tmp_path / "c.json"])
    assert merged.curation.n == 10 and merged.curation.method is None  # a later section replaces an earlier one
    assert merged.selection.strategy == "ds2" and merged.selection.n_pool == 9
    assert merged.command.lines == ["x"] and merged.source.dataset == "org/x"
    with pytest.raises(FileNotFoundError):
        Report.read_many([tmp_path / "missing.json"])


# ------------------------------------------------------------------------------------------------ HTML report
def test_html_report_inlines_figures_and_escapes_text(saved, tmp_path):
    folder, _, report = saved
    out = write_report_html(folder, tmp_path / "r.html")
    html = out.read_text()
    assert html.startswith("<!DOCTYPE html>")
    assert html.count('src="data:image/png;base64,') == len(EXPECTED_FIGURES)
    assert "<b>bold</b>" not in html and "&lt;b&gt;bold&lt;/b&gt;" in html  # sample text is escaped
    for fact in ("tmpl-abc123", "deadbeef", report["command"], "0.700", "pang2025improving"):
        assert fact in html, fact


def test_html_report_of_an_uncurated_dataset(tmp_path):
    html = render_report_html(datasets.Dataset.from_dict({"text": ["a", "b"]}))
    assert "Not recorded: this subset was published without a curation report" in html
    assert "data:image/png" not in html


def test_cli_report_writes_into_the_folder(saved, capsys):
    from ds2_hf.cli import main

    folder, _, _ = saved
    assert main(["report", str(folder), "-o", str(folder.parent / "cli.html")]) == 0
    assert "wrote the report" in capsys.readouterr().out
    assert (folder.parent / "cli.html").read_text().count("data:image/png;base64,") == len(EXPECTED_FIGURES)


def test_card_templates_ship_inside_the_package():
    from importlib import resources

    names = {p.name for p in (resources.files("ds2_hf") / "cards").iterdir()}
    assert {"dataset_card.md", "report.html"} <= names


# ------------------------------------------------------------------------------------------------ push
def _download(stub_server: HubStub, repo_id: str, dest: Path, revision: str = "main") -> Path:
    for path, content in stub_server.files(repo_id, revision).items():
        (dest / path).parent.mkdir(parents=True, exist_ok=True)
        (dest / path).write_bytes(content)
    return dest


def test_push_subset_creates_repo_and_uploads_in_one_commit(stub, saved, pool_and_report, tmp_path, caplog,
                                                            capsys):
    pool, report = pool_and_report
    folder, subset, _ = saved
    caplog.set_level(logging.DEBUG)
    result = ds2_hf.push_subset(subset, "my-org/alpaca-ds2", report=report, pool=pool, language="en",
                                private=True, token=DEFAULT_TOKEN, endpoint=stub.endpoint)
    assert result.repo_id == "my-org/alpaca-ds2" and result.changed
    assert result.url == f"{stub.endpoint}/datasets/my-org/alpaca-ds2"
    repo = stub.repo("my-org/alpaca-ds2")
    assert repo.private is True
    commits = stub.commits("my-org/alpaca-ds2")
    assert len(commits) == 2  # the repository's initial commit + exactly one upload commit
    upload = commits[-1]
    assert upload["summary"] == ("Add DS2 subset: 50 rows of 200 (strategy ds2, curation faithful, "
                                 "rater meta-llama/Llama-3.1-8B-Instruct)")
    assert report["command"] in upload["description"]
    assert result.commit_oid == upload["oid"]

    arrived = stub.files("my-org/alpaca-ds2")
    local = _tree(folder)
    assert set(arrived) == set(local) | {".gitattributes"}
    same = [p for p in local if p.startswith(("data/", "figures/"))]  # card and report also name the repo
    assert len(same) == 5 and all(arrived[p] == local[p] for p in same)
    assert json.loads(arrived["ds2_report.json"])["publish"]["repo_id"] == "my-org/alpaca-ds2"
    card = DatasetCard(arrived["README.md"].decode())
    assert card.data.license == "apache-2.0" and card.data.source_datasets == ["org/pool"]
    assert 'load_dataset("my-org/alpaca-ds2", split="train")' in card.text

    again = ds2_hf.push_subset(subset, "my-org/alpaca-ds2", report=report, pool=pool, language="en",
                               token=DEFAULT_TOKEN, endpoint=stub.endpoint)
    assert not again.changed and len(stub.commits("my-org/alpaca-ds2")) == 2  # same subset: no new commit

    back = datasets.load_dataset(str(_download(stub, "my-org/alpaca-ds2", tmp_path / "hub")), split="train")
    assert back.features == subset.remove_columns("embedding").features and back.num_rows == 50

    # the token never leaves the Authorization header: not in logs, output or stored files
    out = capsys.readouterr()
    logged = "\n".join(r.getMessage() for r in caplog.records)
    for text in (out.out, out.err, logged, *(c.decode("latin-1") for c in arrived.values())):
        assert DEFAULT_TOKEN not in text
    assert all(r["authorized"] for r in stub.requests)


def test_repush_is_idempotent_and_prunes_stale_shards(stub, pool_and_report, tmp_path):
    pool, report = pool_and_report
    folder = publish.save_subset(pool, tmp_path / "big", report=report, max_shard_size=2_000, figures=False)
    first = publish.push_folder(folder, "me/pool", token=DEFAULT_TOKEN, endpoint=stub.endpoint)
    assert first.changed and len([p for p in stub.files("me/pool") if p.startswith("data/")]) > 1

    again = publish.push_folder(folder, "me/pool", token=DEFAULT_TOKEN, endpoint=stub.endpoint)
    assert not again.changed and again.commit_oid == first.commit_oid
    assert len(stub.commits("me/pool")) == 2  # no empty commit

    publish.save_subset(pool, folder, report=report, overwrite=True, figures=False)  # one shard now
    third = publish.push_folder(folder, "me/pool", token=DEFAULT_TOKEN, endpoint=stub.endpoint,
                            commit_message="Re-shard")
    assert third.changed and stub.commits("me/pool")[-1]["summary"] == "Re-shard"
    assert sorted(p for p in stub.files("me/pool") if p.startswith("data/")) == ["data/train-00000-of-00001.parquet"]


def test_push_to_a_branch_and_to_the_user_namespace(stub, saved):
    folder, _, _ = saved
    result = publish.push_folder(folder, "bare-name", revision="v2", token=DEFAULT_TOKEN, endpoint=stub.endpoint)
    assert result.repo_id == f"{USER}/bare-name" and result.revision == "v2"
    assert "README.md" in stub.files(f"{USER}/bare-name", "v2")
    assert "README.md" not in stub.files(f"{USER}/bare-name", "main")
    assert stub.repo(f"{USER}/bare-name").private is False


@pytest.mark.parametrize(
    ("route", "status", "token", "hint"),
    [
        (None, 401, "hf_not_a_known_token", "token was rejected"),
        (None, 403, "hf_stub_read_only_token", "may not write"),
        ("preupload", 404, DEFAULT_TOKEN, "not found"),
        ("commit", 409, DEFAULT_TOKEN, "changed during the upload"),
        ("create", 500, DEFAULT_TOKEN, "server error"),
        ("commit", 503, DEFAULT_TOKEN, "server error"),
    ],
)
def test_hub_errors_become_clean_push_errors(stub, saved, route, status, token, hint):
    folder, _, _ = saved
    if route is not None:
        stub.fail(route, status, "injected by the test")
    with pytest.raises(publish.PushError, match=f"HTTP {status}: .*{hint}") as info:
        publish.push_folder(folder, "org/failing", token=token, endpoint=stub.endpoint)
    assert token not in str(info.value) and DEFAULT_TOKEN not in str(info.value)
    assert info.value.__cause__ is None  # `from None`: no chained traceback repeating request details


def test_missing_token_and_invalid_repo_id_fail_before_any_request(stub, saved):
    folder, subset, _ = saved
    with pytest.raises(publish.PushError, match="HF_TOKEN"):
        publish.push_folder(folder, "org/name", endpoint=stub.endpoint)
    with pytest.raises(publish.PushError, match="hf auth login"):
        ds2_hf.push_subset(subset, "org/name", endpoint=stub.endpoint)
    for bad in ("org/name/extra", "bad name", "org--x/name", ""):
        with pytest.raises(ValueError, match="repo id|repo_id"):
            publish.push_folder(folder, bad, token=DEFAULT_TOKEN, endpoint=stub.endpoint)
    with pytest.raises(ValueError, match="Hub layout"):
        publish.push_folder(folder / "data", "org/name", token=DEFAULT_TOKEN, endpoint=stub.endpoint)
    assert stub.requests == []


def test_cli_push_of_a_plain_dataset_reads_token_from_env(stub, pool_and_report, tmp_path, monkeypatch, capsys):
    from ds2_hf.cli import main

    pool, report = pool_and_report
    ds2_select(pool, 30).to_parquet(str(tmp_path / "subset.parquet"))
    (tmp_path / "selection.json").write_text(json.dumps({"strategy": "ds2", "k": 30, "n_pool": 200}))
    monkeypatch.setenv("HF_TOKEN", DEFAULT_TOKEN)
    code = main(["push", str(tmp_path / "subset.parquet"), "org/cli-subset", "--endpoint", stub.endpoint,
                 "--report", str(tmp_path / "selection.json"), "--source", "org/pool", "--license", "mit"])
    out = capsys.readouterr()
    assert code == 0, out.err
    assert "pushed" in out.out and DEFAULT_TOKEN not in out.out + out.err
    card = DatasetCard(stub.files("org/cli-subset")["README.md"].decode())
    assert card.data.license == "mit" and card.data.source_datasets == ["org/pool"]
    assert stub.commits("org/cli-subset")[-1]["summary"] == "Add DS2 subset: 30 rows of 200 (strategy ds2)"

    monkeypatch.delenv("HF_TOKEN")
    code = main(["push", str(tmp_path / "subset.parquet"), "org/cli-subset", "--endpoint", stub.endpoint])
    assert code == 1 and "no Hugging Face token found" in capsys.readouterr().err


@pytest.mark.slow
def test_cli_push_respects_hf_endpoint_in_a_fresh_process(stub, saved):
    folder, _, _ = saved
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HF_", "HUGGING"))}
    env.update(HF_ENDPOINT=stub.endpoint, HF_TOKEN=DEFAULT_TOKEN, HF_HUB_DISABLE_XET="1",
               HF_HOME=str(folder.parent / "hf-home"))
    cli = "import sys; from ds2_hf.cli import main; sys.exit(main())"
    proc = subprocess.run([sys.executable, "-c", cli, "push", str(folder), "org/env-subset", "--private"],
                          env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "pushed" in proc.stdout and f"{stub.endpoint}/datasets/org/env-subset" in proc.stdout
    assert DEFAULT_TOKEN not in proc.stdout + proc.stderr
    assert stub.repo("org/env-subset").private is True
    assert set(_tree(folder)) <= set(stub.files("org/env-subset"))


def test_cli_run_push_to_uploads_the_subset(stub, tmp_path, monkeypatch, capsys):
    """`ds2 run --push-to` curates, selects, saves and pushes in one commit, reading the endpoint from HF_ENDPOINT."""
    from ds2_hf.cli import main

    assert main(["simulate", str(tmp_path / "pool.parquet"), "--n", "1200", "--dim", "16"]) == 0
    monkeypatch.setenv("HF_TOKEN", DEFAULT_TOKEN)
    monkeypatch.setenv("HF_ENDPOINT", stub.endpoint)
    code = main(["run", str(tmp_path / "pool.parquet"), "--output", str(tmp_path / "out"), "-k", "40",
                 "--push-to", "org/run-subset"])
    out = capsys.readouterr()
    assert code == 0, out.err
    assert DEFAULT_TOKEN not in out.out + out.err
    files = stub.files("org/run-subset")
    assert "README.md" in files and any(name.startswith("data/") for name in files)
    uploads = [c for c in stub.commits("org/run-subset") if c["summary"] != "initial commit"]
    assert len(uploads) == 1 and uploads[0]["summary"].startswith("Add DS2 subset: 40 rows")
    card = DatasetCard(files["README.md"].decode())
    assert "ds2 run " in card.text and "--push-to org/run-subset" in card.text  # the reproducing command
    assert card.data.ds2["selected"] == 40 and card.data.ds2["curation_method"] == "joint"
